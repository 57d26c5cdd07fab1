"""Episodes: the one episode loop, the record it writes, and the metrics of records.

Everything that runs episodes (``bench demo``, ``bench eval``, training's periodic
evaluation, DAgger's collection, demonstrations) runs :func:`run_episode`; everything that
reads them reads :class:`EpisodeRecord`. All times are simulated seconds since ``reset``;
metric definitions are in ``docs/metrics.md``.
"""

from residual_bench.episodes.loop import Episode, run_episode
from residual_bench.episodes.metrics import (
    CURVE_HORIZONS,
    RATE_HORIZONS,
    action_jerk,
    action_rate,
    completion_time,
    first_success_time,
    grasped_at,
    mean_abs_residual_ratio,
    recovery_curve,
    recovery_rate_at,
    recovery_time,
    smoothness,
    summarize,
    wilson_interval,
)
from residual_bench.episodes.recorder import EpisodeRecorder
from residual_bench.episodes.records import (
    SCHEMA_VERSION,
    EpisodeRecord,
    PerturbationEvent,
    append_jsonl,
    read_jsonl,
)

__all__ = [
    "Episode",
    "run_episode",
    "CURVE_HORIZONS",
    "RATE_HORIZONS",
    "SCHEMA_VERSION",
    "EpisodeRecord",
    "EpisodeRecorder",
    "PerturbationEvent",
    "action_jerk",
    "action_rate",
    "append_jsonl",
    "completion_time",
    "first_success_time",
    "grasped_at",
    "mean_abs_residual_ratio",
    "read_jsonl",
    "recovery_curve",
    "recovery_rate_at",
    "recovery_time",
    "smoothness",
    "summarize",
    "wilson_interval",
]
