"""What every task beside pick-and-place promises alike: gymnasium's and SB3's checkers pass,
the scripted base drives it through the expert table, its scene is in the segmentation, and
an expert episode replays in another process and after another episode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from task_episodes import expert_state_hash

# Each task with the segmentation class of the body that marks its goal.
TASKS = {
    "ResidualStack-v0": "support",
    "ResidualPush-v0": "goal",
    "ResidualInsert-v0": "fixture",
}


@pytest.mark.parametrize("obs_mode", ["state", "rgb+seg"])
@pytest.mark.parametrize("env_id", TASKS)
def test_the_task_passes_gymnasiums_checker(env_id, obs_mode):
    env = gym.make(env_id, obs_mode=obs_mode, image_size=32)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", TASKS)
def test_the_task_passes_sb3s_checker(env_id):
    env = gym.make(env_id)
    sb3_check_env(env.unwrapped, warn=True)
    env.close()


@pytest.mark.parametrize("env_id", TASKS)
def test_the_scripted_base_runs_on_the_task_through_the_expert_table(env_id):
    env = gym.make(env_id, base="scripted", features="proprio")
    env.reset(seed=0)
    start = env.unwrapped.robot.tcp_state()[0].copy()
    for _ in range(10):
        *_, info = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    moved = np.linalg.norm(env.unwrapped.robot.tcp_state()[0] - start)
    env.close()
    # With a zero residual every motion is the base's: the expert table gave it an expert.
    assert info["base_errors"] == 0
    assert moved > 0.005


@pytest.mark.parametrize("env_id, goal_class", TASKS.items())
def test_the_target_and_what_marks_the_goal_are_in_the_segmentation(env_id, goal_class):
    env = gym.make(env_id, obs_mode="rgb+seg", image_size=84)
    obs, _ = env.reset(seed=1)
    names = env.unwrapped.segmentation_names
    seen = {names[int(i)] for i in np.unique(obs["segmentation"])}
    assert {"target", goal_class, "robot", "table"} <= seen
    env.close()


@pytest.mark.parametrize("env_id", TASKS)
def test_an_expert_episode_replays_in_another_process_and_after_another_episode(env_id):
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from task_episodes import expert_state_hash\n"
        f"print('RESULT', expert_state_hash({env_id!r}, 3, 60))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    there = result.stdout.split("RESULT ")[-1].strip()
    assert expert_state_hash(env_id, 3, 60) == there == expert_state_hash(env_id, 3, 60, before=8)
