"""The residual's ``objects`` features find the target and its goal body on every task.

The segmentation ids differ between tasks (stack's target is id 3, pick-and-place's 4), so
the features read them from the task's ``segmentation_classes`` and ``goal_class``; checked
here against the simulator's own poses (the ``privileged`` features) on each task's first
scene.
"""

import numpy as np
import pytest

from residual_bench.residual import make_residual_env
from residual_bench.residual.env import observation_layout
from residual_bench.residual.features import privileged_features, segment_ids
from residual_bench.tasks import current_task_ids, register_task, task_entry
from residual_bench.tasks.pick_place import PickPlaceTask

UNIT_M = 0.05


@pytest.mark.parametrize("env_id", current_task_ids())
def test_the_objects_features_point_at_the_target_and_its_goal_body(env_id):
    env = make_residual_env("scripted", "objects", task=env_id, suite="nominal")
    obs, _ = env.reset(seed=1)
    layout = observation_layout("objects")
    truth = privileged_features(env.unwrapped)  # target, velocity, goal, target - goal
    seen_target = obs[layout["target_from_gripper"]][:2] * UNIT_M
    seen_goal = obs[layout["plate_from_gripper"]][:2] * UNIT_M
    true_target, true_goal = truth[0:2] * UNIT_M, truth[6:8] * UNIT_M
    assert np.linalg.norm(true_target - true_goal) > 0.05, "the scene cannot tell them apart"
    assert np.linalg.norm(seen_target - true_target) < 0.025
    assert np.linalg.norm(seen_goal - true_goal) < 0.025
    env.close()


def test_each_task_names_its_goal_body_among_its_classes():
    for env_id in current_task_ids():
        task = task_entry(env_id).task
        target, goal = segment_ids(task.segmentation_classes, task.goal_class)
        assert task.segmentation_classes[target] == "target" and target != goal
    with pytest.raises(ValueError, match=r"have no \['tray'\]"):
        segment_ids(("background", "target"), "tray")
    assert segment_ids(("background", "target"), None) == (1, None)  # no goal body


def test_a_task_whose_goal_class_is_not_segmented_is_refused_at_registration():
    class Trayless(PickPlaceTask):
        goal_class = "tray"

    with pytest.raises(ValueError, match="goal_class 'tray' is none of"):
        register_task("ResidualTrayless-v0")(Trayless)
