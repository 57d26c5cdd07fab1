"""A suite applies only to a task that can host it: a perturbation kind that means nothing
for the task, or a trigger phase the task does not have, is refused by name when the suite
is applied, never silently a perturbation that does not fire. Each task names the shipped
suites it is evaluated on (``Task.suites``: ``bench run``'s default), and all of them apply."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from residual_bench.env_spec import SpecError
from residual_bench.perturb import load_suite, suite_names
from residual_bench.perturb.suite import check_suite_applies, suite_applies
from residual_bench.protocol import STANDARD_SUITES
from residual_bench.residual.train import task_training_suite
from residual_bench.sim.objects import objects_in_split
from residual_bench.tasks import SceneObject, Task, task_entry, task_ids
from residual_bench.tasks.pick_place import PickPlaceTask
from residual_bench.tasks.push import PushTask

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
    fired = []
    for _ in range(20):
        fired += env.step(np.zeros(7, dtype=np.float32))[-1]["new_events"]
    env.close()
    assert env.unwrapped.suite.name == "probe"
    assert [event["type"] for event in fired] == ["poke"]


def test_a_suite_file_that_does_not_apply_is_named_by_its_path(toy_task, tmp_path):
    path = tmp_path / "my_suite.yaml"
    path.write_text("name: mine\nperturbations:\n  - {type: drop, trigger: {phase: nudge}}\n")
    with pytest.raises(SpecError, match=r"suite 'mine' \(.*my_suite.yaml\).*a drop"):
        gym.make(toy_task, suite=str(path))


def test_a_phase_name_pick_and_place_lacks_is_refused_there():
    with pytest.raises(SpecError, match=r"'lift' is not a phase of ResidualPickPlace-v1"):
        gym.make("ResidualPickPlace-v1", suite=one_entry(type="poke", trigger={"phase": "lift"}))


# -- the suites each task is evaluated on ---------------------------------------------------

CURRENT_TASKS = sorted({task_entry(env_id).task for env_id in task_ids()}, key=str)


def test_pick_and_place_keeps_its_suites_in_their_order():
    standard = ("nominal", "poke", "slide", "drop", "latency", "mixed")
    assert PickPlaceTask.suites == standard
    assert STANDARD_SUITES == standard  # what ``bench run --env ResidualPickPlace-v1`` runs


@pytest.mark.parametrize("task", CURRENT_TASKS, ids=lambda t: t.env_id)
def test_every_suite_a_task_declares_is_shipped_and_applies_to_it(task):
    assert task.suites[0] == "nominal" and task.suites[-1].endswith("mixed")
    assert len(set(task.suites)) == len(task.suites)
    for name in task.suites:
        assert name in suite_names(), name
        suite = load_suite(name)
        check_suite_applies(suite, task.env_id, task.phases, task.perturbation_kinds, name)


def test_every_shipped_suite_applies_to_some_task_and_all_but_push_to_pick_and_place():
    for name in suite_names():
        suite = load_suite(name)
        assert any(suite_applies(suite, t.phases, t.perturbation_kinds) for t in CURRENT_TASKS)
        assert suite_applies(suite, PickPlaceTask.phases) != name.startswith("push-"), name


def test_no_pick_and_place_suite_but_nominal_applies_to_push_so_push_has_its_own():
    for name in PickPlaceTask.suites[1:]:
        with pytest.raises(SpecError, match="ResidualPush-v0"):
            gym.make("ResidualPush-v0", suite=name)
    assert PushTask.suites == ("nominal", "push-poke", "push-slide", "push-latency", "push-mixed")


def _magnitudes(name: str) -> dict[str, dict]:
    """A suite's entries by kind: everything but the trigger phases."""
    return {
        e.type: {**e.params, "delay": e.delay, "count": e.count, "p": e.probability}
        for e in load_suite(name).entries
    }


@pytest.mark.parametrize("kind", ["poke", "slide", "latency", "mixed"])
def test_a_push_suite_draws_the_pick_and_place_magnitudes_while_reaching_or_pushing(kind):
    push = load_suite(f"push-{kind}")
    assert push.split == "train"
    assert all(entry.phases == ("approach", "push") for entry in push.entries)
    expected = _magnitudes(kind)
    expected.pop("drop", None)  # nothing is held in a push
    assert _magnitudes(f"push-{kind}") == expected


def test_a_task_that_leaves_its_kinds_out_takes_every_kind():
    assert Task.perturbation_kinds is None
    check_suite_applies(load_suite("mixed-hard"), "any", ("approach", "grasp", "transport", "done"))


def test_a_residual_config_trains_on_the_tasks_own_mixed_suite_where_mixed_does_not_fit():
    assert task_training_suite("mixed", "ResidualPickPlace-v1") == "mixed"
    assert task_training_suite("mixed", "ResidualStack-v0") == "mixed"
    assert task_training_suite("mixed", "ResidualPush-v0") == "push-mixed"
    assert task_training_suite("push-slide", "ResidualPush-v0") == "push-slide"
    with pytest.raises(ValueError, match="'drop' does not fit ResidualPush-v0; give one of"):
        task_training_suite("drop", "ResidualPush-v0")
