"""Gymnasium registration of the benchmark's environment ids."""

from __future__ import annotations

import gymnasium as gym

ENV_IDS = ("ResidualPickPlace-v0", "PandaReal-v0")


def register_envs() -> None:
    """Register every environment id; safe to call more than once."""
    if "ResidualPickPlace-v0" not in gym.registry:
        # No max_episode_steps: the episode length is set in simulated seconds and the
        # env truncates itself, because the number of steps depends on ``control_hz``.
        # With ``base=...`` the entry point returns the residual env (see residual.factory).
        gym.register(
            id="ResidualPickPlace-v0",
            entry_point="residual_bench.residual.factory:make_env",
            disable_env_checker=False,
        )
    if "PandaReal-v0" not in gym.registry:
        # The real robot (or its PyBullet twin with driver="twin"): see residual_bench.real.
        gym.register(
            id="PandaReal-v0",
            entry_point="residual_bench.real.env:PandaRealEnv",
            disable_env_checker=False,
        )
