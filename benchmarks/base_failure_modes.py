"""Where the ``scripted`` base's failures come from, and which a residual's authority can fix.

    python benchmarks/base_failure_modes.py                   # every condition, 100 episodes
    python benchmarks/base_failure_modes.py --suite nominal --condition "no object offset"

Each condition changes one thing about the base (or adds one hand-made correction) and runs
the same episodes as the base alone (episode ``i`` of a suite uses ``episode_seed(seed, suite,
objects, i)``, the seeds of ``bench eval``), so every row is paired with the base:

- ``no <error>``: the base with one source of its error model removed
  (:class:`~residual_bench.policies.scripted_vla.VLAErrorModel`): how many episodes that
  error alone costs.
- ``control rate``: ``scripted-fast``, the same errors at 20 Hz, with no chunks and no
  latency: what acting late costs.
- ``twice the time``: the base alone with the episode twice as long. Its success at the
  normal time limit is checked against the base's (the episodes must be the same); the rest
  is what a base this slow would still solve given the time.
- ``centring in descent``: the base plus a hand-made correction with the shipped ``sac``'s
  authority (translation 0.3): while the open hand descends over the target (within 4 cm of
  it horizontally and 5 cm above its centre) it moves towards the target's true centre at
  half the remaining way per step. It reads the simulator's state.
- ``centring from the features``: the same rule on what a residual sees, the target's
  centroid relative to the gripper in its ``objects`` features (segmentation and depth):
  a correction a residual could learn.
- ``translation x1.5``: the base plus a correction that adds half of the base's own
  translation command (as far as the authority allows): a residual that only hurries the
  base along its own path.

The table gives success, its Wilson interval, the gain over the base alone with the exact
McNemar p, the harm rate (base alone succeeded, this condition failed) and the median time of
first success. The env runs in ``state`` observation mode except where the features need
the camera.
Writes ``results/residual/base-failure-modes.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import residual_bench.registration  # noqa: F401  (registers every task id)
from residual_bench.env_spec import load_env_spec
from residual_bench.episodes import run_episode, wilson_interval
from residual_bench.episodes.statistics import mcnemar_exact
from residual_bench.policies.registry import make_controller
from residual_bench.policies.scripted_vla import VLAErrorModel
from residual_bench.provenance import shown_path
from residual_bench.residual.env import ResidualEnv, observation_layout
from residual_bench.residual.factory import residual_env_kwargs
from residual_bench.residual.features import POSITION_UNIT_M
from residual_bench.seeding import episode_seed
from residual_bench.sim.panda import POSITION_SCALE
from residual_bench.tasks import task_entry

RESULTS = Path(__file__).resolve().parent.parent / "results"
DEFAULT_OUT = RESULTS / "residual" / "base-failure-modes.md"
ENV_ID = "ResidualPickPlace-v1"
SHIPPED_ALPHA = (0.3, 0.1, 0.3)
"""The shipped ``sac``'s authority (translation, rotation, gripper)."""
ERRORS_REMOVED = {
    "no object offset": {"object_offset_m": 0.0},
    "no plate offset": {"goal_offset_m": 0.0},
    "no grasp-direction error": {"yaw_offset_rad": 0.0},
    "no grasp-height error": {"grasp_height_m": (0.0, 0.0)},
    "firm grip": {"grip_command": (-1.0, -1.0)},
    "no jitter, pauses or waypoints": {"jitter": 0.0, "hesitation": 0.0, "waypoint_m": 0.0},
}
CONDITIONS = (
    "base alone",
    *ERRORS_REMOVED,
    "control rate",
    "twice the time",
    "centring in descent",
    "centring from the features",
    "translation x1.5",
)
CENTRING_REACH_M = 0.04
"""The centring acts within this horizontal distance of the target's centre ..."""
CENTRING_HEIGHT_M = 0.05
"""... and with the open hand at most this far above it."""
CENTRING_GAIN = 0.5
"""Fraction of the horizontal way to the target's centre the centring asks for per step."""


class CentringInDescent:
    """The hand-made correction of ``centring in descent`` and ``centring from the
    features`` (see the module docstring): ``features`` True reads the target's position
    from the residual's ``objects`` features, else from the simulator."""

    def __init__(self, env: ResidualEnv, features: bool = False) -> None:
        self.env = env
        self.features = features
        self.layout = observation_layout("objects")
        self.limit = SHIPPED_ALPHA[0] * POSITION_SCALE  # metres per step at r = 1

    def target_from_hand(self, obs: Any) -> np.ndarray | None:
        """The target's centre relative to the gripper (m), or None where it is not seen."""
        if self.features:
            if obs[self.layout["target_seen"]][0] < 0.5:
                return None
            return np.asarray(obs[self.layout["target_from_gripper"]]) * POSITION_UNIT_M
        sim = self.env.unwrapped
        return sim.task.object_states()[0].center - sim.robot.tcp_pose()[0]

    def __call__(self, obs: Any, info: dict) -> np.ndarray:
        r = np.zeros(7)
        offset = self.target_from_hand(obs)
        if (
            offset is not None
            and not info.get("is_grasped", False)
            and np.linalg.norm(offset[:2]) < CENTRING_REACH_M
            and -offset[2] < CENTRING_HEIGHT_M
        ):
            r[:2] = np.clip(CENTRING_GAIN * offset[:2] / self.limit, -1.0, 1.0)
        return r


class FasterTranslation:
    """The hand-made correction of ``translation x1.5``: half the base's last translation
    command again, in units of the authority (clipped to it)."""

    def __init__(self, env: ResidualEnv) -> None:
        self.env = env

    def __call__(self, obs: Any, info: dict) -> np.ndarray:
        r = np.zeros(7)
        r[:3] = np.clip(0.5 * self.env.base_action[:3] / SHIPPED_ALPHA[0], -1.0, 1.0)
        return r


def _no_correction(obs: Any, info: dict) -> np.ndarray:
    return np.zeros(7)


def make_condition_env(condition: str, suite: str, objects: str) -> tuple[ResidualEnv, Callable]:
    """The residual env of ``condition`` (alpha: the shipped one) and what acts in it."""
    base = "scripted-fast" if condition == "control rate" else "scripted"
    overrides = None
    if condition == "twice the time":
        overrides = {"task": {"episode_seconds": 2 * episode_seconds()}}
    features = "objects" if condition == "centring from the features" else "proprio"
    env_kwargs = residual_env_kwargs(base, features)
    env_kwargs.setdefault("obs_mode", "state")
    env = gym.make(ENV_ID, objects=objects, suite=suite, scene_overrides=overrides, **env_kwargs)
    controller = make_controller(base, env)
    if condition in ERRORS_REMOVED:
        controller.policy.error_model = dataclasses.replace(
            VLAErrorModel(), **ERRORS_REMOVED[condition]
        )
    wrapped = ResidualEnv(env, controller, features, SHIPPED_ALPHA)
    corrections = {
        "centring in descent": lambda: CentringInDescent(wrapped),
        "centring from the features": lambda: CentringInDescent(wrapped, features=True),
        "translation x1.5": lambda: FasterTranslation(wrapped),
    }
    return wrapped, corrections.get(condition, lambda: _no_correction)()


@functools.cache
def episode_seconds() -> float:
    """The shipped episode length of the task, in simulated seconds (its scene spec's)."""
    spec = load_env_spec(default_name=task_entry(ENV_ID).task.scene)
    return float(spec["task"]["episode_seconds"])


@dataclasses.dataclass
class Cell:
    """One condition on one suite: per-episode outcomes, in episode order."""

    condition: str
    suite: str
    success: list[bool]
    first_success_s: list[float | None]
    success_at_limit: list[bool] | None
    wall_s: float


def run_cell(condition: str, suite: str, objects: str, episodes: int, seed: int) -> Cell:
    """Run ``condition`` on ``episodes`` episodes of ``suite``."""
    start = time.perf_counter()
    env, act = make_condition_env(condition, suite, objects)
    limit_s = episode_seconds() if condition == "twice the time" else None
    success, first, at_limit = [], [], []

    def watch(env_: Any, info: dict) -> None:
        if limit_s is not None and abs(info["time"] - limit_s) < 1e-6:
            at_limit.append(bool(info["success"]))

    for i in range(episodes):
        episode = run_episode(env, act, episode_seed(seed, suite, objects, i), on_step=watch)
        success.append(episode.success)
        first.append(episode.info.get("first_success_time"))
    env.close()
    return Cell(
        condition,
        suite,
        success,
        first,
        at_limit if limit_s is not None else None,
        time.perf_counter() - start,
    )


def row(cell: Cell, base: Cell) -> str:
    """The table row of ``cell``, paired with ``base`` (the same suite's base alone)."""
    n, k = len(cell.success), sum(cell.success)
    lo, hi = wilson_interval(k, n)
    times = [t for t in cell.first_success_s if t is not None]
    median = f"{np.median(times):.2f}" if times else "-"
    if cell is base:
        gain = p = harm = ""
    else:
        test = mcnemar_exact(base.success, cell.success)
        gain, p = f"{100 * test['difference']:+.0f}", f"{test['p_value']:.2g}"
        harm = f"{test['n10']}/{n}"
    name = cell.condition
    if cell.success_at_limit is not None:
        same = sum(a == b for a, b in zip(cell.success_at_limit, base.success, strict=True))
        name += f" (at the normal limit: {sum(cell.success_at_limit)}/{n}, same outcome {same}/{n})"
    return (
        f"| {cell.suite} | {name} | {k}/{n} | {lo:.0%}-{hi:.0%} | {gain} | {p} | {harm} | "
        f"{median} | {cell.wall_s:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", action="append", help="repeatable; default nominal, mixed")
    parser.add_argument(
        "--condition", action="append", choices=CONDITIONS, help="repeatable; default all"
    )
    parser.add_argument("--objects", default="heldout", choices=["train", "heldout"])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="cells run side by side")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    suites = args.suite or ["nominal", "mixed"]
    conditions = ["base alone", *[c for c in args.condition or CONDITIONS if c != "base alone"]]
    jobs = [(c, s, args.objects, args.episodes, args.seed) for s in suites for c in conditions]
    with ProcessPoolExecutor(args.workers) as pool:
        cells = list(pool.map(run_cell, *zip(*jobs, strict=True)))
    lines = []
    for suite in suites:
        of_suite = [c for c in cells if c.suite == suite]
        lines += [row(cell, of_suite[0]) for cell in of_suite]
    command = "python benchmarks/base_failure_modes.py"
    command += "".join(f" --suite {s}" for s in args.suite or [])
    command += "".join(f' --condition "{c}"' for c in args.condition or [])
    command += f" --objects {args.objects} --episodes {args.episodes} --seed {args.seed}"
    if args.out.resolve() != DEFAULT_OUT.resolve():
        command += f" --out {shown_path(args.out)}"
    table = "\n".join(
        [
            "# Where the `scripted` base fails, and what a correction with the shipped "
            "authority fixes",
            "",
            f"Produced by `{command}` on `{ENV_ID}` ({args.objects} objects); the conditions "
            "are described in the script's docstring. Every row is paired with the base "
            "alone on the same episodes: gain in points, exact McNemar p, harm = base alone "
            "succeeded and the condition failed; median time of first success over the "
            "episodes solved; wall clock of the cell in seconds.",
            "",
            "| suite | condition | successes | 95% CI (Wilson) | gain | McNemar p | harm | "
            "median first success (s) | s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            *lines,
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
