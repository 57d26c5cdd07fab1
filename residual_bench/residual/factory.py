"""Building residual envs: the registered entry point and the helper behind it."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from residual_bench.env_arguments import ENV_KWARGS
from residual_bench.policies.registry import get_base
from residual_bench.registration import ENV_ID
from residual_bench.residual.env import DEFAULT_ALPHA, ResidualEnv
from residual_bench.residual.features import OBS_MODE_FOR, check_features
from residual_bench.task_env import ResidualTaskEnv


def residual_env_kwargs(base: str, features: str) -> dict[str, Any]:
    """The env keyword arguments a base and a feature mode need together.

    Raises:
        ValueError: an unknown base or feature mode (naming the valid choices).
    """
    entry = get_base(base)
    kwargs = dict(entry.env_kwargs)
    needed = OBS_MODE_FOR.get(check_features(features))
    if needed is not None:
        # rgbd+seg serves every camera base too: it carries the rgb image they read.
        kwargs["obs_mode"] = needed
        kwargs.setdefault("image_size", 84)
    return kwargs


def make_residual_env(
    base: str,
    features: str = "objects",
    alpha: float | tuple = DEFAULT_ALPHA,
    residual_options: dict[str, Any] | None = None,
    task: str = ENV_ID,
    **env_kwargs: Any,
) -> ResidualEnv:
    """Task ``task`` with ``base`` frozen behind it and the residual as the action.

    Args:
        base: a registered base name (``bench list``).
        features: what the residual observes besides proprioception and the base's action.
        alpha: residual scale, see :func:`residual_bench.residual.alpha_vector`.
        residual_options: further :class:`ResidualEnv` arguments (penalties, success terms,
            feature noise).
        task: the task's gymnasium id (default ``ResidualPickPlace-v1``).
        env_kwargs: the env's own arguments (``suite``, ``objects``, ...); an ``obs_mode``
            that conflicts with what the base and features need is an error.
    """
    kwargs = residual_env_kwargs(base, features)
    required = {**get_base(base).env_kwargs, "obs_mode": kwargs.get("obs_mode")}
    for key, value in required.items():
        if key in env_kwargs and value is not None and env_kwargs[key] != value:
            raise ValueError(
                f"base {base!r} with features {features!r} needs {key}={value!r}, "
                f"got {key}={env_kwargs[key]!r}"
            )
    env = gym.make(task, **{**kwargs, **env_kwargs})
    return ResidualEnv(env, base, features=features, alpha=alpha, **(residual_options or {}))


RESIDUAL_KWARGS = ("base", "features", "alpha", "residual_options")
"""The keyword arguments that make a task's env the residual env."""


def make_env(
    task: str,
    base: str | None = None,
    features: str = "objects",
    alpha: float | tuple = DEFAULT_ALPHA,
    residual_options: dict[str, Any] | None = None,
    **env_kwargs: Any,
) -> gym.Env:
    """Entry point of every task id: the raw env, or the residual env with a base.

    Raises:
        TypeError: an unknown keyword argument, listing every valid one (the env's and the
            residual env's).
    """
    unknown = sorted(set(env_kwargs) - set(ENV_KWARGS))
    if unknown:
        valid = ", ".join((*ENV_KWARGS, *RESIDUAL_KWARGS))
        raise TypeError(
            f"{task} got unknown keyword argument(s) {unknown}; valid ones are: {valid}"
        )
    if base is None:
        return ResidualTaskEnv(task, **env_kwargs)
    return make_residual_env(base, features, alpha, residual_options, task, **env_kwargs)
