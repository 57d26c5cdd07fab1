"""Critics with LayerNorm (``policy_kwargs.critic_layer_norm``), for SAC, TD3 and TQC.

Off by default, the policy is exactly the library's: the same modules and, from the same seed,
the same initial weights. On, every hidden layer of every critic (and of its target) is followed
by a LayerNorm, and a residual trained that way reloads from its JSON description as data.
"""

import numpy as np
import pytest
import torch
import yaml
from sb3_contrib import TQC
from stable_baselines3 import SAC, TD3

from residual_bench.env_spec import SpecError
from residual_bench.registration import ENV_ID
from residual_bench.residual.algorithms import ALGORITHMS
from residual_bench.residual.config import load_config
from residual_bench.residual.factory import make_env
from residual_bench.residual.weights import build_policy, describe_policy

LIBRARY = {"sac": SAC, "td3": TD3, "tqc": TQC}


@pytest.fixture(scope="module")
def env():
    env = make_env(ENV_ID, base="scripted", features="proprio")
    yield env
    env.close()


def layer_norms(critic: torch.nn.Module) -> list[torch.nn.LayerNorm]:
    return [m for m in critic.modules() if isinstance(m, torch.nn.LayerNorm)]


@pytest.mark.parametrize("algo", sorted(LIBRARY))
def test_without_the_option_the_policy_is_the_librarys_to_the_last_weight(env, algo):
    ours = LIBRARY[algo](ALGORITHMS[algo].policy_class("MlpPolicy"), env, seed=3, device="cpu")
    theirs = LIBRARY[algo]("MlpPolicy", env, seed=3, device="cpu")
    ours_state, theirs_state = ours.policy.state_dict(), theirs.policy.state_dict()
    assert list(ours_state) == list(theirs_state)
    assert all(torch.equal(ours_state[k], theirs_state[k]) for k in ours_state)


@pytest.mark.parametrize("algo", sorted(LIBRARY))
def test_with_the_option_each_hidden_layer_of_each_critic_is_normalised(env, algo):
    kwargs = {"net_arch": [32, 16], "critic_layer_norm": True, "n_critics": 3}
    model = LIBRARY[algo](
        ALGORITHMS[algo].policy_class("MlpPolicy"), env, seed=0, device="cpu", policy_kwargs=kwargs
    )
    for critic in (model.policy.critic, model.policy.critic_target):
        assert len(critic.q_networks) == 3
        for network in critic.q_networks:
            assert [n.normalized_shape for n in layer_norms(network)] == [(32,), (16,)]
    assert not layer_norms(model.policy.actor)
    # The critic's optimiser updates the normalised networks, not the ones they replaced.
    groups = model.policy.critic.optimizer.param_groups
    optimised = {id(p) for group in groups for p in group["params"]}
    assert all(id(p) in optimised for n in layer_norms(model.policy.critic) for p in n.parameters())


def test_a_layer_norm_residual_rebuilds_from_its_description_to_the_same_actions(env):
    kwargs = {"net_arch": [32, 32], "critic_layer_norm": True}
    model = SAC(
        ALGORITHMS["sac"].policy_class("MlpPolicy"), env, seed=0, device="cpu", policy_kwargs=kwargs
    )
    description = describe_policy("sac", model)
    assert description["policy_kwargs"]["critic_layer_norm"] is True
    rebuilt = build_policy(description)
    rebuilt.load_state_dict(model.policy.state_dict())
    observations = np.random.default_rng(0).normal(size=(16, *env.observation_space.shape))
    ours, _ = model.policy.predict(observations.astype(np.float32), deterministic=True)
    again, _ = rebuilt.predict(observations.astype(np.float32), deterministic=True)
    np.testing.assert_array_equal(ours, again)


def test_a_description_with_a_non_boolean_layer_norm_is_refused(env):
    model = SAC(ALGORITHMS["sac"].policy_class("MlpPolicy"), env, seed=0, device="cpu")
    description = describe_policy("sac", model)
    description["policy_kwargs"]["critic_layer_norm"] = "yes"
    with pytest.raises(ValueError, match="critic_layer_norm: expected true or false"):
        build_policy(description)


@pytest.mark.parametrize(
    ("algo", "value", "message"),
    [
        ("crossq", True, "critic_layer_norm applies to sac, td3, tqc only, not crossq"),
        ("ppo", True, "critic_layer_norm applies to sac, td3, tqc only, not ppo"),
        ("sac", "yes", "critic_layer_norm: true or false"),
    ],
)
def test_a_config_asking_for_layer_norm_where_it_cannot_be_is_refused(
    tmp_path, algo, value, message
):
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {"algo": algo, "hyperparams": {"policy_kwargs": {"critic_layer_norm": value}}}
        )
    )
    with pytest.raises(SpecError, match=message):
        load_config(path)
