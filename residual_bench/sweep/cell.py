"""One cell of a sweep: a training run, then its evaluation, resumable at every step.

Everything a cell writes lives in ``OUT/cells/NAME/``, laid out as ``bench run``'s output so
that the same report reads it: ``train/seed<S>/`` (the run folder of ``bench train``, with
its checkpoints, learning curve and lock), the evaluation's ``episodes.jsonl`` and
``summary.json`` (as ``bench eval`` writes them), ``log.txt`` (what the run printed) and,
once both are done, ``cell.json`` (the cell, its wall-clock times and environment steps).
The run folders and their locks are the source of truth: a cell re-run after a kill
continues training from its last checkpoint and evaluation from its last episode, and a
finished cell is skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import traceback
from pathlib import Path
from typing import Any

from residual_bench.eval.episode_tasks import make_tasks
from residual_bench.eval.runner import evaluate
from residual_bench.finetune.train import train_finetune
from residual_bench.residual.train import train_residual
from residual_bench.run_directory import write_file_atomically
from residual_bench.sweep.spec import Cell, EvalProtocol
from residual_bench.training.learning_curve import last_evaluated

CELL_FILE = "cell.json"
FINETUNED_FILE = "final.pt"


def cell_dir(out: Path, cell: Cell) -> Path:
    """Where a cell's folders are."""
    return Path(out) / "cells" / cell.name


def finished(out: Path, cell: Cell) -> dict[str, Any] | None:
    """The cell's ``cell.json`` when it has finished (training and evaluation), else None."""
    try:
        data = json.loads((cell_dir(out, cell) / CELL_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("finished") else None


def run_cell(cell: Cell, protocol: EvalProtocol, out: str | Path, steps: int | None) -> dict:
    """Train and evaluate one cell (continuing whatever a killed run left); its output goes
    to the cell's ``log.txt``. Returns the contents of its ``cell.json``.

    Raises:
        whatever training or evaluation raises (the sweep reports it with the log's path).
    """
    out = Path(out)
    done = finished(out, cell)
    if done is not None:
        return done
    where = cell_dir(out, cell)
    where.mkdir(parents=True, exist_ok=True)
    with (
        open(where / "log.txt", "a", encoding="utf-8") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        print(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} {cell.name}", flush=True)
        try:
            return _train_and_evaluate(cell, protocol, where, steps)
        except BaseException:
            traceback.print_exc()  # the sweep's report points here
            raise


def _train_and_evaluate(cell: Cell, protocol: EvalProtocol, where: Path, steps: int | None) -> dict:
    """Train (or find trained), then evaluate; write ``cell.json`` last."""
    began = time.perf_counter()
    base, residual, train_steps = _train(cell, where / "train" / f"seed{cell.seed}", steps)
    trained = time.perf_counter()
    tasks = make_tasks(
        base,
        [residual],
        protocol.suites,
        protocol.objects,
        protocol.episodes,
        protocol.master_seed,
        cell.env_id,
    )
    evaluate(tasks, where, executor="serial", resume=True, progress=False)
    result = {
        "cell": dataclasses.asdict(cell),
        "name": cell.name,
        "kind": cell.kind,
        "evaluated_base": base,
        "residual": residual,
        "train_steps": train_steps,
        "train_wall_s": round(trained - began, 1),
        "eval_wall_s": round(time.perf_counter() - trained, 1),
        "finished": True,
    }
    text = (json.dumps(result, indent=2) + "\n").encode()
    write_file_atomically(where / CELL_FILE, lambda f: f.write(text))
    print(f"== finished in {time.perf_counter() - began:.0f} s", flush=True)
    return result


def _train(cell: Cell, run: Path, steps: int | None) -> tuple[str, str | None, int | None]:
    """Train the cell's method into ``run`` (or find it trained): the base to evaluate, the
    residual to put on it (None for a base alone or a fine-tuned base), environment steps."""
    if cell.kind == "base":
        return cell.base, None, 0
    if cell.kind == "finetune":
        final = run / FINETUNED_FILE
        if not final.is_file():
            final = train_finetune(
                cell.base, cell.method, run, cell.seed, False, steps=steps, resume=True
            )
        return f"bc:{Path(final).resolve()}", None, _steps_taken(run)
    final = run / "residual"
    if not (final / "residual.json").is_file():
        train_residual(
            cell.base,
            cell.method,
            run,
            steps=steps,
            seed=cell.seed,
            features=cell.features,
            progress=False,
            tensorboard=False,
            resume=True,
            task=cell.env_id,
        )
    return cell.base, str(final.resolve()), _steps_taken(run)


def _steps_taken(run: Path) -> int | None:
    """Environment steps of the learning curve's last row (None: a run without one)."""
    curve = run / "progress.csv"
    return last_evaluated(curve) if curve.is_file() else None
