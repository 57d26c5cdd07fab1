"""Shared fixtures for the behavioural tests of ``ResidualPickPlace-v1``."""

import os

# The suite must never try to download from the Hugging Face Hub.
os.environ["HF_HUB_OFFLINE"] = "1"

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import residual_bench  # noqa: E402, F401  (importing the package registers the env ids)

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
