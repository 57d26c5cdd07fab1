"""ResidualPush-v0: push the named object into a goal circle, without grasping it."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from task_episodes import expert_episode

from residual_bench.env_spec import SpecError
from residual_bench.policies.push_expert import PushExpert
from residual_bench.policies.task_experts import expert_for
from residual_bench.tasks.push import PushTask

ENV_ID = "ResidualPush-v0"
# A suite made for pushing: it pokes the object while it is being pushed.
PUSH_POKE = {
    "name": "push-poke",
    "description": "one poke of the object while the hand pushes it",
    "perturbations": [
        {"type": "poke", "trigger": {"phase": "push"}, "delay": [0.1, 0.2], "speed": [0.3, 0.4]}
    ],
}


@pytest.mark.parametrize("objects", ["train", "heldout"])
def test_the_registered_expert_pushes_the_object_into_the_circle(objects):
    env, info, _ = expert_episode(ENV_ID, seed=0, objects=objects)
    assert isinstance(expert_for(env), PushExpert)
    assert info["success"] and info["phase"] == "done"
    assert info["object_to_goal"] <= env.unwrapped.scene_spec["task"]["goal_radius"]
    assert not info["is_grasped"]  # pushed, never picked up
    env.close()


def test_the_same_seed_replays_a_push_episode_under_a_push_suite():
    hashes, events = [], []
    for _ in range(2):
        env = gym.make(ENV_ID, suite=PUSH_POKE)
        env.reset(seed=5)
        expert = expert_for(env)
        expert.reset()
        fired = []
        for _ in range(60):
            *_, info = env.step(expert.act(env))
            fired += info["new_events"]
        hashes.append(env.unwrapped.state_hash())
        events.append(fired)
        env.close()
    assert hashes[0] == hashes[1] and events[0] == events[1]
    assert [e["type"] for e in events[0]] == ["poke"]  # the push phase triggers it


def test_a_drop_suite_is_refused_on_push_naming_the_kinds_it_takes():
    with pytest.raises(SpecError, match="drop does not apply to ResidualPush-v0.*poke, slide"):
        gym.make(ENV_ID, suite="drop")


def test_the_instruction_names_the_object_and_the_goal_is_on_the_table():
    env = gym.make(ENV_ID)
    obs, info = env.reset(seed=3)
    task = env.unwrapped.task
    assert task.target.description in info["instruction"] and "circle" in info["instruction"]
    assert obs["goal"][2] == 0.0
    distance = np.linalg.norm(obs["goal"][:2] - obs["objects"][0, :2])
    low, high = env.unwrapped.scene_spec["task"]["goal_distance"]
    assert low - 0.01 <= distance <= high + 0.01
    assert info["phase"] == "approach" and not info["success"]
    env.close()


def test_a_slide_never_puts_the_object_in_the_circle():
    env = gym.make(ENV_ID)
    env.reset(seed=2)
    task = env.unwrapped.task
    start = env.unwrapped.object_states[0].center[:2]
    towards_goal = math.atan2(*(task.goal[:2] - start)[::-1])
    spot = task.clear_spot_towards(start, towards_goal, 0.25)
    assert np.linalg.norm(spot - task.goal[:2]) >= task.spec["task"]["goal_radius"] + 0.04 - 1e-9
    env.close()


def test_the_dense_reward_grows_as_the_object_nears_the_goal_and_sparse_is_success():
    far = {"success": False, "tcp_to_object": 0.1, "object_to_goal": 0.15}
    near = {**far, "tcp_to_object": 0.03, "object_to_goal": 0.04}
    assert 0.0 <= PushTask.reward(far, "dense") < PushTask.reward(near, "dense") < 1.0
    assert PushTask.reward({**near, "success": True}, "dense") == 1.0
    assert PushTask.reward(near, "sparse") == 0.0


BAD_SCENES = {
    "goal beyond the table": ({"task": {"goal_distance": [0.3, 0.6]}}, "task.goal_distance"),
    "two distractors": ({"task": {"n_objects": [1, 3]}}, "task.n_objects"),
    "a radius too small to hit": ({"task": {"goal_radius": 0.001}}, "task.goal_radius"),
    "range upside down": ({"task": {"goal_distance": [0.2, 0.1]}}, "goal_distance"),
    "unknown field": ({"task": {"plate_radius": 0.08}}, "plate_radius: unknown field"),
}


@pytest.mark.parametrize("overrides, field", BAD_SCENES.values(), ids=BAD_SCENES.keys())
def test_a_bad_push_scene_is_a_spec_error_naming_the_field(overrides, field):
    with pytest.raises(SpecError, match=field):
        gym.make(ENV_ID, scene_overrides=overrides)


def test_the_task_declares_its_phases_kinds_and_scene():
    assert PushTask.scene == "push" and PushTask.phases == ("approach", "push", "done")
    assert "drop" not in PushTask.perturbation_kinds
    assert PushTask.env_id == ENV_ID


def test_the_experts_perceived_goal_offset_is_where_it_leaves_the_object():
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    expert = expert_for(env)
    expert.reset()
    expert.errors.goal_offset = np.array([0.06, 0.0, 0.0])
    for _ in range(env.unwrapped.max_steps):
        *_, info = env.step(expert.act(env))
    assert not info["success"]
    assert info["object_to_goal"] == pytest.approx(0.06, abs=0.015)
    assert set(expert.last_plan) == {"translation", "rotation", "gripper", "speed"}
    env.close()
