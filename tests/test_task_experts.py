"""Every task family finds its privileged expert in one table, so the scripted bases and
their one error model run on any task that registers an expert."""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

import residual_bench.registration  # noqa: F401  (registers the env ids)
from residual_bench.policies import task_experts
from residual_bench.policies.expert import ScriptedExpert
from residual_bench.policies.scripted_vla import ScriptedVLABase
from residual_bench.policies.task_experts import (
    expert_families,
    expert_for,
    register_expert,
    task_family,
)
from residual_bench.tasks import register_task, task_ids


def fake_env(env_id: str) -> SimpleNamespace:
    """Just what ``expert_for`` reads: ``env.unwrapped.task_class.env_id``."""
    task_class = type("FakeTask", (), {"env_id": env_id})
    return SimpleNamespace(unwrapped=SimpleNamespace(task_class=task_class))


def test_a_task_family_is_its_id_without_the_version():
    assert task_family("ResidualPickPlace-v1") == "ResidualPickPlace"
    assert task_family("ResidualPickPlace") == "ResidualPickPlace"


def test_pick_and_place_finds_the_scripted_expert_with_the_options_passed_on():
    env = gym.make("ResidualPickPlace-v1")
    expert = expert_for(env, hold_steps=4, descend_tolerance=0.012)
    assert isinstance(expert, ScriptedExpert)
    assert expert.hold_steps == 4 and expert.descend_tolerance == 0.012
    assert "ResidualPickPlace" in expert_families()
    env.close()


def test_a_task_without_an_expert_is_a_clear_error_naming_it_and_the_registered_ones():
    with pytest.raises(ValueError, match=r"'ToyNoExpert-v3' has no scripted expert") as err:
        expert_for(fake_env("ToyNoExpert-v3"))
    assert "ResidualPickPlace" in str(err.value)


def test_the_scripted_base_refuses_a_task_without_an_expert():
    env = fake_env("ToyNoExpert-v0")
    env.unwrapped.control_hz = 20.0
    with pytest.raises(ValueError, match="no scripted expert"):
        ScriptedVLABase(env)


def test_an_expert_registers_once_per_family_by_decorator_or_call():
    try:

        @register_expert("ToyExpertTask-v0")
        def make(**options):
            return options

        assert expert_for(fake_env("ToyExpertTask-v2"), hold_steps=3) == {"hold_steps": 3}
        with pytest.raises(ValueError, match="already registered"):
            register_expert("ToyExpertTask", make)
    finally:
        task_experts._EXPERTS.pop("ToyExpertTask", None)


def test_the_scripted_base_takes_the_tasks_share_of_its_geometric_errors():
    """A task with millimetre tolerances declares ``base_error_scale``: the same seeded draw,
    scaled, so the scripted base stays nearly right there instead of always wrong."""
    pick_place = gym.make("ResidualPickPlace-v1")
    insert = gym.make("ResidualInsert-v0")
    bases = [ScriptedVLABase(pick_place), ScriptedVLABase(insert)]
    for base in bases:
        base.reset("", seed=7)
    full, scaled = (base.expert.errors for base in bases)
    factor = insert.unwrapped.task_class.base_error_scale
    assert 0 < factor < 1
    np.testing.assert_allclose(scaled.object_offset, full.object_offset * factor)
    np.testing.assert_allclose(scaled.goal_offset, full.goal_offset * factor)
    assert scaled.yaw_offset == pytest.approx(full.yaw_offset * factor)
    assert scaled.grasp_height == pytest.approx(full.grasp_height * factor)
    assert scaled.grip_command == full.grip_command  # a force, not a distance
    assert np.linalg.norm(full.object_offset) > 0
    pick_place.close()
    insert.close()


@pytest.mark.parametrize("scale", [0, -0.5, 10, float("nan"), "0.5", True])
def test_a_task_with_an_unusable_error_scale_is_refused_at_registration(scale):
    task_class = type("ToyScaleTask", (), {"base_error_scale": scale})
    with pytest.raises(ValueError, match=r"ToyScaleTask.base_error_scale must be a number"):
        register_task("ToyScaleTask-v0")(task_class)
    assert "ToyScaleTask-v0" not in task_ids()
