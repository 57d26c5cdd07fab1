"""The real-robot safety layer holds every limit at once, and refuses what it cannot trust.

The audit found, with the twin, saturated random actions exceeding the 1.5 m/s^2
acceleration cap (up to 2.97) exactly when the target met the workspace box, since the cap
was applied before the box clip; a NaN target kept by the layer; a NaN action time that
switched the stale-action watchdog off; reset joints sent to the driver unchecked; and a
joint inside its margin holding for the rest of the episode. Beside those: a time ahead of the
clock or a clock running backwards also silenced the watchdog, a malformed input broadcast or
crashed, a layer never reset (or resumed after a fault without one) jumped to a stale target,
and the log blamed the wall for steps that the acceleration limit had shaped.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from residual_bench.real.driver import RobotState
from residual_bench.real.env import PandaRealEnv
from residual_bench.real.safety import (
    PANDA_JOINT_UPPER,
    SafetyLayer,
    SafetyLimits,
    braking_speed,
    check_reset_joints,
)

DT = 0.05
LIMITS = SafetyLimits()
DOWN = np.array([1.0, 0.0, 0.0, 0.0])
JOINTS = np.array([0.0, -0.35, 0.0, -2.5, 0.0, 2.15, 0.78])
LOW, HIGH = np.array(LIMITS.workspace_low), np.array(LIMITS.workspace_high)
TOL = 1e-9


def state(pos, t=0.0, joints=JOINTS):
    return RobotState(t, np.asarray(joints, float), 0.08, np.asarray(pos, float), DOWN, np.zeros(3))


def run(layer: SafetyLayer, actions: np.ndarray, start) -> list[np.ndarray]:
    """Targets of a tracking run in which the arm follows its target exactly."""
    layer.reset(state(start))
    targets = [layer.target[0]]
    for k, action in enumerate(actions):
        t = (k + 1) * DT
        decision = layer.filter(action, state(targets[-1], t), t, t)
        assert decision.mode == "track"
        targets.append(decision.position)
    return targets


def assert_every_limit(targets: list[np.ndarray]) -> float:
    """Check the box, speed and acceleration limits on a run; returns its peak acceleration."""
    positions = np.array(targets)
    velocities = np.diff(positions, axis=0) / DT
    accelerations = np.diff(np.vstack([np.zeros(3), velocities]), axis=0) / DT
    assert np.all(positions >= LOW - TOL) and np.all(positions <= HIGH + TOL)
    speed_cap = min(LIMITS.max_step_translation / DT, LIMITS.max_speed)
    assert np.linalg.norm(velocities, axis=1).max() <= speed_cap + 1e-6
    peak = float(np.linalg.norm(accelerations, axis=1).max())
    assert peak <= LIMITS.max_acceleration + 1e-6
    return peak


@pytest.mark.parametrize("seed", range(20))
def test_saturated_random_actions_keep_the_acceleration_cap_at_the_walls(seed):
    rng = np.random.default_rng(seed)
    actions = np.sign(rng.uniform(-1, 1, (300, 7)))  # saturated: every step at full scale
    start = rng.uniform(LOW + 0.01, HIGH - 0.01)
    targets = run(SafetyLayer(LIMITS, DT), actions, start)
    assert_every_limit(targets)
    on_a_wall = np.isclose(np.array(targets), LOW) | np.isclose(np.array(targets), HIGH)
    assert on_a_wall.any(), "the run must reach the box's walls to test them"


@pytest.mark.parametrize("corner", range(8))
def test_driving_into_each_corner_at_full_speed_stops_within_the_caps(corner):
    direction = np.array([1.0 if corner >> i & 1 else -1.0 for i in range(3)])
    actions = np.tile(np.r_[direction, 0, 0, 0, 1.0], (120, 1))
    targets = run(SafetyLayer(LIMITS, DT), actions, (LOW + HIGH) / 2)
    assert assert_every_limit(targets) > 0.5 * LIMITS.max_acceleration  # it did brake hard
    np.testing.assert_allclose(targets[-1], np.where(direction > 0, HIGH, LOW), atol=1e-3)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.floats(-1, 1), min_size=7, max_size=7), min_size=1, max_size=80),
    st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
)
def test_no_action_sequence_breaks_any_translation_limit(seq, where):
    start = LOW + np.asarray(where) * (HIGH - LOW)
    assert assert_every_limit(run(SafetyLayer(LIMITS, DT), np.array(seq), start)) >= 0.0


def test_the_braking_speed_stops_exactly_at_the_wall():
    c = LIMITS.max_acceleration * DT / np.sqrt(3)
    for distance in (0.0, 0.001, 0.02, 0.1, 0.3):
        u = float(braking_speed(np.array([distance]), c, DT, 10.0)[0])
        travelled, speed = u * DT, u
        while speed > 0:
            speed = max(0.0, speed - c)
            travelled += speed * DT
        assert travelled <= distance + 1e-9


@pytest.mark.parametrize(
    "field",
    ["action", "now", "action_time", "timestamp", "joints", "position"],
)
def test_a_non_finite_input_anywhere_is_a_latched_stop_never_a_target(field):
    layer = SafetyLayer(LIMITS, DT)
    layer.reset(state([0.45, 0.0, 0.3]))
    action, now, action_time = np.zeros(7), 0.05, 0.05
    pos, t, joints = [0.45, 0.0, 0.3], 0.05, JOINTS.copy()
    if field == "action":
        action[0] = np.nan
    elif field == "now":
        now = float("nan")
    elif field == "action_time":
        action_time = float("nan")  # used to switch the stale-action watchdog off
    elif field == "timestamp":
        t = float("inf")
    elif field == "joints":
        joints[2] = np.nan
    else:
        pos = [np.nan, 0.0, 0.3]
    before = layer.target[0]
    decision = layer.filter(action, state(pos, t, joints), now, action_time)
    assert decision.mode == "stop" and layer.latched == "non_finite_input"
    assert np.all(np.isfinite(decision.position))
    np.testing.assert_array_equal(decision.position, before)


def test_reset_joints_outside_the_limits_are_refused_naming_the_joint():
    joints = JOINTS.copy()
    joints[5] = PANDA_JOINT_UPPER[5] + 0.2
    with pytest.raises(ValueError, match="reset joint 6"):
        check_reset_joints(joints, LIMITS.joint_margin)
    with pytest.raises(ValueError, match="reset joint 1"):
        check_reset_joints(np.r_[np.nan, JOINTS[1:]], LIMITS.joint_margin)
    with pytest.raises(ValueError, match="7 angles"):
        check_reset_joints(JOINTS[:6], LIMITS.joint_margin)


def test_the_env_never_sends_unchecked_reset_joints_to_the_driver():
    env = PandaRealEnv(driver="twin", camera="twin", obs_mode="rgb", image_size=64)
    try:
        sent = []
        env.driver.move_to_joints = lambda joints, timeout=10.0: sent.append(joints)
        bad = JOINTS.copy()
        bad[3] = 1.0  # joint 4's upper limit is -0.07 rad
        with pytest.raises(ValueError, match="reset joint 4"):
            env.reset(seed=0, options={"joints": bad.tolist()})
        assert sent == []
    finally:
        env.close()


def test_a_joint_margin_hold_becomes_a_stop_after_the_timeout():
    layer = SafetyLayer(LIMITS, DT)
    layer.reset(state([0.45, 0.0, 0.3]))
    near = JOINTS.copy()
    near[0] = 2.85  # within 0.1 rad of joint 1's limit
    modes = []
    for k in range(40):
        t = (k + 1) * DT
        modes.append(layer.filter(np.ones(7), state([0.45, 0, 0.3], t, near), t, t).mode)
    held = modes.index("stop")
    assert set(modes[:held]) == {"hold"}
    assert held * DT == pytest.approx(LIMITS.joint_hold_timeout, abs=DT)
    assert layer.latched == "joint_limit"
    assert "joint_margin_stop" in [i.kind for i in layer.log]


def test_leaving_the_margin_resets_the_hold_clock():
    layer = SafetyLayer(LIMITS, DT)
    layer.reset(state([0.45, 0.0, 0.3]))
    near = JOINTS.copy()
    near[0] = 2.85
    for k in range(60):
        t = (k + 1) * DT
        joints = near if k % 10 < 5 else JOINTS  # half a second in, half a second out
        assert layer.filter(np.zeros(7), state([0.45, 0, 0.3], t, joints), t, t).mode != "stop"


def test_the_log_names_the_wall_only_when_the_wall_is_what_limited_the_step():
    layer = SafetyLayer(LIMITS, DT)
    layer.reset(state((LOW + HIGH) / 2))
    push = np.r_[1.0, 0, 0, 0, 0, 0, 1.0]  # full speed along x, from the centre of the box
    t = DT
    kinds = [i.kind for i in layer.filter(push, state(layer.target[0], t), t, t).interventions]
    assert kinds == ["acceleration"]  # 0.2 m from the wall, the wall limits nothing yet
    for k in range(2, 60):
        t = k * DT
        layer.filter(push, state(layer.target[0], t), t, t)
    assert "workspace" in [i.kind for i in layer.log]  # it braked for the wall in the end


def test_a_layer_never_reset_sends_no_target():
    layer = SafetyLayer(LIMITS, DT)  # its target is not yet where the arm is
    decision = layer.filter(np.zeros(7), state([0.45, 0.0, 0.3], DT), DT, DT)
    assert decision.mode == "stop"
    assert decision.interventions[-1].kind == "not_reset"


def test_after_an_acknowledged_fault_tracking_resumes_only_from_a_reset():
    layer = SafetyLayer(LIMITS, DT)
    layer.reset(state([0.45, 0.0, 0.3]))
    layer.latch("user_stop", DT)
    layer.acknowledge("operator", 2 * DT)
    # While stopped the arm was moved by hand; the old target is 0.2 m away from it.
    moved = [0.45, 0.2, 0.3]
    decision = layer.filter(np.zeros(7), state(moved, 3 * DT), 3 * DT, 3 * DT)
    assert decision.mode == "stop" and decision.interventions[-1].kind == "not_reset"
    layer.reset(state(moved, 4 * DT))
    decision = layer.filter(np.zeros(7), state(moved, 5 * DT), 5 * DT, 5 * DT)
    assert decision.mode == "track"
    np.testing.assert_allclose(decision.position, moved)


@pytest.mark.parametrize(
    ("now", "stamp", "action_time"),
    [(1.0, 1.0, 1e9), (1.0, 1e9, 1.0), (1.0, 1.0, 2.0)],
    ids=["action_time_far_ahead", "state_timestamp_far_ahead", "action_time_a_second_ahead"],
)
def test_a_time_ahead_of_the_clock_is_a_latched_stop(now, stamp, action_time):
    layer = SafetyLayer(LIMITS, DT)
    layer.reset(state([0.45, 0.0, 0.3]))
    # A time from the future would make every age negative: the watchdog would never fire.
    decision = layer.filter(np.ones(7), state([0.45, 0, 0.3], stamp), now, action_time)
    assert decision.mode == "stop" and layer.latched == "clock"


def test_a_clock_that_runs_backwards_is_a_latched_stop():
    layer = SafetyLayer(LIMITS, DT)
    layer.reset(state([0.45, 0.0, 0.3]))
    assert layer.filter(np.zeros(7), state([0.45, 0, 0.3], 1.0), 1.0, 1.0).mode == "track"
    # Going back in time would restart every hold's clock, so no hold would ever end.
    decision = layer.filter(np.zeros(7), state([0.45, 0, 0.3], 0.5), 0.5, 0.5)
    assert decision.mode == "stop" and layer.latched == "clock"


@pytest.mark.parametrize("field", ["short_action", "long_action", "one_joint", "planar_position"])
def test_a_malformed_input_is_a_latched_stop_never_a_target(field):
    layer = SafetyLayer(LIMITS, DT)
    layer.reset(state([0.45, 0.0, 0.3]))
    action, pos, joints = np.ones(7), [0.45, 0.0, 0.3], JOINTS
    if field == "short_action":
        action = np.ones(6)
    elif field == "long_action":
        action = np.ones(8)
    elif field == "one_joint":
        joints = np.array([0.0])  # would broadcast against the seven limits
    else:
        pos = [0.45, 0.0]
    decision = layer.filter(action, state(pos, DT, joints), DT, DT)
    assert decision.mode == "stop" and layer.latched == "malformed_input"
    assert field.split("_")[-1] in decision.interventions[0].detail


def test_an_action_time_ahead_of_the_robot_clock_ends_the_episode_without_a_target():
    env = PandaRealEnv(driver="twin", camera="twin", obs_mode="rgb", image_size=64)
    try:
        env.reset(seed=0)
        sent = []
        env.driver.set_ee_target = lambda position, orientation: sent.append(position)
        env.mark_action_time(env.driver.clock() + 3600.0)  # a peer's clock, not the robot's
        _, _, terminated, _, info = env.step(np.zeros(7, dtype=np.float32))
        assert terminated and info["termination_reason"] == "clock"
        assert sent == []
    finally:
        env.close()
