"""What one SAC update of the bc network costs: SB3's actor step, ours, the BC term, the head alone.

    python benchmarks/sac_update_cost.py            # writes results/finetune/sac_update_cost.md

SB3's SAC backpropagates the actor loss through the whole critic, image encoder included, and
throws the critic's weight gradients away at its next update. Our SAC agents skip that
backward pass (``residual_bench.training.safeguards.skip_critic_weight_gradients_in_actor_step``;
tests/test_finetune_rl.py checks that the update is the same bit for bit). This script times
updates of four models side by side in one process (batch 64, one torch thread, alternating
blocks, each on its own replay buffer of the same episodes): ``finetune-rl`` with SB3's actor
step and with ours, ``finetune-rl-bc`` (ours plus the pull towards the base) and
``finetune-rl-bc-head`` (the same on the frozen encoder's features), and reports the median
time per update of each. The head alone moves the encoder out of the update, into the env:
one encoder pass per decision, timed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.monitor import Monitor

from residual_bench.finetune.config import load_finetune_config
from residual_bench.finetune.frozen_features import FrozenEncoderFeatures
from residual_bench.finetune.rl import _make_env, build_finetune_agent
from residual_bench.policies.bc.model import load_checkpoint, shipped_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def fine_tuning_model(name: str, seed: int = 0) -> tuple[Any, Any]:
    """The SAC model of fine-tuning config ``name`` with a filled replay buffer, and its env;
    the BC term acts from the first update (no critic-only phase)."""
    config = load_finetune_config(name).rl
    hp = {**config.hyperparams, "buffer_size": 2000, "learning_starts": 10_000}
    init = shipped_checkpoint()
    env = _make_env(init, "mixed", "train")
    if config.frozen_features:
        env = FrozenEncoderFeatures(env, load_checkpoint(init))
    model = build_finetune_agent("sac", Monitor(env), init, hp, config.initial_log_std, seed,
                                 bc_weight=config.bc_weight,
                                 frozen_features=config.frozen_features)  # fmt: skip
    model.learn(300)  # fills the replay buffer; no update before learning_starts
    return model, env


def encoder_pass(env: FrozenEncoderFeatures, repeats: int = 50) -> float:
    """Median seconds of the frozen encoder on one observation, as the wrapper runs it."""
    observation = env.env.reset(seed=0)[0]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        env.observation(observation)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=6, help="timed blocks of each variant")
    parser.add_argument("--updates", type=int, default=20, help="updates per timed block")
    parser.add_argument("--out", type=Path, default=ROOT / "results/finetune/sac_update_cost.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    plain, plain_env = fine_tuning_model("finetune-rl")
    regularised, regularised_env = fine_tuning_model("finetune-rl-bc")
    head, head_env = fine_tuning_model("finetune-rl-bc-head")
    batch = int(load_finetune_config("finetune-rl").rl.hyperparams["batch_size"])
    for model in (plain, regularised, head):
        model.train(2, batch)  # warm-up, and installs the skip
    variants = {
        "`finetune-rl`, SB3's actor step (backward through the critic's weights)": (plain, False),
        "`finetune-rl`, ours (the critic's weights skipped)": (plain, True),
        "`finetune-rl-bc`: ours and the pull towards the base": (regularised, True),
        "`finetune-rl-bc-head`: the same on the frozen encoder's features": (head, True),
    }
    times: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(args.repeats):
        for label, (model, skip) in variants.items():
            model.skip_critic_gradients = skip
            start = time.perf_counter()
            model.train(args.updates, batch)
            times[label].append((time.perf_counter() - start) / args.updates)
    encoder = encoder_pass(head_env)
    for env in (plain_env, regularised_env, head_env):
        env.close()
    median = {label: statistics.median(values) for label, values in times.items()}
    labels = list(variants)
    sb3, ours, full, frozen = (median[label] for label in labels)
    rows = [f"| {label} | {median[label] * 1000:.1f} |" for label in labels]
    table = "\n".join(
        [
            "# One SAC update of the bc network (finetune-rl, finetune-rl-bc, finetune-rl-bc-head)",
            "",
            f"Produced by `python benchmarks/sac_update_cost.py`: batch {batch}, one torch "
            f"thread, {args.repeats} alternating blocks of {args.updates} updates of each "
            "model, median time per update.",
            "",
            "| update | ms per update |",
            "|---|---:|",
            *rows,
            "",
            f"Our actor step takes {ours / sb3:.2f}x the time of SB3's, {1 - ours / sb3:.0%} "
            "less, for the same update. The pull towards the base costs "
            f"{full / ours:.2f}x our plain update. On the frozen encoder's features the "
            f"regularised update takes {frozen * 1000:.1f} ms, 1/{full / frozen:.0f} of the "
            f"full network's; the encoder then runs once per decision in the env, "
            f"{encoder * 1000:.1f} ms (median of 50 passes on one observation), where the full "
            "network's update runs it on whole batches.",
            "",
            f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} over the "
            "last minute of the run (other processes share the cores when it is above 1).",
            "",
        ]
    )
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
