"""A filmstrip of one poke, one slide and one drop, frames around the event.

    python benchmarks/filmstrip.py          # writes results/filmstrip.png, ~30 s

Each row is the first seeded episode of a suite in which the event fires, run with the
closed-loop scripted expert; columns are simulated times relative to the event.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import residual_bench  # noqa: E402, F401
from residual_bench.policies.expert import ScriptedExpert  # noqa: E402
from residual_bench.registration import ENV_ID
from residual_bench.seeding import episode_seed  # noqa: E402
from residual_bench.sim.camera import CameraPose  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results"
OFFSETS = (-0.1, 0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
ROWS = (("poke", "poke"), ("slide", "slide"), ("drop", "drop"))


def _run(env, seed: int, render_at: dict[float, None] | None, camera=None):
    """One expert episode; returns its first events and, if asked, frames at given times."""
    expert = ScriptedExpert()
    _, info = env.reset(seed=seed)
    expert.reset()
    events, frames = [], {}
    done = False
    while not done:
        if render_at is not None:
            for t in render_at:
                if t not in frames and abs(info["time"] - t) < 0.026:
                    frames[t] = (camera.render(rgb=True).rgb, info["phase"])
        _, _, terminated, truncated, info = env.step(expert.act(env))
        events.extend(info["new_events"])
        done = terminated or truncated
    return events, frames, env.unwrapped.object_states


def frames_around_event(suite: str, kind: str, seed: int, size: int):
    """Frames at :data:`OFFSETS` around the first ``kind`` event of a ``suite`` episode.

    The episode is run twice with the same seed (it replays exactly): once to find the
    event, once to film it from a camera placed over the spot where it happens.
    """
    env = gym.make(ENV_ID, suite=suite)
    sim = env.unwrapped
    try:
        for index in range(20):
            ep_seed = episode_seed(seed, "filmstrip", suite, index)
            # First pass: when and where is the event?
            expert = ScriptedExpert()
            _, info = env.reset(seed=ep_seed)
            expert.reset()
            event, where = None, None
            while event is None and info["time"] < sim.max_steps * sim.dt - 1e-9:
                _, _, _, _, info = env.step(expert.act(env))
                for e in info["new_events"]:
                    if e["type"] == kind:
                        event, where = e, sim.object_states[0].center.copy()
            if event is None:
                continue
            camera = sim.camera.resized(size, size)
            look_at = (float(where[0]), float(where[1]), 0.02)
            eye = (look_at[0] + 0.32, look_at[1], 0.42)
            camera.set_pose(CameraPose(eye, look_at, fov_deg=45.0))
            times = {round(event["time"] + o, 6): None for o in OFFSETS}
            _, frames, _ = _run(env, ep_seed, times, camera)
            picked = [frames.get(t, (None, "-")) for t in times]
            return event, picked, sim.task.target.description
    finally:
        env.close()
    raise RuntimeError(f"no {kind} event in 20 episodes of suite {suite!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=160, help="frame size in pixels")
    parser.add_argument("--out", type=Path, default=RESULTS / "filmstrip.png")
    args = parser.parse_args()

    fig, axes = plt.subplots(len(ROWS), len(OFFSETS), figsize=(2.2 * len(OFFSETS), 2.5 * len(ROWS)))
    for row, (suite, kind) in enumerate(ROWS):
        event, picked, target = frames_around_event(suite, kind, args.seed, args.size)
        for col, (offset, (frame, phase)) in enumerate(zip(OFFSETS, picked, strict=True)):
            ax = axes[row, col]
            if frame is not None:
                ax.imshow(frame)
            else:
                ax.text(
                    0.5,
                    0.5,
                    "before the\nepisode began",
                    ha="center",
                    va="center",
                    fontsize=8,
                    transform=ax.transAxes,
                )
            ax.set_xticks([])
            ax.set_yticks([])
            label = f"{offset:+.2f} s" if offset else "event (before it acts)"
            ax.set_title(f"{label}  [{phase}]", fontsize=8)
            if col == 0:
                mode = event["params"].get("mode", "")
                ax.set_ylabel(
                    f"{kind} {mode}\n{event['trigger']}\nmagnitude {event['magnitude']:.2f}"
                    f"\ntarget: {target}",
                    fontsize=8,
                )
    fig.suptitle(
        "Perturbation events, scripted expert (frames at simulated times around the event)"
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
