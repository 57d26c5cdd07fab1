"""The report of a run over every task: one task x suite table of the residual against its base.

Each cell is one task's paired comparison on one suite (the same episode seeds with and
without the residual): success of the base alone, of base + residual, their difference and
the exact McNemar p. A suite that was not run on a task (``bench run`` over every task leaves
out the suites that do not apply to it) is shown as "–". Each task's full report (recovery,
completion time, plots) stays in its own folder; this page links to them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from residual_bench.episodes.records import EpisodeRecord
from residual_bench.eval.report import load_results, paired_comparisons, suite_key
from residual_bench.eval.report_provenance import provenance_blocks
from residual_bench.eval.report_render import Block, format_p_value, html_page, markdown_page
from residual_bench.tasks import task_entry, task_ids

TASK_COLUMNS = (
    "task objects method train_seed suite pairs base_success method_success difference p_value"
).split()
NOT_RUN = "–"
NOTE = (
    "Each cell: success of the base alone → base + residual on the same episode seeds, the "
    f"difference and the exact McNemar p. {NOT_RUN}: the suite was not run on the task (it "
    "does not apply to the task's phases or perturbation kinds)."
)


def _task_order(env_id: str) -> tuple[int, str]:
    ids = task_ids()
    return (ids.index(env_id), "") if env_id in ids else (len(ids), env_id)


def task_suite_table(records: Iterable[EpisodeRecord]) -> pd.DataFrame:
    """Each task's residual methods against its base alone, per suite, on paired seeds.

    Records are grouped by their ``env_id`` first: two tasks evaluated on the same episode
    seeds are never paired with each other.

    Returns:
        One row per (task, object split, residual method, training seed, suite) with the
        columns of :data:`TASK_COLUMNS` (rates over the pairs, difference = with residual
        minus base alone), tasks in registration order, suites as in each task's report.
    """
    by_task: dict[str, list[EpisodeRecord]] = {}
    for record in records:
        by_task.setdefault(record.env_id, []).append(record)
    parts = []
    for env_id in sorted(by_task, key=_task_order):
        paired = paired_comparisons(by_task[env_id])
        if len(paired):
            parts.append(paired.assign(task=env_id))
    if not parts:
        return pd.DataFrame(columns=TASK_COLUMNS)
    return pd.concat(parts, ignore_index=True)[TASK_COLUMNS]


def _suite_columns(table: pd.DataFrame) -> list[str]:
    """The suites in the order the tasks declare them (nominal first, each task's mixed
    suite last), then any others in the report's order."""
    present = set(table["suite"])
    ordered: list[str] = []
    for env_id in dict.fromkeys(table["task"]):
        declared = task_entry(env_id).task.suites if env_id in task_ids() else ()
        ordered += [s for s in declared if s in present and s not in ordered]
    return ordered + sorted(present - set(ordered), key=suite_key)


def _cell(row: pd.Series) -> str:
    return (
        f"{100 * row.base_success:.0f}% → {100 * row.method_success:.0f}%, "
        f"{100 * row.difference:+.0f} pp ({format_p_value(row.p_value)})"
    )


def task_suite_block(table: pd.DataFrame) -> Block:
    """The table as a report block: one row per task (and per object split, method and
    training seed where there are several), one column per suite."""
    keys = ["task"]
    keys += [k for k in ("objects", "method") if table.groupby("task")[k].nunique().max() > 1]
    if table["train_seed"].nunique() > 1:
        keys.append("train_seed")
    suites = _suite_columns(table)
    rows = []
    for key, group in table.groupby(keys, sort=False, dropna=False):
        cells = {row.suite: _cell(row) for _, row in group.iterrows()}
        labels = [str(k) for k in (key if isinstance(key, tuple) else (key,))]
        rows.append(labels + [cells.get(suite, NOT_RUN) for suite in suites])
    head = [k.replace("_", " ") for k in keys] + suites
    return ("table", head, rows)


def task_suite_text(table: pd.DataFrame) -> str:
    """The table as lines for the terminal, one per task and suite: what a run over every
    task ends with."""
    lines = [f"{'task':<22} {'suite':<18} {'base':>6} {'+ residual':>10} {'diff':>8}  McNemar"]
    seeded = table["train_seed"].nunique() > 1
    for _, row in table.iterrows():
        seed = f"  (training seed {row.train_seed})" if seeded else ""
        lines.append(
            f"{row.task:<22} {row.suite:<18} {row.base_success:>6.0%} "
            f"{row.method_success:>10.0%} {100 * row.difference:>+5.0f} pp  "
            f"{format_p_value(row.p_value)}{seed}"
        )
    return "\n".join(lines)


def build_task_report(
    task_dirs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    title: str = "residual-bench: every task",
) -> Path:
    """Write ``report.md`` and ``report.html`` into ``out`` from the results directories of
    the tasks of one run (each with its own ``episodes.jsonl`` and ``report/``).

    Returns:
        Path of ``report.md``.

    Raises:
        FileNotFoundError: a directory or its ``episodes.jsonl`` is missing.
        ValueError: no residual shares episode seeds with its base alone in any directory.
    """
    out = Path(out)
    per_dir = [(Path(d), load_results(d)) for d in task_dirs]
    records = [r for _, recs in per_dir for r in recs]
    table = task_suite_table(records)
    if not len(table):
        sources = ", ".join(str(d) for d, _ in per_dir)
        raise ValueError(f"no paired base and residual episodes in {sources}")
    blocks: list[Block] = [("h1", title), ("h2", "Success per task and suite")]
    blocks += [task_suite_block(table), ("p", NOTE), ("h2", "Each task's own report")]
    links = [[", ".join(sorted({r.env_id for r in recs})), _link(d, out)] for d, recs in per_dir]
    blocks.append(("table", ["task", "report (recovery, completion time, plots)"], links))
    blocks += provenance_blocks(records)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.html").write_text(html_page(blocks, title), encoding="utf-8")
    report = out / "report.md"
    report.write_text(markdown_page(blocks), encoding="utf-8")
    return report


def _link(task_dir: Path, out: Path) -> str:
    """A task's own report, relative to this one so that the run folder can be moved."""
    return Path(os.path.relpath(task_dir / "report" / "report.md", out)).as_posix()
