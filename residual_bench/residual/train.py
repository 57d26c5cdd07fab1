"""Training a residual on a frozen base (``bench train``).

One readable function, :func:`train_residual`: build the residual env on training objects with
the config's suite of perturbations, build the SB3 agent with its safeguards, and learn in
chunks of ``checkpoint_every`` steps. After each chunk the model (and the replay buffer of
off-policy agents) is written atomically under ``out/checkpoint/``; every ``eval_every`` steps
the deterministic residual is evaluated on held-out objects and a row is appended to
``out/progress.csv`` (the learning curve). An interrupted run started again with the same
``out`` and ``resume=True`` continues from the last checkpoint: no step is lost beyond the
unfinished chunk, none is counted twice. The finished residual is ``out/residual/`` (see
``checkpoint``): data only.

The checkpoint of an unfinished run is stable-baselines3's own format (``model.zip`` and
``replay_buffer.pkl``), which holds pickles: a resume opens them only when asked to and only
when this user wrote every file of the checkpoint
(:func:`~residual_bench.run_directory.checkpoint_to_resume`). Never resume a run directory
received from elsewhere.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from tqdm import tqdm

from residual_bench.perturb.suite import load_suite, suite_names
from residual_bench.policies.registry import get_base
from residual_bench.provenance import package_versions
from residual_bench.registration import ENV_ID
from residual_bench.residual.agents import build_agent, load_agent
from residual_bench.residual.checkpoint import save_residual
from residual_bench.residual.config import ResidualConfig, load_config
from residual_bench.residual.env import ResidualEnv
from residual_bench.residual.factory import make_residual_env
from residual_bench.residual.features import ObjectFeatureNoise
from residual_bench.run_directory import (
    checkpoint_to_resume,
    finish_interrupted_write,
    run_lock,
    save_checkpoint,
)
from residual_bench.training.learning_curve import (
    append_progress,
    heldout_success,
    last_evaluated,
    training_clock,
)


class _ScheduleAndProgress(BaseCallback):
    """Ramps the residual scale and advances the progress bar."""

    def __init__(self, env: ResidualEnv, scale_ramp_steps: int, bar: tqdm) -> None:
        super().__init__()
        self.env, self.scale_ramp_steps, self.bar = env, scale_ramp_steps, bar

    def _on_step(self) -> bool:
        if self.scale_ramp_steps > 0:
            self.env.scale = min(self.num_timesteps / self.scale_ramp_steps, 1.0)
        self.bar.update(1)
        return True


def train_residual(
    base: str,
    residual: str | ResidualConfig = "sac",
    out: str | Path = "runs/train",
    *,
    steps: int | None = None,
    seed: int = 0,
    suite: str | None = None,
    features: str | None = None,
    eval_every: int | None = None,
    eval_episodes: int | None = None,
    progress: bool = True,
    tensorboard: bool = True,
    threads: int = 1,
    resume: bool = False,
    task: str = ENV_ID,
) -> Path:
    """Train a residual for ``base`` on task ``task`` (a registered id); returns the
    directory of the finished residual.

    Arguments left at None take the config's value. Re-running with the same ``out`` and
    ``resume`` continues from ``out/checkpoint`` (see
    :func:`~residual_bench.run_directory.checkpoint_to_resume`); a finished ``out/residual``
    is never overwritten. ``threads``
    caps torch's threads: small networks gain nothing from more, and parallel runs then do
    not fight over cores.

    Raises:
        ValueError: unknown base, residual config, suite or features.
        FileExistsError: ``out/residual`` already exists, or ``out`` holds an unfinished run
            and ``resume`` is False.
        PermissionError: the checkpoint to resume is not this user's own.
        FileNotFoundError: ``out`` has a learning curve but no checkpoint to continue it from.
        RunInUseError: another process is training into ``out``.
    """
    get_base(base)
    torch.set_num_threads(threads)
    config = residual if isinstance(residual, ResidualConfig) else load_config(residual)
    if config.base is not None and base != config.base:
        raise ValueError(
            f"{config.name} is made for the {config.base!r} base, not {base!r}; "
            f"run it with --base {config.base}"
        )
    if features is not None:  # a copy: the caller's config is left as it is
        config = dataclasses.replace(config, features=features)
    train = config.train
    steps = int(steps if steps is not None else train.steps)
    suite = suite or train.suite
    eval_every = int(eval_every if eval_every is not None else train.eval_every)
    eval_episodes = int(eval_episodes if eval_episodes is not None else train.eval_episodes)
    chunk = max(1, min(int(train.checkpoint_every), eval_every or steps))
    out = Path(out)
    if load_suite(suite).split != "train":
        raise ValueError(
            f"suite {suite!r} is held out: residuals are evaluated on it, never trained on it; "
            f"train on one of {', '.join(suite_names('train'))}"
        )
    final = out / "residual"
    if final.exists():
        raise FileExistsError(f"{final} already exists: that residual is trained")
    with run_lock(out):
        safeguards = config.safeguards
        noise = safeguards.feature_noise
        options = {
            "magnitude_penalty": safeguards.magnitude_penalty,
            "rate_penalty": safeguards.rate_penalty,
            "feature_noise": ObjectFeatureNoise(**dataclasses.asdict(noise)) if noise else None,
            "seed": seed,
        }
        alpha = tuple(config.alpha)
        env = make_residual_env(
            base, config.features, alpha, options, task, suite=suite, objects="train"
        )
        eval_env = make_residual_env(
            base, config.features, alpha, None, task, suite=suite, objects="heldout"
        )
        checkpoint = out / "checkpoint"
        log = str(out / "tensorboard") if tensorboard else None
        finish_interrupted_write(checkpoint)
        if checkpoint_to_resume(checkpoint, resume):
            model = load_agent(
                config.algo, str(checkpoint / "model.zip"), env=Monitor(env), gated=config.gated
            )
            if (checkpoint / "replay_buffer.pkl").exists():
                model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
            model.tensorboard_log = log
            for key in ("warmup_steps", "exploration_ramp_steps", "critic_only_steps"):
                if hasattr(model, key):
                    setattr(model, key, int(getattr(safeguards, key)))
            for key in ("output_decay", "actor_penalty"):
                if hasattr(model, key):
                    setattr(model, key, float(getattr(safeguards, key)))
        elif last_evaluated(out / "progress.csv") > 0:
            # Starting at step 0 would silently restart a run whose curve says otherwise.
            raise FileNotFoundError(
                f"{checkpoint}: missing, but {out} has a learning curve to continue; "
                "choose another --out to train afresh"
            )
        else:
            model = build_agent(config, Monitor(env), seed=seed, tensorboard_log=log)
        start = int(model.num_timesteps)
        evaluated = last_evaluated(out / "progress.csv")
        next_eval = (evaluated // eval_every + 1) * eval_every if eval_every else 0
        label = f"{base}+{config.name}"
        bar = tqdm(total=steps, initial=start, unit="step", desc=label, disable=not progress)
        callback = _ScheduleAndProgress(env, int(safeguards.scale_ramp_steps), bar)
        began = training_clock(out / "progress.csv")
        try:
            while model.num_timesteps < steps:
                n = min(chunk, steps - model.num_timesteps)
                model.learn(n, callback=callback, reset_num_timesteps=False, tb_log_name="residual")
                t = int(model.num_timesteps)
                save_checkpoint(model, checkpoint, {"timesteps": t})
                if eval_every and (t >= next_eval or t >= steps):
                    next_eval = (t // eval_every + 1) * eval_every
                    rate = heldout_success(eval_env, _deterministic(model), suite, eval_episodes)
                    append_progress(out / "progress.csv", t, rate, eval_episodes, began)
                    bar.set_postfix(success=f"{rate:.0%}")
        finally:
            bar.close()
            env.close()
            eval_env.close()
        metadata = {
            "algo": config.algo,
            "name": config.name,
            "base": base,
            "base_description": get_base(base).description,
            "features": config.features,
            "alpha": list(config.alpha),
            "alpha_per_dimension": [float(a) for a in env.alpha],  # after the base's own rules
            "config": config.to_dict(),
            "train_seed": seed,
            "train_steps": int(model.num_timesteps),
            "train_suite": suite,
            "versions": package_versions(),
        }
        return save_residual(model, final, metadata)


def _deterministic(model: Any) -> Any:
    """The trained policy's deterministic action, as evaluation runs it."""
    return lambda obs, info: model.predict(obs, deterministic=True)[0]
