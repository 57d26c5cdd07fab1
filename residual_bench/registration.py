"""Gymnasium registration of the benchmark's environment ids."""

from __future__ import annotations

import gymnasium as gym

ENV_ID = "ResidualPickPlace-v0"
"""The simulated benchmark's id: the one place it is spelled."""
REAL_ENV_ID = "PandaReal-v0"
ENV_IDS = (ENV_ID, REAL_ENV_ID)


def register_envs() -> None:
    """Register every environment id; safe to call more than once."""
    if ENV_ID not in gym.registry:
        # No max_episode_steps: the episode length is set in simulated seconds and the
        # env truncates itself, because the number of steps depends on ``control_hz``.
        # With ``base=...`` the entry point returns the residual env (see residual.factory).
        gym.register(
            id=ENV_ID,
            entry_point="residual_bench.residual.factory:make_env",
            disable_env_checker=False,
        )
    if REAL_ENV_ID not in gym.registry:
        # The real robot (or its PyBullet twin with driver="twin"): see residual_bench.real.
        gym.register(
            id=REAL_ENV_ID,
            entry_point="residual_bench.real.env:PandaRealEnv",
            disable_env_checker=False,
        )
