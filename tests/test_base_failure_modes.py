"""The conditions of benchmarks/base_failure_modes.py: each changes one thing about the base."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from residual_bench.policies.scripted_vla import VLAErrorModel

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "base_failure_modes.py"


@pytest.fixture(scope="module")
def failure_modes():
    spec = importlib.util.spec_from_file_location("base_failure_modes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_removing_an_error_source_zeroes_that_source_and_keeps_every_other(failure_modes):
    env, _ = failure_modes.make_condition_env("no object offset", "nominal", "heldout")
    try:
        errors = env.controller.policy.error_model
        assert errors.object_offset_m == 0.0
        assert dataclasses.replace(errors, object_offset_m=VLAErrorModel().object_offset_m) == (
            VLAErrorModel()
        )
    finally:
        env.close()


def test_twice_the_time_doubles_the_episode_and_keeps_its_scene(failure_modes):
    short, _ = failure_modes.make_condition_env("base alone", "nominal", "heldout")
    long, _ = failure_modes.make_condition_env("twice the time", "nominal", "heldout")
    try:
        assert long.unwrapped.max_steps == 2 * short.unwrapped.max_steps
        short.reset(seed=3)
        long.reset(seed=3)
        centers = [e.unwrapped.task.object_states()[0].center for e in (short, long)]
        np.testing.assert_allclose(*centers)
    finally:
        short.close()
        long.close()


def fake_env(target: tuple[float, float, float], hand: tuple[float, float, float]):
    state = SimpleNamespace(center=np.array(target))
    sim = SimpleNamespace(
        task=SimpleNamespace(object_states=lambda: [state]),
        robot=SimpleNamespace(tcp_pose=lambda: (np.array(hand), np.array([0.0, 0.0, 0.0, 1.0]))),
    )
    return SimpleNamespace(unwrapped=sim)


def test_centring_moves_the_descending_hand_towards_the_target_centre(failure_modes):
    centring = failure_modes.CentringInDescent(fake_env((0.5, 0.0, 0.02), (0.49, 0.0, 0.05)))
    r = centring(None, {"is_grasped": False})
    # Half of the 1 cm way in one step is 5 mm, 5/6 of the 6 mm translation authority.
    np.testing.assert_allclose(r[:2], [0.005 / 0.006, 0.0])
    assert not r[2:].any()


def test_centring_saturates_at_the_residual_authority(failure_modes):
    centring = failure_modes.CentringInDescent(fake_env((0.5, 0.0, 0.02), (0.47, 0.0, 0.05)))
    np.testing.assert_allclose(centring(None, {"is_grasped": False})[:2], [1.0, 0.0])


@pytest.mark.parametrize(
    ("hand", "grasped"),
    [
        ((0.49, 0.0, 0.08), False),  # still hovering: 6 cm above the target's centre
        ((0.45, 0.0, 0.05), False),  # 5 cm off to the side
        ((0.49, 0.0, 0.05), True),  # already holding it
    ],
)
def test_centring_leaves_the_base_alone_outside_the_descent(failure_modes, hand, grasped):
    centring = failure_modes.CentringInDescent(fake_env((0.5, 0.0, 0.02), hand))
    assert not centring(None, {"is_grasped": grasped}).any()


def test_a_row_is_paired_with_the_base_alone(failure_modes):
    cell = failure_modes.Cell
    base = cell("base alone", "mixed", [True, True, False, False], [8.0, 9.0, None, None], None, 1)
    other = cell("firm grip", "mixed", [True, False, True, True], [7.0, None, 9.0, 11.0], None, 1)
    columns = [c.strip() for c in failure_modes.row(other, base).split("|")[1:-1]]
    assert columns[:3] == ["mixed", "firm grip", "3/4"]
    assert columns[4] == "+25"  # 75% against 50%
    assert columns[6] == "1/4"  # the base solved episode 1, firm grip did not
    assert columns[7] == "9.00"


def test_centring_from_the_features_reads_the_target_centroid_the_residual_sees(failure_modes):
    layout = failure_modes.observation_layout("objects")
    obs = np.zeros(max(part.stop for part in layout.values()))
    obs[layout["target_from_gripper"]] = (
        np.array([0.01, 0.0, -0.03]) / failure_modes.POSITION_UNIT_M
    )
    obs[layout["target_seen"]] = 1.0
    # The simulator would say "far away": the features alone decide.
    centring = failure_modes.CentringInDescent(fake_env((0.9, 0.0, 0.0), (0.0, 0.0, 0.5)), True)
    np.testing.assert_allclose(centring(obs, {"is_grasped": False})[:2], [0.005 / 0.006, 0.0])
    obs[layout["target_seen"]] = 0.0
    assert not centring(obs, {"is_grasped": False}).any()


def test_faster_translation_adds_half_the_base_translation_within_the_authority(failure_modes):
    env = SimpleNamespace(base_action=np.array([0.1, -0.2, 1.0, 0.3, 0.0, 0.0, -1.0]))
    r = failure_modes.FasterTranslation(env)(None, {})
    np.testing.assert_allclose(r[:3], [0.05 / 0.3, -0.1 / 0.3, 1.0])
    assert not r[3:].any()
