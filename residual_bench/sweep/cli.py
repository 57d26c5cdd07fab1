"""``bench sweep SWEEP.yaml``: a grid of training runs and their evaluations, on Ray."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any


def _cmd_sweep(args: argparse.Namespace) -> int:
    # Deferred: the sweep pulls in torch, SB3 and Ray; ``bench --help`` stays instant.
    from residual_bench.sweep.collect import collect
    from residual_bench.sweep.schedule import run_cells
    from residual_bench.sweep.spec import load_sweep

    spec = load_sweep(args.sweep)
    if args.steps is not None or args.episodes is not None:
        spec = scaled(spec, args.steps, args.episodes)
    out = Path(args.out) if args.out else Path("runs") / "sweeps" / spec.name
    if args.dry_run:
        print(describe(spec, out))
        return 0
    print(describe(spec, out), flush=True)

    def report(name: str, ok: bool) -> None:
        if not args.quiet:
            print(f"  {'done' if ok else 'FAILED'}: {name}", flush=True)

    outcome = run_cells(spec, out, args.executor, args.workers, on_cell=report)
    table = collect(spec, out, report=not args.no_report)
    print(
        f"{len(outcome.done)} of {len(spec.cells)} cell(s) finished ({len(outcome.skipped)} "
        f"before this run) in {outcome.wall_s:.0f} s; table: {table}"
    )
    for name, error in outcome.failed.items():
        print(f"failed: {name}: {error}", file=sys.stderr)
    return 1 if outcome.failed else 0


def scaled(spec: Any, steps: int | None, episodes: int | None) -> Any:
    """The sweep with another training budget or episode count (a quick look at a grid)."""
    for name, value in (("--steps", steps), ("--episodes", episodes)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    protocol = spec.eval
    if episodes is not None:
        protocol = dataclasses.replace(protocol, episodes=episodes)
    return dataclasses.replace(spec, steps=steps or spec.steps, eval=protocol)


def describe(spec: Any, out: Path) -> str:
    """The grid as ``--dry-run`` prints it: one line per cell, with its folder."""
    from residual_bench.sweep.cell import finished  # deferred as above: it loads torch

    p = spec.eval
    steps = spec.steps or "each config's own"
    lines = [
        f"sweep {spec.name}: {len(spec.cells)} cell(s) into {out}",
        f"  evaluation: {', '.join(p.suites)} x {', '.join(p.objects)} objects, "
        f"{p.episodes} episodes per cell, master seed {p.master_seed}",
        f"  steps per run: {steps}; "
        f"{spec.resources.cpus_per_run:g} CPU per run, {spec.resources.retries} retry",
    ]
    for cell in spec.cells:
        state = "finished" if finished(out, cell) is not None else "to run"
        lines.append(f"  [{state}] {cell.name}")
    return "\n".join(lines)


def add_sweep_parser(sub: Any) -> None:
    """Add ``sweep`` to ``bench``'s subparsers."""
    p = sub.add_parser(
        "sweep",
        help="train and evaluate a grid of runs on Ray (resumable)",
        description="Run every cell of a sweep file (train, then evaluate), on a local Ray "
        "instance or the cluster at RAY_ADDRESS; re-run the same command to continue. "
        "See docs/sweeps.md.",
    )
    p.add_argument("sweep", help="a sweep YAML file, or a shipped sweep name")
    p.add_argument("--out", default=None, help="output folder (runs/sweeps/NAME)")
    p.add_argument("--dry-run", action="store_true", help="print the grid and stop")
    p.add_argument("--executor", default="ray", choices=("ray", "serial"), help="(ray)")
    p.add_argument("--workers", type=int, default=None, help="CPUs of a local Ray (all)")
    p.add_argument("--steps", type=int, default=None, help="training steps per run instead")
    p.add_argument("--episodes", type=int, default=None, help="episodes per cell instead")
    p.add_argument("--no-report", action="store_true", help="the table only, no report")
    p.add_argument("--quiet", action="store_true", help="no line per finished cell")
    p.set_defaults(func=_cmd_sweep)
