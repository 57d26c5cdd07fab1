"""Running a sweep's cells: on Ray (a local instance, or a cluster at ``RAY_ADDRESS``), or in
this process.

Each cell is one Ray task (:func:`residual_bench.sweep.cell.run_cell`) reserving
``resources.cpus_per_run`` CPUs; Ray schedules them as CPUs free up, re-runs a cell whose
worker died (``resources.retries`` times) and hands back the exception of a cell that
failed, which is reported with its log while the other cells go on. Ray core tasks, not Ray
Tune: a cell is one resumable run with its own folder and lock, not a trial of a search, and
Tune's experiment folders, trial checkpoints and schedulers would duplicate what the run
folders already do.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from residual_bench.sweep.cell import cell_dir, finished, run_cell
from residual_bench.sweep.spec import Cell, SweepSpec

EXECUTORS = ("ray", "serial")


@dataclass
class SweepOutcome:
    """What a sweep run did: the cells it ran or found finished, and the ones that failed."""

    done: list[dict[str, Any]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # cell name -> error and log path
    skipped: list[str] = field(default_factory=list)  # finished before this run
    wall_s: float = 0.0


def run_cells(
    spec: SweepSpec,
    out: str | Path,
    executor: str = "ray",
    workers: int | None = None,
    on_cell: Callable[[str, bool], None] | None = None,
) -> SweepOutcome:
    """Run every unfinished cell of ``spec`` into ``out``.

    Args:
        executor: ``ray`` (default) or ``serial`` (in this process, one cell at a time).
        workers: CPUs of a local Ray instance (default: all); ignored with ``RAY_ADDRESS``.
        on_cell: called with a cell's name and whether it succeeded, as each one ends.

    Raises:
        ValueError: an unknown executor, or Ray missing.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid choices: {', '.join(EXECUTORS)}")
    out = Path(out)
    outcome = SweepOutcome()
    todo = []
    for cell in spec.cells:
        done = finished(out, cell)
        if done is not None:
            outcome.done.append(done)
            outcome.skipped.append(cell.name)
        else:
            todo.append(cell)
    began = time.perf_counter()
    results = _serial(spec, out, todo) if executor == "serial" else _ray(spec, out, todo, workers)
    with _terminate_as_interrupt():
        for cell, result, error in results:
            if error is None:
                outcome.done.append(result)
            else:
                log = cell_dir(out, cell) / "log.txt"
                outcome.failed[cell.name] = f"{error} (log: {log})"
            if on_cell is not None:
                on_cell(cell.name, error is None)
    outcome.wall_s = round(time.perf_counter() - began, 1)
    return outcome


Result = tuple[Cell, dict[str, Any] | None, str | None]


def _serial(spec: SweepSpec, out: Path, cells: list[Cell]) -> Iterator[Result]:
    for cell in cells:
        try:
            yield cell, run_cell(cell, spec.eval, out, spec.steps), None
        except Exception as err:  # a failing cell is reported; the others go on
            yield cell, None, f"{type(err).__name__}: {err}"


def _ray(spec: SweepSpec, out: Path, cells: list[Cell], workers: int | None) -> Iterator[Result]:
    try:
        import ray  # optional dependency: the ``ray`` extra
    except ImportError:
        raise ValueError(
            "bench sweep on Ray needs Ray: pip install 'residual-bench[ray]'"
        ) from None
    if not cells:
        return
    started_here = not ray.is_initialized()
    if started_here:
        address = os.environ.get("RAY_ADDRESS")
        ray.init(
            address=address,
            num_cpus=None if address else (workers or os.cpu_count() or 1),
            log_to_driver=False,
            include_dashboard=False,
        )
    task = ray.remote(run_cell).options(
        num_cpus=spec.resources.cpus_per_run,
        max_retries=spec.resources.retries,
        # One torch thread per run; the workers share the machine.
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}},
    )
    pending = {task.remote(cell, spec.eval, str(out.resolve()), spec.steps): cell for cell in cells}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(ready[0])
            try:
                yield cell, ray.get(ready[0]), None
            except ray.exceptions.RayTaskError as err:
                cause = err.cause if err.cause is not None else err
                yield cell, None, f"{type(cause).__name__}: {cause}"
            except ray.exceptions.RayError as err:  # the worker died more often than retried
                yield cell, None, f"{type(err).__name__}: {err}"
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """A SIGTERM (a scheduler's kill) stops the sweep as Ctrl-C does: Ray's workers are shut
    down and every cell keeps its last checkpoint, for the next run to continue."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals to it
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
