"""The scripted expert proves the task solvable; success, termination and rewards follow.

Success means the target rests on the plate, released. ``terminate_on_success`` ends the
episode at the first success; the dense reward is staged shaping in [0, 1] and the sparse
reward is 1 exactly on success.
"""

import numpy as np
import pytest

from residual_bench.policies.bc.data import demonstration_expert
from residual_bench.policies.expert import (
    APPROACH_CLEARANCE,
    FUNNEL_SLOPE,
    Phase,
    ScriptedExpert,
)

EPISODE_SECONDS = 12.0  # the shipped spec's time limit


def run_expert(env, seed: int, expert=None) -> list[tuple[float, bool, bool, dict]]:
    """One expert episode; per step (reward, terminated, truncated, info)."""
    expert = expert or ScriptedExpert()
    env.reset(seed=seed)
    expert.reset()
    steps = []
    while True:
        _, reward, terminated, truncated, info = env.step(expert.act(env))
        steps.append((reward, terminated, truncated, info))
        if terminated or truncated:
            return steps


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_the_demonstration_expert_of_the_bc_base_solves_seeded_episodes_of_each_split(
    make_env, split
):
    env = make_env(objects=split)
    for seed in range(5):
        info = run_expert(env, seed, demonstration_expert())[-1][3]
        assert info["success"], f"{split} seed {seed}: not on the plate at the time limit"


def test_funnel_approach_aims_lower_the_better_the_hand_is_lined_up():
    obj, grasp_z = np.array([0.5, 0.1, 0.03]), 0.025
    heights = []
    for xy_error in (0.0, 0.005, 0.01, 0.02, 0.2):
        tcp = np.array([0.5 + xy_error, 0.1, 0.2])
        target = ScriptedExpert._funnel_target(obj, tcp, grasp_z)
        assert target[:2] == pytest.approx(obj[:2])
        heights.append(target[2] - grasp_z)
    assert heights[0] == 0.0  # lined up: straight to the grasp point
    assert heights[1:4] == pytest.approx([FUNNEL_SLOPE * e for e in (0.005, 0.01, 0.02)])
    # Far off: no higher than the default expert's hover point.
    assert heights[4] == pytest.approx(max(obj[2] + APPROACH_CLEARANCE, 0.1) - grasp_z)


@pytest.mark.parametrize("funnel", [True, False])
def test_without_yaw_alignment_the_expert_never_turns_about_the_vertical(make_env, funnel):
    env = make_env()
    env.reset(seed=3)
    expert = ScriptedExpert(funnel=funnel, align_yaw=False)
    expert.reset()
    phases = set()
    for _ in range(80):
        action = expert.act(env)
        phases.add(expert.phase)
        assert action[5] == 0.0
        env.step(action)
    assert Phase.LIFT in phases  # it got past the approach without ever aligning the fingers


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_expert_solves_seeded_episodes_of_each_split(make_env, split):
    env = make_env(objects=split)
    for seed in range(5):
        steps = run_expert(env, seed)
        _, terminated, truncated, info = steps[-1]
        assert truncated and not terminated
        assert info["time"] == pytest.approx(EPISODE_SECONDS)
        assert info["success"], f"{split} seed {seed}: not on the plate at the time limit"
        first = info["first_success_time"]
        assert first is not None
        assert 0.0 < first <= info["time"]
        # first_success_time is the time of the first step whose info says success.
        first_step = next(i for _, _, _, i in steps if i["success"])
        assert first == pytest.approx(first_step["time"])


def test_first_success_time_stays_none_until_a_success(make_env, actions):
    env = make_env(scene_overrides={"task": {"episode_seconds": 1.0}})
    env.reset(seed=0)
    for action in actions(0, 20):
        *_, info = env.step(action)
        assert not info["success"]
        assert info["first_success_time"] is None


def test_success_does_not_end_the_episode_by_default(make_env):
    env = make_env()
    steps = run_expert(env, seed=1)
    assert any(info["success"] for *_, info in steps)
    assert not any(terminated for _, terminated, _, _ in steps)
    assert [truncated for _, _, truncated, _ in steps].index(True) == len(steps) - 1
    assert len(steps) == EPISODE_SECONDS * 20


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_terminate_on_success_ends_the_episode_at_the_first_success(make_env, seed):
    reference = run_expert(make_env(), seed)
    first_time = reference[-1][3]["first_success_time"]
    assert first_time is not None

    steps = run_expert(make_env(terminate_on_success=True), seed)
    _, terminated, truncated, info = steps[-1]
    assert terminated and not truncated
    assert info["success"]
    assert info["time"] == pytest.approx(first_time)
    assert info["first_success_time"] == pytest.approx(first_time)
    assert not any(i["success"] for *_, i in steps[:-1])


# -- rewards -------------------------------------------------------------------------------


def test_sparse_reward_is_one_exactly_when_info_reports_success(make_env):
    env = make_env(reward_mode="sparse")
    steps = run_expert(env, seed=2)
    for reward, _, _, info in steps:
        assert isinstance(reward, float)
        assert reward == (1.0 if info["success"] else 0.0)
    assert any(info["success"] for *_, info in steps)
    assert any(not info["success"] for *_, info in steps)


def test_dense_reward_stays_in_unit_interval_and_is_one_exactly_on_success(make_env):
    env = make_env(reward_mode="dense")
    rewards, successes, grasped = [], [], []
    for seed in (3, 4):
        for reward, _, _, info in run_expert(env, seed):
            rewards.append(reward)
            successes.append(info["success"])
            grasped.append(info["is_grasped"])
    rewards = np.array(rewards)
    successes = np.array(successes)
    assert np.all((rewards >= 0.0) & (rewards <= 1.0))
    np.testing.assert_array_equal(rewards == 1.0, successes)
    assert successes.any() and np.array(grasped).any()


def test_dense_reward_stays_in_unit_interval_under_random_actions(make_env, actions):
    env = make_env(scene_overrides={"task": {"episode_seconds": 2.0}})
    for seed in range(3):
        env.reset(seed=seed)
        for action in actions(seed, 40):
            _, reward, *_ = env.step(action)
            assert 0.0 <= reward <= 1.0


def test_dense_reward_grows_as_the_expert_reaches_then_grasps_the_object(make_env):
    """Staged shaping: reaching pays less than holding the object, which pays less than
    success."""
    env = make_env(reward_mode="dense")
    steps = run_expert(env, seed=0)
    first_grasp = next(k for k, (*_, info) in enumerate(steps) if info["is_grasped"])
    before = max(reward for reward, *_ in steps[:first_grasp])
    carried = [r for r, *_, info in steps if info["is_grasped"] and info["object_height"] > 0.03]
    assert carried, "the expert never lifted the object"
    assert before <= 0.25 < min(carried) < 1.0
    assert steps[-1][0] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "heldout"])
def test_expert_success_rate_is_at_least_90_percent_over_50_episodes(make_env, split):
    env = make_env(objects=split)
    successes = [run_expert(env, seed)[-1][3]["success"] for seed in range(1000, 1050)]
    assert np.mean(successes) >= 0.9, f"{split}: {np.mean(successes):.0%}"
