"""Success of the scripted expert on the nominal task, on both object splits.

    python benchmarks/expert_success.py              # 200 episodes per split, ~3 min

Writes per-episode records and summaries to ``results/expert/{train,heldout}/`` (the first
episode's scene as ``scene.png``) and the table to ``results/expert_success.md``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from residual_bench.rollout import run_episodes

RESULTS = Path(__file__).resolve().parent.parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--force", action="store_true", help="replace earlier results")
    args = parser.parse_args()

    rows = []
    for split in ("train", "heldout"):
        out = args.out / "expert" / split
        if args.force and out.exists():
            shutil.rmtree(out)
        _, summary = run_episodes(
            args.episodes, objects=split, seed=args.seed, out=out, scene_figure=True
        )
        rate = summary["success_rate"]
        lo, hi = rate["ci"]
        ct = summary["completion_time_mean"]
        rows.append(
            f"| {split} | {rate['k']}/{rate['n']} | {rate['rate']:.1%} | {lo:.1%}-{hi:.1%} | "
            f"{ct:.2f} |"
        )
    table = "\n".join(
        [
            "# Scripted expert, nominal task",
            "",
            f"Produced by `python benchmarks/expert_success.py --episodes {args.episodes}` "
            f"(master seed {args.seed}). Privileged-state expert, 20 Hz control, 12 s episodes; "
            "success is the task condition at the end of the episode; completion time is "
            "simulated seconds to first success, over successful episodes.",
            "",
            "| objects | successes | success rate | 95% CI (Wilson) | completion time (s) |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    )
    (args.out / "expert_success.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
