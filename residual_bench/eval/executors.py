"""Where episodes run: in this process, a local process pool, or Ray.

Every executor runs the same pure work unit (``work(task) -> dict``), so results do not
depend on where they ran:

- ``serial``: in this process (tests, debugging);
- ``local`` (default): a process pool (joblib's loky), one worker per core, each worker
  single-threaded in torch so workers do not fight over cores;
- ``ray``: Ray tasks, on the cluster at ``RAY_ADDRESS`` when set, else a local Ray instance.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import torch
from joblib import Parallel, delayed

EXECUTORS = ("local", "serial", "ray")


def init_worker() -> None:
    """One torch thread per worker process: the workers share the cores."""
    torch.set_num_threads(1)


def _serial(tasks: Sequence[Any], work: Callable[[Any], dict]) -> Iterator[dict[str, Any]]:
    for task in tasks:
        yield work(task)


def _in_worker(work: Callable[[Any], dict], task: Any) -> dict[str, Any]:
    init_worker()
    return work(task)


def _local(
    tasks: Sequence[Any], work: Callable[[Any], dict], workers: int
) -> Iterator[dict[str, Any]]:
    parallel = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")
    yield from parallel(delayed(_in_worker)(work, task) for task in tasks)


def _ray(
    tasks: Sequence[Any],
    work: Callable[[Any], dict],
    workers: int,
    cell: Callable[[Any], Hashable],
) -> Iterator[dict[str, Any]]:
    try:
        import ray  # optional dependency: the ``ray`` extra
    except ImportError:
        raise ValueError("--executor ray needs Ray: pip install 'residual-bench[ray]'") from None
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address, num_cpus=None if address else workers, log_to_driver=False)

    @ray.remote(num_cpus=1)
    def run_batch(batch: list[Any]) -> list[dict[str, Any]]:
        init_worker()
        return [work(task) for task in batch]

    cells: dict[Hashable, list[Any]] = {}
    for task in tasks:
        cells.setdefault(cell(task), []).append(task)
    size = max(1, min(25, len(tasks) // (4 * workers) or 1))
    pending = [
        run_batch.remote(batch[i : i + size])
        for batch in cells.values()
        for i in range(0, len(batch), size)
    ]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield from ray.get(done[0])


def run_on_executor(
    tasks: Sequence[Any],
    work: Callable[[Any], dict],
    executor: str = "local",
    workers: int | None = None,
    cell: Callable[[Any], Hashable] = id,
) -> Iterator[dict[str, Any]]:
    """``work(task)`` for every task on ``executor``, yielded as they finish (any order).

    Args:
        work: a picklable module-level function (it runs in other processes).
        cell: tasks with the same ``cell(task)`` go to Ray in batches together (tasks that
            share an env, so a worker builds it once).

    Raises:
        ValueError: an unknown executor, or fewer than one worker.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid choices: {', '.join(EXECUTORS)}")
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if executor == "serial" or (executor == "local" and workers == 1):
        return _serial(tasks, work)
    if executor == "local":
        return _local(tasks, work, workers)
    return _ray(tasks, work, workers, cell)
