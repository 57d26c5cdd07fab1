"""The residual algorithms, one table of them: SAC, TD3 and PPO from stable-baselines3, TQC
and CrossQ from sb3-contrib.

Every algorithm in the table has a shipped config and a class; a config naming another is
refused with the valid names; each algorithm trains on the scripted base, resumes from its
checkpoint, and its trained residual reloads as data (JSON + safetensors, CrossQ's
batch-renorm statistics included) to exactly the live model's actions.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from stable_baselines3.common.buffers import NStepReplayBuffer

from residual_bench.env_spec import SpecError, spec_dir
from residual_bench.registration import ENV_ID
from residual_bench.residual.agents import (
    ResidualOffPolicyMixin,
    agent_class,
    build_agent,
    load_agent,
)
from residual_bench.residual.algorithms import ALGORITHM_NAMES, ALGORITHMS, OFF_POLICY_NAMES
from residual_bench.residual.checkpoint import load_residual, read_metadata
from residual_bench.residual.config import ResidualConfig, load_config
from residual_bench.residual.factory import make_env
from residual_bench.residual.train import train_residual

BASE, FEATURES = "scripted", "proprio"  # cheap: no objects, no rendering
FIRST, TOTAL = 150, 300
ACTOR_LEARNING_RATE = 1.0e-5  # not the critic's: the tests tell the two apart


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_config(algo: str) -> ResidualConfig:
    """The shipped config of ``algo``, small enough to train a few hundred steps."""
    config = load_config(algo)
    config.features = FEATURES
    hp = config.hyperparams
    hp["policy_kwargs"] = {**hp.get("policy_kwargs", {}), "net_arch": [16, 16]}
    if ALGORITHMS[algo].off_policy:
        hp.update(buffer_size=1000, learning_starts=50, batch_size=32)
        hp["actor_learning_rate"] = ACTOR_LEARNING_RATE
    else:
        hp.update(n_steps=50, batch_size=50, n_epochs=1)
    config.safeguards = replace(
        config.safeguards,
        warmup_steps=20,
        critic_only_steps=100 if ALGORITHMS[algo].off_policy else 0,
        exploration_ramp_steps=50 if ALGORITHMS[algo].off_policy else 0,
        feature_noise=None,
    )
    config.train = replace(config.train, checkpoint_every=FIRST)
    return config


def train(algo: str, out: Path, steps: int, resume: bool = False) -> Path:
    return train_residual(
        BASE,
        small_config(algo),
        out,
        steps=steps,
        seed=1,
        suite="nominal",
        features=FEATURES,
        eval_every=0,
        progress=False,
        tensorboard=False,
        resume=resume,
    )


@pytest.fixture(scope="module", params=["tqc", "crossq"])
def resumed_run(request, tmp_path_factory) -> tuple[str, Path]:
    """A run of ``FIRST`` steps, stopped after its checkpoint, resumed to ``TOTAL``."""
    algo = request.param
    out = tmp_path_factory.mktemp(algo)
    train(algo, out, FIRST)
    (out / "residual" / "residual.json").unlink()  # as if it had stopped after the checkpoint
    (out / "residual" / "policy.safetensors").unlink()
    (out / "residual").rmdir()
    train(algo, out, TOTAL, resume=True)
    return algo, out


def test_every_algorithm_of_the_table_has_a_shipped_config_and_a_class():
    for name, algorithm in ALGORITHMS.items():
        assert load_config(name).algo == name
        cls = agent_class(name)
        assert issubclass(cls, algorithm.sb3_class)
        assert issubclass(cls, ResidualOffPolicyMixin) == algorithm.off_policy
    assert {"tqc", "crossq"} <= set(OFF_POLICY_NAMES)


def test_the_shipped_tqc_and_crossq_configs_keep_sacs_alpha_features_safeguards_and_budget():
    sac = load_config("sac")
    for name in ("tqc", "crossq"):
        config = load_config(name)
        assert (config.alpha, config.features) == (sac.alpha, sac.features)
        assert (config.safeguards, config.train) == (sac.safeguards, sac.train)
    tqc = load_config("tqc").hyperparams
    assert tqc["top_quantiles_to_drop_per_net"] == 2
    assert (tqc["policy_kwargs"]["n_quantiles"], tqc["policy_kwargs"]["n_critics"]) == (25, 2)
    crossq = load_config("crossq").hyperparams
    assert (crossq["policy_delay"], crossq["batch_size"]) == (3, 256)
    assert "tau" not in crossq  # no target network


def test_an_unknown_algo_in_a_config_is_refused_naming_the_valid_ones(tmp_path):
    data = yaml.safe_load((spec_dir("baselines") / "sac.yaml").read_text())
    data["algo"] = "ddpg"
    path = tmp_path / "ddpg.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match="algo must be one of") as err:
        load_config(path)
    assert all(name in str(err.value) for name in ALGORITHM_NAMES)
    assert "tqc" in str(err.value) and "crossq" in str(err.value)


def test_crossq_with_image_features_is_refused_naming_the_features_it_can_use(tmp_path):
    path = tmp_path / "crossq-global.yaml"
    path.write_text("algo: crossq\nfeatures: global\n")
    with pytest.raises(SpecError, match="features: global needs an image policy.*proprio"):
        load_config(path)


def test_the_off_policy_safeguards_are_refused_for_an_on_policy_algorithm(tmp_path):
    path = tmp_path / "ppo-penalty.yaml"
    path.write_text("algo: ppo\nsafeguards: {actor_penalty: 0.4}\n")
    with pytest.raises(SpecError, match="off-policy algorithms .*tqc, crossq.* not ppo"):
        load_config(path)


@pytest.mark.parametrize("value", [0, 2.5, True, 51, "3"])
def test_n_step_returns_must_be_a_small_positive_integer(tmp_path, value):
    path = tmp_path / "sac-nstep.yaml"
    path.write_text(yaml.safe_dump({"algo": "sac", "hyperparams": {"n_step_returns": value}}))
    with pytest.raises(SpecError, match="n_step_returns must be an integer from 1 to 50"):
        load_config(path)


def test_n_step_returns_are_refused_for_an_on_policy_algorithm(tmp_path):
    path = tmp_path / "ppo-nstep.yaml"
    path.write_text("algo: ppo\nhyperparams: {n_step_returns: 3}\n")
    with pytest.raises(SpecError, match="n_step_returns applies to the off-policy"):
        load_config(path)


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "must be a number > 0"), ("fast", "must be a number > 0"), ("1e-5", "write 1.0e-5")],
)
def test_the_actors_learning_rate_must_be_a_positive_number(tmp_path, value, message):
    path = tmp_path / "sac-actor-lr.yaml"
    path.write_text(yaml.safe_dump({"algo": "sac", "hyperparams": {"actor_learning_rate": value}}))
    with pytest.raises(SpecError, match=message):
        load_config(path)


def test_the_actors_learning_rate_is_refused_for_an_on_policy_algorithm(tmp_path):
    path = tmp_path / "ppo-actor-lr.yaml"
    path.write_text("algo: ppo\nhyperparams: {actor_learning_rate: 1.0e-5}\n")
    with pytest.raises(SpecError, match="actor_learning_rate applies to the off-policy"):
        load_config(path)


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_the_actor_learns_at_its_own_rate_and_the_critic_at_sb3s(algo):
    env = make_env(ENV_ID, base=BASE, features=FEATURES)
    try:
        config = small_config(algo)
        config.safeguards.critic_only_steps = 0
        model = build_agent(config, env, seed=0)
        model.learn(60)
    finally:
        env.close()
    assert [g["lr"] for g in model.actor.optimizer.param_groups] == [ACTOR_LEARNING_RATE]
    critic_rate = config.hyperparams["learning_rate"]
    assert [g["lr"] for g in model.critic.optimizer.param_groups] == [critic_rate]


@pytest.mark.parametrize("algo", ["sac", "tqc"])
def test_n_step_returns_give_sb3s_n_step_buffer_discounting_with_the_agents_gamma(algo):
    config = replace(
        load_config(algo),
        hyperparams={**load_config(algo).hyperparams, "n_step_returns": 3, "gamma": 0.9},
    )
    env = make_env(ENV_ID, base=BASE, features=FEATURES)
    try:
        model = build_agent(config, env, seed=0)
    finally:
        env.close()
    assert isinstance(model.replay_buffer, NStepReplayBuffer)
    assert (model.replay_buffer.n_steps, model.replay_buffer.gamma) == (3, 0.9)


def test_each_algorithm_trains_on_the_scripted_base_and_resumes_from_its_checkpoint(
    resumed_run,
):
    algo, out = resumed_run
    meta = read_metadata(out / "residual")
    assert meta["algo"] == algo and meta["train_steps"] == TOTAL
    assert meta["policy"]["algo"] == algo
    model = load_agent(algo, str(out / "checkpoint" / "model.zip"))  # our own checkpoint
    assert type(model) is agent_class(algo) and model.num_timesteps == TOTAL
    # The safeguards survive the resume (train_residual sets them again from the config).
    assert (model.warmup_steps, model.critic_only_steps) == (20, 100)
    # So does the actor's own learning rate: the resumed updates stepped with it.
    assert [g["lr"] for g in model.actor.optimizer.param_groups] == [ACTOR_LEARNING_RATE]
    assert [g["lr"] for g in model.critic.optimizer.param_groups] != [ACTOR_LEARNING_RATE]


def test_the_trained_residual_reloads_as_data_to_the_live_models_actions(resumed_run):
    algo, out = resumed_run
    live = load_agent(algo, str(out / "checkpoint" / "model.zip"))
    residual = load_residual(out / "residual")
    space = live.observation_space
    rng = np.random.default_rng(0)
    observations = rng.normal(0.0, 1.0, (100, *space.shape)).astype(np.float32)
    expected, _ = live.predict(observations, deterministic=True)
    actions = residual.act(observations)
    np.testing.assert_array_equal(actions, expected)
    assert np.any(actions != 0.0), "a trained residual that still acts zero proves nothing"
    live_state, data_state = live.policy.state_dict(), residual.policy.state_dict()
    assert live_state.keys() == data_state.keys()
    for key, tensor in live_state.items():
        assert torch.equal(tensor, data_state[key]), key


def test_crossqs_batch_renorm_statistics_travel_with_its_weights(resumed_run):
    algo, out = resumed_run
    if algo != "crossq":
        pytest.skip("only CrossQ has batch renormalisation")
    state = load_residual(out / "residual").policy.state_dict()
    steps = [int(v) for k, v in state.items() if k.endswith(".steps")]
    means = [v for k, v in state.items() if k.endswith(".ra_mean")]
    assert steps and all(n > 0 for n in steps), "no batch-renorm update was saved"
    assert any(torch.count_nonzero(m) for m in means), "running means still at their init"
