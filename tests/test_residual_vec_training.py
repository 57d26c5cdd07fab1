"""Residual training with several envs (``train.n_envs``), each in a worker process of its
own: a run repeats exactly for a given seed and env count, every env is seeded from (seed,
env index), the scale ramp reaches every env, an off-policy agent keeps the config's updates
per transition, and a checkpoint resumes only with the env count it was made with.

The runs are tiny (200 steps, the ``scripted`` base, ``proprio`` features, 16-wide networks):
most of their time is the workers' start.
"""

import csv
import json
import os
import shutil
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecEnv

from residual_bench.residual import make_residual_env
from residual_bench.residual.agents import ResidualSAC, build_agent
from residual_bench.residual.checkpoint import read_metadata
from residual_bench.residual.config import ResidualConfig, load_config
from residual_bench.residual.env import alpha_vector
from residual_bench.residual.train import train_residual
from residual_bench.residual.training_envs import (
    START_METHOD,
    ScheduleAndProgress,
    train_env_seed,
    training_envs,
)

BASE, FEATURES, SEED = "scripted", "proprio", 3
STEPS, LEARNING_STARTS = 200, 50


def tiny_config(n_envs: int = 2, **safeguards) -> ResidualConfig:
    """The shipped SAC config (train_freq 2, gradient_steps 1: 0.5 updates per transition),
    small enough to train for a few hundred steps in a test."""
    config = load_config("sac")
    config.features = FEATURES
    hp = config.hyperparams
    hp["policy_kwargs"] = {**hp.get("policy_kwargs", {}), "net_arch": [16, 16]}
    hp.update(buffer_size=1000, learning_starts=LEARNING_STARTS, batch_size=32)
    off = dict(warmup_steps=0, critic_only_steps=0, exploration_ramp_steps=0, scale_ramp_steps=0)
    config.safeguards = replace(config.safeguards, **{**off, "feature_noise": None, **safeguards})
    config.train = replace(config.train, checkpoint_every=100, n_envs=n_envs)
    return config


def train(config: ResidualConfig, out: Path, steps: int = STEPS, **kwargs) -> Path:
    """``train_residual`` on the cheap base and features, without progress bar or logs."""
    return train_residual(
        BASE,
        config,
        out,
        steps=steps,
        seed=SEED,
        suite="nominal",
        eval_every=100,
        eval_episodes=1,
        progress=False,
        tensorboard=False,
        **kwargs,
    )


def curve(out: Path) -> list[dict[str, str]]:
    """The learning curve's rows without their wall clock (which no two runs share)."""
    with (out / "progress.csv").open(newline="") as f:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]


def checkpointed(out: Path) -> ResidualSAC:
    """The checkpoint's agent with its replay buffer (a run of this test's own)."""
    model = ResidualSAC.load(out / "checkpoint" / "model.zip", device="cpu")
    model.load_replay_buffer(out / "checkpoint" / "replay_buffer.pkl")
    return model


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Every safeguard and reward term that draws on or steps with the envs is on.
SHAPED = dict(
    warmup_steps=20,
    exploration_ramp_steps=60,
    scale_ramp_steps=80,
    magnitude_penalty=0.1,
    success_bonus=1.0,
    time_penalty=0.01,
)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two runs with two envs each, of the same config and seed."""
    outs = tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second")
    for out in outs:
        train(tiny_config(**SHAPED), out)
    return outs


def test_two_runs_with_two_envs_and_the_same_seed_learn_the_same_residual(two_runs):
    first, second = two_runs
    assert [row["timesteps"] for row in curve(first)] == ["100", "200"]
    assert curve(first) == curve(second)
    weights = [load_file(out / "residual" / "policy.safetensors") for out in two_runs]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name
    buffers = [checkpointed(out).replay_buffer for out in two_runs]
    np.testing.assert_array_equal(buffers[0].observations, buffers[1].observations)
    np.testing.assert_array_equal(buffers[0].actions, buffers[1].actions)


def test_each_env_collects_episodes_of_its_own(two_runs):
    buffer = checkpointed(two_runs[0]).replay_buffer
    assert buffer.n_envs == 2 and buffer.pos == STEPS // 2  # one column per env
    env0, env1 = buffer.observations[: buffer.pos, 0], buffer.observations[: buffer.pos, 1]
    assert not np.array_equal(env0, env1)


def test_the_checkpoint_and_the_residual_record_the_env_count(two_runs):
    out = two_runs[0]
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state == {"timesteps": STEPS, "n_envs": 2, "env_id": "ResidualPickPlace-v1"}
    meta = read_metadata(out / "residual")
    assert meta["config"]["train"]["n_envs"] == 2
    assert meta["train_steps"] == STEPS
    expected = alpha_vector(tuple(tiny_config().alpha))  # read back from the workers' envs
    assert meta["alpha_per_dimension"] == [float(a) for a in expected]


def test_an_off_policy_agent_keeps_the_configs_updates_per_transition_with_two_envs(two_runs):
    config = tiny_config()
    hp = config.hyperparams
    utd = hp["gradient_steps"] / hp["train_freq"]
    model = checkpointed(two_runs[0])
    assert model.n_envs == 2 and model.gradient_steps == 2 * hp["gradient_steps"]
    # Without the factor, a train_freq step of two envs would make half as many updates.
    assert model._n_updates / (STEPS - LEARNING_STARTS) == pytest.approx(utd, rel=0.05)
    assert read_metadata(two_runs[0] / "residual")["config"]["hyperparams"] == hp


@pytest.fixture(scope="module")
def resumed_with_two_envs(tmp_path_factory) -> tuple[Path, str]:
    """A two-env run stopped after its 100-step checkpoint, asked to go on with one env
    (refused: the message is returned), then resumed with two to 200 steps."""
    out = tmp_path_factory.mktemp("resumed")
    train(tiny_config(**SHAPED), out, steps=100)
    shutil.rmtree(out / "residual")  # as if it had stopped right after the checkpoint
    before = (out / "progress.csv").read_text()
    with pytest.raises(ValueError) as refused:
        train(tiny_config(**SHAPED), out, resume=True, n_envs=1)
    assert (out / "progress.csv").read_text() == before, "a refused resume changes nothing"
    train(tiny_config(**SHAPED), out, resume=True)
    return out, str(refused.value)


def test_resuming_with_another_env_count_is_refused_naming_both(resumed_with_two_envs):
    _, message = resumed_with_two_envs
    assert "n_envs=2" in message and "n_envs=1" in message
    assert "train.n_envs: 2" in message


def test_a_run_with_two_envs_resumes_from_its_checkpoint(resumed_with_two_envs):
    out, _ = resumed_with_two_envs
    assert [row["timesteps"] for row in curve(out)] == ["100", "200"]
    assert read_metadata(out / "residual")["train_steps"] == STEPS
    assert json.loads((out / "checkpoint" / "state.json").read_text())["n_envs"] == 2
    assert checkpointed(out).replay_buffer.pos == STEPS // 2, "the buffer went on"


def test_a_checkpoint_from_before_the_env_count_was_recorded_resumes_with_one_env(tmp_path):
    train(tiny_config(n_envs=1), tmp_path, steps=100)
    shutil.rmtree(tmp_path / "residual")
    (tmp_path / "checkpoint" / "state.json").write_text(json.dumps({"timesteps": 100}))
    with pytest.raises(ValueError, match=r"started with n_envs=1 .* n_envs=2"):
        train(tiny_config(n_envs=2), tmp_path, resume=True)  # refused before any worker starts
    train(tiny_config(n_envs=1), tmp_path, resume=True)
    assert [row["timesteps"] for row in curve(tmp_path)] == ["100", "200"]


def test_two_envs_step_in_worker_processes_seeded_from_the_seed_and_their_index():
    assert START_METHOD in ("forkserver", "spawn"), "never fork torch and PyBullet"
    alpha = tuple(tiny_config().alpha)
    build = partial(make_residual_env, BASE, "privileged", alpha, suite="nominal", objects="train")
    envs = training_envs(build, {}, n_envs=2, seed=SEED)
    try:
        assert isinstance(envs, VecEnv) and envs.num_envs == 2
        workers = [process.pid for process in envs.venv.processes]
        assert os.getpid() not in workers and len(set(workers)) == 2
        envs.seed(SEED)  # what the agent does when it is built
        first = envs.reset()
        for index in range(2):
            local = build({"seed": train_env_seed(SEED, index, "feature-noise")})
            try:
                obs, _ = local.reset(seed=train_env_seed(SEED, index, "reset"))
            finally:
                local.close()
            np.testing.assert_array_equal(first[index], obs)
        assert not np.array_equal(first[0], first[1])
    finally:
        envs.close()


class Bar:
    """Counts what a progress bar is advanced by."""

    n = 0

    def update(self, n: int) -> None:
        self.n += n


def test_the_scale_ramp_reaches_every_env():
    alpha = tuple(tiny_config().alpha)
    build = partial(make_residual_env, BASE, FEATURES, alpha, suite="nominal", objects="train")
    envs = training_envs(build, {}, n_envs=2, seed=SEED)
    try:
        model = build_agent(tiny_config(), envs, seed=SEED)
        bar = Bar()
        model.learn(40, callback=ScheduleAndProgress(envs, 100, bar))
        assert model.num_timesteps == 40
        assert bar.n == 40, "the bar counts the transitions of both envs"
        assert envs.get_attr("scale") == [0.4, 0.4]
    finally:
        envs.close()


def test_with_one_env_training_steps_it_in_this_process():
    alpha = tuple(tiny_config().alpha)
    build = partial(make_residual_env, BASE, FEATURES, alpha, suite="nominal", objects="train")
    env = training_envs(build, {}, n_envs=1, seed=SEED)
    try:
        assert isinstance(env, Monitor) and not isinstance(env, VecEnv)
        assert env.get_wrapper_attr("scale") == 1.0
    finally:
        env.close()
