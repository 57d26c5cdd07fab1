"""``bench real-eval``: an operator-run evaluation session on the real Panda (or a dry run).

Wire it into the main parser with :func:`add_real_eval_parser`; bad input raises
``ValueError`` / ``FileNotFoundError``, which the main command line prints as one line.
"""

from __future__ import annotations

import argparse
import select
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

import residual_bench  # noqa: F401  (registers PandaReal-v0)
from residual_bench.policies.registry import get_base, make_controller
from residual_bench.real.plans import FAILURE_CATEGORIES, PLANS

if TYPE_CHECKING:
    from residual_bench.real.session import Trial


class HoldBase:
    """A base that never moves the arm (gripper open): for the first read-only run."""

    name = "hold"

    def reset(self, info: dict[str, Any]) -> None:
        """Nothing to reset."""

    def act(self, obs: dict, info: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        """Zero motion, gripper open."""
        return np.array([0, 0, 0, 0, 0, 0, 1.0]), {"base_fresh": True}


class TerminalOperator:
    """Prompts on the terminal; keys during a trial: ``p`` perturbed, ``s`` success, ``a``
    abort (Enter after the key when the terminal is line-buffered)."""

    name = "terminal"

    def message(self, text: str) -> None:
        print(text, flush=True)

    def _ask(self, prompt: str) -> str:
        answer = input(prompt).strip().lower()
        if answer == "a":
            # Deferred, as in cmd_real_eval: keeps `bench --help` fast.
            from residual_bench.real.session import OperatorAbort

            raise OperatorAbort("session aborted by the operator")
        return answer

    def confirm_scene(self, trial: Trial, reference: Path | None) -> None:
        where = f" (reference image: {reference})" if reference else " (this becomes the reference)"
        self._ask(
            f"Place the object at offset {trial.object_offset} m from the reference{where}; "
            "Enter when the scene is ready, a to abort: "
        )

    def cue_perturbation(self, trial: Trial) -> None:
        print(
            f"\a>>> PERTURB NOW ({trial.perturbation}) - press p then Enter when done", flush=True
        )

    def poll(self) -> str | None:
        ready, _, _ = select.select([sys.stdin], [], [], 0)
        if not ready:
            return None
        return sys.stdin.readline().strip().lower()[:1] or None

    def label(self, trial: Trial, reason: str | None) -> tuple[bool, str | None]:
        if self._ask("Success? [y/n]: ") == "y":
            return True, None
        choices = ", ".join(FAILURE_CATEGORIES)
        category = self._ask(f"Failure category ({choices}): ")
        return False, category if category in FAILURE_CATEGORIES else "other"

    def acknowledge_fault(self, reason: str) -> bool:
        answer = self._ask(f"The robot stopped ({reason}). Inspected and safe to recover? [y/n]: ")
        return answer == "y"


def _controller(base: str, env: Any) -> Any:
    if base == "hold":
        return HoldBase()
    entry = get_base(base)
    if entry.env_kwargs.get("obs_mode") in (None, "state"):
        raise ValueError(
            f"base {base!r} reads simulator state; on the robot use a base that only reads "
            "observations (hold, or a camera base such as bc)"
        )
    return make_controller(base, env)


def cmd_real_eval(args: argparse.Namespace) -> int:
    """Run ``bench real-eval``."""
    # Deferred: this module is imported for every `bench --help`, and the session (with the
    # episode recorder it brings) would add about half a second to it.
    from residual_bench.real.session import ScriptedOperator, make_plan, run_session

    if args.plan not in PLANS:
        raise ValueError(f"unknown plan {args.plan!r}; valid choices: {', '.join(PLANS)}")
    if not 0.0 <= args.alpha_scale <= 1.0:
        raise ValueError(f"--alpha-scale must be in [0, 1], got {args.alpha_scale}")
    residual = None
    if args.residual != "none":
        if not Path(args.residual).exists():
            raise FileNotFoundError(f"--residual: {args.residual!r} does not exist")
        # Deferred: the checkpoint loader brings torch, seconds on every `bench --help`.
        from residual_bench.residual.checkpoint import load_residual

        residual = load_residual(args.residual)
    plan = make_plan(args.plan, args.trials, args.seed, args.episode_seconds)
    kwargs: dict[str, Any] = {
        "obs_mode": "rgbd+seg",
        "image_size": 84,
        "control_hz": args.control_hz,
        "episode_seconds": args.episode_seconds,
        "render_mode": "rgb_array",
    }
    if args.dry_run:
        env = gym.make("PandaReal-v0", driver="twin", **kwargs)
        operator: Any = ScriptedOperator(oracle=env.unwrapped.driver.oracle)
    else:
        options = {"host": args.host}
        env = gym.make("PandaReal-v0", driver=args.driver, driver_options=options, **kwargs)
        operator = TerminalOperator()
    try:
        controller = _controller(args.base, env)
        records = run_session(
            env, controller, plan, operator, args.out, base=args.base, residual=residual,
            plan_name=args.plan, alpha_scale=args.alpha_scale,
        )  # fmt: skip
    finally:
        env.close()
    wins = sum(r.success for r in records)
    print(f"{wins}/{len(records)} successful; wrote {Path(args.out) / 'episodes.jsonl'}")
    return 0


def add_real_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``real-eval`` subcommand to the main parser's subparsers."""
    p = subparsers.add_parser("real-eval", help="operator-run evaluation on the real Panda")
    p.add_argument("--base", required=True, help="a base that reads observations, or hold")
    p.add_argument("--residual", default="none", help="trained residual directory, or none")
    p.add_argument("--trials", type=int, default=10, help="number of trials (10)")
    p.add_argument("--plan", default="nominal", help=f"trial plan: {' | '.join(PLANS)}")
    p.add_argument("--out", required=True, help="results directory")
    p.add_argument("--driver", default="franky", choices=["franky", "panda-py"])
    p.add_argument("--host", default="172.16.0.2", help="the robot's FCI address")
    p.add_argument("--alpha-scale", type=float, default=1.0, help="residual alpha factor (1)")
    p.add_argument("--control-hz", type=int, default=20, help="control rate (20)")
    p.add_argument("--episode-seconds", type=float, default=12.0, help="time limit (12)")
    p.add_argument("--seed", type=int, default=0, help="seed of the trial plan (0)")
    p.add_argument("--dry-run", action="store_true", help="twin + scripted operator")
    p.set_defaults(func=cmd_real_eval)
    return p
