"""Gymnasium registration of the benchmark's environment ids.

Every task id comes from the task table (:mod:`residual_bench.tasks`, where each task
declares its own); this module only hands them to gymnasium.
"""

from __future__ import annotations

import argparse

import gymnasium as gym

from residual_bench.tasks import pick_place, task_entry, task_ids

ENV_ID = pick_place.PickPlaceTask.env_id
"""The reference task's current id (``ResidualPickPlace-v1``): the default of every command.
v1 ends an episode once the target object is out of the arm's reach; v0, which let it run
on to the time limit, stays registered so that every record made with it re-runs exactly."""
PREVIOUS_ENV_IDS = {
    env_id: task_entry(env_id).env_kwargs
    for env_id in task_ids()
    if env_id != task_entry(env_id).task.env_id
}
"""Earlier ids of the tasks -> the env keyword arguments they fix."""
REAL_ENV_ID = "PandaReal-v0"
ENV_IDS = (*task_ids(), REAL_ENV_ID)


def same_task(env_id: str, other: str) -> bool:
    """Whether two registered ids are versions of one task (``ResidualPickPlace-v0`` and
    ``-v1`` are; pick-and-place and push are not)."""
    return task_entry(env_id).task is task_entry(other).task


def add_env_option(parser: argparse.ArgumentParser, every_task: bool = False) -> None:
    """The ``--env`` option of every command that makes envs: one declaration of its
    default and help. The id is checked by the command (``task_entry``), so an unknown one is
    the command's one-line error listing the registered ids, not argparse's usage block.
    With ``every_task`` (``bench run``) the default is ``None``: every task."""
    default = "every task, each in its own folder of --out" if every_task else ENV_ID
    parser.add_argument(
        "--env",
        default=None if every_task else ENV_ID,
        metavar="ID",
        help=f"task id from `bench list` ({default})",
    )


def register_envs() -> None:
    """Register every task id (and the real robot's); safe to call more than once."""
    for env_id in task_ids():
        if env_id not in gym.registry:
            # No max_episode_steps: the episode length is set in simulated seconds and the
            # env truncates itself, because the number of steps depends on ``control_hz``.
            # With ``base=...`` the entry point returns the residual env (residual.factory).
            gym.register(
                id=env_id,
                entry_point="residual_bench.residual.factory:make_env",
                disable_env_checker=False,
                kwargs={"task": env_id, **task_entry(env_id).env_kwargs},
            )
    if REAL_ENV_ID not in gym.registry:
        # The real robot (or its PyBullet twin with driver="twin"): see residual_bench.real.
        gym.register(
            id=REAL_ENV_ID,
            entry_point="residual_bench.real.env:PandaRealEnv",
            disable_env_checker=False,
        )
