"""Evaluation at scale: seeded episode tasks and a resumable results directory.

An evaluation is a list of :class:`EpisodeTask` s - one per (method, suite, object split,
episode index) - and :func:`run_task`, a pure function from a task to its record, is the only
work unit: it runs the one episode loop (:func:`residual_bench.episodes.run_episode`). Every
executor (:mod:`residual_bench.eval.executors`: serial, a local process pool, Ray) runs the
same function, so records do not depend on where they ran.

:func:`evaluate` appends each record to ``episodes.jsonl`` as it arrives (flushed per
episode), so an interrupted evaluation keeps everything it finished; ``resume=True`` skips the
tasks already on disk, so no episode is lost and none is counted twice. It holds the results
directory's :func:`~residual_bench.run_directory.run_lock` (two evaluations into one directory
would each run the episodes the other has not written yet) and writes ``summary.json``
atomically.

The tasks, their seeds and the key that matches a record to its task are
:mod:`residual_bench.eval.episode_tasks`'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from residual_bench.episodes.loop import run_episode
from residual_bench.episodes.metrics import summarize
from residual_bench.episodes.records import EpisodeRecord, append_jsonl, read_jsonl
from residual_bench.eval.episode_tasks import EpisodeTask, record_key, task_key
from residual_bench.eval.executors import run_on_executor
from residual_bench.policies.registry import get_base, make_controller
from residual_bench.policies.wrapper import BasePolicyWrapper
from residual_bench.provenance import run_provenance
from residual_bench.residual.checkpoint import load_residual
from residual_bench.run_directory import check_run_file, run_lock, write_file_atomically

# -- the work unit -----------------------------------------------------------------------------

_WORKER_CACHE: dict[tuple, Any] = {}
_ZERO = np.zeros(7)


def _episode_runner(task: EpisodeTask) -> Any:
    """The env, base controller and residual agent for a task, built once per worker."""
    key = (task.base, task.residual, task.suite, task.objects, task.env_id, task.instructions)
    if key not in _WORKER_CACHE:
        entry = get_base(task.base)
        env_kwargs = dict(entry.env_kwargs)
        agent = None
        if task.residual is not None:
            agent = load_residual(task.residual)
            env_kwargs.update(agent.env_kwargs())
        env = gym.make(
            task.env_id,
            objects=task.objects,
            suite=task.suite,
            instructions=task.instructions,
            **env_kwargs,
        )
        controller = make_controller(task.base, env)
        wrapped = (
            agent.wrap(env, controller) if agent is not None else BasePolicyWrapper(env, controller)
        )
        _WORKER_CACHE.clear()  # one cell at a time: never hold several PyBullet worlds
        _WORKER_CACHE[key] = (wrapped, agent)
    return _WORKER_CACHE[key]


def play(task: EpisodeTask, on_step: Any = None) -> EpisodeRecord:
    """Run one episode of ``task``; ``on_step(env, info)`` is called after reset and each step."""
    env, agent = _episode_runner(task)
    if agent is not None:
        act, reset = (lambda obs, info: agent.act(obs)), (lambda info: agent.reset())
    else:
        act, reset = (lambda obs, info: _ZERO), None  # the wrapper adds the base's action

    def extra(info: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "master_seed": task.master_seed,
            "episode_index": task.index,
            "suite_source": task.suite,
            "base_errors": int(info.get("base_errors", 0)),  # failed calls of a remote base
        }
        if agent is not None:
            out.update(residual_path=task.residual, train_seed=agent.train_seed)
        if task.instructions != "train":  # records in the training wordings stay as they were
            out["instructions"] = task.instructions
        return out

    identity = {
        "env_id": task.env_id,
        "env_spec_hash": env.unwrapped.env_spec_hash,
        "suite": task.suite_name,
        "objects": task.objects,
        "base": task.base,
        "residual": agent.name if agent is not None else None,
    }
    episode = run_episode(
        env, act, task.seed, reset=reset, on_step=on_step, record=identity, record_extra=extra
    )
    return episode.record


def run_task(task: EpisodeTask) -> dict[str, Any]:
    """Run one episode and return its record as a dict (the pure, picklable work unit)."""
    return play(task).to_dict()


# -- executors ---------------------------------------------------------------------------------


def execute(
    tasks: Sequence[EpisodeTask], executor: str = "local", workers: int | None = None
) -> Iterator[dict[str, Any]]:
    """Run tasks on an executor (:mod:`residual_bench.eval.executors`), yielding record dicts
    as they finish (in any order). Ray gets whole cells, so each worker builds its env once
    per cell.

    Raises:
        ValueError: an unknown executor, or fewer than one worker.
    """
    return run_on_executor(tasks, run_task, executor, workers, cell=_cell)


def _cell(task: EpisodeTask) -> tuple:
    return (task.base, task.residual, task.suite, task.objects)


# -- a results directory -----------------------------------------------------------------------


def pending_tasks(tasks: Iterable[EpisodeTask], records_path: Path, resume: bool) -> list:
    """The tasks whose records are not yet in ``records_path``.

    Raises:
        FileExistsError: the file holds records and ``resume`` is False.
    """
    tasks = list(tasks)
    if not records_path.exists():
        return tasks
    done = {record_key(r) for r in read_jsonl(records_path)}
    if done and not resume:
        raise FileExistsError(
            f"{records_path} already holds {len(done)} episodes; pass --resume to continue that "
            "evaluation, or choose another --out"
        )
    return [
        t
        for t in tasks
        if task_key(t.base, t.residual, t.suite_name, t.objects, t.seed, t.instructions) not in done
    ]


def cell_summaries(records: Sequence[EpisodeRecord]) -> list[dict[str, Any]]:
    """:func:`summarize` per (base, residual, training seed, suite, objects) cell."""
    cells: dict[tuple, list[EpisodeRecord]] = {}
    for r in records:
        key = (r.base, r.residual, r.extra.get("train_seed"), r.suite, r.objects)
        cells.setdefault(key, []).append(r)
    return [
        {
            "base": base,
            "residual": residual,
            "train_seed": train_seed,
            "suite": suite,
            "objects": objects,
            **summarize(cell),
        }
        for (base, residual, train_seed, suite, objects), cell in sorted(
            cells.items(), key=lambda kv: tuple(str(x) for x in kv[0])
        )
    ]


def evaluate(
    tasks: Sequence[EpisodeTask],
    out: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    resume: bool = False,
    progress: bool = True,
    desc: str | None = None,
) -> dict[str, Any]:
    """Run ``tasks`` into ``out/episodes.jsonl`` and write ``out/summary.json``.

    ``desc`` labels the progress bar (one bar per call).

    Records are appended and flushed one by one as they finish; with ``resume`` the tasks
    already on disk are skipped (and with none left, a ``summary.json`` of exactly the
    records on disk is left as it was; an unreadable or outdated one, left by a kill, is
    written again from the records).
    Each record's ``extra`` carries the package versions, git commit, master seed and episode
    index, so any episode can be re-run from its record.

    Returns:
        The summary: ``{"cells": [...], "run": {...}}``.

    Raises:
        FileExistsError: ``out`` already holds records and ``resume`` is False.
        RunInUseError: another process is writing ``out``.
        PermissionError: a file of ``out`` that a run writes is a link or not a regular file.
        ValueError: an unknown executor.
    """
    out = Path(out)
    records_path = out / "episodes.jsonl"
    pending_tasks(tasks, records_path, resume)  # refuse before taking the lock
    with run_lock(out):
        return _evaluate_locked(tasks, out, executor, workers, resume, progress, desc)


def _evaluate_locked(
    tasks: Sequence[EpisodeTask],
    out: Path,
    executor: str,
    workers: int | None,
    resume: bool,
    progress: bool,
    desc: str | None = None,
) -> dict[str, Any]:
    records_path = out / "episodes.jsonl"
    check_run_file(records_path)  # before any episode runs, not at its first append
    todo = pending_tasks(tasks, records_path, resume)  # again: the lock's holder may have run
    summary_path = out / "summary.json"
    if not todo:
        # Nothing ran: a summary of these very records stays the one of the run that made
        # them. Any other (unreadable, or older than records appended by a run killed before
        # it rewrote the summary) is written again.
        summary = _read_summary(summary_path)
        cells = cell_summaries(_read_records(records_path))
        if summary is not None and _as_json(summary["cells"]) == _as_json(cells):
            return summary
    provenance = run_provenance()
    bar = tqdm(
        total=len(tasks),
        initial=len(tasks) - len(todo),
        unit="episode",
        desc=desc,
        disable=not progress,
    )
    try:
        for data in execute(todo, executor, workers):
            data["extra"].update(provenance)
            append_jsonl(records_path, EpisodeRecord.from_dict(data))
            bar.update(1)
    finally:
        bar.close()
    records = _read_records(records_path)
    summary = {
        "cells": cell_summaries(records),
        "run": {"episodes": len(records), "executor": executor, **provenance},
    }
    text = (json.dumps(summary, indent=2) + "\n").encode()
    write_file_atomically(summary_path, lambda f: f.write(text))
    return summary


def _read_records(path: Path) -> list[EpisodeRecord]:
    return read_jsonl(path) if path.exists() else []


def _as_json(cells: Any) -> str:
    """``cells`` as the summary file spells them (tuples as lists, NaN as NaN), to compare."""
    return json.dumps(cells, sort_keys=True)


def _read_summary(path: Path) -> dict[str, Any] | None:
    """The summary at ``path``, or None when there is none or it is unreadable."""
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and "cells" in summary else None
