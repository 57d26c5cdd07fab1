"""The safety layer between the summed action (base + residual) and the robot driver.

Pure: it sees the action, the measured state and the time, and returns the target to send,
with no I/O, so it is tested on its own (including property tests over wild action
sequences). Every change it makes to what the policy asked for is an :class:`Intervention`,
kept in :attr:`SafetyLayer.log` and written to the ``logging`` module.

What it enforces, per control step, on the *commanded* target (the robot's own controller
tracks that target; Franka's reflexes remain the last line behind this one):

- translation: per-step cap, speed and acceleration limits (well below Franka's 2 m/s and
  13 m/s^2), then the workspace box;
- rotation: per-step cap (also an angular-speed limit) and a tilt cone around the
  gripper-down orientation; a rotation that would leave the cone is dropped;
- joint-limit margins: near a limit the target holds;
- watchdog: a base action older than ``max_action_age`` or a robot state older than
  ``max_state_age`` holds the pose; if that lasts ``hold_timeout`` the layer asks to stop;
- faults: :meth:`latch` (reflex, user stop, disconnect, watchdog stop) makes every later
  step a stop until :meth:`acknowledge` is called by an operator - never auto-recovery.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from residual_bench.real.driver import GRIPPER_MAX_WIDTH, RobotState
from residual_bench.sim.panda import MAX_TARGET_LAG, POSITION_SCALE, ROTATION_SCALE

log = logging.getLogger(__name__)

PANDA_JOINT_LOWER = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
PANDA_JOINT_UPPER = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
_EPS = 1e-12


@dataclass(frozen=True)
class SafetyLimits:
    """Limits of the safety layer; the defaults suit a first session on a tabletop Panda."""

    workspace_low: tuple[float, float, float] = (0.30, -0.30, 0.02)
    workspace_high: tuple[float, float, float] = (0.70, 0.30, 0.45)
    max_tilt: float = 0.8
    """Largest angle (rad) between the gripper's approach axis and straight down."""
    max_step_translation: float = 0.02
    max_step_rotation: float = 0.1
    max_speed: float = 0.25
    max_acceleration: float = 1.5
    max_angular_speed: float = 1.0
    joint_margin: float = 0.1
    max_action_age: float = 0.3
    max_state_age: float = 0.15
    hold_timeout: float = 0.5

    def __post_init__(self) -> None:
        low, high = np.asarray(self.workspace_low), np.asarray(self.workspace_high)
        if low.shape != (3,) or high.shape != (3,) or not np.all(low < high):
            raise ValueError(f"workspace box must have low < high, got {low} and {high}")
        for name in (
            "max_tilt max_step_translation max_step_rotation max_speed max_acceleration "
            "max_angular_speed max_action_age max_state_age hold_timeout"
        ).split():
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")


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

    def latch(self, reason: str, now: float) -> None:
        """Record a fault; every step is a stop until :meth:`acknowledge`."""
        self.latched = reason
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
            self._note(out, "joint_margin", now, f"joints {np.flatnonzero(near).tolist()}")
            return self._decision("hold", out)
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
        delta = base + move * POSITION_SCALE - self._target
        dv = delta / self.dt - self._velocity
        dv_cap = self.limits.max_acceleration * self.dt
        if np.linalg.norm(dv) > dv_cap + _EPS:
            dv *= dv_cap / np.linalg.norm(dv)
            delta = (self._velocity + dv) * self.dt
            self._note(out, "acceleration", now)
        norm = float(np.linalg.norm(delta))
        if norm > self.step_cap + _EPS:
            delta *= self.step_cap / norm
            self._note(out, "translation_cap", now, f"{norm:.4f} m")
        wanted = self._target + delta
        # The box is convex and holds the previous target, so clipping never lengthens delta.
        clipped = np.clip(wanted, self.low, self.high)
        if np.any(np.abs(clipped - wanted) > _EPS):
            self._note(out, "workspace", now, f"{np.round(wanted, 3).tolist()}")
        self._velocity = (clipped - self._target) / self.dt
        self._target = clipped

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
