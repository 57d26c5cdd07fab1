"""The oracle residual and the oracle episodes that seed a residual's replay buffer.

Specified here: the oracle makes the base act as the privileged expert where alpha allows,
and corrects nothing on a base that is the expert; its episodes land in a single-env replay
buffer as the agent's own transitions would, and beside the model for the imitation term;
configs that ask for them where they cannot apply are refused, naming the fields.
"""

import numpy as np
import pytest
import torch
import yaml

from residual_bench.env_spec import SpecError
from residual_bench.policies.registry import make_controller
from residual_bench.residual import make_residual_env
from residual_bench.residual.agents import build_agent, load_agent
from residual_bench.residual.config import load_config
from residual_bench.residual.oracle import ORACLE_EXPERT, OracleResidual, seed_replay_buffer


@pytest.fixture
def residual_env():
    envs = []

    def _make(base="scripted", alpha=(2.0, 2.0, 2.0)):
        env = make_residual_env(base, "proprio", alpha, suite="nominal")
        envs.append(env)
        return env

    yield _make
    for env in envs:
        env.close()


def test_with_full_authority_the_base_executes_the_experts_actions(residual_env):
    env = residual_env()
    oracle = OracleResidual(env)
    shadow = make_controller(ORACLE_EXPERT, env.unwrapped)  # a second, independent expert
    env.reset(seed=3)
    oracle.reset()
    shadow.reset(env.last_raw_observation[1])
    for _ in range(30):
        raw_obs, raw_info = env.last_raw_observation
        expert_action, _ = shadow.act(raw_obs, {**raw_info, "base_stalled": False})
        _, _, _, _, info = env.step(oracle())
        np.testing.assert_allclose(info["executed_action"], expert_action, atol=1e-5)


def test_on_a_base_that_is_the_expert_the_oracle_corrects_nothing(residual_env):
    env = residual_env(base=ORACLE_EXPERT)
    oracle = OracleResidual(env)
    env.reset(seed=1)
    oracle.reset()
    for _ in range(30):
        r = oracle()
        np.testing.assert_array_equal(r, np.zeros(7))
        env.step(r)


def test_where_alpha_is_zero_the_oracle_outputs_zero(residual_env):
    env = residual_env(alpha=(0.3, 0.0, 2.0))
    oracle = OracleResidual(env)
    env.reset(seed=2)
    oracle.reset()
    for _ in range(10):
        r = oracle()
        assert np.all(r[3:6] == 0.0) and np.all(np.abs(r) <= 1.0)
        env.step(r)


def small_sac():
    config = load_config("sac")
    config.features = "proprio"
    config.hyperparams.update(buffer_size=2000, learning_starts=10, batch_size=16)
    return config


def test_oracle_episodes_enter_the_buffer_as_transitions_and_beside_the_model(residual_env):
    env = residual_env(alpha=(0.3, 0.3, 2.0))
    model = build_agent(small_sac(), env, seed=0)
    added = seed_replay_buffer(model, env, episodes=1, seed=0)
    buffer = model.replay_buffer
    assert added == buffer.pos > 0
    assert np.abs(buffer.actions[:added]).max() > 0.3, "the oracle corrects the scripted base"
    assert buffer.dones[added - 1, 0] == 1.0  # the episode's end
    chained = buffer.next_observations[: added - 1], buffer.observations[1:added]
    np.testing.assert_array_equal(*chained)  # one episode: each step starts where the last ended
    observations, corrections = model.oracle_demonstrations
    assert observations.shape == (added, env.observation_space.shape[0])
    np.testing.assert_allclose(corrections.numpy(), buffer.actions[:added, 0])


def test_a_resumed_run_collects_the_demonstrations_without_adding_them_twice(residual_env):
    env = residual_env(alpha=(0.3, 0.3, 2.0))
    model = build_agent(small_sac(), env, seed=0)
    added = seed_replay_buffer(model, env, episodes=1, seed=0, add_to_buffer=False)
    assert model.replay_buffer.pos == 0
    assert len(model.oracle_demonstrations[0]) == added


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"algo": "sac", "safeguards": {"oracle_bc_weight": 1.0}}, "set train.oracle_episodes"),
        ({"algo": "sac", "train": {"oracle_episodes": 5, "n_envs": 2}}, "n_envs 2"),
        ({"algo": "ppo", "train": {"oracle_episodes": 5}}, "off-policy agent"),
    ],
)
def test_oracle_episodes_where_they_cannot_apply_are_refused(tmp_path, config, message):
    path = tmp_path / "oracle.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SpecError, match=message):
        load_config(path)


def imitation_error(model) -> float:
    observations, corrections = model.oracle_demonstrations
    with torch.no_grad():
        return float((model.mean_residual(observations) - corrections).pow(2).mean())


def test_the_imitation_term_pulls_the_actor_towards_the_oracles_corrections(residual_env):
    errors = {}
    for weight in (0.0, 5.0):
        env = residual_env(alpha=(0.3, 0.3, 2.0))
        config = small_sac()
        config.safeguards.critic_only_steps = config.safeguards.warmup_steps = 0
        config.safeguards.exploration_ramp_steps = 0
        config.safeguards.oracle_bc_weight = weight
        # Enough updates for the critic to have a scale: the term is relative to it.
        config.hyperparams.update(train_freq=1, gradient_steps=6)
        model = build_agent(config, env, seed=0)
        seed_replay_buffer(model, env, episodes=1, seed=0)
        before = imitation_error(model)
        model.learn(120)
        errors[weight] = imitation_error(model) / before
    assert errors[5.0] < 0.8 * errors[0.0]


def test_the_demonstrations_stay_out_of_the_checkpoint(residual_env, tmp_path):
    env = residual_env(alpha=(0.3, 0.3, 2.0))
    model = build_agent(small_sac(), env, seed=0)
    seed_replay_buffer(model, env, episodes=1, seed=0)
    model.save(tmp_path / "model.zip")
    reloaded = load_agent("sac", str(tmp_path / "model.zip"))  # our own checkpoint
    assert reloaded.oracle_demonstrations is None
