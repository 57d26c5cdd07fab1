"""ResidualStack-v0: one named object on top of another, released and stable for 0.5 s."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from task_episodes import expert_episode

from residual_bench.env_spec import SpecError
from residual_bench.policies.expert import PLACE_TIMEOUT_SECONDS, Phase
from residual_bench.policies.stack_expert import PLACE_XY_TOLERANCE, RELEASE_SPEED, StackExpert
from residual_bench.policies.task_experts import expert_for
from residual_bench.seeding import episode_seed
from residual_bench.tasks.stack import StackTask

ENV_ID = "ResidualStack-v0"


def test_the_instruction_names_both_objects_and_the_goal_is_the_supports_top():
    env = gym.make(ENV_ID)
    obs, info = env.reset(seed=3)
    task = env.unwrapped.task
    assert task.target.description in info["instruction"]
    assert task.support.description in info["instruction"]
    support = env.unwrapped.object_states[1]
    assert np.allclose(obs["goal"][:2], support.center[:2], atol=1e-5)
    assert obs["goal"][2] == pytest.approx(support.center[2] + task.support.height / 2, abs=1e-5)
    env.close()


def test_the_same_seed_replays_a_stack_episode_under_a_suite():
    hashes = []
    for _ in range(2):
        env = gym.make(ENV_ID, suite="poke")
        env.reset(seed=11)
        for _ in range(15):
            env.step(np.zeros(7, dtype=np.float32))
        hashes.append(env.unwrapped.state_hash())
        env.close()
    assert hashes[0] == hashes[1]


def test_the_registered_expert_stacks_and_success_waits_for_half_a_second_of_stability():
    env, info, infos = expert_episode(ENV_ID, seed=0)
    assert isinstance(expert_for(env), StackExpert)
    assert info["success"] and info["phase"] == "done"
    first = next(i for i, step in enumerate(infos) if step["success"])
    stable = env.unwrapped.scene_spec["task"]["stable_seconds"]
    # The stack condition held for stable_seconds before success was reported.
    assert info["first_success_time"] >= stable
    assert first >= round(stable * env.unwrapped.control_hz)
    env.close()


# Nominal training-split episodes the pick-and-place expert failed (results/expert/tasks.md):
# 16, a mesh object swinging in the grasp let go 2.2 cm off the support's centre;
# 25 and 7, a placement that was settling grasped again and again until time ran out.
@pytest.mark.parametrize("index", [16, 25, 7])
def test_the_expert_lets_go_centred_and_still_and_leaves_a_settling_stack_alone(index):
    env = gym.make(ENV_ID)
    sim = env.unwrapped
    expert = expert_for(env)
    env.reset(seed=episode_seed(0, "nominal", "train", index))
    expert.reset()
    releases = []
    for _ in range(sim.max_steps):
        before, lowering_since = expert.phase, expert._phase_start
        action = expert.act(env)
        if before == Phase.LOWER and expert.phase == Phase.RELEASE:
            progress = sim.task.progress(sim.object_states, sim.robot.tcp_pose()[0])
            timed_out = sim.time - lowering_since > PLACE_TIMEOUT_SECONDS
            releases.append((progress["object_to_goal"], progress["object_speed"], timed_out))
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    env.close()
    assert info["success"]
    # Centred and still - unless the swing outlasted the lowering's time limit.
    assert releases and all(
        (xy < PLACE_XY_TOLERANCE and speed < RELEASE_SPEED) or timed_out
        for xy, speed, timed_out in releases
    )


def test_every_shipped_suite_applies_to_stack():
    for suite in ("poke", "slide", "drop", "latency", "mixed"):
        env = gym.make(ENV_ID, suite=suite)
        env.close()
        assert env.unwrapped.suite.name == suite


BAD_SCENES = {
    "tolerance wider than half the support": (
        {"task": {"stack_tolerance": 0.04}},
        "task.stack_tolerance",
    ),
    "support too small to stand on": ({"task": {"support_size": [0.01, 0.02]}}, "support_size"),
    "one object only": ({"task": {"n_objects": [1, 2]}}, "task.n_objects"),
    "text instead of a number": ({"task": {"stable_seconds": "long"}}, "stable_seconds"),
    "unknown field": ({"task": {"goal_radius": 0.08}}, "goal_radius: unknown field"),
}


@pytest.mark.parametrize("overrides, field", BAD_SCENES.values(), ids=BAD_SCENES.keys())
def test_a_bad_stack_scene_is_a_spec_error_naming_the_field(overrides, field):
    with pytest.raises(SpecError, match=field):
        gym.make(ENV_ID, scene_overrides=overrides)


def test_the_task_declares_its_phases_classes_and_scene():
    assert StackTask.scene == "stack" and StackTask.phases[-1] == "done"
    assert StackTask.segmentation_classes[3:5] == ("target", "support")
    assert StackTask.env_id == ENV_ID
