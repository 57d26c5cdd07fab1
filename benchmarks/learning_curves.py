"""Learning curves of the shipped residuals: success against environment steps, per base.

    python benchmarks/learning_curves.py

Plots the committed ``progress.csv`` of each training seed (success of the deterministic
residual on 20 fixed held-out ``mixed`` episodes every 10k steps, written by ``bench train``)
into ``results/residual/learning_curves.png``: the mean over seeds, with a band from the lowest
to the highest seed.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "residual")
    args = parser.parse_args()
    curves = {
        label: [read_progress(d / "progress.csv") for d in sorted(args.results.glob(pattern))]
        for label, pattern in CURVES.items()
    }
    for label, frames in curves.items():
        print(f"{label}: {len(frames)} seeds, up to {max(f['timesteps'].max() for f in frames)}")
    path = plot_learning_curves(curves, args.results / "learning_curves.png")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
