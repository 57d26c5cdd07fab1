"""Tasks are plug-ins: a new task is one module, one scene YAML and one registration line.

The toy task below is the whole of such a module; everything else (the env, observations,
seeding, suites, the residual env over a base) comes from the generic env.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from residual_bench.episodes import run_episode
from residual_bench.sim.objects import objects_in_split
from residual_bench.task_env import ResidualTaskEnv
from residual_bench.tasks import SceneObject, Task, task_ids

TOY_ID = "ToyReach-v0"
TOY_SCENE = """\
version: 0
task:
  episode_seconds: 2.0
  reach_radius: 0.03
randomization:
  light_direction: {low: [0.0, 0.0, 1.0], high: [0.0, 0.0, 1.0]}
  camera_eye_jitter: 0.0
  camera_target_jitter: 0.0
  pixel_noise_std: 0.0
camera: {eye: [0.86, 0.0, 0.62], target: [0.46, 0.0, 0.0], fov_deg: 48.0}
"""


class ToyReachTask(Task):
    """**Task Description:** bring the grasp point above the cube.
    **Randomizations:** the cube's position. **Success Conditions:** the grasp point is
    within ``reach_radius`` of the point 5 cm above the cube's centre."""

    phases = ("reach", "done")
    segmentation_classes = ("background", "robot", "target")
    max_objects = 1

    def build(self, rng):
        xy = rng.uniform([0.4, -0.15], [0.55, 0.15])
        model = objects_in_split("train")[0]
        self.objects = [SceneObject(model, "red", 1.0, "cube")]
        self.world.create_primitive("cube", "box", (0.02, 0.02, 0.02), 0.1, (*xy, 0.02))
        self.goal = np.array([*xy, 0.07])
        self.instruction = "touch the red cube"

    def progress(self, states, tcp):
        distance = float(np.linalg.norm(self.goal - tcp))
        success = distance < self.spec["task"]["reach_radius"]
        xy = float(np.linalg.norm(self.goal[:2] - tcp[:2]))
        # success, is_grasped and tcp_to_object_xy are what the episode recorder reads.
        return {"tcp_to_object": distance, "tcp_to_object_xy": xy, "is_grasped": False,
                "success": success}  # fmt: skip

    def phase(self, progress):
        return "done" if progress["success"] else "reach"

    def reward(self, progress, mode):
        return (
            float(progress["success"])
            if mode == "sparse"
            else 1 - math.tanh(progress["tcp_to_object"])
        )

    def segmentation_bodies(self):
        return {"panda": 1, "cube": 2}


@pytest.fixture
def toy_task(register_toy_task):
    return register_toy_task(TOY_ID, ToyReachTask, TOY_SCENE)


def test_a_registered_task_is_made_by_its_id_over_the_generic_env(toy_task):
    env = gym.make(toy_task)
    assert isinstance(env.unwrapped, ResidualTaskEnv)
    assert toy_task in task_ids()
    obs, info = env.reset(seed=0)
    assert info["instruction"] == "touch the red cube"
    assert obs["objects"].shape == (1, 13) and info["phase"] == "reach"
    env.close()


def test_a_new_task_passes_gymnasiums_checker_in_state_and_image_modes(toy_task):
    for obs_mode in ("state", "rgb+seg"):
        env = gym.make(toy_task, obs_mode=obs_mode, image_size=32)
        check_env(env.unwrapped, skip_render_check=True)
        env.close()


def test_a_new_task_is_solved_by_driving_the_grasp_point_to_its_goal(toy_task):
    env = gym.make(toy_task)
    obs, info = env.reset(seed=1)
    for _ in range(40):
        delta = (obs["goal"] - obs["proprio"][9:12]) / 0.02
        obs, reward, terminated, truncated, info = env.step(
            np.r_[np.clip(delta, -1, 1), 0, 0, 0, 1]
        )
        if info["success"]:
            break
    assert info["success"] and info["phase"] == "done" and reward > 0.9
    env.close()


def test_the_same_seed_replays_a_new_tasks_episode(toy_task):
    # A suite triggers on the task's own phases (the shipped ones name pick-and-place's).
    poke = {
        "name": "poke-reach",
        "perturbations": [{"type": "poke", "trigger": {"phase": "reach"}}],
    }
    hashes = []
    for _ in range(2):
        env = gym.make(toy_task, suite=poke)
        env.reset(seed=7)
        for _ in range(10):
            env.step(np.zeros(7))
        hashes.append(env.unwrapped.state_hash())
        env.close()
    assert hashes[0] == hashes[1]


def test_a_new_tasks_scene_yaml_is_where_its_fields_and_defaults_are_checked(toy_task):
    env = gym.make(toy_task, scene_overrides={"task": {"reach_radius": 0.05}})
    assert env.unwrapped.scene_spec["task"]["reach_radius"] == 0.05
    env.close()
    with pytest.raises(Exception, match="object_size: unknown field"):
        gym.make(toy_task, scene_overrides={"task": {"object_size": [0.04, 0.05]}})


def test_a_residual_over_a_base_runs_on_a_new_task(toy_task):
    env = gym.make(toy_task, base="zero", features="proprio")
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    assert env.observation_space.contains(obs)
    env.close()


def test_the_one_episode_loop_records_a_new_tasks_episode(toy_task):
    env = gym.make(toy_task, base="zero", features="proprio")
    identity = {"env_id": toy_task, "env_spec_hash": env.unwrapped.env_spec_hash,
                "suite": "nominal", "objects": "train", "base": "zero"}  # fmt: skip
    episode = run_episode(env, lambda obs, info: np.zeros(7), 3, record=identity)
    env.close()
    assert episode.record.env_id == toy_task and episode.steps == 40  # 2 s at 20 Hz
    assert episode.record.success is False and episode.record.final_state_hash


def test_a_new_task_without_held_out_wordings_refuses_them_by_name(toy_task):
    with pytest.raises(ValueError, match=f"{toy_task} has no held-out instruction wordings"):
        gym.make(toy_task, instructions="heldout")
