"""Environment steps per second of residual training, configurations side by side in one run.

    python benchmarks/train_speed.py --steps 6000
    python benchmarks/train_speed.py --variants sac:1 sac:2 tqc:2 crossq:2 --steps 6000

Each variant (``config:n_envs``) trains the ``scripted`` base with its config's features for
``--steps`` environment steps from seed 0, with no learning-curve evaluation and no logs, one
after another in this process, so the numbers share the machine's state. The agents start
learning after ``--learning-starts`` steps (the warm-up and replay start of every variant are
set to it, so the timed part is mostly learning, as in the bulk of a 300k-step run). Writes
``results/train_speed.md`` / ``.json``: wall-clock, steps per second and the projected time
of 300k steps for each variant, and the ratio to the first.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

from residual_bench.residual.config import load_config
from residual_bench.residual.train import train_residual

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 300_000


def variant_config(name: str, learning_starts: int):
    """The shipped config with its replay start and warm-up moved to ``learning_starts``."""
    config = load_config(name)
    hyperparams = dict(config.hyperparams)
    if "learning_starts" in hyperparams or config.algo != "ppo":
        hyperparams["learning_starts"] = learning_starts
    safeguards = config.safeguards
    changes = {
        key: min(getattr(safeguards, key), learning_starts)
        for key in ("warmup_steps", "critic_only_steps", "exploration_ramp_steps")
        if hasattr(safeguards, key)
    }
    return dataclasses.replace(
        config, hyperparams=hyperparams, safeguards=dataclasses.replace(safeguards, **changes)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["sac:1", "sac:2"])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--base", default="scripted")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "train_speed")
    args = parser.parse_args()
    rows = []
    for variant in args.variants:
        name, _, envs = variant.partition(":")
        n_envs = int(envs or 1)
        config = variant_config(name, args.learning_starts)
        with tempfile.TemporaryDirectory() as run:
            began = time.perf_counter()
            train_residual(
                args.base, config, Path(run) / "run", steps=args.steps, seed=0, eval_every=0,
                progress=False, tensorboard=False, n_envs=n_envs,
            )  # fmt: skip
            wall = time.perf_counter() - began
        rate = args.steps / wall
        rows.append({"variant": variant, "config": name, "n_envs": n_envs,
                     "features": config.features, "steps": args.steps, "wall_s": round(wall, 1),
                     "steps_per_s": round(rate, 1),
                     "projected_300k_min": round(BUDGET / rate / 60, 1)})  # fmt: skip
        print(rows[-1], flush=True)
    for row in rows:
        row["speedup"] = round(row["steps_per_s"] / rows[0]["steps_per_s"], 2)
    command = "python benchmarks/train_speed.py --variants " + " ".join(args.variants)
    command += f" --steps {args.steps} --learning-starts {args.learning_starts}"
    result = {"command": command, "cpus": os.cpu_count(), "base": args.base, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"# Residual training speed ({os.cpu_count()} CPUs, base `{args.base}`)",
        "",
        f"`{command}`: each variant trains {args.steps} steps from seed 0, learning from step "
        f"{args.learning_starts}, no evaluation, one after another in one process.",
        "",
        "| variant | features | envs | wall (s) | steps/s | 300k steps (min) | vs first |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {r['config']} | {r['features']} | {r['n_envs']} | {r['wall_s']} | "
            f"{r['steps_per_s']} | {r['projected_300k_min']} | {r['speedup']:.2f} |"
            for r in rows
        ],
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
