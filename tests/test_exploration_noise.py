"""The residual's exploration noise, sized in executed-action units.

With ``safeguards.exploration_std`` the noise a residual adds to the executed action has
that std in every dimension, whatever each dimension's alpha (at alpha 2 the gripper's r is
twenty times quieter than at alpha 0.1), and SAC's automatic entropy tuning targets the
entropy of that noise. Without it the log-std starts at -1 in every dimension of r.
"""

import dataclasses

import numpy as np
import pytest
import torch
import yaml

from residual_bench.env_spec import SpecError
from residual_bench.residual import make_residual_env
from residual_bench.residual.agents import (
    SAC_INITIAL_LOG_STD,
    build_agent,
    exploration_log_std,
    gaussian_entropy,
)
from residual_bench.residual.config import load_config

ALPHA = (0.3, 0.3, 2.0)


@pytest.fixture
def env():
    env = make_residual_env("scripted", "privileged", ALPHA, suite="nominal")
    yield env
    env.close()


def agent(env, algo: str, exploration_std: float | None):
    config = load_config(algo)
    config.features, config.alpha = "privileged", list(ALPHA)
    config.hyperparams["policy_kwargs"] = {"net_arch": [16, 16]}
    config.safeguards = dataclasses.replace(config.safeguards, exploration_std=exploration_std)
    return build_agent(config, env, seed=0)


def executed_noise_std(model, env, draws: int = 4000) -> np.ndarray:
    obs = env.observation_space.sample()
    torch.manual_seed(0)
    residuals = np.array([model.predict(obs, deterministic=False)[0] for _ in range(draws)])
    return residuals.std(axis=0) * np.r_[np.full(6, 0.3), 2.0]


@pytest.mark.parametrize("algo", ["sac", "tqc"])
def test_the_executed_noise_has_the_configured_std_in_every_dimension(env, algo):
    np.testing.assert_allclose(executed_noise_std(agent(env, algo, 0.05), env), 0.05, rtol=0.1)


def test_sac_targets_the_entropy_of_that_noise(env):
    model = agent(env, "sac", 0.05)
    log_std = exploration_log_std(0.05, ALPHA)
    assert model.target_entropy == pytest.approx(gaussian_entropy(log_std))
    np.testing.assert_allclose(log_std[6] - log_std[0], np.log(0.3 / 2.0))


def test_td3_draws_its_noise_with_that_std(env):
    model = agent(env, "td3", 0.05)
    np.testing.assert_allclose(model.action_noise._sigma * np.r_[np.full(6, 0.3), 2.0], 0.05)


def test_without_it_the_log_std_starts_at_the_same_value_in_every_dimension(env):
    model = agent(env, "sac", None)
    np.testing.assert_array_equal(model.actor.log_std.bias.detach().numpy(), SAC_INITIAL_LOG_STD)
    assert model.target_entropy == -7.0  # SB3's default, -dim(action)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"algo": "sac", "safeguards": {"exploration_std": 0.0}}, "must be in \\(0, 1\\]"),
        ({"algo": "sac", "safeguards": {"exploration_std": 1.5}}, "must be in \\(0, 1\\]"),
        ({"algo": "sac", "safeguards": {"exploration_std": "wide"}}, "exploration_std"),
        ({"algo": "ppo", "safeguards": {"exploration_std": 0.05}}, "off-policy"),
    ],
)
def test_an_exploration_std_that_cannot_apply_is_refused(tmp_path, config, message):
    path = tmp_path / "noise.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SpecError, match=message):
        load_config(path)
