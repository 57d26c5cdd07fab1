"""The frozen base policies on the main suites, training vs held-out objects, and their speed.

    python benchmarks/base_policies.py                     # the committed table (hours on 2 cores)
    python benchmarks/base_policies.py --episodes 20       # a quick look

For ``scripted-expert``, ``scripted`` and ``bc`` on nominal, poke, slide, drop, latency and
mixed, with training and held-out objects, it writes
``results/bases/<base>/<suite>/<objects>/{episodes.jsonl,summary.json}`` and the table
``results/base_policies.md`` (success with Wilson 95% intervals, completion time, recovery
rate), plus each base's single-call latency on one CPU core (median and p99 over 200 calls).
Finished cells are reused and an interrupted or shorter run is continued episode by episode,
so re-running the same command picks up where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import gymnasium as gym
import numpy as np

from residual_bench.policies.registry import get_base, make_controller
from residual_bench.registration import ENV_ID
from residual_bench.rollout import format_rate, run_or_reuse

RESULTS = Path(__file__).resolve().parent.parent / "results"
BASES = ("scripted-expert", "scripted", "bc")
SUITES = ("nominal", "poke", "slide", "drop", "latency", "mixed")
SPLITS = ("train", "heldout")


def call_latency(base: str, calls: int = 200) -> dict[str, float]:
    """Wall-clock time of one policy call on one core: median and p99, in milliseconds."""
    import torch

    os.sched_setaffinity(0, {0})
    torch.set_num_threads(1)
    env = gym.make(ENV_ID, **get_base(base).env_kwargs)
    controller = make_controller(base, env)
    policy = controller.policy
    obs, info = env.reset(seed=0)
    policy.reset(info["instruction"], 0)
    times = []
    for i in range(calls):
        start = time.perf_counter()
        policy.act(obs, info["instruction"])
        times.append(time.perf_counter() - start)
        if i % 5 == 0:  # new observations now and then, as in an episode
            obs, _, _, _, info = env.step(env.action_space.sample() * 0.1)
    env.close()
    ms = np.asarray(times) * 1000
    return {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument(
        "--bc-episodes",
        type=int,
        default=None,
        help="episodes per bc cell (default: --episodes); bc renders and runs a CNN, ~5x slower",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--bases",
        nargs="+",
        default=list(BASES),
        choices=BASES,
        help="run only these bases' cells (the table needs all of them)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    root = args.out / "bases"
    cells = [(b, s, o) for b in args.bases for s in SUITES for o in SPLITS]
    bc_episodes = args.bc_episodes or args.episodes

    def episodes_for(base: str) -> int:
        return bc_episodes if base == "bc" else args.episodes

    summaries = {}
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {
            pool.submit(
                run_or_reuse,
                root / b / s / o,
                episodes_for(b),
                policy=b,
                suite=s,
                objects=o,
                seed=args.seed,
            ): (b, s, o)
            for b, s, o in cells
        }
        for done, future in enumerate(as_completed(futures), 1):
            cell = futures[future]
            summaries[cell] = future.result()
            print(
                f"[{done}/{len(cells)}] {' / '.join(cell):<34} "
                f"success {format_rate(summaries[cell]['success_rate'])}",
                flush=True,
            )
    if set(args.bases) != set(BASES):
        return  # a partial run only fills cells; the table is written by a full run
    with ProcessPoolExecutor(max_workers=1) as pool:  # its own process: pinned to one core
        speed = {b: pool.submit(call_latency, b).result() for b in BASES}

    lines = [
        "# Frozen base policies",
        "",
        f"Produced by `python benchmarks/base_policies.py --episodes {args.episodes}"
        + (f" --bc-episodes {bc_episodes}" if bc_episodes != args.episodes else "")
        + f"` ({args.episodes} episodes per cell"
        + (f", {bc_episodes} for bc" if bc_episodes != args.episodes else "")
        + f"; master seed {args.seed}; the same episode seeds for every base). Success with "
        "Wilson 95% "
        "intervals; completion time in simulated seconds over successful episodes; recovery "
        "rate: perturbed episodes that succeed. Call latency: one `act` call on one CPU core, "
        "wall clock, median / p99 over 200 calls.",
        "",
        "| base | call latency (median / p99) |",
        "|---|---:|",
        *[f"| {b} | {speed[b]['median_ms']:.2f} / {speed[b]['p99_ms']:.2f} ms |" for b in BASES],
        "",
        "| base | suite | objects | success | completion (s) | recovery rate |",
        "|---|---|---|---:|---:|---:|",
    ]
    for b, s, o in cells:
        r = summaries[(b, s, o)]
        ct = r["completion_time_mean"]
        lines.append(
            f"| {b} | {s} | {o} | {format_rate(r['success_rate'])} | "
            f"{'-' if ct is None else f'{ct:.2f}'} | {format_rate(r['recovery_rate'])} |"
        )
    lines.append("")
    (args.out / "base_policies.md").write_text("\n".join(lines))
    (args.out / "base_latency.json").write_text(json.dumps(speed, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
