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
from residual_bench.seeding import episode_seed  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results"
OFFSETS = (-0.1, 0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
ROWS = (("poke", "poke"), ("slide", "slide"), ("drop", "drop"))


def frames_around_event(suite: str, kind: str, seed: int):
    """Frames at :data:`OFFSETS` around the first ``kind`` event of a ``suite`` episode."""
    env = gym.make("ResidualPickPlace-v0", suite=suite, render_mode="rgb_array")
    expert = ScriptedExpert()
    try:
        for index in range(20):
            _, info = env.reset(seed=episode_seed(seed, "filmstrip", suite, index))
            expert.reset()
            history = [(info["time"], env.render(), info)]
            event = None
            done = False
            while not done:
                _, _, terminated, truncated, info = env.step(expert.act(env))
                done = terminated or truncated
                history.append((info["time"], env.render(), info))
                for e in info["new_events"]:
                    if e["type"] == kind and event is None:
                        event = e
                if event is not None and info["time"] > event["time"] + OFFSETS[-1]:
                    break
            if event is None:
                continue
            picked = []
            for offset in OFFSETS:
                t = event["time"] + offset
                picked.append(min(history, key=lambda h, t=t: abs(h[0] - t)))
            return event, picked, info
    finally:
        env.close()
    raise RuntimeError(f"no {kind} event in 20 episodes of suite {suite!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "filmstrip.png")
    args = parser.parse_args()

    fig, axes = plt.subplots(len(ROWS), len(OFFSETS), figsize=(2.2 * len(OFFSETS), 2.5 * len(ROWS)))
    for row, (suite, kind) in enumerate(ROWS):
        event, picked, _ = frames_around_event(suite, kind, args.seed)
        for col, (offset, (_, frame, info)) in enumerate(zip(OFFSETS, picked, strict=True)):
            ax = axes[row, col]
            ax.imshow(frame)
            ax.set_xticks([])
            ax.set_yticks([])
            label = f"{offset:+.2f} s" if offset else "event"
            ax.set_title(f"{label}  [{info['phase']}]", fontsize=8)
            if col == 0:
                mode = event["params"].get("mode", "")
                ax.set_ylabel(
                    f"{kind} {mode}\n{event['trigger']}\nmag {event['magnitude']:.2f}", fontsize=8
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
