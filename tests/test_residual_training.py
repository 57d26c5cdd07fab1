"""Training residuals: the shipped configs, the agents' safeguards, ``train_residual`` and the
trained residual on disk.

An untrained (zero-initialised) residual reproduces the base exactly; warm-up transitions are
the base alone; the critic-only phase leaves the actor as it was; a training run writes its
learning curve, a checkpoint it can resume from and a residual whose metadata says what it was
trained on; a damaged residual directory gives one clear error.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from residual_bench.env_spec import SpecError, spec_dir
from residual_bench.residual import make_residual_env
from residual_bench.residual.agents import (
    GatedResidualSAC,
    ResidualOffPolicyMixin,
    ResidualSAC,
    actor_output_layers,
    agent_class,
    build_agent,
    zero_init_output,
)
from residual_bench.residual.algorithms import ALGORITHM_NAMES, ALGORITHMS, OFF_POLICY_NAMES
from residual_bench.residual.checkpoint import RESIDUAL_FILES, load_residual, read_metadata
from residual_bench.residual.config import ResidualConfig, config_names, load_config
from residual_bench.residual.train import train_residual
from residual_bench.run_directory import (
    RunInUseError,
    run_in_use,
    run_lock,
    write_file_atomically,
)
from residual_bench.training.learning_curve import PROGRESS_FIELDS

BASE, FEATURES = "scripted", "privileged"  # cheap: state observations, no rendering
PROGRESS_HEADER = "timesteps,success_rate,success_ci_low,success_ci_high,wall_s"


def tiny_config(algo: str = "sac", train: dict | None = None, **safeguards) -> ResidualConfig:
    """A shipped config made small enough to train for a few hundred steps in a test."""
    config = load_config(algo)
    config.features = FEATURES
    hp = config.hyperparams
    hp["policy_kwargs"] = {**hp.get("policy_kwargs", {}), "net_arch": [16, 16]}
    if not ALGORITHMS[config.algo].off_policy:
        hp.update(n_steps=32, batch_size=32, n_epochs=1)
    else:
        hp.update(buffer_size=1000, learning_starts=50, batch_size=32)
    off = dict(warmup_steps=0, critic_only_steps=0, exploration_ramp_steps=0, scale_ramp_steps=0)
    config.safeguards = replace(config.safeguards, **{**off, "feature_noise": None, **safeguards})
    config.train = replace(config.train, **{"checkpoint_every": 50, **(train or {})})
    return config


def train(config: ResidualConfig, out: Path, steps: int, seed: int = 3, **kwargs) -> Path:
    """``train_residual`` on the cheap base and features, without progress bar or logs."""
    options = {"eval_every": 50, "eval_episodes": 1, **kwargs}
    return train_residual(
        BASE,
        config,
        out,
        steps=steps,
        seed=seed,
        suite="nominal",
        features=FEATURES,
        progress=False,
        tensorboard=False,
        **options,
    )


def progress_rows(out: Path) -> list[dict[str, str]]:
    with (out / "progress.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return all(torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny networks gain nothing from more threads (``train_residual`` uses one too)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Recorder(gym.Wrapper):
    """Records the residual each step executed (from the residual env's step info)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.residuals: list[np.ndarray] = []

    def step(self, action):
        result = self.env.step(action)
        self.residuals.append(result[-1]["residual_output"])
        return result


@pytest.fixture
def residual_env():
    envs = []

    def _make(features=FEATURES):
        env = make_residual_env(BASE, features, suite="nominal")
        envs.append(env)
        return env

    yield _make
    for env in envs:
        env.close()


def base_observations(env: gym.Env, seed: int = 0, n: int = 20) -> np.ndarray:
    """Observations of the residual env along a base-alone rollout."""
    obs, _ = env.reset(seed=seed)
    observations = [obs]
    for _ in range(n - 1):
        obs, *_ = env.step(np.zeros(7))
        observations.append(obs)
    return np.array(observations)


# -- configs -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", config_names())
def test_every_shipped_config_loads(name):
    config = load_config(name)
    assert config.name == name
    assert config.algo in ALGORITHMS
    assert config.features in ("objects", "privileged", "global", "proprio")
    assert 1 <= len(config.alpha) <= 3


def test_sac_td3_and_ppo_configs_are_shipped():
    assert set(ALGORITHM_NAMES) <= set(config_names())


def test_scratch_is_sac_with_full_authority_on_the_zero_base_and_refuses_any_other(tmp_path):
    config = load_config("scratch")
    assert config.algo == "sac" and config.base == "zero" and config.alpha == [1.0, 1.0, 1.0]
    assert not config.safeguards.zero_init and config.safeguards.actor_penalty == 0
    with pytest.raises(ValueError, match="made for the 'zero' base.*--base zero"):
        train_residual("scripted", "scratch", tmp_path / "run", steps=10, progress=False)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_the_zero_base_lets_the_agent_act_alone():
    env = make_residual_env("zero", "privileged", alpha=(1.0, 1.0, 1.0), suite="nominal")
    env.reset(seed=0)
    r = np.array([0.5, -0.5, 0.2, 0.0, 0.0, 0.1, -1.0], dtype=np.float32)
    _, _, _, _, info = env.step(r)
    np.testing.assert_array_equal(info["base_action"], np.zeros(7))
    np.testing.assert_allclose(info["executed_action"], r, rtol=1e-6)
    env.close()


def test_an_unknown_config_name_is_refused_listing_the_shipped_ones():
    with pytest.raises(ValueError, match="valid choices: .*sac") as err:
        load_config("dqn")
    assert "td3" in str(err.value) and "ppo" in str(err.value)


def modified(change) -> dict:
    """The shipped ``sac.yaml`` with ``change`` applied to it."""
    data = yaml.safe_load((spec_dir("baselines") / "sac.yaml").read_text())
    change(data)
    return data


MALFORMED = {
    "unknown top-level field": (lambda d: d.update(learning_rate=1e-3), "learning_rate"),
    "misspelt safeguard": (
        lambda d: d["safeguards"].update(warmup_step=10),
        "safeguards.warmup_step",
    ),
    "misspelt train field": (lambda d: d["train"].update(eval_evry=10), "train.eval_evry"),
    "unknown algo": (lambda d: d.update(algo="dqn"), "algo"),
    "no algo": (lambda d: d.pop("algo"), "algo"),
    "unknown features": (lambda d: d.update(features="pixels"), "features"),
    "negative alpha": (lambda d: d.update(alpha=[0.1, -0.1, 0.1]), "alpha"),
    "four alphas": (lambda d: d.update(alpha=[0.1] * 4), "alpha"),
    "alpha a word": (lambda d: d.update(alpha="big"), "alpha"),
    "alpha a boolean": (lambda d: d.update(alpha=True), "alpha"),
    "negative warm-up": (
        lambda d: d["safeguards"].update(warmup_steps=-5),
        "safeguards.warmup_steps",
    ),
    "negative penalty": (
        lambda d: d["safeguards"].update(magnitude_penalty=-0.1),
        "safeguards.magnitude_penalty",
    ),
    "zero_init not a boolean": (
        lambda d: d["safeguards"].update(zero_init="yes"),
        "safeguards.zero_init",
    ),
    "feature_noise not a mapping": (
        lambda d: d["safeguards"].update(feature_noise=0.01),
        "safeguards.feature_noise",
    ),
    "negative steps": (lambda d: d["train"].update(steps=-1), "train.steps"),
    "unknown reward": (lambda d: d["train"].update(reward="shaped"), "train.reward"),
    "negative actor penalty": (
        lambda d: d["safeguards"].update(actor_penalty=-1.0),
        "safeguards.actor_penalty",
    ),
    "actor penalty on ppo": (
        lambda d: d.update(algo="ppo") or d["safeguards"].update(output_decay=0.0),
        "actor_penalty",
    ),
    "safeguards not a mapping": (lambda d: d.update(safeguards=[1, 2]), "safeguards"),
    "hyperparams not a mapping": (lambda d: d.update(hyperparams=[1, 2]), "hyperparams"),
    "misspelt feature_noise field": pytest.param(
        lambda d: d["safeguards"].update(feature_noise={"position_std": 0.01}),
        "feature_noise",
    ),
}


@pytest.mark.parametrize("change, field", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_config_is_refused_naming_the_file_and_the_field(tmp_path, change, field):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(modified(change)))
    with pytest.raises(SpecError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert field in str(err.value)


def test_malformed_yaml_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("algo: [sac\nfeatures: objects\n")
    with pytest.raises(SpecError, match="(?i)yaml") as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_a_config_that_is_not_a_mapping_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- sac\n- td3\n")
    with pytest.raises(SpecError, match="mapping") as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_a_missing_config_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(ValueError, match="absent.yaml"):
        load_config(path)


def test_a_config_file_with_only_an_algo_gets_the_defaults(tmp_path):
    path = tmp_path / "minimal.yaml"
    path.write_text("algo: td3\n")
    config = load_config(path)
    assert config.name == "minimal" and config.algo == "td3"
    assert config.safeguards.zero_init is True
    assert config.train.steps > 0


# -- agents --------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ALGORITHM_NAMES)
def test_a_zero_initialised_agent_acts_exactly_zero(residual_env, algo):
    env = residual_env()
    model = build_agent(tiny_config(algo), env, seed=0)
    observations = base_observations(env)
    actions, _ = model.predict(observations, deterministic=True)
    np.testing.assert_array_equal(actions, np.zeros((len(observations), 7)))
    for obs in observations[:3]:
        action, _ = model.predict(obs, deterministic=True)
        np.testing.assert_array_equal(action, np.zeros(7))


@pytest.mark.parametrize("algo", ALGORITHM_NAMES)
def test_an_untrained_residual_reproduces_the_base(residual_env, algo):
    env = residual_env()
    model = build_agent(tiny_config(algo), env, seed=0)
    obs, _ = env.reset(seed=1)
    for _ in range(30):
        action, _ = model.predict(obs, deterministic=True)
        obs, _, _, _, info = env.step(action)
        np.testing.assert_array_equal(info["executed_action"], info["base_action"])


@pytest.mark.parametrize("algo", ALGORITHM_NAMES)
def test_without_zero_init_an_untrained_residual_is_not_zero(residual_env, algo):
    env = residual_env()
    model = build_agent(tiny_config(algo, zero_init=False), env, seed=0)
    actions, _ = model.predict(base_observations(env, n=5), deterministic=True)
    assert np.all(np.any(actions != 0.0, axis=1))


def test_zero_init_also_zeroes_the_td3_target_actor(residual_env):
    model = build_agent(tiny_config("td3", zero_init=False), residual_env(), seed=0)
    zero_init_output(model)
    for actor in (model.actor, model.actor_target):
        layer = actor.mu[-2]
        assert torch.count_nonzero(layer.weight) == 0 and torch.count_nonzero(layer.bias) == 0


def test_a_global_features_agent_gets_a_narrow_cnn_without_changing_its_config(residual_env):
    config = tiny_config("sac")
    config.features = "global"
    before = json.dumps(config.hyperparams, sort_keys=True)
    model = build_agent(config, residual_env(features="global"), seed=0)
    assert model.actor.features_extractor.features_dim == 64 + 27  # CNN output + vector
    assert json.dumps(config.hyperparams, sort_keys=True) == before


@pytest.mark.parametrize("algo", OFF_POLICY_NAMES)
def test_the_off_policy_agents_are_the_residual_classes(residual_env, algo):
    model = build_agent(tiny_config(algo, warmup_steps=7, critic_only_steps=9), residual_env(), 0)
    assert type(model) is agent_class(algo) and isinstance(model, ResidualOffPolicyMixin)
    assert isinstance(model, ALGORITHMS[algo].sb3_class)
    assert (model.warmup_steps, model.critic_only_steps) == (7, 9)


@pytest.mark.parametrize("algo", OFF_POLICY_NAMES)
def test_warmup_transitions_are_the_base_alone(residual_env, algo):
    env = Recorder(residual_env())
    model = build_agent(tiny_config(algo, warmup_steps=30), env, seed=0)
    model.learn(60)
    stored = model.replay_buffer.actions[:60, 0]
    np.testing.assert_array_equal(stored[:30], 0.0)
    np.testing.assert_array_equal(np.array(env.residuals[:30]), 0.0)
    # After the warm-up, SB3's own random exploration: no residual is exactly zero.
    assert np.all(np.any(stored[30:] != 0.0, axis=1))
    np.testing.assert_allclose(np.array(env.residuals[30:]), stored[30:], atol=1e-6)


def test_progressive_exploration_switches_the_residual_on_gradually(residual_env):
    warmup, ramp = 10, 100
    model = build_agent(
        tiny_config("sac", warmup_steps=warmup, exploration_ramp_steps=ramp), residual_env(), 0
    )
    model.learn(warmup + ramp + 20)
    active = np.any(model.replay_buffer.actions[: warmup + ramp + 20, 0] != 0.0, axis=1)
    assert not active[:warmup].any(), "the residual acted during the warm-up"
    assert active[warmup + ramp :].all(), "the residual is not always on after the ramp"
    first, second = active[warmup : warmup + ramp // 2], active[warmup + ramp // 2 : warmup + ramp]
    assert 0 < first.sum() < second.sum() < len(second)


@pytest.mark.parametrize("algo", OFF_POLICY_NAMES)
def test_the_critic_only_phase_trains_the_critic_and_leaves_the_actor_unchanged(residual_env, algo):
    model = build_agent(tiny_config(algo, critic_only_steps=100), residual_env(), seed=0)
    actor, critic = params(model.actor), params(model.critic)
    statistics = [b.clone() for b in model.actor.buffers()]  # CrossQ's batch renormalisation
    log_ent_coef = getattr(model, "log_ent_coef", None)  # SAC, TQC, CrossQ
    ent_coef = None if log_ent_coef is None else log_ent_coef.detach().clone()
    model.learn(80)  # 30 updates after learning_starts=50, all inside the critic-only phase
    assert model.num_timesteps == 80
    assert same(actor, model.actor), "the actor changed during the critic-only phase"
    assert all(torch.equal(a, b) for a, b in zip(statistics, model.actor.buffers(), strict=True))
    assert not same(critic, model.critic), "the critic did not learn"
    if ent_coef is not None:
        assert torch.equal(model.log_ent_coef, ent_coef)
    model.learn(40, reset_num_timesteps=False)
    assert not same(actor, model.actor), "the actor never learns after the critic-only phase"


def test_the_td3_critic_only_phase_leaves_the_target_actor_unchanged(residual_env):
    model = build_agent(tiny_config("td3", critic_only_steps=100), residual_env(), seed=0)
    target = params(model.actor_target)
    model.learn(80)
    assert same(target, model.actor_target)


# -- train_residual --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, ResidualConfig]:
    """A finished 100-step SAC run with warm-up and critic-only phases: (out, config)."""
    out = tmp_path_factory.mktemp("run")
    config = tiny_config("sac", warmup_steps=20, critic_only_steps=60)
    train(config, out, steps=100, seed=3)
    return out, config


FIRST_RUN_WALL_S = 5000.0


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> Path:
    """A run interrupted after its first 50-step chunk, then started again to 100 steps."""
    out = tmp_path_factory.mktemp("resumed")
    train(tiny_config("sac", warmup_steps=20), out, steps=50)
    shutil.rmtree(out / "residual")  # as if it had stopped right after the checkpoint
    curve = (out / "progress.csv").read_text().splitlines()
    head, row = curve[0], curve[1].rsplit(",", 1)[0]
    (out / "progress.csv").write_text(f"{head}\n{row},{FIRST_RUN_WALL_S}\n")  # a long first run
    train(tiny_config("sac", warmup_steps=20), out, steps=100, resume=True)
    return out


def test_training_writes_the_learning_curve(trained):
    out, _ = trained
    assert (out / "progress.csv").read_text().splitlines()[0] == PROGRESS_HEADER
    assert ",".join(PROGRESS_FIELDS) == PROGRESS_HEADER
    rows = progress_rows(out)
    assert [int(row["timesteps"]) for row in rows] == [50, 100]
    for row in rows:
        rate, lo, hi = (float(row[k]) for k in PROGRESS_FIELDS[1:4])
        assert 0.0 <= lo <= rate <= hi <= 1.0
        assert float(row["wall_s"]) >= 0.0


def test_training_writes_a_checkpoint_at_the_last_step(trained):
    out, _ = trained
    checkpoint = out / "checkpoint"
    assert (checkpoint / "model.zip").is_file()
    assert (checkpoint / "replay_buffer.pkl").is_file()
    state = json.loads((checkpoint / "state.json").read_text())
    assert state == {"timesteps": 100, "n_envs": 1, "env_id": "ResidualPickPlace-v1"}


def test_the_trained_residual_says_what_it_was_trained_on(trained):
    out, config = trained
    meta = read_metadata(out / "residual")
    assert meta["algo"] == "sac" and meta["name"] == "sac"
    assert meta["base"] == BASE
    assert meta["env_id"] == "ResidualPickPlace-v1"
    assert meta["features"] == FEATURES
    assert meta["alpha"] == config.alpha
    assert meta["train_seed"] == 3
    assert meta["train_steps"] == 100
    assert meta["train_suite"] == "nominal"
    assert meta["config"]["safeguards"]["critic_only_steps"] == 60
    assert meta["config"]["hyperparams"]["policy_kwargs"]["net_arch"] == [16, 16]


def test_a_loaded_residual_acts_in_its_residual_env(trained):
    out, _ = trained
    agent = load_residual(out / "residual")
    assert (agent.base, agent.features, agent.train_seed) == (BASE, FEATURES, 3)
    env = make_residual_env(agent.base, agent.features, tuple(agent.alpha), **agent.env_kwargs())
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(5):
            action = agent.act(obs)
            assert action.shape == (7,)
            assert np.all(np.abs(action) <= 1.0)
            np.testing.assert_array_equal(agent.act(obs), action)  # deterministic
            obs, *_ = env.step(action)
    finally:
        env.close()


def test_the_finished_residual_is_the_last_checkpoint(trained, residual_env):
    out, _ = trained
    agent = load_residual(out / "residual")
    checkpointed = ResidualSAC.load(out / "checkpoint" / "model.zip", device="cpu")
    observations = base_observations(residual_env(), seed=2, n=10)
    for obs in observations:
        # One observation at a time on both sides: a batched matmul may round differently.
        expected, _ = checkpointed.predict(obs, deterministic=True)
        np.testing.assert_array_equal(agent.act(obs), expected)


def test_training_into_a_finished_run_is_refused_and_changes_nothing(trained):
    out, config = trained
    curve = (out / "progress.csv").read_text()
    meta = (out / "residual" / "residual.json").read_text()
    with pytest.raises(FileExistsError, match="residual"):
        train(config, out, steps=150)
    assert (out / "progress.csv").read_text() == curve
    assert (out / "residual" / "residual.json").read_text() == meta


def buffer_rewards(out: Path) -> np.ndarray:
    """The rewards in a finished run's replay buffer (the run this test wrote)."""
    model = ResidualSAC.load(out / "checkpoint" / "model.zip", device="cpu")
    model.load_replay_buffer(out / "checkpoint" / "replay_buffer.pkl")
    buffer = model.replay_buffer
    return buffer.rewards[: buffer.pos].ravel()


def test_a_sparse_reward_run_learns_from_success_alone_and_says_so(tmp_path):
    rewards = {}
    for mode in ("dense", "sparse"):
        config = tiny_config("sac", magnitude_penalty=0.0, train={"reward": mode})
        train(config, tmp_path / mode, steps=100)
        rewards[mode] = buffer_rewards(tmp_path / mode)
        assert read_metadata(tmp_path / mode / "residual")["config"]["train"]["reward"] == mode
    assert len(rewards["sparse"]) == len(rewards["dense"]) == 100
    assert set(np.unique(rewards["sparse"])) <= {0.0, 1.0}
    shaped = (rewards["dense"] > 0) & (rewards["dense"] < 1)
    assert shaped.any(), "the dense reward pays for reaching before anything succeeds"


def test_the_shipped_configs_train_on_the_dense_reward_unless_they_say_otherwise():
    assert load_config("sac").train.reward == "dense"


def test_an_interrupted_run_continues_from_its_checkpoint(resumed):
    meta = read_metadata(resumed / "residual")
    assert meta["train_steps"] == 100
    timesteps = [int(row["timesteps"]) for row in progress_rows(resumed)]
    assert timesteps == [50, 100], "a resumed run must neither repeat nor skip evaluations"
    state = json.loads((resumed / "checkpoint" / "state.json").read_text())
    assert state == {"timesteps": 100, "n_envs": 1, "env_id": "ResidualPickPlace-v1"}


def test_a_resumed_runs_wall_clock_adds_to_the_first_runs(resumed):
    first, second = (float(row["wall_s"]) for row in progress_rows(resumed))
    assert first == FIRST_RUN_WALL_S
    assert FIRST_RUN_WALL_S < second < FIRST_RUN_WALL_S + 600


@pytest.fixture
def interrupted(tmp_path) -> Path:
    """A run stopped right after its first 50-step checkpoint."""
    out = tmp_path / "run"
    train(tiny_config("sac", warmup_steps=20), out, steps=50)
    shutil.rmtree(out / "residual")
    return out


def test_a_run_with_a_checkpoint_is_continued_only_when_asked_to(interrupted):
    curve = (interrupted / "progress.csv").read_text()
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config("sac", warmup_steps=20), interrupted, steps=100)
    assert (interrupted / "progress.csv").read_text() == curve


def test_a_checkpoint_another_user_wrote_is_never_unpickled(interrupted, monkeypatch):
    monkeypatch.setattr(os, "getuid", lambda: os.stat(interrupted).st_uid + 1)
    with pytest.raises(PermissionError, match="this user"):
        train(tiny_config("sac", warmup_steps=20), interrupted, steps=100, resume=True)


def test_a_symlink_in_a_checkpoint_is_never_followed(interrupted, tmp_path):
    buffer = interrupted / "checkpoint" / "replay_buffer.pkl"
    buffer.rename(tmp_path / "elsewhere.pkl")
    buffer.symlink_to(tmp_path / "elsewhere.pkl")
    with pytest.raises(PermissionError, match="replay_buffer.pkl: not a plain file"):
        train(tiny_config("sac", warmup_steps=20), interrupted, steps=100, resume=True)


def test_a_checkpoint_write_killed_between_its_renames_is_resumed_not_restarted(interrupted):
    checkpoint = interrupted / "checkpoint"
    checkpoint.rename(interrupted / ".checkpoint.old")  # moved aside, the new one not yet in
    train(tiny_config("sac", warmup_steps=20), interrupted, steps=100, resume=True)
    timesteps = [int(row["timesteps"]) for row in progress_rows(interrupted)]
    assert timesteps == [50, 100], "the run went on from step 50, not from 0"


def test_a_run_whose_checkpoint_vanished_is_not_silently_restarted(interrupted):
    shutil.rmtree(interrupted / "checkpoint")
    with pytest.raises(FileNotFoundError, match="learning curve"):
        train(tiny_config("sac", warmup_steps=20), interrupted, steps=100, resume=True)


def test_a_resumed_run_keeps_its_replay_buffer(resumed):
    model = ResidualSAC.load(resumed / "checkpoint" / "model.zip", device="cpu")
    model.load_replay_buffer(resumed / "checkpoint" / "replay_buffer.pkl")
    assert model.replay_buffer.size() == 100


@pytest.mark.parametrize(
    "algo, checkpoint_every", [("sac", 30), ("ppo", 50)], ids=["checkpoint_every=30", "ppo"]
)
def test_the_learning_curve_has_a_row_every_eval_every_steps(tmp_path, algo, checkpoint_every):
    config = tiny_config(algo, train={"checkpoint_every": checkpoint_every})
    train(config, tmp_path, steps=150, eval_every=50)
    assert len(progress_rows(tmp_path)) == 3


def test_training_refuses_an_unknown_base_or_config(tmp_path):
    with pytest.raises(ValueError, match="scripted"):
        train_residual("no-such-base", "sac", tmp_path / "a", progress=False, tensorboard=False)
    with pytest.raises(ValueError, match="sac"):
        train_residual(BASE, "no-such-config", tmp_path / "b", progress=False, tensorboard=False)


def test_a_second_process_training_into_the_same_run_is_refused_and_changes_nothing(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = sorted(p.name for p in out.iterdir())
        with pytest.raises(RunInUseError, match=f"another process \\(pid {holder.pid}\\)"):
            train(tiny_config("sac"), out, steps=50)
        assert sorted(p.name for p in out.iterdir()) == before
    finally:
        holder.kill()
        holder.wait()
    # The lock dies with its holder: the run can be trained at once.
    train(tiny_config("sac"), out, steps=50, eval_every=50)
    assert len(progress_rows(out)) == 1


def test_a_file_write_that_fails_midway_leaves_the_old_file_whole(tmp_path):
    path = write_file_atomically(tmp_path / "round.pt", lambda f: f.write(b"finished work"))

    def killed_midway(f):
        f.write(b"half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_file_atomically(path, killed_midway)
    assert path.read_bytes() == b"finished work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["round.pt"]


def test_a_run_lock_is_released_when_its_holder_is_done(tmp_path):
    assert not run_in_use(tmp_path / "never-trained")
    with run_lock(tmp_path), pytest.raises(RunInUseError, match=str(tmp_path)):
        assert run_in_use(tmp_path)
        with run_lock(tmp_path):
            pass
    assert not run_in_use(tmp_path)
    with run_lock(tmp_path):
        pass


HOLD_LOCK = """
import sys, time
from residual_bench.run_directory import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


# -- a damaged residual directory ------------------------------------------------------------


@pytest.fixture
def residual_copy(trained, tmp_path) -> Path:
    """A copy of the trained residual directory, free to damage."""
    return Path(shutil.copytree(trained[0] / "residual", tmp_path / "residual"))


def rewrite_metadata(path: Path, **changes) -> None:
    meta = json.loads((path / "residual.json").read_text())
    meta.update(changes)
    (path / "residual.json").write_text(json.dumps(meta))


def test_an_intact_copy_loads(residual_copy):
    assert load_residual(residual_copy).metadata["base"] == BASE


@pytest.mark.parametrize("load", [read_metadata, load_residual])
def test_a_missing_residual_is_file_not_found(tmp_path, load):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "nowhere")


@pytest.mark.parametrize("load", [read_metadata, load_residual])
def test_an_empty_directory_is_not_a_trained_residual(tmp_path, load):
    with pytest.raises(ValueError, match="not a trained residual"):
        load(tmp_path)


def test_a_trained_residual_is_data_only(residual_copy):
    assert sorted(p.name for p in residual_copy.iterdir()) == sorted(RESIDUAL_FILES)


def test_a_directory_without_its_metadata_is_not_a_trained_residual(residual_copy):
    (residual_copy / "residual.json").unlink()
    with pytest.raises(ValueError, match="not a trained residual"):
        load_residual(residual_copy)


def test_a_directory_without_its_weights_says_so(residual_copy):
    (residual_copy / "policy.safetensors").unlink()
    with pytest.raises(ValueError, match="no policy.safetensors"):
        load_residual(residual_copy)


def test_a_file_is_not_a_trained_residual(residual_copy):
    with pytest.raises(ValueError, match="not a trained residual"):
        load_residual(residual_copy / "policy.safetensors")


def test_bad_json_metadata_is_refused(residual_copy):
    (residual_copy / "residual.json").write_text('{"format": "residual-bench-residual",')
    with pytest.raises(ValueError, match="not valid JSON"):
        load_residual(residual_copy)


def test_metadata_that_is_not_a_mapping_is_refused(residual_copy):
    (residual_copy / "residual.json").write_text("[1, 2, 3]")
    with pytest.raises(ValueError, match="format"):
        read_metadata(residual_copy)


def test_metadata_of_another_format_is_refused(residual_copy):
    rewrite_metadata(residual_copy, format="sb3-zoo")
    with pytest.raises(ValueError, match="not a residual-bench residual"):
        load_residual(residual_copy)


@pytest.mark.parametrize("version", [1, 2, 0, "3"])
def test_metadata_of_another_version_is_refused(residual_copy, version):
    rewrite_metadata(residual_copy, version=version)
    with pytest.raises(ValueError, match="version"):
        load_residual(residual_copy)


@pytest.mark.parametrize("field", ["base", "features", "alpha", "train_seed", "algo"])
def test_metadata_missing_a_required_field_is_refused_naming_it(residual_copy, field):
    meta = json.loads((residual_copy / "residual.json").read_text())
    del meta[field]
    (residual_copy / "residual.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=f"missing field.*{field}"):
        load_residual(residual_copy)


def test_metadata_with_an_unknown_algo_is_refused(residual_copy):
    rewrite_metadata(residual_copy, algo="dqn")
    with pytest.raises(ValueError, match="algo.*dqn"):
        load_residual(residual_copy)


def test_a_residual_with_full_gripper_authority_loads_as_its_config_allowed_it(residual_copy):
    """Alpha up to 2 lets a residual move a dimension from any base action to either end (a
    gripper the base holds open can be closed); the loader takes what training took."""
    rewrite_metadata(residual_copy, alpha=[0.3, 0.3, 2.0])
    assert load_residual(residual_copy).metadata["alpha"] == [0.3, 0.3, 2.0]


@pytest.mark.parametrize("alpha", [[0.3, 0.3, 2.5], [-0.1], ["0.3"], [True], 0.3])
def test_metadata_with_an_alpha_out_of_range_is_refused(residual_copy, alpha):
    rewrite_metadata(residual_copy, alpha=alpha)
    with pytest.raises(ValueError, match=r"alpha must be a list of numbers in \[0, 2\]"):
        load_residual(residual_copy)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_weights_are_refused_with_a_clear_error(residual_copy, damage):
    weights = residual_copy / "policy.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"not safetensors" * 50, "empty": b""}[
            damage
        ]
    )
    read_metadata(residual_copy)  # the metadata alone is still fine
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_residual(residual_copy)


def test_weights_of_another_network_are_refused(residual_copy):
    meta = json.loads((residual_copy / "residual.json").read_text())
    meta["policy"]["policy_kwargs"]["net_arch"] = [32, 32]
    (residual_copy / "residual.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="another shape than the described network"):
        load_residual(residual_copy)


def test_the_gated_residual_scales_its_correction_by_the_critics_agreement(residual_env):
    env = residual_env()
    config = tiny_config("sac-gated", zero_init=False)
    model = build_agent(config, env, seed=0)
    assert isinstance(model, GatedResidualSAC) and len(model.critic.q_networks) == 5
    obs, _ = env.reset(seed=0)
    gate = model.gate(obs[None], np.full((1, 7), 0.5))
    assert gate.shape == (1,) and 0.0 < gate[0] <= 1.0
    raw = ResidualSAC.predict(model, obs, deterministic=True)[0]
    gated = model.predict(obs, deterministic=True)[0]
    expected = raw * model.gate(obs[None], raw[None])[0]
    np.testing.assert_allclose(gated, expected, rtol=1e-5)
    model.gate_temperature = 1e-9  # critics never agree exactly: the correction vanishes
    np.testing.assert_allclose(model.predict(obs, deterministic=True)[0], 0.0, atol=1e-6)


def test_output_decay_shrinks_the_residual_output_layer_after_each_update(residual_env):
    env = residual_env()
    config = tiny_config("sac", output_decay=0.5)
    model = build_agent(config, env, seed=0)
    model.learn(120)  # fills the buffer past learning_starts
    with torch.no_grad():
        model.actor.mu.weight.fill_(1.0)
        model.actor.mu.bias.fill_(1.0)
    model.train(gradient_steps=1, batch_size=32)
    # One Adam step moves each weight by at most about the learning rate; the decay halves it.
    assert torch.allclose(
        model.actor.mu.weight, torch.full_like(model.actor.mu.weight, 0.5), atol=0.01
    )
    model.output_decay = 0.0
    with torch.no_grad():
        model.actor.mu.weight.fill_(1.0)
    model.train(gradient_steps=1, batch_size=32)
    assert model.actor.mu.weight.min() > 0.98


@pytest.mark.parametrize("algo", OFF_POLICY_NAMES)
def test_the_actor_penalty_pulls_the_residual_back_towards_the_base(residual_env, algo):
    env = residual_env()
    observations = torch.as_tensor(base_observations(env))

    def mean_abs_residual_after_updates(penalty: float) -> torch.Tensor:
        config = tiny_config(algo, actor_penalty=penalty, magnitude_penalty=0.0)
        if algo != "td3":
            config.hyperparams["ent_coef"] = 1e-4  # no entropy pull on a saturated output
        model = build_agent(config, env, seed=0)
        model.learn(120)  # fills the buffer past learning_starts
        output = actor_output_layers(model)[0]
        with torch.no_grad():
            output.bias.fill_(1.0)  # a large correction that nothing in the data asks for
        if hasattr(model, "policy_delay"):  # TD3, CrossQ: the actor learns every update
            model.policy_delay = 1
        with torch.no_grad():
            before = model.mean_residual(observations).abs().mean(0)
        model.train(gradient_steps=30, batch_size=32)
        with torch.no_grad():
            return model.mean_residual(observations).abs().mean(0) - before

    assert torch.all(mean_abs_residual_after_updates(1000.0) < 0), "the penalty did not pull"
    free = mean_abs_residual_after_updates(0.0)
    assert not torch.all(free < 0), "without the penalty the critic alone moves the actor"


def test_training_on_a_held_out_suite_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="heldout-poke-late.*is held out.*train on one of"):
        train_residual("scripted", "sac", tmp_path / "run", steps=10, suite="heldout-poke-late")
    assert not (tmp_path / "run").exists()
