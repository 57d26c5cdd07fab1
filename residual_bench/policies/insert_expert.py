"""A scripted peg-insertion expert that reads the simulator's privileged state.

It proves ``ResidualInsert-v0`` solvable and is what the scripted bases wrap on that task.
It grasps the peg square to its faces, lifts it clear of the fixture, carries it over the
hole while turning it square to the hole, lines the peg's bottom up with the opening to a
millimetre just above the rim, pushes it in slowly with the alignment corrected every step,
and lets go once it is in past the success depth. A peg that jams is lifted and lined up
again; a peg that leaves the hand is picked up again.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np

from residual_bench.policies.expert_motion import (
    PhasedExpert,
    plan_and_action,
    top_down_rotation,
)
from residual_bench.policies.task_experts import register_expert
from residual_bench.sim.geometry import yaw_of
from residual_bench.sim.panda import FINGER_MAX
from residual_bench.tasks.insert import GRASP_BELOW_TOP

SQUEEZE = 0.002
"""m each finger's target lies inside the peg's face. A full close saturates both finger
motors, which then balance each other wherever the pair sits, and the peg slides along the
closing axis with the fingers; a target just inside the faces keeps the pair centred."""
WEAK_GRIP_SHIFT = 0.05
"""How far a weak ``grip_command`` (-1 firm .. 1 open) moves the finger target outwards, in
gripper-command units per unit of command above -1 (0.06 at -0.4: about 1 mm a finger)."""
SQUARE = math.pi / 2  # a square peg held by its faces looks the same every 90 degrees
APPROACH_CLEARANCE = 0.06  # m above the grasp point before descending
CLOSE_SECONDS = 0.4
RELEASE_SECONDS = 0.3
CARRY_CLEARANCE = 0.04  # m between the peg's bottom and the rim while carrying
ALIGN_HEIGHT = 0.006  # m of the peg's bottom above the rim while lining up
ALIGN_TOLERANCE = 0.0012  # m of horizontal error at which it starts pushing in
ALIGN_YAW_TOLERANCE = 0.03  # rad
GRASP_YAW_TOLERANCE = 0.02
"""rad between the finger pads and the peg's faces before descending: pads a few degrees off
the faces touch the peg at two opposite edges, and it turns and slides between them."""
INSERT_SPEED = 0.25  # fraction of the largest step while going in
INSERT_PAST = 0.008  # m past the success depth before letting go
JAM_SECONDS = 2.0  # in the insert phase this long without reaching depth: lift, line up again
CARRY_SPEED = 0.6  # fraction of the largest step while carrying: a tall peg swings in the grip
MAX_TURN_HELD = 0.025
"""rad per control step (0.5 rad/s at 20 Hz) the hand turns while holding the peg: a faster
turn twists the peg between the finger pads, which then hold it by its edges, loosely."""


class Phase(Enum):
    APPROACH = "approach"
    DESCEND = "descend"
    CLOSE = "close"
    LIFT = "lift"
    TRANSPORT = "transport"
    ALIGN = "align"
    INSERT = "insert"
    RELEASE = "release"
    RETREAT = "retreat"


HOLDING = (Phase.LIFT, Phase.TRANSPORT, Phase.ALIGN, Phase.INSERT)


@register_expert("ResidualInsert")
class InsertExpert(PhasedExpert):
    """Privileged-state expert for ``ResidualInsert-v0``.

    Takes the options of :class:`~residual_bench.policies.expert_motion.PhasedExpert`, with
    these meanings for an insertion:

    Args:
        open_loop: plan from the first frame: the peg is taken to stay where it was grasped
            in the hand, and it never retries.
        errors: systematic errors (:class:`PerceptionErrors`): ``object_offset`` shifts the
            peg, ``goal_offset`` the hole, ``yaw_offset`` turns the grasp, ``grasp_height``
            raises it, ``grip_command`` is the closing command.
        settle_seconds: extra time for the gripper to close and to open.
        descend_tolerance: how close (m) to the grasp point counts as arrived.
    """

    first_phase = Phase.APPROACH

    def _perceive(self, sim, tcp: np.ndarray) -> dict:
        """The peg's bottom centre, its top-grasp point, yaw and its yaw error to the hole."""
        task = sim.task
        state = sim.object_states[0]
        offset = self.errors.object_offset
        bottom, _ = task.peg_axis(state)
        seen = {
            "bottom": bottom + offset,
            "grasp": bottom + offset + np.array([0, 0, task.target.height - GRASP_BELOW_TOP]),
            "yaw": yaw_of(state.orientation),
            "yaw_error": task.peg_yaw_error(state),
        }
        if not self.open_loop:
            return seen
        if self._frozen is None:
            self._frozen = {**seen, "in_hand": seen["bottom"] - seen["grasp"]}
        frozen = dict(self._frozen)
        if self.phase in HOLDING or self.phase == Phase.RELEASE:
            # Blind: the peg is where it was grasped, relative to the fingers, and square.
            frozen["bottom"] = tcp + frozen["in_hand"]
            frozen["yaw_error"] = 0.0
        return frozen

    def act(self, env) -> np.ndarray:
        """The next 7-D action for ``env`` (a ``ResidualInsert-v0``, wrapped or not)."""
        sim = env.unwrapped
        task = sim.task
        self._now = sim.time
        tcp, tcp_orn = sim.robot.tcp_pose()
        peg = self._perceive(sim, tcp)
        errors = self.errors
        hole = task.goal + errors.goal_offset
        rim = float(hole[2])
        progress = task.progress(sim.object_states, tcp)
        grasped = progress["is_grasped"] or self.open_loop
        grasp = peg["grasp"] + np.array([0.0, 0.0, errors.grasp_height])
        grasp[2] = max(grasp[2], 0.015)
        # Bring the peg's bottom over the hole: move the hand by the bottom's error.
        over_hole = tcp[:2] + (hole[:2] - peg["bottom"][:2])
        above_bottom = tcp[2] - peg["bottom"][2]
        xy_error = float(np.linalg.norm(hole[:2] - peg["bottom"][:2]))
        gripper, speed = 1.0, self.speed
        squeeze = 2.0 * (task.target.scale / 2 - SQUEEZE) / FINGER_MAX - 1.0
        grip = squeeze + WEAK_GRIP_SHIFT * (errors.grip_command + 1.0)
        closing: float | None = peg["yaw"] + errors.yaw_offset
        turn_peg = None  # rad about z that squares the peg with the hole, while held

        done = progress["success"] and not self.open_loop
        if done and self.phase not in (Phase.RELEASE, Phase.RETREAT):
            # In deep enough: let go (it drops the rest of the way) and never pull it out.
            self._enter(Phase.RELEASE if grasped else Phase.RETREAT)
        elif self.phase in HOLDING and not grasped:
            self._enter(Phase.APPROACH)  # it left the hand: pick it up again
        elif self.phase == Phase.RETREAT and not progress["success"] and not self.open_loop:
            if self._phase_time > 1.0:
                self._enter(Phase.APPROACH)  # it did not stay in: try again

        rotation = top_down_rotation(tcp_orn, closing, SQUARE)
        if self.phase == Phase.APPROACH:
            goal_pos = np.array([grasp[0], grasp[1], grasp[2] + APPROACH_CLEARANCE])
            if progress["touching_object"]:
                goal_pos[2] = tcp[2] + 0.05  # bumped into it: back off upwards first
            elif np.linalg.norm(goal_pos - tcp) < 0.01 and abs(rotation[2]) < GRASP_YAW_TOLERANCE:
                self._enter(Phase.DESCEND)
        elif self.phase == Phase.DESCEND:
            goal_pos = grasp.copy()
            speed = 0.6 * self.speed
            if np.linalg.norm(grasp - tcp) < self.descend_tolerance or self._phase_time > 2.0:
                self._enter(Phase.CLOSE)
        elif self.phase == Phase.CLOSE:
            goal_pos = grasp.copy()
            gripper = grip
            if self._phase_time >= CLOSE_SECONDS + self.settle_seconds:
                self._enter(Phase.LIFT if grasped else Phase.APPROACH)
        elif self.phase == Phase.LIFT:
            carry_z = rim + CARRY_CLEARANCE + above_bottom
            goal_pos = np.array([tcp[0], tcp[1], carry_z])
            gripper, closing = grip, None
            if tcp[2] > carry_z - 0.01:
                self._enter(Phase.TRANSPORT)
        elif self.phase == Phase.TRANSPORT:
            goal_pos = np.array([*over_hole, rim + CARRY_CLEARANCE + above_bottom])
            gripper, closing, turn_peg = grip, None, peg["yaw_error"]
            speed = CARRY_SPEED * self.speed
            if xy_error < 0.01:
                self._enter(Phase.ALIGN)
        elif self.phase == Phase.ALIGN:
            goal_pos = np.array([*over_hole, rim + ALIGN_HEIGHT + above_bottom])
            gripper, closing, turn_peg = grip, None, peg["yaw_error"]
            speed = 0.3 * self.speed
            low_enough = peg["bottom"][2] < rim + ALIGN_HEIGHT + 0.004
            square = abs(peg["yaw_error"]) < ALIGN_YAW_TOLERANCE
            if low_enough and square and xy_error < ALIGN_TOLERANCE:
                self._enter(Phase.INSERT)
        elif self.phase == Phase.INSERT:
            target_bottom = rim - task.spec["task"]["success_depth"] - INSERT_PAST
            goal_pos = np.array([*over_hole, target_bottom + above_bottom])
            gripper, closing, turn_peg = grip, None, peg["yaw_error"]
            speed = INSERT_SPEED * self.speed
            if peg["bottom"][2] < target_bottom + 0.003:
                self._enter(Phase.RELEASE)
            elif self._phase_time > JAM_SECONDS and not self.open_loop:
                self._enter(Phase.ALIGN)  # jammed on the rim: lift and line up again
        elif self.phase == Phase.RELEASE:
            goal_pos, closing = tcp.copy(), None
            if self._phase_time >= RELEASE_SECONDS + self.settle_seconds:
                self._enter(Phase.RETREAT)
        else:  # RETREAT
            goal_pos, closing = np.array([tcp[0], tcp[1], rim + 0.12]), None

        rotation = top_down_rotation(tcp_orn, closing, SQUARE)
        if turn_peg is not None:
            rotation[2] = np.clip(turn_peg, -MAX_TURN_HELD, MAX_TURN_HELD) * self.hold_steps
        self.last_plan, action = plan_and_action(
            goal_pos, tcp, rotation, gripper, speed, self.hold_steps
        )
        return action
