"""The envs a residual collects its experience in, and what training asks of all of them.

``train.n_envs`` envs collect experience side by side (:func:`training_envs`): one is the env
itself, in this process; several are SB3's ``SubprocVecEnv``, one worker process each,
seeded from (seed, env index) so that a run repeats exactly for a given seed and env count.
:func:`set_scale` and :func:`alpha_per_dimension` reach every env through wrappers and
workers alike; :class:`ScheduleAndProgress` ramps the residual scale while training runs.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnv, VecMonitor
from tqdm import tqdm

from residual_bench.residual.env import ResidualEnv
from residual_bench.seeding import episode_seed

START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
"""How the workers of several training envs start: never ``fork``, which would copy this
process's torch threads and PyBullet client into each worker (neither survives a fork)."""


def train_env_seed(seed: int, index: int, purpose: str) -> int:
    """The seed of stream ``purpose`` (``reset`` or ``feature-noise``) of training env
    ``index`` in a run of ``seed`` with several envs.

    A function of (seed, index) alone, so a run repeats for a given seed and env count; and
    not SB3's ``seed + index``, which would give a run of seed 1 the episodes of env 1 of a
    run of seed 0.
    """
    return episode_seed(seed, "train-env", index, purpose)


class _SeededSubprocVecEnv(SubprocVecEnv):
    """SB3's ``SubprocVecEnv`` whose ``seed(s)`` (called once, when the agent is built) gives
    env ``i`` the reset seed :func:`train_env_seed` ``(s, i, "reset")``; later episodes go on
    from each env's own generator, as with one env."""

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        if seed is None:
            return super().seed(None)
        self._seeds = [train_env_seed(seed, i, "reset") for i in range(self.num_envs)]
        return self._seeds


def _worker_env(build: Callable[[], ResidualEnv], threads: int) -> ResidualEnv:
    """A training env, built in its worker process with torch capped at ``threads`` there too."""
    torch.set_num_threads(threads)
    return build()


def training_envs(
    build: Callable[..., ResidualEnv],
    options: dict[str, Any],
    n_envs: int,
    seed: int,
    threads: int = 1,
) -> Monitor | VecEnv:
    """The env(s) a residual collects its experience in.

    ``build(options)`` makes one residual env (``options``: :class:`ResidualEnv`'s keyword
    arguments). With ``n_envs`` 1 that is the env itself, seeded with ``seed`` and wrapped in
    a ``Monitor``, in this process. With more, each is built in a worker process of a
    ``SubprocVecEnv`` (started by :data:`START_METHOD`), env ``i``'s feature noise seeded with
    :func:`train_env_seed` ``(seed, i, "feature-noise")`` and its resets as
    :class:`_SeededSubprocVecEnv` says, behind one ``VecMonitor``.
    """
    if n_envs == 1:
        return Monitor(build({**options, "seed": seed}))
    makers = [
        partial(
            _worker_env,
            partial(build, {**options, "seed": train_env_seed(seed, i, "feature-noise")}),
            threads,
        )
        for i in range(n_envs)
    ]
    return VecMonitor(_SeededSubprocVecEnv(makers, start_method=START_METHOD))


def set_scale(envs: Monitor | VecEnv, scale: float) -> None:
    """Set the residual scale of every training env (through any wrappers and workers)."""
    if isinstance(envs, VecEnv):
        envs.env_method("set_scale", scale)
    else:
        envs.get_wrapper_attr("set_scale")(scale)


def alpha_per_dimension(envs: Monitor | VecEnv) -> list[float]:
    """The training envs' per-dimension alpha, after the base's own rules (read from the
    first env: every env has the same base and config)."""
    if isinstance(envs, VecEnv):
        alpha = envs.get_attr("alpha", indices=0)[0]
    else:
        alpha = envs.get_wrapper_attr("alpha")
    return [float(a) for a in alpha]


class ScheduleAndProgress(BaseCallback):
    """Ramps the residual scale of every training env and advances the progress bar."""

    def __init__(self, envs: Monitor | VecEnv, scale_ramp_steps: int, bar: tqdm) -> None:
        super().__init__()
        self.envs, self.scale_ramp_steps, self.bar = envs, scale_ramp_steps, bar
        self._scale: float | None = None

    def _on_step(self) -> bool:
        if self.scale_ramp_steps > 0:
            scale = min(self.num_timesteps / self.scale_ramp_steps, 1.0)
            if scale != self._scale:  # workers are asked only while the ramp moves
                set_scale(self.envs, scale)
                self._scale = scale
        self.bar.update(self.training_env.num_envs)
        return True
