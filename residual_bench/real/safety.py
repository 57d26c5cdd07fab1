"""The safety layer between the summed action (base + residual) and the robot driver.

Pure: it sees the action, the measured state and the time, and returns the target to send,
with no I/O, so it is tested on its own (including property tests over wild action
sequences). Every change it makes to what the policy asked for is an :class:`Intervention`,
kept in :attr:`SafetyLayer.log` and written to the ``logging`` module.

What it enforces, per control step, on the *commanded* target (the robot's own controller
tracks that target; Franka's reflexes remain the last line behind this one):

- translation: the workspace box, an acceleration limit and a speed limit (well below Franka's
  2 m/s and 13 m/s^2), all holding at once on every tracking step: the target slows down
  in time to stop at a wall of the box (never a wall-induced jolt), and the speed cap comes
  last as a projection that cannot break the others (:meth:`SafetyLayer._velocity_within`);
- rotation: per-step cap (also an angular-speed limit) and a tilt cone around the
  gripper-down orientation; a rotation that would leave the cone is dropped;
- joint-limit margins: near a limit the target holds, and a hold that lasts
  ``joint_hold_timeout`` becomes a stop (the policy keeps pushing into the limit);
- input it cannot trust is a stop with a latched fault, never a target: a non-finite value
  anywhere (action, times, measured state: NaN would pass every comparison and disable the
  checks), a wrong shape (it would broadcast), a time ahead of the clock or a clock that runs
  backwards (either would keep every age small and silence the watchdog);
- watchdog: a base action older than ``max_action_age`` or a robot state older than
  ``max_state_age`` holds the pose; if that lasts ``hold_timeout`` the layer asks to stop;
- faults: :meth:`latch` (reflex, user stop, disconnect, watchdog stop) makes every later
  step a stop until an operator calls :meth:`acknowledge` and the next :meth:`reset` puts
  the target where the arm is (it may have been moved; an old target would be a jump);
  never auto-recovery, and never a target before the first reset;
- reset joints are checked against the joint limits, with the margin, before they reach
  the driver (:func:`check_reset_joints`).

The limits and that check are configuration, in :mod:`residual_bench.real.safety_limits`;
they are importable from here too.

Holds and stops keep the previous target: the robot's own controller brings the arm to rest,
so the acceleration limit applies to tracking steps only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from residual_bench.real.driver import GRIPPER_MAX_WIDTH, RobotState
from residual_bench.real.safety_limits import (
    PANDA_JOINT_LOWER,
    PANDA_JOINT_UPPER,
    SafetyLimits,
    check_reset_joints,
)
from residual_bench.sim.panda import MAX_TARGET_LAG, POSITION_SCALE, ROTATION_SCALE

log = logging.getLogger(__name__)

__all__ = [
    "PANDA_JOINT_LOWER",
    "PANDA_JOINT_UPPER",
    "Intervention",
    "SafetyDecision",
    "SafetyLayer",
    "SafetyLimits",
    "braking_speed",
    "check_reset_joints",
    "tilt",
]

_EPS = 1e-12


@dataclass(frozen=True)
class Intervention:
    """One thing the safety layer changed or refused."""

    kind: str
    time: float
    detail: str = ""


@dataclass
class SafetyDecision:
    """What to send this step: ``mode`` is ``track`` (send the target), ``hold`` (keep the
    previous target) or ``stop`` (stop the robot and end the episode)."""

    mode: str
    position: np.ndarray
    orientation: np.ndarray
    gripper_width: float
    interventions: list[Intervention] = field(default_factory=list)


def _input_fault(
    action: np.ndarray, state: RobotState, now: float, action_time: float
) -> tuple[str, str]:
    """``(latch reason, what is wrong)`` for the first malformed or non-finite input of a
    step, or ``("", "")`` when every input has its shape and is finite."""
    values = {
        "action": (action, (7,)),
        "now": (now, ()),
        "action_time": (action_time, ()),
        "state.timestamp": (state.timestamp, ()),
        "state.joints": (state.joints, (7,)),
        "state.tcp_position": (state.tcp_position, (3,)),
        "state.tcp_orientation": (state.tcp_orientation, (4,)),
        "state.gripper_width": (state.gripper_width, ()),
    }
    for name, (value, shape) in values.items():
        try:
            value = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            return "malformed_input", f"{name} is not a number or array of numbers"
        if value.shape != shape:
            return "malformed_input", f"{name} has shape {value.shape}, expected {shape}"
        if not np.all(np.isfinite(value)):
            return "non_finite_input", f"{name} is not finite"
    return "", ""


def braking_speed(distance: np.ndarray, per_step: float, dt: float, top: float) -> np.ndarray:
    """Largest speed (<= ``top``) at which a target ``distance`` from a wall can take this
    step and still stop before the wall, slowing by ``per_step`` each later step.

    Moving at ``u`` this step covers ``u dt``; then ``u - c``, ``u - 2c``, ... cover
    ``D(u) = dt * sum_k max(0, u - k c)``. The bound is the largest ``u`` with
    ``u dt + D(u) <= distance``. If the previous step's speed met the bound, slowing by one
    ``c`` meets this step's (``D(u) = (u - c) dt + D(u - c)``), so braking is always possible
    within the acceleration limit.
    """
    distance = np.maximum(np.asarray(distance, dtype=float), 0.0)

    def travel(u: np.ndarray) -> np.ndarray:
        n = np.floor(u / per_step)
        return u * dt + dt * (n * u - per_step * n * (n + 1) / 2)

    low, high = np.zeros_like(distance), np.full_like(distance, top)
    fits = travel(high) <= distance
    for _ in range(60):
        mid = (low + high) / 2
        ok = travel(mid) <= distance
        low, high = np.where(ok, mid, low), np.where(ok, high, mid)
    return np.where(fits, top, low)


def tilt(orientation: np.ndarray) -> float:
    """Angle (rad) between the gripper's approach axis (tool z) and straight down."""
    z = Rotation.from_quat(orientation).apply([0.0, 0.0, 1.0])
    return float(np.arccos(np.clip(-z[2], -1.0, 1.0)))


class SafetyLayer:
    """Turns normalised 7-D actions into safe end-effector targets.

    Args:
        limits: the limits to enforce.
        dt: control period in seconds.
    """

    def __init__(self, limits: SafetyLimits, dt: float) -> None:
        self.limits = limits
        self.dt = float(dt)
        self.low = np.asarray(limits.workspace_low, dtype=float)
        self.high = np.asarray(limits.workspace_high, dtype=float)
        self.step_cap = min(limits.max_step_translation, limits.max_speed * self.dt)
        self.rot_cap = min(limits.max_step_rotation, limits.max_angular_speed * self.dt)
        self.log: list[Intervention] = []
        self.latched: str | None = None
        self._target = np.zeros(3)
        self._orn = np.array([1.0, 0.0, 0.0, 0.0])
        self._velocity = np.zeros(3)
        self._gripper = GRIPPER_MAX_WIDTH
        self._hold_since: float | None = None
        self._joint_hold_since: float | None = None
        self._synced = False  # the target is where the arm was at the last reset
        self._last_now = -math.inf

    @property
    def target(self) -> tuple[np.ndarray, np.ndarray]:
        """The last commanded position and orientation."""
        return self._target.copy(), self._orn.copy()

    def reset(self, state: RobotState) -> None:
        """Start from the measured pose (the target becomes where the arm is).

        Raises:
            ValueError: the arm is outside the workspace box or the tilt cone, so any
                target would jump; move it in first (the reset pose must be inside).
        """
        _, bad = _input_fault(np.zeros(7), state, 0.0, 0.0)
        if bad:
            raise ValueError(f"{bad} at reset: the robot state cannot be trusted")
        pos = np.asarray(state.tcp_position, dtype=float)
        if np.any(pos < self.low) or np.any(pos > self.high):
            raise ValueError(
                f"the gripper is at {np.round(pos, 3).tolist()}, outside the workspace box "
                f"{list(self.limits.workspace_low)}..{list(self.limits.workspace_high)}"
            )
        if tilt(state.tcp_orientation) > self.limits.max_tilt:
            raise ValueError("the gripper is tilted beyond max_tilt at reset")
        self._target = pos.copy()
        self._orn = np.asarray(state.tcp_orientation, dtype=float).copy()
        self._velocity = np.zeros(3)
        self._gripper = float(state.gripper_width)
        self._hold_since = None
        self._joint_hold_since = None
        self._synced = True
        self._last_now = -math.inf

    def latch(self, reason: str, now: float) -> None:
        """Record a fault; every step is a stop until :meth:`acknowledge` and then
        :meth:`reset` (the target must start again from where the arm is)."""
        self.latched = reason
        self._synced = False
        self._note([], "fault_latched", now, reason)

    def acknowledge(self, operator: str, now: float) -> None:
        """An operator has inspected the robot and clears the latched fault."""
        if self.latched is not None:
            self._note([], "fault_acknowledged", now, f"{self.latched} by {operator}")
        self.latched = None

    def _note(self, out: list[Intervention], kind: str, now: float, detail: str = "") -> None:
        item = Intervention(kind, float(now), detail)
        out.append(item)
        self.log.append(item)
        log.info("safety %s at t=%.3f %s", kind, now, detail)

    def _decision(self, mode: str, out: list[Intervention]) -> SafetyDecision:
        return SafetyDecision(mode, self._target.copy(), self._orn.copy(), self._gripper, out)

    def filter(
        self, action: np.ndarray, state: RobotState, now: float, action_time: float
    ) -> SafetyDecision:
        """The safe target for ``action`` (already clipped to [-1, 1]).

        Args:
            action: the summed 7-D action in the env's convention.
            state: the latest measured state.
            now: the driver's clock now.
            action_time: when the observation the action was computed from was taken.
        """
        out: list[Intervention] = []
        lim = self.limits
        if self.latched is not None:
            self._note(out, "stop", now, f"fault {self.latched} not acknowledged")
            return self._decision("stop", out)
        if not self._synced:
            self._note(out, "not_reset", now, "no reset since the start or the last fault")
            return self._decision("stop", out)
        # What cannot be trusted stops the robot rather than raising: a raise would leave the
        # arm tracking its last target with nobody watching, and the latch keeps it stopped
        # until an operator has looked.
        fault, bad = _input_fault(action, state, now, action_time)
        if fault:
            self._note(out, fault.replace("_input", "_stop"), now, bad)
            self.latch(fault, now)
            return self._decision("stop", out)
        # Both times come from the driver's clock; a state is stamped when read, just after
        # ``now`` was taken, so one control period of slack separates jitter from a clock
        # that is not ours.
        times = {"state.timestamp": state.timestamp, "action_time": action_time}
        ahead = [name for name, t in times.items() if t > now + self.dt]
        if ahead or now < self._last_now:
            detail = f"{', '.join(ahead)} ahead of now" if ahead else "now went backwards"
            self._note(out, "clock_stop", now, detail)
            self.latch("clock", now)
            return self._decision("stop", out)
        self._last_now = now
        stale = []
        if now - state.timestamp > lim.max_state_age:
            stale.append(f"state {now - state.timestamp:.3f}s old")
        if now - action_time > lim.max_action_age:
            stale.append(f"action {now - action_time:.3f}s old")
        if stale:
            self._velocity = np.zeros(3)
            if self._hold_since is None:
                self._hold_since = now
            if now - self._hold_since >= lim.hold_timeout:
                self._note(out, "watchdog_stop", now, ", ".join(stale))
                self.latch("watchdog", now)
                return self._decision("stop", out)
            self._note(out, "watchdog_hold", now, ", ".join(stale))
            return self._decision("hold", out)
        self._hold_since = None
        joints = np.asarray(state.joints, dtype=float)
        near = (joints < PANDA_JOINT_LOWER + lim.joint_margin) | (
            joints > PANDA_JOINT_UPPER - lim.joint_margin
        )
        if np.any(near):
            self._velocity = np.zeros(3)
            joints_near = np.flatnonzero(near).tolist()
            if self._joint_hold_since is None:
                self._joint_hold_since = now
            if now - self._joint_hold_since >= lim.joint_hold_timeout:
                self._note(out, "joint_margin_stop", now, f"joints {joints_near}")
                self.latch("joint_limit", now)
                return self._decision("stop", out)
            self._note(out, "joint_margin", now, f"joints {joints_near}")
            return self._decision("hold", out)
        self._joint_hold_since = None
        self._translate(np.asarray(action[:3], dtype=float), state, now, out)
        self._rotate(np.asarray(action[3:6], dtype=float), now, out)
        self._gripper = float((np.clip(action[6], -1.0, 1.0) + 1.0) * 0.5 * GRIPPER_MAX_WIDTH)
        return self._decision("track", out)

    def _translate(
        self, move: np.ndarray, state: RobotState, now: float, out: list[Intervention]
    ) -> None:
        # As in the sim: deltas accumulate on the commanded target, which may run at most
        # MAX_TARGET_LAG ahead of the measured pose (no wind-up against an obstacle).
        measured = np.asarray(state.tcp_position, dtype=float)
        base = self._target
        lag = base - measured
        lag_norm = float(np.linalg.norm(lag))
        if lag_norm > MAX_TARGET_LAG:
            base = measured + lag * (MAX_TARGET_LAG / lag_norm)
        wanted = (base + move * POSITION_SCALE - self._target) / self.dt
        velocity = self._velocity_within(wanted, now, out)
        # Within rounding the box already holds; the clip only removes that rounding.
        target = np.clip(self._target + velocity * self.dt, self.low, self.high)
        self._velocity = (target - self._target) / self.dt
        self._target = target

    def _velocity_within(
        self, wanted: np.ndarray, now: float, out: list[Intervention]
    ) -> np.ndarray:
        """The velocity nearest ``wanted`` that keeps every translation limit at once.

        Per axis, the velocity may change by ``c = max_acceleration * dt / sqrt(3)`` (so the
        change's norm stays within the acceleration limit) and may not exceed the speed
        from which the target can still stop before the box's wall (:func:`braking_speed`);
        both are intervals, and they always meet. The speed cap comes last, as the
        projection onto a ball that holds the previous velocity: a projection moves no
        point further from one inside the ball, so it cannot break the acceleration limit,
        and scaling a velocity down keeps it inside the braking intervals.
        """
        top = self.step_cap / self.dt
        c = self.limits.max_acceleration * self.dt / math.sqrt(3.0)
        v0 = self._velocity
        up = braking_speed(self.high - self._target, c, self.dt, top)
        down = braking_speed(self._target - self.low, c, self.dt, top)
        low, high = np.maximum(v0 - c, -down), np.minimum(v0 + c, up)
        low = np.minimum(low, high)  # they meet in exact arithmetic; rounding aside
        velocity = np.clip(wanted, low, high)
        if np.any(np.abs(velocity - wanted) > _EPS):
            # The wall limited the step only where its braking bound was the tighter one;
            # far from every wall that bound is the speed cap, which is not the wall's doing.
            wall_up = (wanted > high + _EPS) & (up < np.minimum(v0 + c, top) - _EPS)
            wall_down = (wanted < low - _EPS) & (-down > np.maximum(v0 - c, -top) + _EPS)
            self._note(out, "workspace" if np.any(wall_up | wall_down) else "acceleration", now)
        speed = float(np.linalg.norm(velocity))
        if speed > top + _EPS:
            velocity *= top / speed
            self._note(out, "translation_cap", now, f"{speed * self.dt:.4f} m")
        return velocity

    def _rotate(self, turn: np.ndarray, now: float, out: list[Intervention]) -> None:
        rotvec = Rotation.from_euler("xyz", turn * ROTATION_SCALE).as_rotvec()
        angle = float(np.linalg.norm(rotvec))
        if angle > self.rot_cap + _EPS:
            rotvec *= self.rot_cap / angle
            self._note(out, "rotation_cap", now, f"{angle:.4f} rad")
        if angle < _EPS:
            return
        # World-frame deltas, as in the sim (delta applied on the left).
        candidate = (Rotation.from_rotvec(rotvec) * Rotation.from_quat(self._orn)).as_quat()
        new_tilt, old_tilt = tilt(candidate), tilt(self._orn)
        if new_tilt > self.limits.max_tilt and new_tilt > old_tilt:
            self._note(out, "orientation", now, f"tilt {new_tilt:.3f} rad refused")
            return
        self._orn = candidate / np.linalg.norm(candidate)
