"""A suite applies only to a task that can host it: a perturbation kind that means nothing
for the task, or a trigger phase the task does not have, is refused by name when the suite
is applied, never silently a perturbation that does not fire."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from residual_bench.env_spec import SpecError
from residual_bench.perturb import load_suite, suite_names
from residual_bench.perturb.suite import check_suite_applies
from residual_bench.sim.objects import objects_in_split
from residual_bench.tasks import SceneObject, Task
from residual_bench.tasks.pick_place import PickPlaceTask

TOY_ID = "ToyNudge-v0"
TOY_SCENE = """\
version: 0
task:
  episode_seconds: 1.0
randomization:
  light_direction: {low: [0.0, 0.0, 1.0], high: [0.0, 0.0, 1.0]}
  camera_eye_jitter: 0.0
  camera_target_jitter: 0.0
  pixel_noise_std: 0.0
camera: {eye: [0.86, 0.0, 0.62], target: [0.46, 0.0, 0.0], fov_deg: 48.0}
"""


def one_entry(**entry) -> dict:
    return {"name": "probe", "perturbations": [entry]}


class ToyNudgeTask(Task):
    """**Task Description:** nudge the cube (nothing is ever held). **Randomizations:**
    none. **Success Conditions:** never (a fixture for the suite rules)."""

    phases = ("approach", "nudge", "done")
    segmentation_classes = ("background", "robot", "target")
    max_objects = 1
    perturbation_kinds = ("poke", "slide", "latency")  # nothing is held: no drop

    def build(self, rng):
        self.objects = [SceneObject(objects_in_split("train")[0], "red", 1.0, "cube")]
        self.world.create_primitive("cube", "box", (0.02, 0.02, 0.02), 0.1, (0.5, 0.0, 0.02))
        self.instruction = "nudge the red cube"

    def progress(self, states, tcp):
        return {"success": False, "is_grasped": False, "tcp_to_object_xy": 0.0}

    def phase(self, progress):
        return "approach"

    def reward(self, progress, mode):
        return 0.0

    def segmentation_bodies(self):
        return {"panda": 1, "cube": 2}


@pytest.fixture
def toy_task(register_toy_task):
    return register_toy_task(TOY_ID, ToyNudgeTask, TOY_SCENE)


def test_a_drop_on_a_task_where_nothing_is_held_is_refused_naming_suite_kind_and_task(toy_task):
    with pytest.raises(SpecError) as err:
        gym.make(toy_task, suite="drop")
    message = str(err.value)
    assert "suite 'drop'" in message and "a drop does not apply to ToyNudge-v0" in message
    assert "poke, slide, latency" in message  # what it does take


def test_a_trigger_phase_the_task_does_not_have_is_refused_naming_it(toy_task):
    with pytest.raises(SpecError, match=r"'transport' is not a phase of ToyNudge-v0") as err:
        gym.make(toy_task, suite=one_entry(type="poke", trigger={"phase": "transport"}))
    assert "approach, nudge, done" in str(err.value) and "suite 'probe'" in str(err.value)


def test_a_suite_in_the_tasks_own_phases_and_kinds_runs(toy_task):
    env = gym.make(toy_task, suite=one_entry(type="poke", trigger={"phase": "approach"}))
    env.reset(seed=0)
    env.step(np.zeros(7, dtype=np.float32))
    env.close()


def test_a_suite_file_that_does_not_apply_is_named_by_its_path(toy_task, tmp_path):
    path = tmp_path / "my_suite.yaml"
    path.write_text("name: mine\nperturbations:\n  - {type: drop, trigger: {phase: nudge}}\n")
    with pytest.raises(SpecError, match=r"suite 'mine' \(.*my_suite.yaml\).*a drop"):
        gym.make(toy_task, suite=str(path))


def test_a_phase_name_pick_and_place_lacks_is_refused_there():
    with pytest.raises(SpecError, match=r"'lift' is not a phase of ResidualPickPlace-v1"):
        gym.make("ResidualPickPlace-v1", suite=one_entry(type="poke", trigger={"phase": "lift"}))


def test_every_shipped_suite_applies_to_pick_and_place():
    for name in suite_names():
        check_suite_applies(load_suite(name), "ResidualPickPlace-v1", PickPlaceTask.phases)


def test_a_task_that_leaves_its_kinds_out_takes_every_kind():
    assert Task.perturbation_kinds is None
    check_suite_applies(load_suite("mixed-hard"), "any", ("approach", "grasp", "transport", "done"))
