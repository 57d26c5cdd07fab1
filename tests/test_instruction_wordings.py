"""Held-out instruction wordings: the same scenes, seed for seed, in words no training uses.

``instructions="heldout"`` tests whether a language-conditioned policy follows the instruction
or only its familiar phrasing (and whether fine-tuning made it forget how to read).
"""

import gymnasium as gym
import numpy as np
import pytest

import residual_bench.registration  # noqa: F401
from residual_bench.env_arguments import ENV_KWARGS
from residual_bench.eval.episode_tasks import make_tasks, record_key, task_key, task_of
from residual_bench.eval.runner import play
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


def test_an_evaluation_in_held_out_words_records_them_and_re_runs_in_them():
    (task,) = make_tasks("scripted", [None], ["nominal"], ["heldout"], 1, instructions="heldout")
    record = play(task)
    held_out = task_entry("ResidualPickPlace-v1").task.heldout_templates
    prefixes = [t.split("{")[0] for t in held_out]
    assert any(record.instruction.startswith(p) for p in prefixes if p)
    assert record.extra["instructions"] == "heldout"
    assert task_of(record) == task
    (same_scene,) = make_tasks("scripted", [None], ["nominal"], ["heldout"], 1)
    assert record_key(record) != task_key(
        same_scene.base, None, same_scene.suite_name, same_scene.objects, same_scene.seed
    )


def test_an_evaluation_in_the_training_words_records_nothing_new():
    (task,) = make_tasks("scripted", [None], ["nominal"], ["heldout"], 1)
    assert task.instructions == "train"
    assert "instructions" not in play(task).extra


def test_an_evaluation_in_unknown_words_is_refused_before_anything_runs():
    with pytest.raises(ValueError, match="instructions must be one of train, heldout"):
        make_tasks("scripted", [None], ["nominal"], ["heldout"], 1, instructions="any")


def test_a_task_without_wordings_cannot_draw_one():
    class Wordless(task_entry("ResidualPickPlace-v1").task):
        templates = ()

    task = Wordless.__new__(Wordless)
    task.instructions = "train"
    with pytest.raises(ValueError, match="Wordless sets no instruction templates"):
        task.instruction_template(np.random.default_rng(0))
