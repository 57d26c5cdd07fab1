"""Residual inference latency on one CPU core: features + network, batch 1.

    python benchmarks/residual_latency.py                      # ~1 min
    python benchmarks/residual_latency.py --residual runs/train/s0/residual

For each feature mode it times, per control step of real episodes, what a deployed residual
computes: the feature vector from the observation (for ``objects``: the mask centroids lifted
to 3D with depth) and one deterministic forward pass of the actor, pinned to one core with one
torch thread. Writes ``results/residual_latency.{json,md}`` (median and p99 in milliseconds).
Target: p99 under 2 ms for ``objects`` (the reference article claims under 10 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from residual_bench.residual.agents import build_agent
from residual_bench.residual.checkpoint import load_residual
from residual_bench.residual.config import load_config
from residual_bench.residual.factory import make_residual_env
from residual_bench.residual.features import object_features, privileged_features

RESULTS = Path(__file__).resolve().parent.parent / "results"
MODES = ("objects", "privileged", "proprio")


def time_mode(features: str, steps: int, residual: str | None) -> dict[str, float]:
    """Median and p99 (ms) of features + actor forward over ``steps`` control steps."""
    if residual is not None:
        agent = load_residual(residual)
        policy = agent.policy
        env = make_residual_env(
            agent.base, agent.features, tuple(agent.alpha), agent.residual_options()
        )
    else:
        config = load_config("sac")
        env = make_residual_env("scripted", features)
        policy = build_agent(config, env, seed=0).policy
    policy.set_training_mode(False)
    sim = env.unwrapped
    env.reset(seed=0)
    times = []
    for step in range(steps):
        raw_obs, _ = env.last_raw_observation
        start = time.perf_counter()
        parts = [raw_obs["proprio"], env.base_action]
        if features == "objects":
            parts.append(object_features(raw_obs, sim.camera.pose))
        elif features == "privileged":
            parts.append(privileged_features(sim))
        vector = np.concatenate(parts).astype(np.float32)
        with torch.no_grad():
            action = policy._predict(torch.as_tensor(vector)[None], deterministic=True)
        times.append(time.perf_counter() - start)
        _, _, terminated, truncated, _ = env.step(action.numpy()[0])
        if terminated or truncated:
            env.reset(seed=step)
    env.close()
    ms = np.asarray(times[10:]) * 1000  # the first calls warm caches up
    return {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--residual", default=None, help="a trained residual (its own mode)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    torch.set_num_threads(1)
    if args.residual is not None:
        modes = {load_residual(args.residual).features: args.residual}
    else:
        modes = dict.fromkeys(MODES)
    result = {mode: time_mode(mode, args.steps, path) for mode, path in modes.items()}
    (args.out / "residual_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    what = f"the residual {args.residual}" if args.residual else "a zero-initialised SAC actor"
    lines = [
        "# Residual inference latency",
        "",
        f"Produced by `python benchmarks/residual_latency.py --steps {args.steps}`: features "
        f"+ one deterministic actor forward pass ({what}, 64 x 64 MLP), batch 1, one CPU core, "
        "one torch thread, timed per control step of seeded episodes of the `scripted` base.",
        "",
        "| features | median | p99 |",
        "|---|---:|---:|",
        *[f"| {m} | {r['median_ms']:.3f} ms | {r['p99_ms']:.3f} ms |" for m, r in result.items()],
        "",
    ]
    (args.out / "residual_latency.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
