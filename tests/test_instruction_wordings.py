"""Held-out instruction wordings: the same scenes, seed for seed, in words no training uses.

``instructions="heldout"`` tests whether a language-conditioned policy follows the instruction
or only its familiar phrasing (and whether fine-tuning made it forget how to read).
"""

import gymnasium as gym
import numpy as np
import pytest

import residual_bench.registration  # noqa: F401
from residual_bench.task_env import ENV_KWARGS
from residual_bench.tasks import task_entry

TASKS = ["ResidualPickPlace-v1", "ResidualStack-v0", "ResidualPush-v0", "ResidualInsert-v0"]
SEEDS = range(6)


def episodes(env_id: str, instructions: str) -> list[tuple[str, np.ndarray, str]]:
    env = gym.make(env_id, instructions=instructions)
    try:
        out = []
        for seed in SEEDS:
            obs, info = env.reset(seed=seed)
            out.append((info["instruction"], obs["objects"].copy(), env.unwrapped.env_spec_hash))
        return out
    finally:
        env.close()


@pytest.mark.parametrize("env_id", TASKS)
def test_held_out_wordings_are_none_of_the_training_ones(env_id):
    task = task_entry(env_id).task
    assert len(task.heldout_templates) >= 2
    assert not set(task.heldout_templates) & set(task.templates)


@pytest.mark.parametrize("env_id", TASKS)
def test_a_seed_gives_the_same_scene_in_held_out_words(env_id):
    task = task_entry(env_id).task
    training, held_out = episodes(env_id, "train"), episodes(env_id, "heldout")
    for (said, scene, _), (said_again, same_scene, _) in zip(training, held_out, strict=True):
        np.testing.assert_array_equal(scene, same_scene)
        assert said != said_again
    for said, *_ in held_out:
        assert not any(said.startswith(t.split("{")[0]) for t in task.templates if t[0] != "{")


def test_the_training_wordings_keep_every_records_spec_hash_and_held_out_ones_change_it():
    default = gym.make("ResidualPickPlace-v1")
    training = gym.make("ResidualPickPlace-v1", instructions="train")
    held_out = gym.make("ResidualPickPlace-v1", instructions="heldout")
    try:
        assert default.unwrapped.env_spec_hash == training.unwrapped.env_spec_hash
        assert held_out.unwrapped.env_spec_hash != training.unwrapped.env_spec_hash
    finally:
        for env in (default, training, held_out):
            env.close()


def test_an_unknown_split_of_wordings_is_refused_naming_the_valid_ones():
    assert "instructions" in ENV_KWARGS
    with pytest.raises(ValueError, match="instructions.*train.*heldout"):
        gym.make("ResidualPickPlace-v1", instructions="paraphrased")
