"""Motion pieces the push and insertion experts share: a top-down hand turned to a closing
angle, and a target pose turned into a plan and a 7-D action.

The plan (``last_plan``) is what an expert wants before any step limit; the scripted bases
read it to plan chunks (:mod:`residual_bench.policies.scripted_vla`).
"""

from __future__ import annotations

import math

import numpy as np

from residual_bench.sim.geometry import rotate, wrap_angle
from residual_bench.sim.panda import POSITION_SCALE, ROTATION_SCALE


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
