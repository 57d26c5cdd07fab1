"""Wall-clock of a sweep on Ray with N workers against the sum of its cells' own times.

    python benchmarks/sweep_wall_clock.py residual-comparison --steps 3000 --episodes 10 \
        --workers 2 --out /tmp/sweep-wall-clock

Runs a shipped sweep (scaled down with ``--steps`` and ``--episodes``: the full grids take
hours per run) into a fresh folder on a local Ray instance with ``--workers`` CPUs, then
writes ``results/sweep_wall_clock.md`` / ``.json``: the sweep's wall-clock, the sum of every
cell's training and evaluation time (what one worker would take, run after run), their ratio
(the speed-up) and that ratio over the worker count (the parallel efficiency), beside the
environment steps each cell trained.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from residual_bench.sweep.cli import scaled
from residual_bench.sweep.schedule import run_cells
from residual_bench.sweep.spec import load_sweep

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", help="a shipped sweep name or a sweep file")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="a fresh folder for the runs")
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "sweep_wall_clock")
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists: the measurement needs a fresh folder")
    spec = scaled(load_sweep(args.sweep), args.steps, args.episodes)
    outcome = run_cells(spec, args.out, "ray", args.workers)
    cells = [
        {
            "cell": c["name"],
            "train_steps": c["train_steps"],
            "train_wall_s": c["train_wall_s"],
            "eval_wall_s": c["eval_wall_s"],
        }
        for c in outcome.done
    ]
    total = sum(c["train_wall_s"] + c["eval_wall_s"] for c in cells)
    result = {
        "command": "python benchmarks/sweep_wall_clock.py "
        + " ".join(
            [
                args.sweep,
                "--steps",
                str(args.steps),
                "--episodes",
                str(args.episodes),
                "--workers",
                str(args.workers),
                "--out",
                "OUT",
            ]
        ),  # fmt: skip
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "cells": cells,
        "failed": outcome.failed,
        "sweep_wall_s": outcome.wall_s,
        "sum_of_cells_s": round(total, 1),
        "speedup": round(total / outcome.wall_s, 2),
        "efficiency": round(total / outcome.wall_s / args.workers, 2),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"# Sweep wall-clock: {spec.name}, {args.workers} Ray workers on {os.cpu_count()} CPUs",
        "",
        f"`{result['command']}` ({args.steps} training steps per run, {args.episodes} "
        "episodes per cell and suite: a scaled-down grid).",
        "",
        "| cell | training steps | training (s) | evaluation (s) |",
        "|---|---|---|---|",
        *[
            f"| {c['cell']} | {c['train_steps'] or '-'} | {c['train_wall_s']} | "
            f"{c['eval_wall_s']} |"
            for c in cells
        ],
        "",
        f"Sum of the cells' times: {total:.0f} s; the sweep's wall-clock: "
        f"{outcome.wall_s:.0f} s; speed-up {result['speedup']:.2f} with {args.workers} "
        f"workers (efficiency {result['efficiency']:.0%}).",
    ]
    args.results.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
