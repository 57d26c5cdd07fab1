"""The privileged scripted expert of ``ResidualStack-v0``.

Stacking is pick-and-place onto a moving goal - the stack task's ``goal`` is the support's
top, re-read every step - so the pick-and-place expert serves it, with two changes that the
support's small top and the task's 0.5 s stability window call for:

- it carries and lowers aiming with the hand-object offset averaged over about half a
  second, and lets go only once the held object is within ``PLACE_XY_TOLERANCE`` of the
  support's centre and slower than ``RELEASE_SPEED`` (or lowering has lasted
  ``PLACE_TIMEOUT_SECONDS``): an object held by two fingers swings about their axis, the
  pick-and-place expert's step-by-step chase of it kept the swing going, and letting go
  wherever the swing was left it up to 2.5 cm off the 2 cm tolerance;
- after letting go it does not retry while the placement may still count (the stack
  condition holds and its stability clock runs) or the object is still moving, and it
  backs off from a retry when the object it went back for has come to rest stacked:
  grasping an object that is settling restarted the clock, or knocked it off, again and
  again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from residual_bench.policies.expert import Phase, ScriptedExpert
from residual_bench.policies.task_experts import register_expert

PLACE_XY_TOLERANCE = 0.006  # m: the object's centre over the support's before it is let go
RELEASE_SPEED = 0.03  # m/s: the held object swings slower than this when it is let go
OFFSET_SMOOTHING = 0.1  # per control step: the hand-object offset's moving average
SETTLED_SPEED = 0.02  # m/s: below this an object off target has settled and is grasped again


@register_expert("ResidualStack")
class StackExpert(ScriptedExpert):
    """:class:`ScriptedExpert` that places precisely and waits for a placement to settle."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._offset: np.ndarray | None = None

    def reset(self) -> None:
        super().reset()
        self._offset = None

    def _enter(self, phase: Phase) -> None:
        super()._enter(phase)
        if phase == Phase.LIFT:  # a new grasp: a new offset
            self._offset = None

    def act(self, env: Any) -> np.ndarray:
        """The next 7-D action; an object that has come to rest stacked while the hand went
        back for it (a retry) is left alone, so the stability clock can run out."""
        sim = env.unwrapped
        if self.phase in (Phase.APPROACH, Phase.DESCEND, Phase.CLOSE) and not self.open_loop:
            tcp, _ = sim.robot.tcp_pose()
            if sim.task.progress(sim.object_states, tcp)["stacked"]:
                self._now = sim.time
                self._enter(Phase.RETREAT)
        return super().act(env)

    def _carry_offset(self, offset: np.ndarray) -> np.ndarray:
        # Averaged over about half a second: chasing the swinging object step by step
        # moves the hand against the swing and keeps it going.
        if self._offset is None:
            self._offset = np.array(offset, dtype=float)
        self._offset += OFFSET_SMOOTHING * (offset - self._offset)
        return self._offset

    def _ready_to_release(self, obj: np.ndarray, goal: np.ndarray, progress: dict) -> bool:
        # Over the support's centre and done swinging: let go mid-swing and it slides on.
        centred = float(np.linalg.norm(obj[:2] - goal[:2])) < PLACE_XY_TOLERANCE
        return centred and progress["object_speed"] < RELEASE_SPEED

    def _placement_settling(self, progress: dict) -> bool:
        return bool(progress["stacked"]) or progress["object_speed"] > SETTLED_SPEED
