"""How sensitive the ``scripted`` base is to a residual's small bias or step-to-step wobble.

    python benchmarks/residual_action_noise.py --episodes 50

A learned residual is never exactly zero: its output drifts by a constant and varies from
step to step with its (noisy) features. Here the base runs under fixed, known residuals with
the authority of the pilots (alpha 0.3, 0.3, 2), each on the same held-out ``mixed`` episodes
(the seeds of ``bench eval``): a constant bias of the gripper, Gaussian noise on the gripper
only or on translation and rotation only (a fresh draw every control step), and each through
the gripper deadband (``ResidualEnv(gripper_deadband=...)``). Paired with the base alone:
gain and exact McNemar p. Writes ``results/residual/action-noise.md``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

import residual_bench.registration  # noqa: F401  (registers every task id)
from residual_bench.episodes import run_episode, wilson_interval
from residual_bench.episodes.statistics import mcnemar_exact
from residual_bench.policies.registry import get_base, make_controller
from residual_bench.residual.env import ResidualEnv
from residual_bench.seeding import episode_seed

RESULTS = Path(__file__).resolve().parent.parent / "results"
ALPHA = (0.3, 0.3, 2.0)
GRIPPER, ARM = np.r_[np.zeros(6), 1.0], np.r_[np.ones(6), 0.0]


def residuals(rng: np.random.Generator) -> dict[str, tuple[Callable[[], np.ndarray], float]]:
    """Name -> (a residual drawn each step, the gripper deadband it acts through)."""
    return {
        "none (the base alone)": (lambda: np.zeros(7), 0.0),
        "gripper bias -0.07": (lambda: -0.07 * GRIPPER, 0.0),
        "gripper bias +0.07": (lambda: 0.07 * GRIPPER, 0.0),
        "gripper noise, std 0.1": (lambda: rng.normal(0.0, 0.1, 7) * GRIPPER, 0.0),
        "translation + rotation noise, std 0.1": (lambda: rng.normal(0.0, 0.1, 7) * ARM, 0.0),
        "gripper noise, std 0.1, deadband 0.3": (
            lambda: rng.normal(0.0, 0.1, 7) * GRIPPER,
            0.3,
        ),
        "gripper noise, std 0.3, deadband 0.3": (
            lambda: rng.normal(0.0, 0.3, 7) * GRIPPER,
            0.3,
        ),
    }


def successes(draw: Callable[[], np.ndarray], band: float, episodes: int, seed: int) -> list:
    """Per-episode success of the base under the residual ``draw`` gives each step."""
    env_kwargs = dict(get_base("scripted").env_kwargs, obs_mode="state")
    env = gym.make("ResidualPickPlace-v1", objects="heldout", suite="mixed", **env_kwargs)
    controller = make_controller("scripted", env)
    wrapped = ResidualEnv(env, controller, "proprio", ALPHA, gripper_deadband=band)
    wins = []
    for i in range(episodes):
        episode_seed_i = episode_seed(seed, "mixed", "heldout", i)
        episode = run_episode(wrapped, lambda obs, info: np.clip(draw(), -1, 1), episode_seed_i)
        wins.append(bool(episode.info["success"]))
    env.close()
    return wins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "residual" / "action-noise.md")
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    rows, base = [], None
    for name, (draw, band) in residuals(np.random.default_rng(args.seed)).items():
        start = time.perf_counter()
        wins = successes(draw, band, args.episodes, args.seed)
        base = wins if base is None else base
        low, high = wilson_interval(sum(wins), len(wins))
        gain = 100 * (sum(wins) - sum(base)) / len(wins)
        p = mcnemar_exact(base, wins)["p_value"] if wins is not base else None
        cells = [
            name,
            f"{sum(wins)}/{len(wins)}",
            f"{low:.0%}-{high:.0%}",
            "" if p is None else f"{gain:+.0f}",
            "" if p is None else f"{p:.3g}",
            f"{time.perf_counter() - start:.0f}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    text = (
        "# The `scripted` base under a residual's small bias or wobble\n\n"
        f"Produced by `python benchmarks/residual_action_noise.py --episodes {args.episodes}` "
        f"(seed {args.seed}): held-out `mixed` episodes, alpha {ALPHA}, each row on the same "
        "episodes as the base alone; noise is drawn afresh every control step.\n\n"
        "| residual | successes | 95% CI (Wilson) | gain | McNemar p | s |\n"
        "|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
