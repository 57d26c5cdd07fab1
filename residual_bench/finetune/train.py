"""``bench train`` for a fine-tuning baseline: one entry point over both methods."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from residual_bench.finetune.config import check_applies, load_finetune_config
from residual_bench.finetune.dagger import finetune_dagger
from residual_bench.finetune.rl import finetune_rl
from residual_bench.run_directory import run_lock


def train_finetune(
    base: str,
    name_or_path: str | Path,
    out: str | Path,
    seed: int = 0,
    progress: bool = True,
    steps: int | None = None,
    suite: str | None = None,
    resume: bool = False,
) -> Path:
    """Run a fine-tuning baseline on ``base``; returns the fine-tuned checkpoint.

    ``base`` is ``bc`` (the shipped weights) or ``bc:PATH``. The learning curve goes to
    ``out/progress.csv`` (environment steps, success on fixed held-out episodes); re-running
    with the same ``out`` resumes (RL fine-tuning only with ``resume``: its checkpoint is
    unpickled). ``steps`` and ``suite`` override an ``rl`` config's
    budget and training suite; for DAgger ``steps`` overrides its budget (``train.steps``,
    or its rounds) and the suites are the config's. One process at a time may train into
    ``out`` (:func:`~residual_bench.run_directory.run_lock`).
    """
    config = load_finetune_config(name_or_path)
    check_applies(config, base)
    init = base.split(":", 1)[1] if ":" in base else None
    if config.method != "rl" and suite is not None:
        raise ValueError(
            f"{config.name} rolls the base out under the suites its config lists "
            f"(dagger.suites); --suite applies to residuals and RL fine-tuning only"
        )
    train = config.train
    if steps is not None:
        train = dataclasses.replace(train, steps=steps)
    with run_lock(out):
        if config.method == "rl":
            if suite:
                train = dataclasses.replace(train, suite=suite)
            return finetune_rl(
                out, config.rl, train, init=init, seed=seed, progress=progress, resume=resume
            )
        return finetune_dagger(out, config.dagger, train, init=init, seed=seed, progress=progress)
