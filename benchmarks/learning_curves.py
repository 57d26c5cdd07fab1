"""Learning curves of residual training runs: success against environment steps.

    python benchmarks/learning_curves.py
    python benchmarks/learning_curves.py --results RUNS --out curves.png \
        --curve "old default=objects-sac-300k-seed*" --curve "new default=sac-seed*"

Plots the ``progress.csv`` that ``bench train`` writes in each run folder (success of the
deterministic residual on 20 fixed held-out ``mixed`` episodes every ``eval_every`` steps):
per curve, the mean over the folders its pattern matches under ``--results`` (one per
training seed), with a band from the lowest to the highest seed. Without ``--curve``, the
committed curves of the shipped residuals into ``results/residual/learning_curves.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from residual_bench.eval.plots import plot_learning_curves
from residual_bench.training.learning_curve import read_progress

ROOT = Path(__file__).resolve().parent.parent
CURVES = {
    "scripted + sac": "objects-sac-300k-seed*",
    "bc + sac": "bc-objects-sac-seed*",
}


def parse_curve(text: str) -> tuple[str, str]:
    """``LABEL=GLOB`` as (label, glob)."""
    label, sep, pattern = text.partition("=")
    if not sep or not label or not pattern:
        raise argparse.ArgumentTypeError(f"expected LABEL=GLOB, got {text!r}")
    return label, pattern


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "residual")
    parser.add_argument("--out", type=Path, help="image (default: RESULTS/learning_curves.png)")
    parser.add_argument(
        "--curve", type=parse_curve, action="append", metavar="LABEL=GLOB",
        help="a curve: run folders under --results matching GLOB, one per seed (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    patterns = dict(args.curve) if args.curve else CURVES
    curves = {}
    for label, pattern in patterns.items():
        folders = sorted(d for d in args.results.glob(pattern) if (d / "progress.csv").is_file())
        if not folders:
            parser.error(f"{label}: no run folder with a progress.csv matches {pattern!r}")
        curves[label] = [read_progress(d / "progress.csv") for d in folders]
    for label, frames in curves.items():
        print(f"{label}: {len(frames)} seeds, up to {max(f['timesteps'].max() for f in frames)}")
    path = plot_learning_curves(curves, args.out or args.results / "learning_curves.png")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
