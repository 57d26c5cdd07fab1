"""The learning curve a training run writes: ``progress.csv``, one row per evaluation.

Rows are appended while training goes on, so a run killed in the middle of an append can leave
a last line without its line end. Readers here keep whole rows only, and the next append cuts
such a line off first (with a warning), so a resumed run goes on from its last complete
evaluation and the file stays one header and whole rows. A row is whole once its carriage
return is written (``csv.writer`` ends each row with CR LF, after its last digit): a row that
lost only its line feed is kept, and the next append completes it.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from residual_bench.episodes.loop import Act, run_episode
from residual_bench.episodes.metrics import wilson_interval
from residual_bench.episodes.records import drop_partial_tail
from residual_bench.run_directory import open_run_file
from residual_bench.seeding import episode_seed

EVAL_MASTER_SEED = 10_000
"""Master seed of the learning curve's episodes: disjoint from the benchmark's seeds, so a
run never evaluates itself on the episodes of the benchmark's tables."""
PROGRESS_FIELDS = ("timesteps", "success_rate", "success_ci_low", "success_ci_high", "wall_s")
REQUIRED_FIELDS = ("timesteps", "success_rate")


def read_progress(path: str | Path) -> pd.DataFrame:
    """The learning curve at ``path`` as a frame, whole rows only (a missing file: no rows).

    Raises:
        ValueError: the file has no ``timesteps`` or ``success_rate`` column, or a value in
            them is not a number.
    """
    path = Path(path)
    data = path.read_bytes() if path.exists() else b""
    text = (data if _is_whole_row(data) else data[: data.rfind(b"\n") + 1]).decode()
    if not text.strip():
        return pd.DataFrame(columns=list(PROGRESS_FIELDS))
    frame = pd.read_csv(io.StringIO(text))
    missing = [c for c in REQUIRED_FIELDS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a learning curve, it has no column {', '.join(missing)}")
    for column in (c for c in PROGRESS_FIELDS if c in frame.columns and len(frame)):
        if not pd.api.types.is_numeric_dtype(frame[column]) or frame[column].isna().any():
            raise ValueError(f"{path}: column {column!r} holds a value that is not a number")
    return frame


def _is_whole_row(line: bytes) -> bool:
    """Whether a last line without its line feed was written up to its row end (its CR)."""
    return line.endswith(b"\r")


def last_evaluated(path: str | Path) -> int:
    """The last timestep with a learning-curve row (0 if none), so a resumed run goes on."""
    frame = read_progress(path)
    return int(frame["timesteps"].iloc[-1]) if len(frame) else 0


def training_clock(path: str | Path) -> float:
    """A ``perf_counter`` origin that goes on from the ``wall_s`` of the learning curve's last
    row, so that a resumed run's ``wall_s`` is the training time of all its runs together
    (work an interrupt lost after that row is not counted)."""
    now = time.perf_counter()
    frame = read_progress(path)
    return now - float(frame["wall_s"].iloc[-1]) if len(frame) else now


def append_progress(
    path: str | Path, timesteps: int, rate: float, episodes: int, began: float
) -> None:
    """Append a learning-curve row: success ``rate`` on ``episodes`` curve episodes at
    ``timesteps``, its Wilson interval, and the wall clock since ``began`` (perf_counter;
    :func:`training_clock` continues an earlier run's). A cut-short last line is dropped first.

    Raises:
        PermissionError: ``path`` is a link or not a regular file (nothing is written).
    """
    path = Path(path)
    lo, hi = wilson_interval(round(rate * episodes), episodes)
    wall = round(time.perf_counter() - began, 1)
    if path.exists():
        drop_partial_tail(path, keep=_is_whole_row)
    new = not path.exists() or path.stat().st_size == 0
    fd = open_run_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(PROGRESS_FIELDS)
        writer.writerow((timesteps, rate, lo, hi, wall))


def heldout_success(
    env: Any,
    act: Act,
    suite: str,
    episodes: int,
    reset: Callable[[dict[str, Any]], None] | None = None,
) -> float:
    """Success rate of ``act`` on the learning curve's fixed held-out episodes of ``suite``
    (the same episodes at every evaluation of every run)."""
    successes = 0
    for index in range(episodes):
        seed = episode_seed(EVAL_MASTER_SEED, suite, "heldout", index)
        successes += run_episode(env, act, seed, reset=reset).success
    return successes / episodes
