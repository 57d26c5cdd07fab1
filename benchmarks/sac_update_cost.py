"""What one SAC update of the bc network costs, with and without the critic's weight gradients.

    python benchmarks/sac_update_cost.py            # writes results/finetune/sac_update_cost.md

SB3's SAC backpropagates the actor loss through the whole critic, image encoder included, and
throws the critic's weight gradients away at its next update. Our SAC agents skip that
backward pass (``residual_bench.training.safeguards.skip_critic_weight_gradients_in_actor_step``;
tests/test_finetune_rl.py checks that the update is the same bit for bit). This script times
both on the ``finetune-rl`` model (the bc encoder in actor and critic, batch 64, one torch
thread), alternating the two in one process on the same replay buffer, and reports the median
time per update of each and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from stable_baselines3.common.monitor import Monitor

from residual_bench.finetune.config import load_finetune_config
from residual_bench.finetune.rl import _make_env, build_finetune_agent
from residual_bench.policies.bc.model import shipped_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=6, help="timed blocks of each variant")
    parser.add_argument("--updates", type=int, default=20, help="updates per timed block")
    parser.add_argument("--out", type=Path, default=ROOT / "results/finetune/sac_update_cost.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_finetune_config("finetune-rl").rl
    hp = {**config.hyperparams, "buffer_size": 2000, "learning_starts": 10_000}
    init = shipped_checkpoint()
    env = _make_env(init, "mixed", "train")
    model = build_finetune_agent("sac", Monitor(env), init, hp, config.initial_log_std, 0)
    model.learn(300)  # fills the replay buffer; no update before learning_starts
    batch = int(hp["batch_size"])
    times: dict[bool, list[float]] = {True: [], False: []}
    model.train(2, batch)  # warm-up, and installs the skip
    for _ in range(args.repeats):
        for skip in (False, True):
            model.skip_critic_gradients = skip
            start = time.perf_counter()
            model.train(args.updates, batch)
            times[skip].append((time.perf_counter() - start) / args.updates)
    env.close()
    plain, skipped = statistics.median(times[False]), statistics.median(times[True])
    table = "\n".join(
        [
            "# One SAC update of the bc network (finetune-rl)",
            "",
            f"Produced by `python benchmarks/sac_update_cost.py`: batch {batch}, one torch "
            f"thread, {args.repeats} alternating blocks of {args.updates} updates each, "
            "median time per update.",
            "",
            "| actor step | ms per update |",
            "|---|---:|",
            f"| SB3's (backward through the critic's weights) | {plain * 1000:.0f} |",
            f"| ours (the critic's weights skipped) | {skipped * 1000:.0f} |",
            "",
            f"Ours takes {skipped / plain:.2f}x the time of SB3's, {1 - skipped / plain:.0%} "
            "less, for the same update.",
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
