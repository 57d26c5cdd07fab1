"""Evaluation: per-episode records, the recorder that builds them, and benchmark metrics.

All times are simulated seconds since ``reset``; definitions are in ``docs/metrics.md``.
"""

from residual_bench.eval.metrics import (
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
from residual_bench.eval.recorder import EpisodeRecorder
from residual_bench.eval.records import (
    SCHEMA_VERSION,
    EpisodeRecord,
    PerturbationEvent,
    append_jsonl,
    read_jsonl,
)

__all__ = [
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
