"""How much a residual bounded by ``alpha`` can fix the ``scripted`` base: an oracle's success.

    python benchmarks/residual_headroom.py                    # the alpha grid below, 100 episodes
    python benchmarks/residual_headroom.py --alpha 0.3,0.1,0.3 --alpha 0.3,0.3,2 --episodes 20

The oracle residual knows the answer: each control step it outputs
``r = clip((a_expert - a_base) / alpha, -1, 1)``, where ``a_expert`` is the privileged expert's
action at that step (``scripted-expert``: no errors, 20 Hz, no latency, run in the base's
shadow on the true state) and ``a_base`` the frozen base's. With enough authority the executed
action is the expert's; with less, the base keeps what the residual cannot override. No
learned residual sees more than the oracle does, so its success bounds what a residual with
that ``alpha`` can be expected to reach by following the expert; it is not an upper bound on
every residual (one that corrects the base's own plan instead of tracking the expert's could
need less authority).

Every cell is paired with the base alone on the same episodes (episode ``i`` of a suite uses
``episode_seed(seed, suite, objects, i)``, the seeds of ``bench eval``), so the table gives the
oracle's gain and its harm rate (base alone succeeded, base + oracle failed). The env runs in
``state`` observation mode: the oracle needs no camera. Writes
``results/residual/headroom.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import residual_bench.registration  # noqa: F401  (registers every task id)
from residual_bench.episodes import run_episode, wilson_interval
from residual_bench.episodes.statistics import mcnemar_exact
from residual_bench.policies.registry import get_base, make_controller
from residual_bench.residual.env import ResidualEnv
from residual_bench.residual.oracle import OracleResidual
from residual_bench.seeding import episode_seed

RESULTS = Path(__file__).resolve().parent.parent / "results"
DEFAULT_OUT = RESULTS / "residual" / "headroom.md"
ENV_ID = "ResidualPickPlace-v1"
DEFAULT_ALPHAS = [
    (0.3, 0.1, 0.3),  # the shipped sac's
    (0.3, 0.3, 0.3),
    (0.3, 0.1, 2.0),
    (0.3, 0.3, 1.0),
    (0.3, 0.3, 1.5),
    (0.3, 0.3, 2.0),
    (0.5, 0.3, 2.0),
    (2.0, 2.0, 2.0),  # full authority: the executed action is the expert's
]


def parse_alpha(text: str) -> tuple[float, float, float]:
    """``"0.3,0.1,0.3"`` -> (translation, rotation, gripper)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--alpha: expected three numbers, got {text!r}") from None
    if len(values) != 3 or not all(np.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"--alpha: expected three positive numbers (translation,rotation,gripper), got {text!r}"
        )
    return values


def successes(
    suite: str, objects: str, alpha: tuple[float, float, float] | None, episodes: int, seed: int
) -> list[bool]:
    """Per-episode success of ``scripted`` + the oracle (``alpha`` None: the base alone)."""
    env_kwargs = dict(get_base("scripted").env_kwargs, obs_mode="state")
    env = gym.make(ENV_ID, objects=objects, suite=suite, **env_kwargs)
    wrapped = ResidualEnv(env, make_controller("scripted", env), "proprio", alpha or 0.0)
    oracle = OracleResidual(wrapped)
    act = oracle if alpha is not None else (lambda obs, info: np.zeros(7))

    wins = []
    for i in range(episodes):
        seed_i = episode_seed(seed, suite, objects, i)
        episode = run_episode(wrapped, act, seed_i, reset=oracle.reset)
        wins.append(bool(episode.info["success"]))
    env.close()
    return wins


def row(suite: str, alpha: tuple, base: list[bool], oracle: list[bool], wall_s: float) -> str:
    n, k = len(oracle), sum(oracle)
    lo, hi = wilson_interval(k, n)
    test = mcnemar_exact(base, oracle)
    alpha_text = ", ".join(f"{a:g}" for a in alpha)
    return (
        f"| {suite} | ({alpha_text}) | {k}/{n} | {lo:.0%}-{hi:.0%} | "
        f"{100 * test['difference']:+.0f} | {test['p_value']:.3g} | {test['n10']}/{n} | "
        f"{wall_s:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alpha", action="append", type=parse_alpha, help="repeatable")
    parser.add_argument("--suite", action="append", help="repeatable; default mixed, nominal")
    parser.add_argument("--objects", default="heldout", choices=["train", "heldout"])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    alphas, suites = args.alpha or DEFAULT_ALPHAS, args.suite or ["mixed", "nominal"]
    lines = []
    for suite in suites:
        base = successes(suite, args.objects, None, args.episodes, args.seed)
        lines.append(f"| {suite} | base alone | {sum(base)}/{len(base)} | | | | | |")
        print(lines[-1], flush=True)
        for alpha in alphas:
            start = time.perf_counter()
            oracle = successes(suite, args.objects, alpha, args.episodes, args.seed)
            lines.append(row(suite, alpha, base, oracle, time.perf_counter() - start))
            print(lines[-1], flush=True)
    command = "python benchmarks/residual_headroom.py"
    if args.alpha:
        command += "".join(f" --alpha {','.join(f'{v:g}' for v in a)}" for a in args.alpha)
    if args.suite:
        command += "".join(f" --suite {s}" for s in args.suite)
    command += f" --objects {args.objects} --episodes {args.episodes} --seed {args.seed}"
    if args.out.resolve() != DEFAULT_OUT.resolve():
        shown = args.out.resolve()
        with contextlib.suppress(ValueError):  # a file outside the repository: shown as given
            shown = shown.relative_to(RESULTS.parent)
        command += f" --out {shown}"
    table = "\n".join(
        [
            "# Headroom: an oracle residual bounded by alpha on the `scripted` base",
            "",
            f"Produced by `{command}` on `{ENV_ID}` ({args.objects} objects). Each step the "
            "oracle outputs r = clip((a_expert - a_base) / alpha, -1, 1), the privileged "
            "expert's action (20 Hz, no errors, no latency) minus the base's, in units of "
            "the residual's authority alpha = (translation, rotation, gripper) of the "
            "normalised action (the executed action is clip(a_base + alpha * r, -1, 1)). "
            "Paired with the base alone on the same episodes: gain in points, exact McNemar "
            "p, harm = base alone succeeded and base + oracle failed; wall clock of the cell "
            "in seconds.",
            "",
            "| suite | alpha | successes | 95% CI (Wilson) | gain | McNemar p | harm | s |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
            *lines,
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
