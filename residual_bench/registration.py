"""Gymnasium registration of the benchmark's environment ids."""

from __future__ import annotations

import gymnasium as gym

ENV_ID = "ResidualPickPlace-v1"
"""The simulated benchmark's id: the one place it is spelled. v1 ends an episode once the
target object is out of the arm's reach; v0, which let it run on to the time limit, stays
registered so that every record made with it re-runs exactly."""
PREVIOUS_ENV_IDS = {"ResidualPickPlace-v0": {"terminate_out_of_reach": False}}
REAL_ENV_ID = "PandaReal-v0"
ENV_IDS = (ENV_ID, *PREVIOUS_ENV_IDS, REAL_ENV_ID)


def register_envs() -> None:
    """Register every environment id; safe to call more than once."""
    for env_id, kwargs in ((ENV_ID, {}), *PREVIOUS_ENV_IDS.items()):
        if env_id not in gym.registry:
            # No max_episode_steps: the episode length is set in simulated seconds and the
            # env truncates itself, because the number of steps depends on ``control_hz``.
            # With ``base=...`` the entry point returns the residual env (residual.factory).
            gym.register(
                id=env_id,
                entry_point="residual_bench.residual.factory:make_env",
                disable_env_checker=False,
                kwargs=kwargs,
            )
    if REAL_ENV_ID not in gym.registry:
        # The real robot (or its PyBullet twin with driver="twin"): see residual_bench.real.
        gym.register(
            id=REAL_ENV_ID,
            entry_point="residual_bench.real.env:PandaRealEnv",
            disable_env_checker=False,
        )
