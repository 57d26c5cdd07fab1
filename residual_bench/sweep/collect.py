"""A sweep's one result: a table per (task, suite, object split) of every cell, and the
report ``bench run`` writes (learning curves, paired comparisons), over all cells at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from residual_bench.eval.report import build_report
from residual_bench.run_directory import write_file_atomically
from residual_bench.sweep.cell import cell_dir, finished
from residual_bench.sweep.spec import SweepSpec

TABLE_JSON = "table.json"
TABLE_MD = "table.md"


def sweep_table(spec: SweepSpec, out: str | Path) -> list[dict[str, Any]]:
    """One row per (finished cell, suite, object split), grouped by task, suite and split."""
    rows = []
    for cell in spec.cells:
        info = finished(Path(out), cell)
        if info is None:
            continue
        summary = json.loads((cell_dir(Path(out), cell) / "summary.json").read_text())
        for entry in summary["cells"]:
            rate = entry["success_rate"]
            rows.append(
                {
                    "env_id": cell.env_id,
                    "suite": entry["suite"],
                    "objects": entry["objects"],
                    "cell": cell.name,
                    "base": cell.base,
                    "method": cell.method or "base alone",
                    "features": cell.features,
                    "seed": cell.seed,
                    "success": rate["k"],
                    "episodes": rate["n"],
                    "success_rate": rate["rate"],
                    "success_ci": rate["ci"],
                    "completion_time_mean": entry.get("completion_time_mean"),
                    "train_steps": info.get("train_steps"),
                    "train_wall_s": info.get("train_wall_s"),
                    "eval_wall_s": info.get("eval_wall_s"),
                }
            )
    order = {cell.name: i for i, cell in enumerate(spec.cells)}
    rows.sort(key=lambda r: (r["env_id"], r["suite"], r["objects"], order[r["cell"]]))
    return rows


def table_markdown(spec: SweepSpec, rows: list[dict[str, Any]]) -> str:
    """The table as markdown: one section per (task, suite, object split)."""
    lines = [f"# Sweep {spec.name}", ""]
    if spec.description:
        lines += [spec.description, ""]
    section = None
    for row in rows:
        key = (row["env_id"], row["suite"], row["objects"])
        if key != section:
            section = key
            lines += [
                "",
                f"## {row['env_id']}, {row['suite']}, {row['objects']} objects",
                "",
                "| base | method | features | seed | success | 95% CI | train steps | "
                "train wall (s) | eval wall (s) |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
        lo, hi = row["success_ci"]
        lines.append(
            f"| {row['base']} | {row['method']} | {row['features'] or '-'} | "
            f"{'-' if row['seed'] is None else row['seed']} | "
            f"{row['success_rate']:.0%} ({row['success']}/{row['episodes']}) | "
            f"{lo:.0%}-{hi:.0%} | {row['train_steps'] or '-'} | "
            f"{row['train_wall_s'] or '-'} | {row['eval_wall_s'] or '-'} |"
        )
    return "\n".join(lines) + "\n"


def collect(spec: SweepSpec, out: str | Path, report: bool = True) -> Path:
    """Write ``OUT/table.json``, ``OUT/table.md`` and (with ``report``) ``OUT/report/`` from
    the finished cells; returns the markdown table's path."""
    out = Path(out)
    rows = sweep_table(spec, out)
    data = (json.dumps(rows, indent=1) + "\n").encode()
    write_file_atomically(out / TABLE_JSON, lambda f: f.write(data))
    text = table_markdown(spec, rows).encode()
    write_file_atomically(out / TABLE_MD, lambda f: f.write(text))
    dirs = [cell_dir(out, c) for c in spec.cells if finished(out, c) is not None]
    if report and dirs:
        build_report(dirs, out / "report", title=f"residual-bench sweep: {spec.name}")
    return out / TABLE_MD


def training_runs(out: str | Path) -> dict[str, Path]:
    """Every cell's training folder, finished or not, by run name: ``<method>-seed<S>``, or
    ``<features>-<method>-seed<S>`` for a cell with its own features (the names the result
    scripts in ``benchmarks/`` read, e.g. ``finetune-rl-seed0``, ``proprio-sac-seed0``)."""
    runs = {}
    for folder in sorted((Path(out) / "cells").glob("*__*")):
        parts = folder.name.split("__")
        if len(parts) < 4 or not parts[-1].startswith("seed"):
            continue  # a base alone trains nothing
        method, seed = parts[2], parts[-1]
        features = parts[3] if len(parts) == 5 else None
        name = f"{features}-{method}-{seed}" if features else f"{method}-{seed}"
        train = folder / "train" / seed
        if train.is_dir():
            runs[name] = train
    return runs
