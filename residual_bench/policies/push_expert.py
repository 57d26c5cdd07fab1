"""A scripted pushing expert that reads the simulator's privileged state.

It proves ``ResidualPush-v0`` solvable and is what the scripted bases wrap on that task. It
comes down behind the object on the line from the goal through the object, then pursues a
point a few centimetres past the object's near side on that line (never past where the hand
stops): as the object turns or slides sideways the line moves and the hand re-centres. If
the object gets away from the hand (a poke, a slide, a bad contact) it lifts, goes round and
comes down behind it again.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

import numpy as np

from residual_bench.policies.expert_motion import (
    PhasedExpert,
    plan_and_action,
    top_down_rotation,
)
from residual_bench.policies.task_experts import register_expert

PUSHER_HALF = 0.0145
"""Half the closed fingers' thickness along the push when the hand is turned so that their
broad side faces it (the fingers' outline measured from the grasp point)."""
PUSH_HEIGHT = 0.013
"""Grasp-point height while pushing: the fingertips 2 mm above the table, the contact low
on the object so that it slides rather than tips, and below the sloped foot of a blob that
fingers pushing higher ride up onto."""
HIGH_PUSH_BELOW_TOP = 0.008
"""After a push that stalls, the next one comes this far (m) below the object's top
instead: a shape widest near its top is pushed at its widest part."""
STALL_SECONDS = 1.0
STALL_PROGRESS = 0.004  # m towards the goal per STALL_SECONDS below which a push has stalled
PRE_PUSH_GAP = 0.025  # m between the fingers and the object when coming down behind it
PUSH_LOOKAHEAD = 0.03
"""How far (m) past the object's near side, along the push line, the hand is sent: far
enough that a policy planning a chunk at a time from it keeps pushing at speed, near enough
that a sideways drift of the object off the line is corrected within a few centimetres."""
PUSH_OVERDRIVE = 0.004  # m past the stop point it aims at, for the give of the contact
PUSH_SPEED = 0.35  # fraction of the largest step while in contact
PUSH_GAIN = 2.5  # slow-down near the goal: speed = gain * distance to go (m), at most above
STOP_DISTANCE = 0.006  # m from the goal at which it stops pushing
RETRY_DISTANCE = 0.015  # m from the goal past which it pushes again after backing off
LOST_DISTANCE = 0.04  # m the hand may lag behind the object's near side before re-approaching
LOST_ANGLE = math.radians(50)  # how far off the push line the hand may be before re-approaching
RETREAT_SECONDS = 0.8


class Phase(Enum):
    APPROACH = "approach"
    DESCEND = "descend"
    PUSH = "push"
    RETREAT = "retreat"


@register_expert("ResidualPush")
class PushExpert(PhasedExpert):
    """Privileged-state expert for ``ResidualPush-v0``.

    Takes the options of :class:`~residual_bench.policies.expert_motion.PhasedExpert`, with
    these meanings for a push:

    Args:
        open_loop: plan from the first frame and never look at the object again: it pushes
            as if the object stayed against the fingers, and never re-approaches.
        errors: systematic errors (:class:`PerceptionErrors`): ``object_offset`` and
            ``goal_offset`` shift where it believes the object and the goal are,
            ``yaw_offset`` turns the hand away from square to the push, ``grasp_height``
            raises the push, ``grip_command`` is the finger command (closed: -1).
        settle_seconds: extra time before judging a push finished, for late commands.
        descend_tolerance: how close (m) to push height counts as arrived.
    """

    first_phase = Phase.APPROACH

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._high_push = False
        self._checkpoint = (0.0, math.inf)  # (time, distance to go) the stall check compares

    def reset(self) -> None:
        super().reset()
        self._high_push = False
        self._checkpoint = (0.0, math.inf)

    def _enter(self, phase: Enum) -> None:
        super()._enter(phase)
        self._checkpoint = (self._now, math.inf)

    def _stalled(self, to_go: float) -> bool:
        """Whether the push has brought the object less than ``STALL_PROGRESS`` closer in
        the last ``STALL_SECONDS`` (the fingers ride on it, or push it into the table)."""
        since, before = self._checkpoint
        if self._now - since < STALL_SECONDS:
            return False
        self._checkpoint = (self._now, to_go)
        return before - to_go < STALL_PROGRESS

    def _perceive(self, sim, tcp: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Object centre, push direction (unit, xy) and contact offset along it."""
        state = sim.object_states[0]
        errors = self.errors
        goal = sim.task.goal[:2] + errors.goal_offset[:2]
        if self.open_loop and self._frozen is not None:
            center, direction, reach = self._frozen
            if self.phase in (Phase.PUSH, Phase.RETREAT):
                # Blind: the object is taken to be where the fingers push it.
                center = center.copy()
                center[:2] = tcp[:2] + (reach + PUSHER_HALF) * direction
            return center, direction, reach
        center = state.center + errors.object_offset
        to_goal = goal - center[:2]
        distance = float(np.linalg.norm(to_goal))
        direction = to_goal / distance if distance > 1e-6 else np.array([1.0, 0.0])
        reach = sim.task.contact_offset(state, direction)
        if self.open_loop:
            self._frozen = (center.copy(), direction, reach)
        return center, direction, reach

    def act(self, env) -> np.ndarray:
        """The next 7-D action for ``env`` (a ``ResidualPush-v0``, wrapped or not)."""
        sim = env.unwrapped
        task = sim.task
        self._now = sim.time
        tcp, tcp_orn = sim.robot.tcp_pose()
        center, direction, reach = self._perceive(sim, tcp)
        errors = self.errors
        goal = task.goal[:2] + errors.goal_offset[:2]
        to_go = float(np.dot(goal - center[:2], direction))
        progress = task.progress(sim.object_states, tcp)
        top = center[2] + task.target.height / 2
        hover_z = max(top + 0.04, 0.08)
        low = max(top - HIGH_PUSH_BELOW_TOP, PUSH_HEIGHT) if self._high_push else PUSH_HEIGHT
        push_z = low + errors.grasp_height
        behind = center[:2] - (reach + PUSHER_HALF + PRE_PUSH_GAP) * direction
        speed = self.speed

        from_object = center[:2] - tcp[:2]
        lag = float(np.linalg.norm(from_object)) - (reach + PUSHER_HALF)
        cos_off = float(np.dot(from_object, direction)) / max(np.linalg.norm(from_object), 1e-9)
        lost = lag > LOST_DISTANCE or cos_off < math.cos(LOST_ANGLE)
        if self.phase == Phase.PUSH and lost and not self.open_loop:
            self._enter(Phase.APPROACH)
        elif (
            self.phase == Phase.RETREAT
            and not self.open_loop
            and self._now - self._phase_start > RETREAT_SECONDS + self.settle_seconds
            and np.linalg.norm(goal - center[:2]) > RETRY_DISTANCE
        ):
            self._enter(Phase.APPROACH)  # it slid on or was knocked away: push again

        if self.phase == Phase.APPROACH:
            goal_pos = np.array([behind[0], behind[1], hover_z])
            far = np.linalg.norm(behind - tcp[:2]) > 0.02
            if far and tcp[2] < hover_z - 0.02:
                goal_pos = np.array([tcp[0], tcp[1], hover_z])  # up first, then across
            elif not far:
                self._enter(Phase.DESCEND)
        elif self.phase == Phase.DESCEND:
            goal_pos = np.array([behind[0], behind[1], push_z])
            speed = 0.6 * self.speed
            if np.linalg.norm(behind - tcp[:2]) > 0.03:
                self._enter(Phase.APPROACH)  # the object moved away meanwhile
            elif abs(tcp[2] - push_z) < self.descend_tolerance:
                self._enter(Phase.PUSH)
        elif self.phase == Phase.PUSH:
            ahead = min(max(to_go, 0.0) + PUSH_OVERDRIVE, PUSH_LOOKAHEAD)
            aim = center[:2] + (ahead - reach - PUSHER_HALF) * direction
            goal_pos = np.array([aim[0], aim[1], push_z])
            speed = min(PUSH_SPEED, PUSH_GAIN * max(to_go, 0.0) + 0.05) * self.speed
            if to_go < STOP_DISTANCE:
                self._enter(Phase.RETREAT)
            elif self._stalled(to_go):
                self._high_push = not self._high_push  # try the other contact height
                self._enter(Phase.APPROACH)
        else:  # RETREAT: back off along the push line, then up
            back = center[:2] - (reach + PUSHER_HALF + 0.04) * direction
            clear = np.linalg.norm(back - tcp[:2]) < 0.01
            goal_pos = np.array([back[0], back[1], hover_z if clear else push_z + 0.01])
            speed = 0.5 * self.speed
        if progress["touching_object"] and self.phase in (Phase.APPROACH, Phase.DESCEND):
            goal_pos[2] = tcp[2] + 0.05  # bumped into it on the way: back off upwards

        # Broad side of the closed fingers square to the push: the closing axis across it.
        closing = math.atan2(direction[1], direction[0]) + math.pi / 2 + errors.yaw_offset
        rotation = top_down_rotation(tcp_orn, closing)
        self.last_plan, action = plan_and_action(
            goal_pos, tcp, rotation, errors.grip_command, speed, self.hold_steps
        )
        return action
