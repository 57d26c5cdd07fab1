"""An env is never silently copied: a deep copy or a pickle would share or lose its physics.

A PyBullet world lives in a simulator client. A deep copy of the env would drive the
original's client (stepping the copy moves the original's robot), and an unpickled env would
hold the id of a client that does not exist in its process. Both are refused with a
``TypeError`` that names the supported way: a new env, reset with the same seed, replaying
the same actions, continues identically.
"""

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest

ENV_ID = "ResidualPickPlace-v1"


@pytest.fixture
def env():
    env = gym.make(ENV_ID)
    yield env
    env.close()


@pytest.fixture
def residual_env():
    env = gym.make(ENV_ID, base="scripted", features="objects")
    yield env
    env.close()


@pytest.mark.parametrize("copy_env", [copy.deepcopy, pickle.dumps], ids=["deepcopy", "pickle"])
def test_copying_an_env_is_refused_naming_the_supported_way(env, copy_env):
    env.reset(seed=0)
    with pytest.raises(TypeError, match=r"replay: .*reset\(seed=\.\.\.\)"):
        copy_env(env)


@pytest.mark.parametrize("copy_env", [copy.deepcopy, pickle.dumps], ids=["deepcopy", "pickle"])
def test_copying_a_residual_env_is_refused_too(residual_env, copy_env):
    residual_env.reset(seed=0)
    with pytest.raises(TypeError, match="cannot be deep-copied or pickled"):
        copy_env(residual_env)


def test_a_refused_copy_leaves_the_original_untouched(env):
    env.reset(seed=3)
    before = env.unwrapped.state_hash()
    with pytest.raises(TypeError):
        copy.deepcopy(env)
    assert env.unwrapped.state_hash() == before
    env.step(np.zeros(7, dtype=np.float32))


def test_the_supported_way_a_new_env_replaying_seed_and_actions_continues_identically(env):
    actions = np.random.default_rng(0).uniform(-1, 1, size=(30, 7)).astype(np.float32)
    env.reset(seed=5)
    for action in actions[:20]:
        env.step(action)
    branch = gym.make(ENV_ID)
    try:
        branch.reset(seed=5)
        for action in actions[:20]:
            branch.step(action)
        assert branch.unwrapped.state_hash() == env.unwrapped.state_hash()
        for action in actions[20:]:
            a, b = env.step(action), branch.step(action)
            np.testing.assert_array_equal(a[0]["proprio"], b[0]["proprio"])
        assert branch.unwrapped.state_hash() == env.unwrapped.state_hash()
    finally:
        branch.close()
