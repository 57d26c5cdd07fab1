"""What the scripted experts share: the errors a scripted base imposes on them
(:class:`PerceptionErrors`), their options and phase bookkeeping (:class:`PhasedExpert`), and
motion pieces: a top-down hand turned to a closing angle, and a target pose turned into a
plan and a 7-D action.

The plan (``last_plan``) is what an expert wants before any step limit; the scripted bases
read it to plan chunks (:mod:`residual_bench.policies.scripted_vla`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

import numpy as np

from residual_bench.sim.geometry import rotate, wrap_angle
from residual_bench.sim.panda import POSITION_SCALE, ROTATION_SCALE


@dataclass
class PerceptionErrors:
    """Systematic errors a learned policy makes, imposed on the expert (all zero: none).

    Attributes:
        object_offset: where the expert believes the target object is, relative to where it
            is (m, world frame): visual miscalibration.
        goal_offset: the same for the goal (the plate, the support, the circle, the hole).
        yaw_offset: error of the grasp direction (rad): an awkward approach angle.
        grasp_height: how much higher (m) the fingers close than they should: grasp timing.
        grip_command: gripper command when closing, -1 (full force) to 1; near 0 the
            fingers stop short of a firm grip: too little force.
    """

    object_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    goal_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    yaw_offset: float = 0.0
    grasp_height: float = 0.0
    grip_command: float = -1.0

    def scaled(self, factor: float) -> PerceptionErrors:
        """The geometric errors (positions, grasp direction and height) times ``factor``;
        the grip command is a force, not a distance, and is kept."""
        return PerceptionErrors(
            object_offset=self.object_offset * factor,
            goal_offset=self.goal_offset * factor,
            yaw_offset=self.yaw_offset * factor,
            grasp_height=self.grasp_height * factor,
            grip_command=self.grip_command,
        )


class PhasedExpert:
    """The options every scripted expert takes from the scripted bases, and its phase clock.

    A subclass is a state machine over its own ``Phase`` enum: it names the phase an episode
    starts in (:attr:`first_phase`), sets ``self._now`` to the simulated time at the start of
    each ``act`` and moves with :meth:`_enter`; :attr:`_phase_time` is how long it has been
    in the current phase.

    Args:
        speed: fraction of the maximum end-effector speed used in free space.
        open_loop: plan from the first frame and never look at the object again.
        hold_steps: control steps each action is held for by whoever runs the expert (a
            slow policy); actions are scaled to land on target over all of them.
        errors: systematic perception and execution errors (:class:`PerceptionErrors`).
        settle_seconds: extra time it gives the gripper to close and to open before judging
            the result, for a policy whose commands take effect late (latency, slow rate).
        descend_tolerance: how close (m) to the grasp (or push) height counts as arrived.
    """

    first_phase: ClassVar[Enum]
    """The phase every episode starts in."""

    def __init__(
        self,
        speed: float = 1.0,
        open_loop: bool = False,
        hold_steps: int = 1,
        errors: PerceptionErrors | None = None,
        settle_seconds: float = 0.0,
        descend_tolerance: float = 0.008,
    ) -> None:
        self.speed = speed
        self.open_loop = open_loop
        self.hold_steps = hold_steps
        self.errors = errors or PerceptionErrors()
        self.settle_seconds = settle_seconds
        self.descend_tolerance = descend_tolerance
        self.last_plan: dict | None = None
        self.phase: Any = self.first_phase
        self._phase_start = 0.0
        self._now = 0.0
        self._frozen: Any = None  # what an open-loop expert saw first; None until then

    @property
    def _phase_time(self) -> float:
        return self._now - self._phase_start

    def reset(self) -> None:
        """Forget the previous episode."""
        self.phase = self.first_phase
        self._phase_start = 0.0
        self._now = 0.0
        self._frozen = None

    def _enter(self, phase: Enum) -> None:
        self.phase = phase
        self._phase_start = self._now

    def take_over(self, phase: Enum, now: float) -> None:
        """Continue from ``phase``, started at simulated time ``now``: another policy brought
        the task there (a shadow expert labelling a learned policy's states does this)."""
        self._now = now
        self._enter(phase)


def finger_yaw(tcp_orn: np.ndarray) -> float:
    """World angle of the fingers' closing axis (the hand's y axis, projected)."""
    axis = rotate(tcp_orn, np.array([0.0, 1.0, 0.0]))
    return math.atan2(axis[1], axis[0])


def yaw_error(tcp_orn: np.ndarray, closing_angle: float, symmetry: float = math.pi) -> float:
    """Angle to turn about z so the fingers close along ``closing_angle``, the shortest way
    given the grip's ``symmetry`` (pi for a parallel gripper; pi/2 holding a square peg)."""
    error = wrap_angle(closing_angle - finger_yaw(tcp_orn))
    return (error + symmetry / 2) % symmetry - symmetry / 2


def top_down_rotation(
    tcp_orn: np.ndarray, closing_angle: float | None, symmetry: float = math.pi
) -> np.ndarray:
    """Rotation (rad, world axes) that points the gripper straight down and, unless
    ``closing_angle`` is ``None``, turns its fingers to close along it."""
    z_axis = rotate(tcp_orn, np.array([0.0, 0.0, 1.0]))
    tilt = np.cross(z_axis, np.array([0.0, 0.0, -1.0]))
    rotation = np.array([tilt[0], tilt[1], 0.0])
    if closing_angle is not None:
        rotation[2] = yaw_error(tcp_orn, closing_angle, symmetry)
    return rotation


def plan_and_action(
    goal_pos: np.ndarray,
    tcp: np.ndarray,
    rotation: np.ndarray,
    gripper: float,
    speed: float,
    hold_steps: int,
) -> tuple[dict, np.ndarray]:
    """The plan (``translation``, ``rotation``, ``gripper``, ``speed``) and the action that
    moves towards ``goal_pos``; an action held for ``hold_steps`` steps reaches it over all
    of them."""
    plan = {"translation": goal_pos - tcp, "rotation": rotation, "gripper": gripper, "speed": speed}
    action = np.zeros(7)
    action[:3] = np.clip((goal_pos - tcp) / (POSITION_SCALE * hold_steps), -speed, speed)
    action[3:6] = np.clip(rotation / ROTATION_SCALE, -1.0, 1.0) / hold_steps
    action[6] = gripper
    return plan, action.astype(np.float32)
