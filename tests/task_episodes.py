"""Expert episodes of any registered task, for the task tests (``test_task_*.py``,
``test_tasks.py``) and the child processes their determinism checks start."""

from __future__ import annotations

import gymnasium as gym

import residual_bench.registration  # noqa: F401  (registers the env ids)
from residual_bench.policies.task_experts import expert_for


def expert_episode(env_id: str, seed: int, **kwargs) -> tuple[gym.Env, dict, list[dict]]:
    """Episode ``seed`` of ``env_id`` (made with ``kwargs``) driven by its registered expert
    to the end: the open env, the last step's info and every info from the reset's on."""
    env = gym.make(env_id, **kwargs)
    _, info = env.reset(seed=seed)
    expert = expert_for(env)
    expert.reset()
    infos = [info]
    for _ in range(env.unwrapped.max_steps):
        _, _, terminated, truncated, info = env.step(expert.act(env))
        infos.append(info)
        if terminated or truncated:
            break
    return env, info, infos


def expert_state_hash(env_id: str, seed: int, steps: int, before: int | None = None) -> str:
    """The state hash after ``steps`` expert steps of episode ``seed`` (after playing
    episode ``before`` in the same env, when given)."""
    env = gym.make(env_id)
    expert = expert_for(env)
    for episode in ([before] if before is not None else []) + [seed]:
        env.reset(seed=episode)
        expert.reset()
        for _ in range(steps):
            env.step(expert.act(env))
    state = env.unwrapped.state_hash()
    env.close()
    return state
