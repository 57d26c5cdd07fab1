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

``train.n_envs`` envs collect experience side by side (see ``training_envs``), seeded so
that a run repeats exactly for a given seed and env count.

The checkpoint of an unfinished run is stable-baselines3's own format (``model.zip`` and
``replay_buffer.pkl``), which holds pickles: a resume opens them only when asked to and only
when this user wrote every file of the checkpoint
(:func:`~residual_bench.run_directory.checkpoint_to_resume`). Never resume a run directory
received from elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from functools import partial
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecEnv
from tqdm import tqdm

from residual_bench.perturb.suite import load_suite, suite_applies, suite_names
from residual_bench.policies.registry import get_base
from residual_bench.provenance import package_versions
from residual_bench.registration import ENV_ID, same_task
from residual_bench.residual.agents import build_agent, configured_actor_learning_rate, load_agent
from residual_bench.residual.algorithms import ALGORITHMS
from residual_bench.residual.checkpoint import save_residual
from residual_bench.residual.config import ResidualConfig, load_config
from residual_bench.residual.env import ResidualEnv
from residual_bench.residual.factory import make_residual_env
from residual_bench.residual.features import ObjectFeatureNoise
from residual_bench.residual.oracle import seed_replay_buffer
from residual_bench.residual.training_envs import (
    ScheduleAndProgress,
    alpha_per_dimension,
    training_envs,
)
from residual_bench.run_directory import (
    checkpoint_to_resume,
    finish_interrupted_write,
    run_lock,
    save_checkpoint,
)
from residual_bench.seeding import episode_seed
from residual_bench.tasks import task_entry
from residual_bench.training.learning_curve import (
    append_progress,
    heldout_success,
    last_evaluated,
    training_clock,
)


def _per_env_step(config: ResidualConfig, n_envs: int) -> ResidualConfig:
    """``config`` with an off-policy agent's ``gradient_steps`` multiplied by ``n_envs``: a
    ``train_freq`` step of SB3 collects one transition per env, so the updates per
    transition stay the config's ``gradient_steps / train_freq``. (-1, SB3's "one update per
    transition collected", needs no change.)"""
    steps = config.hyperparams.get("gradient_steps", 1)
    if n_envs == 1 or not ALGORITHMS[config.algo].off_policy or steps < 0:
        return config
    return dataclasses.replace(
        config, hyperparams={**config.hyperparams, "gradient_steps": steps * n_envs}
    )


def _check_resumable(checkpoint: Path, n_envs: int, task: str) -> None:
    """Refuse to resume a checkpoint with another number of envs than it was made with (its
    replay buffer holds one column per env, and its agent steps that many at once) or on
    another task (its experience and network are of that task's scenes)."""
    state_file = checkpoint / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    saved = state.get("n_envs", 1)
    if saved != n_envs:
        raise ValueError(
            f"{checkpoint}: the run was started with n_envs={saved} and cannot go on with "
            f"n_envs={n_envs}; resume it with train.n_envs: {saved}, or choose another --out"
        )
    saved_task = state.get("env_id", ENV_ID)  # runs from before the field: pick-and-place
    if not same_task(saved_task, task):
        raise ValueError(
            f"{checkpoint}: the run was started on {saved_task} and cannot go on with "
            f"{task}; resume it with --env {saved_task}, or choose another --out"
        )


def task_training_suite(configured: str, env_id: str) -> str:
    """The suite a config's ``train.suite`` means on task ``env_id``: itself where it fits the
    task; where the shipped ``mixed`` does not (push takes no drop and has no grasp phase),
    the task's own mixed suite, the last of its ``Task.suites`` (``push-mixed``).

    Raises:
        ValueError: any other configured suite that does not fit the task, naming the ones
            that do.
    """
    task = task_entry(env_id).task
    if suite_applies(load_suite(configured), task.phases, task.perturbation_kinds):
        return configured
    if configured == "mixed":
        return task.suites[-1]
    raise ValueError(
        f"the config's training suite {configured!r} does not fit {env_id}; give one of "
        f"{', '.join(task.suites)} with --suite"
    )


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
    n_envs: int | None = None,
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
    :func:`~residual_bench.run_directory.checkpoint_to_resume`) with the ``n_envs`` it was
    started with; a finished ``out/residual`` is never overwritten. ``threads`` caps torch's
    threads (in each env's worker too): small networks gain nothing from more, and parallel
    runs then do not fight over cores.

    Raises:
        ValueError: unknown task, base, residual config, suite or features; an ``n_envs``
            below 1, or other than the checkpoint's to resume.
        FileExistsError: ``out/residual`` already exists, or ``out`` holds an unfinished run
            and ``resume`` is False.
        PermissionError: the checkpoint to resume is not this user's own.
        FileNotFoundError: ``out`` has a learning curve but no checkpoint to continue it from.
        RunInUseError: another process is training into ``out``.
    """
    task_entry(task)  # an unknown id is refused here, naming the registered ones
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
    if n_envs is not None:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, n_envs=n_envs))
    train = config.train
    n_envs = int(train.n_envs)
    if n_envs < 1:
        raise ValueError(f"n_envs must be at least 1, got {n_envs}")
    steps = int(steps if steps is not None else train.steps)
    suite = suite or task_training_suite(train.suite, task)
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
            **residual_env_options(config),
            "feature_noise": ObjectFeatureNoise(**dataclasses.asdict(noise)) if noise else None,
        }
        alpha = tuple(config.alpha)
        build = partial(_train_env, base, config.features, alpha, task, suite, train.reward)
        checkpoint = out / "checkpoint"
        log = str(out / "tensorboard") if tensorboard else None
        finish_interrupted_write(checkpoint)
        resuming = checkpoint_to_resume(checkpoint, resume)
        if resuming:
            _check_resumable(checkpoint, n_envs, task)
        elif last_evaluated(out / "progress.csv") > 0:
            # Starting at step 0 would silently restart a run whose curve says otherwise.
            raise FileNotFoundError(
                f"{checkpoint}: missing, but {out} has a learning curve to continue; "
                "choose another --out to train afresh"
            )
        with contextlib.ExitStack() as opened:  # workers and simulators closed on any exit
            envs = training_envs(build, options, n_envs, seed, threads)
            opened.callback(envs.close)
            acting = {  # as evaluation will act
                "gripper_deadband": config.gripper_deadband,
                "base_plan_steps": config.base_plan_steps,
            }
            eval_env = make_residual_env(
                base, config.features, alpha, acting, task, suite=suite, objects="heldout"
            )
            opened.callback(eval_env.close)
            model = _agent(config, envs, n_envs, checkpoint, resuming, seed, log)
            if config.train.oracle_episodes:
                episodes = int(config.train.oracle_episodes)
                with contextlib.closing(build({**options, "seed": seed})) as oracle_env:
                    # A resumed buffer holds them already; the imitation term needs them again.
                    seed_replay_buffer(model, oracle_env, episodes, seed, progress, not resuming)
            evaluated = last_evaluated(out / "progress.csv")
            next_eval = (evaluated // eval_every + 1) * eval_every if eval_every else 0
            label = f"{base}+{config.name}"
            start = int(model.num_timesteps)
            bar = tqdm(total=steps, initial=start, unit="step", desc=label, disable=not progress)
            opened.callback(bar.close)
            callback = ScheduleAndProgress(envs, int(safeguards.scale_ramp_steps), bar)
            began = training_clock(out / "progress.csv")
            while model.num_timesteps < steps:
                n = min(chunk, steps - model.num_timesteps)
                model.learn(n, callback=callback, reset_num_timesteps=False, tb_log_name="residual")
                t = int(model.num_timesteps)
                state = {"timesteps": t, "n_envs": n_envs, "env_id": task}
                save_checkpoint(model, checkpoint, state)
                if eval_every and (t >= next_eval or t >= steps):
                    next_eval = (t // eval_every + 1) * eval_every
                    rate = heldout_success(eval_env, _deterministic(model), suite, eval_episodes)
                    append_progress(out / "progress.csv", t, rate, eval_episodes, began)
                    bar.set_postfix(success=f"{rate:.0%}")
            alpha_used = alpha_per_dimension(envs)
        metadata = {
            "algo": config.algo,
            "name": config.name,
            "base": base,
            "base_description": get_base(base).description,
            "env_id": task,  # the task it corrects: evaluation on another is refused
            "features": config.features,
            "alpha": list(config.alpha),
            "alpha_per_dimension": alpha_used,  # after the base's own rules
            "gripper_deadband": config.gripper_deadband,
            "base_plan_steps": config.base_plan_steps,
            "config": config.to_dict(),
            "train_seed": seed,
            "train_steps": int(model.num_timesteps),
            "train_suite": suite,
            "versions": package_versions(),
        }
        return save_residual(model, final, metadata)


def residual_env_options(config: ResidualConfig) -> dict[str, Any]:
    """The :class:`ResidualEnv` arguments of ``config`` that shape its training reward and
    how its residual acts (feature noise, a training-only corruption, aside): an env built
    with them pays what the run was trained on."""
    safeguards = config.safeguards
    return {
        "magnitude_penalty": safeguards.magnitude_penalty,
        "rate_penalty": safeguards.rate_penalty,
        "success_bonus": safeguards.success_bonus,
        "time_penalty": safeguards.time_penalty,
        "gripper_deadband": config.gripper_deadband,
        "base_plan_steps": config.base_plan_steps,
    }


def _train_env(
    base: str,
    features: str,
    alpha: tuple,
    task: str,
    suite: str,
    reward: str,
    options: dict[str, Any],
) -> ResidualEnv:
    """One training env: training objects under ``suite``'s perturbations, paying the
    task's ``reward`` mode."""
    return make_residual_env(
        base, features, alpha, options, task, suite=suite, objects="train", reward_mode=reward
    )


def _agent(
    config: ResidualConfig,
    envs: Monitor | VecEnv,
    n_envs: int,
    checkpoint: Path,
    resuming: bool,
    seed: int,
    log: str | None,
) -> Any:
    """The agent on ``envs``: built afresh, or the checkpoint's, resumed with the config's
    safeguards."""
    if not resuming:
        return build_agent(_per_env_step(config, n_envs), envs, seed=seed, tensorboard_log=log)
    model = load_agent(config.algo, str(checkpoint / "model.zip"), env=envs, gated=config.gated)
    if (checkpoint / "replay_buffer.pkl").exists():
        model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
    model.tensorboard_log = log
    safeguards = config.safeguards
    for key in ("warmup_steps", "exploration_ramp_steps", "critic_only_steps"):
        if hasattr(model, key):
            setattr(model, key, int(getattr(safeguards, key)))
    for key in ("output_decay", "actor_penalty", "oracle_bc_weight"):
        if hasattr(model, key):
            setattr(model, key, float(getattr(safeguards, key)))
    if hasattr(model, "critic_continuation"):
        model.critic_continuation = safeguards.critic_continuation
    if hasattr(model, "actor_learning_rate"):
        model.actor_learning_rate = configured_actor_learning_rate(config)
    if isinstance(envs, VecEnv):  # the workers' next episodes, from the seed and the step
        envs.seed(episode_seed(seed, "train-resume", int(model.num_timesteps)))
    return model


def _deterministic(model: Any) -> Any:
    """The trained policy's deterministic action, as evaluation runs it."""
    return lambda obs, info: model.predict(obs, deterministic=True)[0]
