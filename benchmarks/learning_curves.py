"""Learning curves of residual training runs: success against environment steps.

    python benchmarks/learning_curves.py
    python benchmarks/learning_curves.py --results RUNS --out curves.png \
        --curve "old default=objects-sac-300k-seed*" --curve "new default=sac-seed*"
    python benchmarks/learning_curves.py --out results/residual/recipe-pilots/p30/curves.png \
        --curve "previous sac=objects-sac-300k-seed*" \
        --curve "quiet exploration (p30)=shipped/scripted-sac-seed*"
    python benchmarks/learning_curves.py --out results/residual/recipe-pilots/p30/curves-bc.png \
        --curve "previous sac (bc)=bc-objects-sac-seed*" \
        --curve "quiet exploration (bc)=shipped/bc-sac-seed*"

Plots the ``progress.csv`` that ``bench train`` writes in each run folder (success of the
deterministic residual on 20 fixed held-out ``mixed`` episodes every ``eval_every`` steps):
per curve, the mean over the folders its pattern matches under ``--results`` (one per
training seed; a pattern may also match the ``progress`` CSV files themselves), with a band
from the lowest to the highest seed. Without ``--curve``, the committed curves of the
shipped residuals into ``results/residual/learning_curves.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from residual_bench.eval.plots import plot_learning_curves
from residual_bench.training.learning_curve import read_progress

ROOT = Path(__file__).resolve().parent.parent
CURVES = {
    "scripted + sac": "shipped/scripted-sac-seed*",
    "bc + sac": "shipped/bc-sac-seed*",
}


def parse_curve(text: str) -> tuple[str, str]:
    """``LABEL=GLOB`` as (label, glob)."""
    label, sep, pattern = text.partition("=")
    if not sep or not label or not pattern:
        raise argparse.ArgumentTypeError(f"expected LABEL=GLOB, got {text!r}")
    return label, pattern


def progress_file(path: Path) -> Path | None:
    """A run folder's ``progress.csv``, or ``path`` itself when it is a CSV file."""
    if path.is_file():
        return path if path.suffix == ".csv" else None
    return path / "progress.csv" if (path / "progress.csv").is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "residual")
    parser.add_argument("--out", type=Path, help="image (default: RESULTS/learning_curves.png)")
    parser.add_argument(
        "--curve", type=parse_curve, action="append", metavar="LABEL=GLOB",
        help="a curve: run folders (or their progress CSV files) under --results matching "
        "GLOB, one per seed (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    patterns = dict(args.curve) if args.curve else CURVES
    curves = {}
    for label, pattern in patterns.items():
        files = sorted(f for f in map(progress_file, args.results.glob(pattern)) if f)
        if not files:
            parser.error(f"{label}: no run folder with a progress.csv matches {pattern!r}")
        curves[label] = [read_progress(f) for f in files]
    for label, frames in curves.items():
        print(f"{label}: {len(frames)} seeds, up to {max(f['timesteps'].max() for f in frames)}")
    path = plot_learning_curves(curves, args.out or args.results / "learning_curves.png")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
