"""Shared fixtures for the behavioural tests of ``ResidualPickPlace-v1``, and for tests that
register a toy task of their own."""

import os

# The suite must never try to download from the Hugging Face Hub.
os.environ["HF_HUB_OFFLINE"] = "1"

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import residual_bench  # noqa: E402, F401  (importing the package registers the env ids)
from residual_bench.registration import register_envs  # noqa: E402
from residual_bench.tasks import register_task  # noqa: E402
from residual_bench.tasks import registry as task_registry  # noqa: E402

ENV_ID = "ResidualPickPlace-v1"
OBS_MODES = ("state", "rgb", "rgbd", "rgb+seg")


@pytest.fixture
def make_env():
    """A factory ``make_env(**kwargs)`` for ``gym.make(ENV_ID, **kwargs)``; every env it
    made is closed when the test ends, whether the test passed or not."""
    envs = []

    def _make(**kwargs):
        env = gym.make(ENV_ID, **kwargs)
        envs.append(env)
        return env

    yield _make
    for env in envs:
        env.close()


@pytest.fixture
def env(make_env):
    """A default ``ResidualPickPlace-v1`` (state observations, 20 Hz, train objects)."""
    return make_env()


def random_actions(seed: int, n: int) -> np.ndarray:
    """``n`` seeded uniform actions in the action box, float32."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 7)).astype(np.float32)


@pytest.fixture
def actions():
    """``actions(seed, n)``: a reproducible sequence of random 7-D actions."""
    return random_actions


@pytest.fixture
def register_toy_task(tmp_path):
    """``register_toy_task(env_id, task_class, scene_yaml)``: register a toy task under
    ``env_id`` over the scene YAML text (written to a temporary file), the way a task module
    does, and its gymnasium id; returns ``env_id``. Both are removed when the test ends."""
    registered = []

    def _register(env_id: str, task_class: type, scene_yaml: str) -> str:
        scene = tmp_path / f"{env_id.lower()}.yaml"
        scene.write_text(scene_yaml)
        task_class.scene = str(scene)
        register_task(env_id)(task_class)  # the one registration line of a task module
        register_envs()
        registered.append(env_id)
        return env_id

    yield _register
    for env_id in registered:
        task_registry._TASKS.pop(env_id)
        gym.registry.pop(env_id)
