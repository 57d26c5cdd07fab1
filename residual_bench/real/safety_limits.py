"""The safety layer's limits, and the joint-limit check of reset poses.

Configuration, kept apart from the stepping layer in :mod:`residual_bench.real.safety`
because it is also used without stepping: the env checks reset joints against the Panda's
limits less the margin before they reach the driver, and a session hashes the limits into its
records' ``env_spec_hash``. The limits are validated when built, so a bad value fails when the
env is configured, never in the middle of an episode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PANDA_JOINT_LOWER = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
PANDA_JOINT_UPPER = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])


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
    joint_hold_timeout: float = 1.0
    """Seconds a joint may stay inside its margin (the target held) before the layer stops:
    a policy that keeps pushing into a limit will not leave it by itself."""

    def __post_init__(self) -> None:
        low, high = np.asarray(self.workspace_low), np.asarray(self.workspace_high)
        if low.shape != (3,) or high.shape != (3,) or not np.all(low < high):
            raise ValueError(f"workspace box must have low < high, got {low} and {high}")
        for name in (
            "max_tilt max_step_translation max_step_rotation max_speed max_acceleration "
            "max_angular_speed max_action_age max_state_age hold_timeout joint_hold_timeout"
        ).split():
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if not (math.isfinite(self.joint_margin) and self.joint_margin >= 0):
            raise ValueError(f"joint_margin must be >= 0, got {self.joint_margin!r}")
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError("workspace box must be finite")


def check_reset_joints(joints: np.ndarray, margin: float) -> np.ndarray:
    """``joints`` as 7 finite floats inside the Panda's limits less ``margin``.

    Raises:
        ValueError: naming the first joint out of range (or the wrong shape, or NaN).
    """
    joints = np.asarray(joints, dtype=float)
    if joints.shape != (7,):
        raise ValueError(f"reset joints: expected 7 angles, got shape {joints.shape}")
    for i, (q, lo, hi) in enumerate(zip(joints, PANDA_JOINT_LOWER, PANDA_JOINT_UPPER, strict=True)):
        if not (math.isfinite(q) and lo + margin <= q <= hi - margin):
            raise ValueError(
                f"reset joint {i + 1}: {q!r} rad is outside [{lo + margin:.4f}, "
                f"{hi - margin:.4f}] (its limits less the {margin} rad margin)"
            )
    return joints
