"""``scripted``: a frozen base that fails the way vision-language-action models fail.

The privileged expert (:mod:`residual_bench.policies.expert`) with a seeded error model for
the failure modes the residual is meant to correct:

- per-episode **visual miscalibration**: the object and the plate are perceived a little off;
- an **awkward approach angle**: the grasp direction is off by a per-episode angle;
- **grasp timing and force**: the fingers close too high, and not always firmly;
- **hesitation and jitter**: noisy motion and the occasional pause;
- **coarse waypoints**: motion comes in quanta, not smooth increments;
- and, most important, it runs **at a VLA's rate** (5 Hz, chunks of 4 actions) so that,
  behind the executor's latency, it acts on observations that are 100-300 ms old and does
  not react to a poke in time.

``scripted-expert`` is the same base with no errors at the control rate: the upper bound.
``scripted-fast`` keeps the errors and drops the VLA's rate (every step, no chunks, no
latency), which separates what the errors cost from what acting late costs. All three are
registered here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from residual_bench.policies.base import ActionChunk, PolicySpec
from residual_bench.policies.controller import BaseController
from residual_bench.policies.executor import ChunkExecutor, LatencyModel
from residual_bench.policies.expert_motion import PerceptionErrors
from residual_bench.policies.registry import register_base
from residual_bench.policies.task_experts import expert_for
from residual_bench.sim.panda import POSITION_SCALE, ROTATION_SCALE

CHUNK_GAIN = 0.6
"""Fraction of the remaining way to the target each row of a chunk covers."""


@dataclass(frozen=True)
class VLAErrorModel:
    """Magnitudes of the scripted base's errors; each is drawn per episode or per call.

    Attributes:
        object_offset_m: std of the per-episode horizontal error in the object's position.
        goal_offset_m: std of the per-episode horizontal error in the plate's position.
        yaw_offset_rad: per-episode grasp-direction error, uniform in +-this.
        grasp_height_m: per-episode [low, high] of how much too high the fingers close.
        grip_command: per-episode [low, high] of the closing command (-1 is a firm grip).
        jitter: std of the noise on each translation, as a fraction of the largest step.
        hesitation: probability that a call answers with a pause (no motion).
        waypoint_m: translations are rounded to multiples of this (coarse waypoints).
    """

    object_offset_m: float = 0.012
    goal_offset_m: float = 0.015
    yaw_offset_rad: float = 0.35
    grasp_height_m: tuple[float, float] = (0.0, 0.012)
    grip_command: tuple[float, float] = (-1.0, -0.4)
    jitter: float = 0.03
    hesitation: float = 0.05
    waypoint_m: float = 0.004

    def sample(self, rng: np.random.Generator) -> PerceptionErrors:
        """One episode's systematic errors."""
        return PerceptionErrors(
            object_offset=np.array([*rng.normal(0.0, self.object_offset_m, 2), 0.0]),
            goal_offset=np.array([*rng.normal(0.0, self.goal_offset_m, 2), 0.0]),
            yaw_offset=float(rng.uniform(-self.yaw_offset_rad, self.yaw_offset_rad)),
            grasp_height=float(rng.uniform(*self.grasp_height_m)),
            grip_command=float(rng.uniform(*self.grip_command)),
        )


NO_ERRORS = VLAErrorModel(0.0, 0.0, 0.0, (0.0, 0.0), (-1.0, -1.0), 0.0, 0.0, 0.0)


class ScriptedVLABase:
    """A scripted base policy behind the :class:`~residual_bench.policies.base.BasePolicy`
    interface. It reads the simulator's state at the moment it is called (that is its
    "observation"); the executor decides when that is and when the answer arrives.

    Native actions: translation in metres and rotation in radians per base step (world
    frame), gripper absolute in [-1, 1].

    Args:
        env: the ``ResidualPickPlace-v1`` environment it controls (wrapped or not).
        errors: the error model; :data:`NO_ERRORS` gives the expert.
        control_hz: how often the base is called.
        chunk_len: actions per call. The scripted base plans one step ahead and repeats it
            (constant velocity), as a coarse chunked policy does.
        name: the name in its spec.
    """

    def __init__(
        self,
        env,
        errors: VLAErrorModel = VLAErrorModel(),
        control_hz: float = 5.0,
        chunk_len: int = 4,
        name: str = "scripted",
        description: str = "",
    ) -> None:
        self.env = env
        self.error_model = errors
        sim = env.unwrapped
        self.steps_per_call = round(sim.control_hz / control_hz)
        self.spec = PolicySpec(
            name=name,
            control_hz=control_hz,
            chunk_len=chunk_len,
            action_dim=7,
            action_repr="delta_ee_euler",
            gripper="absolute_pm1",
            position_unit_m=1.0,
            rotation_unit_rad=1.0,
            cameras={},
            needs_instruction=False,
            needs_state=True,
            normalization_key=None,
            description=description,
        )
        # Its commands land up to a period plus the latency late: give the gripper that long.
        # The task's own expert (policies.task_experts), so one error model serves every task.
        self.expert = expert_for(
            env,
            hold_steps=self.steps_per_call,
            settle_seconds=2.0 / control_hz,
            descend_tolerance=0.012,
        )
        self._rng = np.random.default_rng(0)

    def reset(self, instruction: str, seed: int | None) -> None:
        """Draw this episode's errors from ``seed``, scaled by the task's
        ``base_error_scale``."""
        self._rng = np.random.default_rng(seed)
        self.expert.reset()
        errors = self.error_model.sample(self._rng)
        self.expert.errors = errors.scaled(self.env.unwrapped.task_class.base_error_scale)

    def act(self, obs: dict, instruction: str) -> ActionChunk:
        """A chunk of ``chunk_len`` native actions planned from the current state.

        The chunk is the expert's proportional controller rolled out from where the previous
        rows will have left the gripper: each row covers ``CHUNK_GAIN`` of the remaining way
        to the expert's current target, at most one base step's worth of motion. Spreading the
        motion over the chunk keeps it useful when the executor has to skip the rows whose
        time passed while the answer was in flight.
        """
        start = time.perf_counter()
        self.expert.act(self.env)
        plan = self.expert.last_plan
        model, rng = self.error_model, self._rng
        max_move = plan["speed"] * POSITION_SCALE * self.steps_per_call
        max_turn = ROTATION_SCALE * self.steps_per_call
        move_left = np.asarray(plan["translation"], dtype=np.float64)
        turn_left = np.asarray(plan["rotation"], dtype=np.float64)
        rows = np.zeros((self.spec.chunk_len, 7))
        pause = model.hesitation > 0 and rng.random() < model.hesitation
        for k in range(self.spec.chunk_len):
            move = np.clip(CHUNK_GAIN * move_left, -max_move, max_move)
            turn = np.clip(CHUNK_GAIN * turn_left, -max_turn, max_turn)
            move_left, turn_left = move_left - move, turn_left - turn
            if pause and k == 0:
                move, turn = np.zeros(3), np.zeros(3)
            if model.jitter > 0:
                move = move + rng.normal(0.0, model.jitter * max_move, 3)
            if model.waypoint_m > 0:
                move = np.round(move / model.waypoint_m) * model.waypoint_m
            rows[k, :3], rows[k, 3:6], rows[k, 6] = move, turn, plan["gripper"]
        info = {"infer_time_s": time.perf_counter() - start, "phase": self.expert.phase.value}
        return ActionChunk(rows.astype(np.float32), info)


def _scripted_base(vla_errors: bool, vla_rate: bool = True) -> Callable[[Any], BaseController]:
    def factory(env: Any) -> BaseController:
        sim = env.unwrapped
        if vla_errors and vla_rate:
            policy = ScriptedVLABase(env, name="scripted")
            latency = LatencyModel(fixed_s=0.1, jitter_s=0.1)
        else:
            errors, name = (
                (VLAErrorModel(), "scripted-fast") if vla_errors else (NO_ERRORS, "scripted-expert")
            )
            policy = ScriptedVLABase(env, errors, control_hz=sim.control_hz, chunk_len=1, name=name)
            latency = None
        return BaseController(policy, ChunkExecutor(policy, sim.dt, latency=latency))

    return factory


register_base(
    "scripted-expert",
    "base: the scripted expert behind the base-policy interface, no errors (upper bound)",
    _scripted_base(vla_errors=False),
)
register_base(
    "scripted",
    "base: VLA-like scripted policy, 5 Hz chunks, 100-200 ms latency, seeded errors",
    _scripted_base(vla_errors=True),
)
register_base(
    "scripted-fast",
    "base: the scripted base's seeded errors at the control rate, no chunks or latency",
    _scripted_base(vla_errors=True, vla_rate=False),
)
