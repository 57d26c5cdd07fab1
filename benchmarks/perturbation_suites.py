"""Every perturbation suite against the scripted expert and two weaker contrasts.

    python benchmarks/perturbation_suites.py                 # 200 episodes a cell, ~25 min
    python benchmarks/perturbation_suites.py --episodes 20   # a quick look

For each suite and each policy (``expert``: closed loop at 20 Hz; ``expert-open-loop``: plans
once from the first frame; ``expert-4hz``: decides every 250 ms and holds its action, like a
slow VLA) it runs the same seeded episodes on held-out objects, writes
``results/suites/<suite>/<policy>/{episodes.jsonl,summary.json}`` and the table
``results/perturbation_suites.md`` (success, completion time, recovery rate and recovery
within 150 ms, with Wilson 95% intervals). A finished cell is reused, so an interrupted run
picks up where it stopped; ``--force`` recomputes everything.
"""

from __future__ import annotations

import argparse
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from residual_bench.perturb import load_suite, suite_applies, suite_names
from residual_bench.policies.scripted import SCRIPTED_POLICIES
from residual_bench.rollout import format_rate, run_or_reuse
from residual_bench.tasks.pick_place import PickPlaceTask

RESULTS = Path(__file__).resolve().parent.parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--objects", default="heldout")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--force", action="store_true", help="recompute every cell")
    args = parser.parse_args()

    root = args.out / "suites"
    if args.force and root.exists():
        shutil.rmtree(root)
    # The scripted policies here are pick-and-place's: the suites that fit its phases.
    suites = [s for s in suite_names() if suite_applies(load_suite(s), PickPlaceTask.phases)]
    policies = list(SCRIPTED_POLICIES)
    cells = [(s, p) for s in suites for p in policies]
    summaries: dict[tuple[str, str], dict] = {}
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {
            pool.submit(
                run_or_reuse,
                root / s / p,
                args.episodes,
                policy=p,
                suite=s,
                objects=args.objects,
                seed=args.seed,
            ): (s, p)
            for s, p in cells
        }
        for done, future in enumerate(as_completed(futures), 1):
            suite, policy = futures[future]
            summaries[(suite, policy)] = summary = future.result()
            print(
                f"[{done}/{len(cells)}] {suite:<13} {policy:<17} "
                f"success {format_rate(summary['success_rate'])}",
                flush=True,
            )

    lines = [
        "# Perturbation suites",
        "",
        f"Produced by `python benchmarks/perturbation_suites.py --episodes {args.episodes}` "
        f"(master seed {args.seed}, {args.objects} objects; the same episode seeds for every "
        "policy of a suite). Rates with Wilson 95% intervals. Completion time: simulated "
        "seconds to first success, over successful episodes. Recovery rate: perturbed "
        "episodes that still succeed. @150 ms: events recovered within 150 ms of simulated "
        "time (definitions in docs/metrics.md).",
        "",
        "| suite | policy | success | completion (s) | recovery rate | recovered @150 ms "
        "| @1 s | events |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for suite in suites:
        for policy in policies:
            s = summaries[(suite, policy)]
            ct = s["completion_time_mean"]
            at = s["recovery_rate_at"]
            lines.append(
                f"| {suite} | {policy} | {format_rate(s['success_rate'])} | "
                f"{'-' if ct is None else f'{ct:.2f}'} | {format_rate(s['recovery_rate'])} | "
                f"{format_rate(at['0.15'])} | {format_rate(at['1.0'])} | {s['n_events']} |"
            )
    lines.append("")
    (args.out / "perturbation_suites.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
