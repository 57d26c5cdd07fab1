"""ResidualInsert-v0: grasp a square peg and insert it into a hole with millimetre clearance."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from task_episodes import expert_episode

from residual_bench.env_spec import SpecError
from residual_bench.policies.insert_expert import InsertExpert
from residual_bench.policies.task_experts import expert_for
from residual_bench.sim.pybullet_world import PyBulletWorld
from residual_bench.tasks.insert import SPLIT_COLORS, InsertTask

ENV_ID = "ResidualInsert-v0"


def peg_rest_height(peg_side: float, hole_side: float) -> float:
    """Where a 7 cm peg dropped square onto a 4 cm deep hole comes to rest (its centre)."""
    world = PyBulletWorld()
    try:
        world.create_ground_plane("table")
        half, wall, depth = hole_side / 2, 0.02, 0.04
        walls = [
            ((wall / 2, half + wall, depth / 2), (half + wall / 2, 0.0, depth / 2)),
            ((wall / 2, half + wall, depth / 2), (-half - wall / 2, 0.0, depth / 2)),
            ((half, wall / 2, depth / 2), (0.0, half + wall / 2, depth / 2)),
            ((half, wall / 2, depth / 2), (0.0, -half - wall / 2, depth / 2)),
        ]
        world.create_box_compound("fixture", walls, (0.5, 0.0, 0.0))
        world.create_primitive(
            "peg", "box", (peg_side / 2, peg_side / 2, 0.035), 0.05, (0.5, 0, 0.08)
        )
        world.step(480)
        return float(world.body_state("peg").position[2])
    finally:
        world.close()


def test_a_peg_with_millimetres_of_clearance_drops_into_the_fixtures_hole():
    # The boxes' collision margins do not close the gap: 1 mm of clearance goes in ...
    assert peg_rest_height(0.030, 0.031) == pytest.approx(0.035, abs=1e-3)
    assert peg_rest_height(0.030, 0.034) == pytest.approx(0.035, abs=1e-3)
    # ... and a peg 1 mm wider than the hole stays on the rim (its edges sink in 1 mm).
    assert peg_rest_height(0.032, 0.031) > 0.07


@pytest.mark.parametrize("objects", ["train", "heldout"])
def test_the_registered_expert_inserts_the_peg_upright_past_the_success_depth(objects):
    env, info, _ = expert_episode(ENV_ID, seed=0, objects=objects)
    assert isinstance(expert_for(env), InsertExpert)
    assert info["success"] and info["phase"] == "done"
    task = env.unwrapped.scene_spec["task"]
    assert info["insertion_depth"] >= task["success_depth"]
    assert info["peg_tilt"] <= math.radians(task["max_tilt_deg"])
    env.close()


def test_the_same_seed_replays_an_insert_episode_under_the_mixed_suite():
    hashes = []
    for _ in range(2):
        env = gym.make(ENV_ID, suite="mixed")
        env.reset(seed=4)
        expert = expert_for(env)
        expert.reset()
        for _ in range(50):
            env.step(expert.act(env))
        hashes.append(env.unwrapped.state_hash())
        env.close()
    assert hashes[0] == hashes[1]


def test_every_shipped_suite_applies_to_insert():
    for suite in ("poke", "slide", "drop", "latency", "mixed"):
        env = gym.make(ENV_ID, suite=suite)
        env.close()
        assert env.unwrapped.suite.name == suite


def test_the_splits_differ_in_peg_size_and_colour_and_the_hole_fits_the_peg():
    seen = {}
    for objects in ("train", "heldout"):
        env = gym.make(ENV_ID, objects=objects)
        sides, colors = [], set()
        for seed in range(8):
            _, info = env.reset(seed=seed)
            task = env.unwrapped.task
            sides.append(task.target.scale)
            colors.add(task.target.color_name)
            assert task.target.description in info["instruction"]
            clearance = 2 * task.hole_half - task.target.scale
            assert 0.003 <= clearance <= 0.005
        seen[objects] = (max(sides), min(sides), colors)
        env.close()
    assert seen["heldout"][0] <= seen["train"][1]  # held-out pegs are thinner
    assert seen["train"][2] <= set(SPLIT_COLORS["train"])
    assert seen["heldout"][2] <= set(SPLIT_COLORS["heldout"])


def test_a_slide_keeps_the_peg_clear_of_the_fixture():
    env = gym.make(ENV_ID)
    env.reset(seed=2)
    task = env.unwrapped.task
    start = env.unwrapped.object_states[0].center[:2]
    towards_hole = math.atan2(*(task.goal[:2] - start)[::-1])
    spot = task.clear_spot_towards(start, towards_hole, 0.25)
    assert np.linalg.norm(spot - task.goal[:2]) > (task.hole_half + 0.02) * math.sqrt(2)
    env.close()


def test_the_dense_reward_is_staged_and_in_the_unit_interval():
    env, info, _ = expert_episode(ENV_ID, seed=1, reward_mode="dense")
    task = env.unwrapped.task
    start = {
        "success": False,
        "is_grasped": False,
        "tcp_to_object": 0.2,
        "object_height": 0.0,
        "object_to_goal": 0.2,
        "peg_in_opening": False,
        "insertion_depth": -0.03,
    }
    held = {**start, "is_grasped": True, "object_height": 0.05, "tcp_to_object": 0.0}
    over = {**held, "object_to_goal": 0.001, "peg_in_opening": True, "insertion_depth": 0.01}
    rewards = [task.reward(p, "dense") for p in (start, held, over)]
    assert 0.0 <= rewards[0] < rewards[1] < rewards[2] < 1.0
    assert task.reward(info, "dense") == 1.0 == task.reward(info, "sparse")
    env.close()


BAD_SCENES = {
    "clearance wider than 2 cm": ({"task": {"clearance": [0.03, 0.04]}}, "task.clearance"),
    "deeper than the hole": ({"task": {"success_depth": 0.045}}, "task.success_depth"),
    "peg wider than the gripper": (
        {"task": {"peg_side": {"train": [0.06, 0.07]}}},
        "task.peg_side",
    ),
    "range upside down": ({"task": {"peg_height": [0.08, 0.07]}}, "peg_height"),
    "unknown field": ({"task": {"goal_radius": 0.05}}, "goal_radius: unknown field"),
}


@pytest.mark.parametrize("overrides, field", BAD_SCENES.values(), ids=BAD_SCENES.keys())
def test_a_bad_insert_scene_is_a_spec_error_naming_the_field(overrides, field):
    with pytest.raises(SpecError, match=field):
        gym.make(ENV_ID, scene_overrides=overrides)


def test_the_task_declares_its_phases_kinds_and_scene():
    assert InsertTask.scene == "insert" and InsertTask.phases[-2:] == ("insert", "done")
    assert set(InsertTask.perturbation_kinds) == {"poke", "slide", "drop", "latency"}
    assert InsertTask.env_id == ENV_ID


def test_a_hole_perceived_a_few_millimetres_off_is_never_hit():
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    expert = expert_for(env)
    expert.reset()
    expert.errors.goal_offset = np.array([0.006, 0.0, 0.0])  # more than the clearance
    for _ in range(env.unwrapped.max_steps):
        *_, info = env.step(expert.act(env))
    assert not info["success"]
    assert set(expert.last_plan) == {"translation", "rotation", "gripper", "speed"}
    env.close()
