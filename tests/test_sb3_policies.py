"""Every env form the README names builds the SB3 policy the README says it takes.

The plain env's observation is a Dict (``MultiInputPolicy``); the residual env's is a flat
vector (``MlpPolicy``) whose slices :func:`observation_layout` names, except with ``global``
features, where it is a Dict of that vector and an image (``MultiInputPolicy``).
"""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import SAC

from residual_bench.residual import observation_layout

ENV_ID = "ResidualPickPlace-v1"
FORMS = [
    ("plain, state", {"obs_mode": "state"}, "MultiInputPolicy"),
    ("plain, rgb", {"obs_mode": "rgb", "image_size": 48}, "MultiInputPolicy"),
    ("residual, objects", {"base": "scripted", "features": "objects"}, "MlpPolicy"),
    ("residual, privileged", {"base": "scripted", "features": "privileged"}, "MlpPolicy"),
    ("residual, proprio", {"base": "scripted", "features": "proprio"}, "MlpPolicy"),
    ("residual, global", {"base": "scripted", "features": "global"}, "MultiInputPolicy"),
]


@pytest.mark.parametrize("kwargs, policy", [f[1:] for f in FORMS], ids=[f[0] for f in FORMS])
def test_each_env_form_trains_with_the_sb3_policy_the_readme_names(kwargs, policy):
    env = gym.make(ENV_ID, **kwargs)
    try:
        model = SAC(
            policy,
            env,
            buffer_size=200,
            learning_starts=10,
            batch_size=8,
            seed=0,
            policy_kwargs={"net_arch": [8]},
            device="cpu",
        )
        model.learn(20)
        obs, _ = env.reset(seed=0)
        action, _ = model.predict(obs, deterministic=True)
        assert env.action_space.contains(action)
    finally:
        env.close()


@pytest.mark.parametrize("features", ["objects", "privileged", "proprio"])
def test_the_observation_layout_names_every_number_of_the_residual_vector(features):
    env = gym.make(ENV_ID, base="scripted", features=features)
    try:
        layout = observation_layout(features)
        spans = sorted((s.start, s.stop) for s in layout.values())
        assert spans[0][0] == 0 and spans[-1][1] == env.observation_space.shape[0]
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
        obs, _ = env.reset(seed=0)
        residual_env = env
        while not hasattr(residual_env, "base_action"):
            residual_env = residual_env.env
        base_action = residual_env.base_action
        np.testing.assert_array_equal(obs[layout["base_action"]], base_action.astype(np.float32))
    finally:
        env.close()


def test_the_residual_env_is_a_flat_vector_not_a_dict():
    env = gym.make(ENV_ID, base="scripted", features="objects")
    try:
        assert isinstance(env.observation_space, gym.spaces.Box)
        assert env.observation_space.shape == (42,)
    finally:
        env.close()
