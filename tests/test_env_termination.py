"""ResidualPickPlace-v1 ends an episode once the target object is out of the arm's reach.

A strong poke or a kick can send the object across the infinite table plane, metres away;
before v1 the episode ran on to its time limit with nothing saying why it could not be
solved. v1 ends it as a failure, ``info["termination"]`` says why, and the episode record
carries it. v0, whose records fill ``results/``, stays registered and unchanged.
"""

import gymnasium as gym
import numpy as np
import pytest

from residual_bench.episodes.recorder import EpisodeRecorder
from residual_bench.episodes.records import read_jsonl
from residual_bench.eval.episode_tasks import task_of
from residual_bench.registration import ENV_ID
from residual_bench.task_env import REACH_M

FAR = np.array([REACH_M + 0.3, 0.0])


def send_target_away(env) -> None:
    sim = env.unwrapped
    name = sim.task.target.body_name
    state = sim.world.body_state(name)
    sim.world.set_pose(name, np.array([*FAR, state.position[2]]), state.orientation)


def test_the_benchmark_env_is_v1():
    assert ENV_ID == "ResidualPickPlace-v1"


def test_v1_ends_the_episode_once_the_target_is_out_of_reach_and_says_why():
    env = gym.make(ENV_ID)
    try:
        _, info = env.reset(seed=0)
        recorder = EpisodeRecorder()
        recorder.start(
            info, env_id=ENV_ID, env_spec_hash="x", suite="nominal", objects="train", base="zero"
        )
        _, _, terminated, truncated, info = env.step(np.zeros(7, dtype=np.float32))
        assert not terminated and info["termination"] is None
        recorder.step(np.zeros(7), info)
        send_target_away(env)
        _, _, terminated, truncated, info = env.step(np.zeros(7, dtype=np.float32))
        assert terminated and not truncated
        assert info["termination"] == "object_out_of_reach" and not info["success"]
        recorder.step(np.zeros(7), info)
        record = recorder.finish()
        assert record.extra["termination"] == "object_out_of_reach"
    finally:
        env.close()


def test_v0_lets_the_episode_run_on_as_its_records_did():
    env = gym.make("ResidualPickPlace-v0")
    try:
        env.reset(seed=0)
        send_target_away(env)
        _, _, terminated, _, info = env.step(np.zeros(7, dtype=np.float32))
        assert not terminated and info["termination"] is None
    finally:
        env.close()


def test_the_residual_env_of_v1_ends_too():
    env = gym.make(ENV_ID, base="scripted", features="privileged")
    try:
        env.reset(seed=0)
        send_target_away(env)
        _, _, terminated, _, info = env.step(np.zeros(7, dtype=np.float32))
        assert terminated and info["termination"] == "object_out_of_reach"
    finally:
        env.close()


def test_a_committed_v0_record_re_runs_in_v0():
    (record, *_) = read_jsonl("results/residual/nominal-plain/episodes.jsonl")
    assert record.env_id == "ResidualPickPlace-v0"
    assert task_of(record).env_id == "ResidualPickPlace-v0"


def test_a_record_of_an_unknown_env_is_not_re_run():
    (record, *_) = read_jsonl("results/residual/nominal-plain/episodes.jsonl")
    record.env_id = "some_module:Evil-v0"
    with pytest.raises(ValueError, match="unknown env_id"):
        task_of(record)
