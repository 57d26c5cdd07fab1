"""Nominal success of each task's privileged expert and of the ``scripted`` base over it.

    python benchmarks/task_experts.py                         # stack, push, insert; 200 per split
    python benchmarks/task_experts.py --env ResidualStack-v0 --env ResidualPush-v0

The expert is the one the task registers in :mod:`residual_bench.policies.task_experts`,
run at the control rate; ``scripted`` is the VLA-like base over that same expert with the
generic error model (5 Hz chunks, latency, seeded errors; the geometric ones times the task's
``base_error_scale``). Episode ``i`` of a split uses
``episode_seed(seed, "nominal", split, i)``, so both policies meet the same scenes. Writes
``results/expert/tasks.md`` (``results/expert_success.md`` is pick-and-place's, from
``benchmarks/expert_success.py``).
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import gymnasium as gym

import residual_bench.registration  # noqa: F401  (registers every task id)
from residual_bench.episodes import run_episode, wilson_interval
from residual_bench.policies.registry import make_controller
from residual_bench.policies.task_experts import expert_for
from residual_bench.seeding import episode_seed

RESULTS = Path(__file__).resolve().parent.parent / "results"
DEFAULT_ENVS = ["ResidualStack-v0", "ResidualPush-v0", "ResidualInsert-v0"]
"""The tasks beyond pick-and-place (whose expert table is ``benchmarks/expert_success.py``)."""


def success_rate(env_id: str, policy: str, split: str, episodes: int, seed: int) -> int:
    """Successes of ``policy`` (``expert`` or a base name) over ``episodes`` nominal ones."""
    env = gym.make(env_id, objects=split)
    if policy == "expert":
        expert = expert_for(env)
        reset, act = (lambda info: expert.reset()), (lambda obs, info: expert.act(env))
    else:
        controller = make_controller(policy, env)
        reset, act = controller.reset, (lambda obs, info: controller.act(obs, info)[0])
    wins = 0
    for i in range(episodes):
        episode = run_episode(env, act, episode_seed(seed, "nominal", split, i), reset=reset)
        wins += bool(episode.info["success"])
    env.close()
    return wins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", action="append", help="task id (repeatable)")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "expert" / "tasks.md")
    args = parser.parse_args()
    rows = []
    for env_id in args.env or DEFAULT_ENVS:
        for policy in ("expert", "scripted"):
            for split in ("train", "heldout"):
                k = success_rate(env_id, policy, split, args.episodes, args.seed)
                lo, hi = wilson_interval(k, args.episodes)
                rows.append(
                    f"| {env_id} | {policy} | {split} | {k}/{args.episodes} | "
                    f"{k / args.episodes:.1%} | {lo:.1%}-{hi:.1%} |"
                )
                print(rows[-1], flush=True)
    envs = " ".join(f"--env {e}" for e in args.env or DEFAULT_ENVS)
    if args.out.resolve() != (RESULTS / "expert" / "tasks.md").resolve():
        shown = args.out.resolve()
        with contextlib.suppress(ValueError):  # a file outside the repository: shown as given
            shown = shown.relative_to(RESULTS.parent)
        envs += f" --out {shown}"
    table = "\n".join(
        [
            "# Task experts and the scripted base, nominal suite",
            "",
            f"Produced by `python benchmarks/task_experts.py {envs} --episodes "
            f"{args.episodes}` (master seed {args.seed}): each task's registered privileged "
            "expert at 20 Hz, and the `scripted` base (the same expert behind the generic "
            "VLA error model, its geometric errors times the task's `base_error_scale`); "
            "success is the task condition at the end of the episode.",
            "",
            "| task | policy | objects | successes | success rate | 95% CI (Wilson) |",
            "|---|---|---|---:|---:|---:|",
            *rows,
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
