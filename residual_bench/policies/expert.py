"""A scripted pick-and-place expert that reads the simulator's privileged state.

It proves the task is solvable and is the starting point for the benchmark's VLA-like base
policies. It is closed-loop at the control rate: it re-reads the object's pose every step,
re-grasps when the object slips out of the hand, and retries a placement that missed.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

import numpy as np

from residual_bench.policies.expert_motion import PhasedExpert, plan_and_action
from residual_bench.policies.task_experts import register_expert
from residual_bench.sim.geometry import rotate, wrap_angle

APPROACH_CLEARANCE = 0.08  # metres above the object's centre before descending
CARRY_HEIGHT = 0.16  # height of the grasp point while transporting
PLACE_CLEARANCE = 0.012  # object bottom above the plate when the gripper opens
CLOSE_SECONDS = 0.4
RELEASE_SECONDS = 0.3
DESCEND_TIMEOUT_SECONDS = 2.0
PLACE_TIMEOUT_SECONDS = 2.0  # lowering: release after this even if not over the goal yet
FUNNEL_SLOPE = 2.0  # funnel approach: height above the grasp point per metre of xy error
FUNNEL_CLOSE_XY = 0.012  # funnel approach: xy error (m) within which it closes at grasp height


class Phase(Enum):
    APPROACH = "approach"
    DESCEND = "descend"
    CLOSE = "close"
    LIFT = "lift"
    TRANSPORT = "transport"
    LOWER = "lower"
    RELEASE = "release"
    RETREAT = "retreat"


@register_expert("ResidualPickPlace")
class ScriptedExpert(PhasedExpert):
    """Privileged-state expert for ``ResidualPickPlace-v1``.

    Usage::

        expert = ScriptedExpert()
        obs, info = env.reset(seed=0)
        expert.reset()
        while True:
            obs, reward, terminated, truncated, info = env.step(expert.act(env))
            if terminated or truncated:
                break

    Args:
        speed, hold_steps, errors, settle_seconds, descend_tolerance: as
            :class:`~residual_bench.policies.expert_motion.PhasedExpert` has them.
        funnel: approach along a cone instead of hovering then descending: the target height
            above the grasp point is ``FUNNEL_SLOPE`` times the horizontal error, so the
            action is a continuous function of where the object is relative to the hand,
            with no hidden "aligned yet?" switch. What the ``bc`` base learns from: a
            network that sees the object a few millimetres off can regress this, but not the
            hover-then-descend decision.
        align_yaw: turn the fingers to the object's grasp direction before grasping. Off,
            the hand keeps its yaw (an 8 cm opening takes most objects any way round); a
            camera policy that cannot see an object's orientation learns what it can see.
        open_loop: plan from the object's pose at the first step and never look again (no
            re-grasp, no retry): the contrast that shows what a perturbation does to a
            policy that does not react.
    """

    first_phase = Phase.APPROACH

    def __init__(self, *, funnel: bool = False, align_yaw: bool = True, **options: Any) -> None:
        super().__init__(**options)
        self.funnel = funnel
        self.align_yaw = align_yaw

    def _perceive(self, sim, tcp: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """Object centre, grasp direction and the object's offset from the grasp point."""
        state = sim.object_states[0]
        if not self.open_loop:
            return state.center, sim.task.grasp_yaw(sim.task.target, state), tcp - state.center
        if self._frozen is None:
            self._frozen = (state.center.copy(), sim.task.grasp_yaw(sim.task.target, state))
        center, yaw = self._frozen
        grasp_z = max(center[2] - 0.005, 0.015)
        # Blind: assume the object sits where it was grasped, relative to the fingers.
        held = np.array([0.0, 0.0, grasp_z - center[2]])
        in_hand = self.phase in (Phase.LIFT, Phase.TRANSPORT, Phase.LOWER, Phase.RELEASE)
        return (tcp - held if in_hand else center), yaw, held

    def act(self, env) -> np.ndarray:
        """The next 7-D action for ``env`` (a ``ResidualPickPlace-v1``, wrapped or not)."""
        sim = env.unwrapped
        task, robot = sim.task, sim.robot
        target = task.target
        tcp, tcp_orn = robot.tcp_pose()
        obj, yaw_target, offset3 = self._perceive(sim, tcp)
        errors = self.errors
        obj = obj + errors.object_offset
        offset3 = offset3 - errors.object_offset
        yaw_target += errors.yaw_offset
        goal = task.goal + errors.goal_offset
        progress = task.progress(sim.object_states, tcp)
        grasped, touching = progress["is_grasped"], progress["touching_object"]
        if self.open_loop:  # no feedback about the object at all
            grasped, touching = True, False
        self._now = sim.time
        grasp_z = max(obj[2] - 0.005, 0.015) + errors.grasp_height
        gripper = 1.0
        speed = self.speed

        phase = self.phase
        if phase in (Phase.LIFT, Phase.TRANSPORT, Phase.LOWER) and not grasped:
            self._enter(Phase.APPROACH)  # dropped it: go back and pick it up again
        elif (
            phase == Phase.RETREAT
            and not self.open_loop
            and not progress["success"]
            and self._phase_time > 1.0
            and not self._placement_settling(progress)
        ):
            self._enter(Phase.APPROACH)  # the placement did not hold: try again
        phase = self.phase

        if not self.align_yaw:
            yaw_target = None
        if phase == Phase.APPROACH:
            if self.funnel:
                goal_pos = self._funnel_target(obj, tcp, grasp_z)
            else:
                goal_pos = np.array([obj[0], obj[1], max(obj[2] + APPROACH_CLEARANCE, 0.1)])
            if touching:
                goal_pos[2] = tcp[2] + 0.05  # bumped into something: back off upwards first
            elif self.funnel:
                if (
                    np.linalg.norm(obj[:2] - tcp[:2]) < FUNNEL_CLOSE_XY
                    and tcp[2] - grasp_z < self.descend_tolerance
                ):
                    self._enter(Phase.CLOSE)
            elif (
                np.linalg.norm(goal_pos[:2] - tcp[:2]) < 0.01
                and abs(goal_pos[2] - tcp[2]) < 0.03
                and (yaw_target is None or abs(self._yaw_error(tcp_orn, yaw_target)) < 0.1)
            ):
                self._enter(Phase.DESCEND)
        elif phase == Phase.DESCEND:
            goal_pos = np.array([obj[0], obj[1], grasp_z])
            speed = 0.6 * self.speed
            close_enough = np.linalg.norm(goal_pos - tcp) < self.descend_tolerance
            if close_enough or self._phase_time > DESCEND_TIMEOUT_SECONDS:
                self._enter(Phase.CLOSE)
        elif phase == Phase.CLOSE:
            goal_pos = np.array([obj[0], obj[1], grasp_z])
            gripper = errors.grip_command
            if self._phase_time >= CLOSE_SECONDS + self.settle_seconds:
                self._enter(Phase.LIFT if grasped else Phase.APPROACH)
        elif phase == Phase.LIFT:
            goal_pos = np.array([tcp[0], tcp[1], CARRY_HEIGHT])
            gripper = errors.grip_command
            yaw_target = None
            if tcp[2] > CARRY_HEIGHT - 0.02:
                self._enter(Phase.TRANSPORT)
        elif phase == Phase.TRANSPORT:
            offset = self._carry_offset(offset3[:2])
            goal_pos = np.array([goal[0] + offset[0], goal[1] + offset[1], CARRY_HEIGHT])
            gripper = errors.grip_command
            yaw_target = None
            if np.linalg.norm(obj[:2] - goal[:2]) < 0.012:
                self._enter(Phase.LOWER)
        elif phase == Phase.LOWER:
            offset = self._carry_offset(offset3[:2])
            bottom = obj[2] - target.rest_height
            drop = bottom - (goal[2] + PLACE_CLEARANCE)
            goal_pos = np.array([goal[0] + offset[0], goal[1] + offset[1], tcp[2] - drop])
            gripper = errors.grip_command
            speed = 0.6 * self.speed
            yaw_target = None
            ready = self._ready_to_release(obj, goal, progress)
            if drop < 0.005 and (ready or self._phase_time > PLACE_TIMEOUT_SECONDS):
                self._enter(Phase.RELEASE)
        elif phase == Phase.RELEASE:
            goal_pos = tcp.copy()
            yaw_target = None
            if self._phase_time >= RELEASE_SECONDS + self.settle_seconds:
                self._enter(Phase.RETREAT)
        else:  # RETREAT
            goal_pos = np.array([tcp[0], tcp[1], CARRY_HEIGHT + 0.04])
            yaw_target = None

        rotation = self._rotation_error(tcp_orn, yaw_target)
        self.last_plan, action = plan_and_action(
            goal_pos, tcp, rotation, gripper, speed, self.hold_steps
        )
        return action

    def _carry_offset(self, offset: np.ndarray) -> np.ndarray:
        """The hand's horizontal offset from the held object's centre that carrying and
        lowering aim with (pick-and-place: this step's)."""
        return offset

    def _ready_to_release(self, obj: np.ndarray, goal: np.ndarray, progress: dict) -> bool:
        """Whether the object, lowered onto the goal, may be let go (pick-and-place: wherever
        the lowering brought it; the plate is wide)."""
        return True

    def _placement_settling(self, progress: dict) -> bool:
        """Whether a placement may still come to count, so a retry would only disturb it
        (pick-and-place: never; success there is immediate)."""
        return False

    @staticmethod
    def _funnel_target(obj: np.ndarray, tcp: np.ndarray, grasp_z: float) -> np.ndarray:
        """Above the object, lower the better the hand is lined up (see ``funnel``)."""
        hover = max(obj[2] + APPROACH_CLEARANCE, 0.1) - grasp_z
        xy_error = float(np.linalg.norm(obj[:2] - tcp[:2]))
        return np.array([obj[0], obj[1], grasp_z + min(hover, FUNNEL_SLOPE * xy_error)])

    @staticmethod
    def _yaw_error(tcp_orn: np.ndarray, closing_angle: float) -> float:
        """Angle to turn about z so the fingers close along ``closing_angle`` (mod pi)."""
        finger_axis = rotate(tcp_orn, np.array([0.0, 1.0, 0.0]))
        current = math.atan2(finger_axis[1], finger_axis[0])
        error = wrap_angle(closing_angle - current)
        # A parallel gripper is symmetric: closing along +a or -a is the same grasp.
        if error > math.pi / 2:
            error -= math.pi
        elif error < -math.pi / 2:
            error += math.pi
        return error

    def _rotation_error(self, tcp_orn: np.ndarray, closing_angle: float | None) -> np.ndarray:
        """Rotation (rad, world axes) that points the gripper down and aligns the fingers."""
        # Keep the gripper pointing straight down: rotate its z axis onto -z.
        z_axis = rotate(tcp_orn, np.array([0.0, 0.0, 1.0]))
        tilt = np.cross(z_axis, np.array([0.0, 0.0, -1.0]))
        rot = np.array([tilt[0], tilt[1], 0.0])
        if closing_angle is not None:
            rot[2] = self._yaw_error(tcp_orn, closing_angle)
        return rot
