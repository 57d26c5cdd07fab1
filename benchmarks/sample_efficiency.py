"""Residual vs fine-tuning vs from-scratch RL: learning curves and steps to 80% of the residual.

    python benchmarks/sample_efficiency.py

Reads the committed learning curves (``progress.csv``: success on the 20 fixed held-out
``mixed`` curve episodes, every 10k environment steps) of the methods compared on the ``bc``
base, one directory per training seed:

- residual: ``results/residual/shipped/bc-sac-seed*``, the shipped residuals' curves (``bench
  train --base bc --residual sac``)
- finetune-rl: ``results/finetune/finetune-rl-seed*`` (``--residual finetune-rl``), its
  PPO variant ``finetune-rl-ppo-seed*`` (``--residual finetune-rl-ppo``) and its regularised
  variant ``finetune-rl-bc-seed*`` (``--residual finetune-rl-bc``), the same on the frozen
  encoder ``finetune-rl-bc-head-seed*`` (``--residual finetune-rl-bc-head``)
- finetune-dagger: ``results/finetune/finetune-dagger-seed*`` (``--residual finetune-dagger``)
- scratch: ``results/finetune/scratch-seed*`` (``--base zero --residual scratch``)

With ``--runs DIR`` it first copies each baseline run ``DIR/<method>-seed<S>`` into those
folders: its ``progress.csv`` and, once it has used the whole budget, its ``final.pt`` or
``residual/``. The runs: ``bench train --base bc --residual finetune-rl --seed 0 --out
runs/compare/finetune-rl-seed0``, ``finetune-dagger`` alike, and ``bench train --base zero
--residual scratch`` for ``scratch``. It then writes
``results/finetune/sample_efficiency.{md,json,png}``: the curves (mean over seeds,
band from the lowest to the highest seed), each method's final success, the environment steps
it needs to reach 80% of the residual's final success, and the residual's saving in steps.
How the noisy 20-episode points are smoothed: :mod:`residual_bench.eval.sample_efficiency`.
A method whose runs stop short of the target gets a lower bound, never an extrapolation.
Only runs that have used the whole budget are compared (a curve cut short has no final
success); runs still training are listed with their steps so far and drawn dashed, each on
its own.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd

from residual_bench.eval.plots import plot_learning_curves
from residual_bench.eval.sample_efficiency import compare_to_reference, steps_to_reach
from residual_bench.sweep.collect import training_runs
from residual_bench.training.learning_curve import read_progress

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
REFERENCE = "residual (bc + sac)"
METHODS = {
    REFERENCE: "residual/shipped/bc-sac-seed*",
    "finetune-rl": "finetune/finetune-rl-seed*",
    "finetune-rl-ppo": "finetune/finetune-rl-ppo-seed*",
    "finetune-rl-bc": "finetune/finetune-rl-bc-seed*",
    "finetune-rl-bc-head": "finetune/finetune-rl-bc-head-seed*",
    "finetune-dagger": "finetune/finetune-dagger-seed*",
    "scratch": "finetune/scratch-seed*",
}
SHORT_RUNS = {"finetune-dagger, 60k runs": "finetune/dagger-60k-seed*"}
"""Runs stopped short of the budget on purpose: no final success to compare, but the steps at
which they reach the target are exact where they do."""


def collect(runs: dict[str, Path], results: Path, budget: int) -> None:
    """Copy the baselines' runs' curves, and final policies of runs that used up ``budget``
    (``runs``: run name, e.g. ``finetune-rl-seed0``, -> its folder)."""
    for method in (m for m in METHODS if m != REFERENCE):
        for name, run in sorted(runs.items()):
            if not re.fullmatch(rf"{re.escape(method)}-seed\d+", name):
                continue
            if not (run / "progress.csv").is_file():
                continue
            target = results / name
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run / "progress.csv", target / "progress.csv")
            if read_progress(run / "progress.csv")["timesteps"].max() < budget:
                continue  # a policy from the middle of a run is not its final one
            if (run / "final.pt").is_file():
                shutil.copyfile(run / "final.pt", target / "final.pt")
            if (run / "residual" / "residual.json").is_file():
                shutil.copytree(run / "residual", target / "residual", dirs_exist_ok=True)
            print(f"collected {run} -> {os.path.relpath(target)}")


def _steps(entry: dict) -> str:
    if entry["steps"] is not None:
        return f"{entry['steps'] / 1000:.0f}k"
    return f"not reached (> {entry['at_least'] / 1000:.0f}k)"


def _saving(entry: dict, method: str) -> str:
    if method == REFERENCE:
        return ""
    if entry["steps"] is not None:
        return f"{entry['fewer_steps']:.0%}"
    if entry.get("fewer_at_least") is not None:
        return f"at least {entry['fewer_at_least']:.0%}"
    return "undetermined (too few steps run)"


def _training(runs: dict[str, int]) -> str:
    return ", ".join(f"{name}: {steps / 1000:.0f}k so far" for name, steps in runs.items())


def short_runs(target: float, window: int) -> dict[str, dict]:
    """Steps to ``target`` of each of :data:`SHORT_RUNS`' seeds (None: not within its run)."""
    out = {}
    for method, pattern in SHORT_RUNS.items():
        frames = [read_progress(run / "progress.csv") for run in sorted(RESULTS.glob(pattern))]
        if frames:
            reach = steps_to_reach(frames, target, window)
            out[method] = {"per_seed": list(reach.per_seed), "covered": list(reach.covered)}
    return out


def short_runs_markdown(short: dict[str, dict]) -> str:
    """The lines for :func:`short_runs`' results, after the main table."""
    lines = ["", "Runs stopped short of the budget on purpose (steps to the same target):", ""]
    for method, entry in short.items():
        per_seed = ", ".join(
            f"{s / 1000:.0f}k" if s is not None else f"not within {c / 1000:.0f}k"
            for s, c in zip(entry["per_seed"], entry["covered"], strict=True)
        )
        lines.append(f"- {method}: {per_seed}")
    return "\n".join(lines) + "\n" if short else ""


def table_markdown(
    results: dict, training: dict[str, dict[str, int]], fraction: float, budget: int
) -> str:
    """The comparison of finished runs, one row per method, with the runs still training."""
    target = results[REFERENCE]["target"]
    lines = [
        f"Target: {fraction:.0%} of the residual's final success = {target:.0%} "
        f"(within {budget / 1000:.0f}k environment steps).",
        "",
        f"| method | seeds run to {budget / 1000:.0f}k | final success "
        "| steps to target (per seed) | steps to target | residual needs fewer | still training |",
        "|---|---:|---:|---|---:|---:|---|",
    ]
    for method in METHODS:
        e, running = results.get(method), _training(training.get(method, {}))
        if e is None and running:
            lines.append(f"| {method} | 0 | - | - | - | - | {running} |")
        elif e is not None:
            per_seed = ", ".join("-" if s is None else f"{s / 1000:.0f}k" for s in e["per_seed"])
            lines.append(
                f"| {method} | {e['seeds']} | {e['final']:.0%} | {per_seed} "
                f"| {_steps(e)} | {_saving(e, method)} | {running} |"
            )
    return "\n".join(lines) + "\n"


Curves = dict[str, list[pd.DataFrame]]


def read_curves(budget: int) -> tuple[Curves, dict[str, dict[str, pd.DataFrame]]]:
    """Per method, the curves of its runs that used ``budget``, and of the others by run."""
    finished: Curves = {}
    training: dict[str, dict[str, pd.DataFrame]] = {}
    for method, pattern in METHODS.items():
        for run in sorted(RESULTS.glob(pattern)):
            frame = read_progress(run / "progress.csv")
            if frame["timesteps"].max() >= budget:
                finished.setdefault(method, []).append(frame)
            else:
                training.setdefault(method, {})[run.name] = frame
    return finished, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fraction", type=float, default=0.8)
    parser.add_argument("--window", type=int, default=3, help="evaluations to smooth over")
    parser.add_argument("--budget", type=int, default=300_000)
    parser.add_argument("--out", type=Path, default=RESULTS / "finetune")
    parser.add_argument("--runs", type=Path, default=None, help="collect baseline runs first")
    parser.add_argument(
        "--sweep", type=Path, default=None, help="collect the runs of a bench sweep's folder"
    )
    args = parser.parse_args()
    if args.sweep is not None:
        collect(training_runs(args.sweep), RESULTS / "finetune", args.budget)
    elif args.runs is not None:
        collect({p.name: p for p in args.runs.iterdir()}, RESULTS / "finetune", args.budget)

    curves, training_curves = read_curves(args.budget)
    training = {
        method: {name: int(frame["timesteps"].max()) for name, frame in runs.items()}
        for method, runs in training_curves.items()
    }
    results = compare_to_reference(curves, REFERENCE, args.fraction, args.window, args.budget)
    target = results[REFERENCE]["target"]
    args.out.mkdir(parents=True, exist_ok=True)
    drawn = {m: [f[f["timesteps"] <= args.budget] for f in frames] for m, frames in curves.items()}
    # Each run still training on its own (runs of one method stand at different steps, and a
    # mean would stop where the shortest does), without its 20-episode interval, which would
    # hide the finished methods' bands.
    still = [(f"{name} (training)", frame[["timesteps", "success_rate"]])
             for runs in training_curves.values() for name, frame in runs.items()]  # fmt: skip
    drawn.update({label: [frame] for label, frame in still})
    plot_learning_curves(
        drawn,
        args.out / "sample_efficiency.png",
        target=(f"{args.fraction:.0%} of the residual's final success", target),
        dashed=[label for label, _ in still],
    )
    settings = {"fraction": args.fraction, "window": args.window, "budget": args.budget}
    short = short_runs(target, args.window)
    record = {"settings": settings, "methods": results, "training": training, "short": short}
    (args.out / "sample_efficiency.json").write_text(json.dumps(record, indent=2) + "\n")
    table = table_markdown(results, training, args.fraction, args.budget)
    table += short_runs_markdown(short)
    (args.out / "sample_efficiency.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
