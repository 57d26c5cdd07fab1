"""What the critic's TD target assumes acts after the next step.

By default (``critic_continuation: residual``) SAC and TQC value the next state with an
action of the residual being trained, as the libraries do. With ``base`` the target values
it with r = 0 and no entropy term: the critic learns the value of acting once and then
leaving the base alone, and the actor, which still climbs that critic, is a one-step
improvement on the base.
"""

import dataclasses

import numpy as np
import pytest
import torch
import yaml
from stable_baselines3.common.logger import configure

from residual_bench.env_spec import SpecError
from residual_bench.residual import make_residual_env
from residual_bench.residual.agents import build_agent
from residual_bench.residual.config import load_config

ALPHA = (0.3, 0.3, 2.0)
GAMMA = 0.9
REWARD = 0.5


@pytest.fixture(scope="module")
def env():
    env = make_residual_env("scripted", "privileged", ALPHA, suite="nominal")
    yield env
    env.close()


def agent(env, algo: str, continuation: str):
    """A small agent whose buffer holds one transition, many times over: any batch it samples
    is that transition, so its critic loss can be computed by hand."""
    config = load_config(algo)
    config.features, config.alpha = "privileged", list(ALPHA)
    config.hyperparams.update(
        policy_kwargs={"net_arch": [16, 16]}, gamma=GAMMA, learning_starts=0, ent_coef=0.5
    )
    config.safeguards = dataclasses.replace(
        config.safeguards, critic_only_steps=0, critic_continuation=continuation
    )
    model = build_agent(config, env, seed=0)
    model.set_logger(configure(None, []))
    rng = np.random.default_rng(0)
    obs = env.observation_space.sample().astype(np.float32)
    next_obs = obs + rng.normal(0, 0.1, obs.shape).astype(np.float32)
    action = np.full(7, 0.3, dtype=np.float32)
    for _ in range(16):
        model.replay_buffer.add(obs, next_obs, action, np.array([REWARD]), np.array([False]), [{}])
    return model, obs, next_obs, action


def target_actions(model) -> list[torch.Tensor]:
    """The actions the critic's target network is asked about during one update."""
    seen = []
    hook = model.critic_target.register_forward_pre_hook(lambda _, args: seen.append(args[1]))
    try:
        model.train(gradient_steps=1, batch_size=8)
    finally:
        hook.remove()
    return seen


@pytest.mark.parametrize("algo", ["sac", "tqc"])
def test_with_the_base_as_continuation_the_target_values_the_next_state_at_r_zero(env, algo):
    model, *_ = agent(env, algo, "base")
    (actions,) = target_actions(model)
    assert torch.count_nonzero(actions) == 0


@pytest.mark.parametrize("algo", ["sac", "tqc"])
def test_by_default_the_target_values_the_next_state_at_the_actors_own_action(env, algo):
    model, *_ = agent(env, algo, "residual")
    (actions,) = target_actions(model)
    assert torch.count_nonzero(actions) == actions.numel()  # sampled: never exactly 0


def test_the_critic_learns_reward_plus_discounted_value_of_r_zero_with_no_entropy_term(env):
    model, obs, next_obs, action = agent(env, "sac", "base")
    as_batch = lambda x: torch.as_tensor(x[None])  # noqa: E731
    with torch.no_grad():
        next_q = torch.cat(model.critic_target(as_batch(next_obs), torch.zeros(1, 7)), dim=1)
        target = REWARD + GAMMA * next_q.min()
        current = model.critic(as_batch(obs), as_batch(action))
        expected = 0.5 * sum(float((q - target) ** 2) for q in current)
    model.train(gradient_steps=1, batch_size=8)
    assert model.logger.name_to_value["train/critic_loss"] == pytest.approx(expected, rel=1e-5)


def test_the_actor_still_learns_and_keeps_its_own_sampling_after_the_update(env):
    model, obs, *_ = agent(env, "sac", "base")
    before = [p.detach().clone() for p in model.actor.parameters()]
    model.train(gradient_steps=1, batch_size=8)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.actor.parameters(), strict=True))
    assert "action_log_prob" not in vars(model.actor)  # the class's own method again
    actions, _ = model.actor.action_log_prob(torch.as_tensor(obs[None]))
    assert torch.count_nonzero(actions) == 7


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"algo": "sac", "safeguards": {"critic_continuation": "expert"}}, "one of residual, base"),
        ({"algo": "td3", "safeguards": {"critic_continuation": "base"}}, "sac, tqc only, not td3"),
        ({"algo": "crossq", "safeguards": {"critic_continuation": "base"}}, "not crossq"),
        ({"algo": "ppo", "safeguards": {"critic_continuation": "base"}}, "not ppo"),
    ],
)
def test_a_continuation_that_cannot_apply_is_refused(tmp_path, config, message):
    path = tmp_path / "continuation.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SpecError, match=message):
        load_config(path)


def test_the_shipped_configs_keep_the_librarys_own_target():
    assert load_config("sac").safeguards.critic_continuation == "residual"
