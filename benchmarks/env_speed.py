"""Environment throughput, side by side with panda-gym, in one run on this machine.

Measures env steps per wall-clock second under uniformly random actions (resetting when an
episode ends, resets included in the time), for:

- ``ResidualPickPlace-v1`` in ``state`` mode (default scene: 1-3 objects) and with a single
  object (panda-gym's scene has one),
- ``ResidualPickPlace-v1`` in ``rgb+seg`` mode at 84 x 84,
- panda-gym's ``PandaPickAndPlace-v3`` without rendering, and rendering 84 x 84 every step,
- the other task families in ``state`` mode (``ResidualStack-v0``, ``ResidualPush-v0``,
  ``ResidualInsert-v0``) beside panda-gym's nearest task (``PandaStack-v3``,
  ``PandaPush-v3``; insertion has none, so pick-and-place stands in), each also as a ratio to
  ``ResidualPickPlace-v1``'s state mode measured in the same rounds.

Rounds alternate between the environments so that load on the machine hits all of them
alike; the median over rounds is reported. Writes ``results/env_speed.{json,md}``.

    pip install -e ".[bench]"
    python benchmarks/env_speed.py            # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import gymnasium as gym

import residual_bench  # noqa: F401  (registers the environments)
from residual_bench.registration import ENV_ID

RESULTS = Path(__file__).resolve().parent.parent / "results"


def _ours(**kwargs):
    return gym.make(ENV_ID, **kwargs)


def _panda_gym(render: bool, env_id: str = "PandaPickAndPlace-v3"):
    import panda_gym  # noqa: F401

    if render:
        return gym.make(
            env_id,
            render_mode="rgb_array",
            render_width=84,
            render_height=84,
            renderer="Tiny",
        )
    return gym.make(env_id)


CASES = {
    "residual_bench state (1-3 objects)": (lambda: _ours(), False),
    "residual_bench state (1 object)": (
        lambda: _ours(scene_overrides={"task": {"n_objects": [1, 1]}}),
        False,
    ),
    "residual_bench rgb+seg 84x84": (lambda: _ours(obs_mode="rgb+seg", image_size=84), False),
    "panda-gym PandaPickAndPlace-v3 state": (lambda: _panda_gym(False), False),
    "panda-gym PandaPickAndPlace-v3 render 84x84": (lambda: _panda_gym(True), True),
    "residual_bench ResidualStack-v0 state": (lambda: gym.make("ResidualStack-v0"), False),
    "residual_bench ResidualPush-v0 state": (lambda: gym.make("ResidualPush-v0"), False),
    "residual_bench ResidualInsert-v0 state": (lambda: gym.make("ResidualInsert-v0"), False),
    "panda-gym PandaStack-v3 state": (lambda: _panda_gym(False, "PandaStack-v3"), False),
    "panda-gym PandaPush-v3 state": (lambda: _panda_gym(False, "PandaPush-v3"), False),
}
TASK_CASES = {
    "ResidualStack-v0": "panda-gym PandaStack-v3 state",
    "ResidualPush-v0": "panda-gym PandaPush-v3 state",
    "ResidualInsert-v0": "panda-gym PandaPickAndPlace-v3 state",
}
"""Each task family beyond pick-and-place -> panda-gym's nearest task."""
TASK_RATIO_TARGET = 0.8
"""A task's state-mode steps/s must be at least this fraction of pick-and-place's."""


def steps_per_second(env, n_steps: int, render_each_step: bool, seed: int) -> float:
    """Random-action steps per second, resets included."""
    env.action_space.seed(seed)
    env.reset(seed=seed)
    start = time.perf_counter()
    for _ in range(n_steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if render_each_step:
            env.render()
        if terminated or truncated:
            env.reset()
    return n_steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--state-steps", type=int, default=3000)
    parser.add_argument("--image-steps", type=int, default=600)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    envs = {name: make() for name, (make, _) in CASES.items()}
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for round_index in range(args.rounds):
        order = list(CASES) if round_index % 2 == 0 else list(reversed(CASES))
        for name in order:
            image = "rgb" in name or "render" in name
            n = args.image_steps if image else args.state_steps
            sps = steps_per_second(envs[name], n, CASES[name][1], seed=round_index)
            samples[name].append(sps)
            print(f"round {round_index + 1}/{args.rounds}  {name:<46} {sps:8.1f} steps/s")
    for env in envs.values():
        env.close()

    median = {name: statistics.median(v) for name, v in samples.items()}
    pg_state = median["panda-gym PandaPickAndPlace-v3 state"]
    pg_render = median["panda-gym PandaPickAndPlace-v3 render 84x84"]
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "protocol": {
            "rounds": args.rounds,
            "state_steps": args.state_steps,
            "image_steps": args.image_steps,
            "actions": "uniform random",
            "statistic": "median",
        },
        "steps_per_second": median,
        "samples": samples,
        "ratios": {
            "state (1-3 objects) / panda-gym state": median["residual_bench state (1-3 objects)"]
            / pg_state,
            "state (1 object) / panda-gym state": median["residual_bench state (1 object)"]
            / pg_state,
            "rgb+seg 84 / panda-gym render 84": median["residual_bench rgb+seg 84x84"] / pg_render,
        },
        "task_ratios": {
            task: {
                "vs ResidualPickPlace-v1 state": median[f"residual_bench {task} state"]
                / median["residual_bench state (1-3 objects)"],
                f"vs {panda}": median[f"residual_bench {task} state"] / median[panda],
            }
            for task, panda in TASK_CASES.items()
        },
        "targets": {
            "state ratio": 2.0,
            "rgb+seg 84 steps/s": 250.0,
            "task state / ResidualPickPlace-v1 state": TASK_RATIO_TARGET,
        },
        "notes": "residual_bench: 240 Hz physics, 20 Hz control (12 substeps, 50 ms per step); "
        "panda-gym: 500 Hz physics, 20 substeps (40 ms per step).",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "env_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Environment throughput",
        "",
        "Produced by `python benchmarks/env_speed.py` "
        f"({os.cpu_count()} CPU cores, {platform.python_version()}). Uniform random actions, "
        f"resets included, median of {args.rounds} alternating rounds.",
        "",
        "| environment | steps/s | simulated s per wall s |",
        "|---|---:|---:|",
    ]
    sim_dt = {True: 0.05, False: 0.04}
    for name, sps in median.items():
        lines.append(f"| {name} | {sps:.0f} | {sps * sim_dt[name.startswith('residual')]:.0f} |")
    lines += ["", "| ratio | value | target |", "|---|---:|---:|"]
    r = result["ratios"]
    lines.append(
        f"| state (1-3 objects) vs panda-gym state | "
        f"{r['state (1-3 objects) / panda-gym state']:.2f}x | 2x |"
    )
    lines.append(
        f"| state (1 object) vs panda-gym state | "
        f"{r['state (1 object) / panda-gym state']:.2f}x | 2x |"
    )
    lines.append(
        f"| rgb+seg 84x84 vs panda-gym rendering 84x84 | "
        f"{r['rgb+seg 84 / panda-gym render 84']:.1f}x | 250 steps/s |"
    )
    lines += [
        "",
        "| task (state mode) | vs ResidualPickPlace-v1 state | target | vs panda-gym's nearest |",
        "|---|---:|---:|---:|",
    ]
    for task, panda in TASK_CASES.items():
        ratios = result["task_ratios"][task]
        lines.append(
            f"| {task} | {ratios['vs ResidualPickPlace-v1 state']:.2f}x | "
            f">= {TASK_RATIO_TARGET:.1f}x | {ratios[f'vs {panda}']:.2f}x "
            f"({panda.removeprefix('panda-gym ').removesuffix(' state')}) |"
        )
    lines += ["", result["notes"], ""]
    (args.out / "env_speed.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
