"""What DAgger's shadow expert teaches the ``bc`` network, against what the demonstrations did.

Usage::

    python benchmarks/dagger_labels.py [--demos 10] [--rollouts 10] [--json OUT.json]
    python benchmarks/dagger_labels.py --run RUN_DIR --config CONFIG.yaml

The second form reads a finished ``finetune-dagger`` run instead: the action loss of the
shipped network and of every round's network on the run's demonstrations, on the visited-state
frames the rounds trained on, and on the held-out ones - whether a round fits its labels, and
whether that carries over to states it did not train on.

Two sets of states, both with training objects on the nominal suite:

- the demonstrations' own: episodes recorded exactly as ``bench base collect`` records them
  (the demonstration expert, DART noise on the executed translation, the same seeds as the
  shipped network's data), where a second, shadow expert labels every state as DAgger does;
- the network's: the shipped ``bc`` network deployed (5 Hz chunks behind its latency) on
  DAgger's round-0 episodes, the shadow expert labelling every state it visits.

Each frame's training target is a chunk of 4 actions. Three ways of building it are compared:
``demo`` (the demonstrations: the expert's next 4 actions along its own path), ``old`` (DAgger's
earlier labels: the expert's action at each of the next 4 *visited* states, where the network
moved the hand) and ``new`` (:func:`residual_bench.finetune.dagger_labels.expert_chunk`:
the 4 actions the expert would take from the frame's state if it were in control). Printed:
per-dimension mean |action| and the fraction saturated at +-1 (translation x, y, z;
gripper: fraction closed), the motion a chunk asks for, the mean squared difference between
the ways on the same states, and the network's own prediction against each. Rotation is left
out: the shipped network predicts translation and gripper only (``position_only``).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from residual_bench.episodes.loop import run_episode
from residual_bench.finetune.config import load_finetune_config
from residual_bench.finetune.dagger import (
    action_loss,
    kept_demonstrations,
    sample_episodes,
    validation_frames,
)
from residual_bench.finetune.dagger_labels import expert_chunk, sync_phase
from residual_bench.policies.bc.data import IMAGE_SIZE, collection_done, demonstration_expert
from residual_bench.policies.bc.model import bc_controller, load_checkpoint, shipped_checkpoint
from residual_bench.policies.bc.train import chunk_targets
from residual_bench.registration import ENV_ID
from residual_bench.seeding import episode_seed
from residual_bench.sim.panda import POSITION_SCALE

CHUNK = 4
DIMS = [0, 1, 2, 6]  # what the shipped network predicts
DIM_NAMES = ["x", "y", "z", "gripper"]


def demonstration_states(episodes: int, noise: float = 0.3) -> dict[str, np.ndarray]:
    """The demonstrations' chunks and the new shadow labels on the same states."""
    env = gym.make(ENV_ID, obs_mode="rgb+seg", image_size=IMAGE_SIZE, objects="train")
    demo, shadow = demonstration_expert(), demonstration_expert()
    rows: dict[str, list[Any]] = collections.defaultdict(list)
    try:
        for index in range(episodes):
            seed = episode_seed(0, "bc-demos", "train", index)  # as collect_demonstrations
            rng = np.random.default_rng(seed)

            def act(obs: dict, info: dict, rng: Any = rng, index: int = index) -> np.ndarray:
                action = demo.act(env)
                sync_phase(shadow, env)
                rows["new"].append(expert_chunk(shadow, env, CHUNK))
                rows["step"].append(action)
                rows["episode"].append(index)
                rows["phase"].append(demo.phase.value)
                executed = action.copy()
                executed[:3] += rng.normal(0.0, noise, 3)
                return np.clip(executed, -1.0, 1.0)

            def reset(info: dict) -> None:
                demo.reset()
                shadow.reset()

            run_episode(env, act, seed, reset=reset, stop=collection_done)
    finally:
        env.close()
    out = {k: np.asarray(v) for k, v in rows.items()}
    out["demo"] = chunk_targets(out["step"], out["episode"], CHUNK)
    return out


def network_states(episodes: int) -> dict[str, np.ndarray]:
    """The shipped network's states on DAgger's round-0 nominal episodes, labelled both ways,
    and the network's own chunk at each."""
    env = gym.make(
        ENV_ID, obs_mode="rgb+seg", image_size=IMAGE_SIZE, objects="train", suite="nominal"
    )
    controller = bc_controller(env)
    shadow = demonstration_expert()
    rows: dict[str, list[Any]] = collections.defaultdict(list)
    successes = 0
    try:
        for index in range(episodes):

            def act(obs: dict, info: dict, index: int = index) -> np.ndarray:
                sync_phase(shadow, env)
                chunk = expert_chunk(shadow, env, CHUNK)
                rows["new"].append(chunk)
                rows["step"].append(chunk[0])
                rows["episode"].append(index)
                rows["phase"].append(shadow.phase.value)
                sim = env.unwrapped
                tcp = sim.robot.tcp_pose()[0]
                rows["xy_error"].append(np.linalg.norm(sim.object_states[0].center[:2] - tcp[:2]))
                own = controller.policy.act(obs, sim.task.instruction).actions
                rows["network"].append(own)
                return controller.act(obs, info)[0]

            def reset(info: dict) -> None:
                controller.reset(info)
                shadow.reset()

            seed = episode_seed(0, "dagger", 0, index)  # round 0 of seed 0, nominal
            episode = run_episode(env, act, seed, reset=reset, stop=collection_done)
            successes += int(episode.info["first_success_time"] is not None)
    finally:
        env.close()
    out = {k: np.asarray(v) for k, v in rows.items()}
    out["old"] = chunk_targets(out["step"], out["episode"], CHUNK)
    out["successes"] = np.asarray(successes)
    return out


def statistics(chunks: np.ndarray) -> dict[str, Any]:
    """Label statistics of (N, 4, 7) chunks: every row counted."""
    rows = chunks.reshape(-1, 7)
    motion = np.linalg.norm(chunks[:, :, :3].sum(axis=1), axis=1) * POSITION_SCALE
    return {
        "mean_abs": {
            n: float(np.abs(rows[:, d]).mean()) for n, d in zip(DIM_NAMES, DIMS, strict=True)
        },
        "saturated": {
            n: float((np.abs(rows[:, d]) > 0.999).mean())
            for n, d in zip("xyz", DIMS[:3], strict=True)
        },
        "gripper_closed": float((rows[:, 6] < 0).mean()),
        "chunk_motion_cm_median": float(np.median(motion) * 100),
    }


def mse(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean squared difference per row of the chunk (predicted dimensions), and overall."""
    error = (a[..., DIMS] - b[..., DIMS]) ** 2
    out = {f"row{r}": float(error[:, r].mean()) for r in range(CHUNK)}
    out["all"] = float(error.mean())
    return out


def report(demos: dict[str, np.ndarray], network: dict[str, np.ndarray]) -> dict[str, Any]:
    """Everything printed, as one dict."""
    return {
        "demonstration_frames": len(demos["demo"]),
        "network_frames": len(network["new"]),
        "network_successes": int(network["successes"]),
        "network_episodes": int(network["episode"].max() + 1),
        "stats": {
            "demo chunks, demo states": statistics(demos["demo"]),
            "new labels, demo states": statistics(demos["new"]),
            "old labels, network states": statistics(network["old"]),
            "new labels, network states": statistics(network["new"]),
            "network's own chunks": statistics(network["network"]),
        },
        "mse": {
            "demo states: new labels vs demo chunks": mse(demos["new"], demos["demo"]),
            "demo states: row 0 max |difference|": float(
                np.abs(demos["new"][:, 0] - demos["step"]).max()
            ),
            "network states: old vs new labels": mse(network["old"], network["new"]),
            "network states: network vs old labels": mse(network["network"], network["old"]),
            "network states: network vs new labels": mse(network["network"], network["new"]),
        },
        "phases, network states": dict(collections.Counter(network["phase"].tolist())),
        "phases, demo states": dict(collections.Counter(demos["phase"].tolist())),
        "xy_error_to_target_median_m, network states": float(np.median(network["xy_error"])),
    }


def print_report(result: dict[str, Any]) -> None:
    print(
        f"frames: {result['demonstration_frames']} demonstration, {result['network_frames']} "
        f"network ({result['network_successes']}/{result['network_episodes']} episodes solved)"
    )
    print("\nlabel statistics (every chunk row)")
    print(f"{'':32s} " + " ".join(f"|{n}|".rjust(7) for n in DIM_NAMES)
          + "  sat x  sat y  sat z  closed  motion cm")  # fmt: skip
    for name, s in result["stats"].items():
        print(
            f"{name:32s} "
            + " ".join(f"{s['mean_abs'][n]:7.3f}" for n in DIM_NAMES)
            + " ".join(f"{s['saturated'][n]:6.2f}" for n in "xyz").rjust(21)
            + f" {s['gripper_closed']:7.2f} {s['chunk_motion_cm_median']:9.2f}"
        )
    print("\nmean squared difference (translation and gripper; rows 0-3 of the chunk, all)")
    for name, m in result["mse"].items():
        if isinstance(m, dict):
            print(f"{name:42s} " + " ".join(f"{m[k]:7.4f}" for k in m))
        else:
            print(f"{name:42s} {m:.2e}")
    print("\nshadow phases, network states:", result["phases, network states"])
    print("shadow phases, demo states:   ", result["phases, demo states"])
    print(
        "median xy distance hand-target, network states: "
        f"{result['xy_error_to_target_median_m, network states'] * 100:.1f} cm"
    )


def run_losses(run: Path, config: str) -> None:
    """Print every round's action loss on the run's three kinds of frames."""
    dagger = load_finetune_config(config).dagger
    chunk_len = int(load_checkpoint(shipped_checkpoint())["config"]["chunk_len"])
    kept = kept_demonstrations(run, dagger, chunk_len, progress=False)
    files = sorted(run.glob("round-*.npz"), key=lambda p: int(p.stem.split("-")[1]))
    held_out = dagger.validation_episodes
    visited = sample_episodes(files, sys.maxsize, np.random.default_rng(0), held_out)
    held = validation_frames(files, held_out)
    print("network: action loss on demonstrations, visited (trained on), visited (held out)")
    for net in [shipped_checkpoint(), *(run / f"round-{i}.pt" for i in range(len(files)))]:
        losses = [
            action_loss(net, d) if d is not None else float("nan")
            for d in (kept[0] if kept else None, visited, held)
        ]
        print(f"{net.name:12s} " + " ".join(f"{x:.3f}" for x in losses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demos", type=int, default=10, help="demonstration episodes")
    parser.add_argument("--rollouts", type=int, default=10, help="network episodes")
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--run", type=Path, help="a finished finetune-dagger run folder")
    parser.add_argument("--config", help="the run's fine-tuning config (with --run)")
    args = parser.parse_args()
    if args.run is not None:
        if args.config is None:
            parser.error("--run needs --config, the run's fine-tuning config")
        run_losses(args.run, args.config)
        return
    result = report(demonstration_states(args.demos), network_states(args.rollouts))
    print_report(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
