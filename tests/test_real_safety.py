"""The safety layer on its own: no action sequence, however wild, escapes the box or caps."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from residual_bench.real.driver import RobotState
from residual_bench.real.safety import SafetyLayer, SafetyLimits, tilt

DT = 0.05
LIMITS = SafetyLimits()
DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # gripper pointing straight down


def state(pos, t=0.0, joints=None):
    joints = np.array([0.0, -0.35, 0.0, -2.5, 0.0, 2.15, 0.78]) if joints is None else joints
    return RobotState(t, joints, 0.08, np.asarray(pos, float), DOWN, np.zeros(3))


wild = st.floats(-1.0, 1.0, allow_nan=False)
actions = st.lists(st.lists(wild, min_size=7, max_size=7), min_size=1, max_size=40)
# The measured pose may be anywhere near the workspace (the arm can be pushed around).
measured = st.lists(st.floats(-0.2, 1.0), min_size=3, max_size=3)


@settings(max_examples=200, deadline=None)
@given(actions, st.lists(measured, min_size=40, max_size=40))
def test_no_action_sequence_leaves_the_box_or_exceeds_the_caps(seq, poses):
    layer = SafetyLayer(LIMITS, DT)
    layer.reset(state([0.45, 0.0, 0.3]))
    low, high = np.array(LIMITS.workspace_low), np.array(LIMITS.workspace_high)
    prev_pos, prev_orn = layer.target
    for k, a in enumerate(seq):
        t = (k + 1) * DT
        d = layer.filter(np.array(a), state(poses[k], t), t, t)
        assert np.all(d.position >= low - 1e-12) and np.all(d.position <= high + 1e-12)
        step = np.linalg.norm(d.position - prev_pos)
        assert step <= min(LIMITS.max_step_translation, LIMITS.max_speed * DT) + 1e-9
        turn = (Rotation.from_quat(d.orientation) * Rotation.from_quat(prev_orn).inv()).magnitude()
        assert turn <= min(LIMITS.max_step_rotation, LIMITS.max_angular_speed * DT) + 1e-9
        assert tilt(d.orientation) <= LIMITS.max_tilt + 1e-9
        assert 0.0 <= d.gripper_width <= 0.08
        prev_pos, prev_orn = d.position, d.orientation


@settings(max_examples=100, deadline=None)
@given(actions)
def test_acceleration_is_limited_away_from_the_walls(seq):
    # A box far larger than the motion isolates the acceleration limit from box clipping.
    limits = SafetyLimits(workspace_low=(-9.0, -9.0, -9.0), workspace_high=(9.0, 9.0, 9.0))
    layer = SafetyLayer(limits, DT)
    layer.reset(state([0.45, 0.0, 0.3]))
    pos, vel = layer.target[0], np.zeros(3)
    for k, a in enumerate(seq):
        t = (k + 1) * DT
        d = layer.filter(np.array(a), state(pos, t), t, t)  # the arm tracks perfectly
        new_vel = (d.position - pos) / DT
        assert np.linalg.norm(new_vel - vel) <= limits.max_acceleration * DT + 1e-9
        pos, vel = d.position, new_vel


def test_every_intervention_is_logged():
    layer = SafetyLayer(LIMITS, DT)
    layer.reset(state([0.69, 0.0, 0.3]))
    for k in range(10):
        layer.filter(
            np.array([1, 0, 0, 1, 0, 0, 1.0]), state([0.69, 0, 0.3], k * DT), k * DT, k * DT
        )
    kinds = {i.kind for i in layer.log}
    assert {"workspace", "rotation_cap", "translation_cap", "acceleration"} & kinds
    assert "workspace" in kinds


def test_watchdog_holds_then_stops_and_latches_until_acknowledged():
    layer = SafetyLayer(LIMITS, DT)
    layer.reset(state([0.45, 0.0, 0.3]))
    go = np.array([1, 0, 0, 0, 0, 0, 1.0])
    before = layer.target[0]
    d = layer.filter(go, state([0.45, 0, 0.3], t=0.0), now=0.2, action_time=0.2)  # state stale
    assert d.mode == "hold" and np.allclose(d.position, before)
    d = layer.filter(go, state([0.45, 0, 0.3], t=0.0), now=0.8, action_time=0.8)
    assert d.mode == "stop" and layer.latched == "watchdog"
    d = layer.filter(go, state([0.45, 0, 0.3], t=0.85), now=0.85, action_time=0.85)
    assert d.mode == "stop", "a latched fault must never clear by itself"
    layer.acknowledge("tester", 0.9)
    assert layer.filter(go, state([0.45, 0, 0.3], 0.9), 0.9, 0.9).mode == "stop", "until a reset"
    layer.reset(state([0.45, 0, 0.3], 0.95))
    assert layer.filter(go, state([0.45, 0, 0.3], 1.0), 1.0, 1.0).mode == "track"
    assert "fault_acknowledged" in [i.kind for i in layer.log]


def test_joint_limit_margin_holds_the_target():
    layer = SafetyLayer(LIMITS, DT)
    layer.reset(state([0.45, 0.0, 0.3]))
    joints = np.array([2.85, -0.35, 0.0, -2.5, 0.0, 2.15, 0.78])  # joint 1 within 0.1 rad
    d = layer.filter(np.ones(7), state([0.45, 0, 0.3], 0.05, joints), 0.05, 0.05)
    assert d.mode == "hold" and layer.log[-1].kind == "joint_margin"


def test_reset_outside_the_box_is_refused():
    with pytest.raises(ValueError, match="outside the workspace box"):
        SafetyLayer(LIMITS, DT).reset(state([0.9, 0.0, 0.3]))


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="low < high"):
        SafetyLimits(workspace_low=(1, 0, 0), workspace_high=(0, 1, 1))
