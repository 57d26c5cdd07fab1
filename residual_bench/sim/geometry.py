"""Small quaternion helpers (x, y, z, w order, as PyBullet uses), in plain numpy."""

from __future__ import annotations

import math

import numpy as np


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion."""
    return np.array([-q[0], -q[1], -q[2], q[3]])


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Axis-angle vector (rad) of a unit quaternion, taking the short way round."""
    q = q if q[3] >= 0 else -q
    sin_half = float(np.linalg.norm(q[:3]))
    if sin_half < 1e-9:
        return 2.0 * q[:3]
    angle = 2.0 * math.atan2(sin_half, q[3])
    return q[:3] / sin_half * angle


def quat_from_yaw(yaw: float) -> np.ndarray:
    """Rotation about the world z axis."""
    return np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])


def yaw_of(q: np.ndarray) -> float:
    """Heading of the body's x axis projected on the ground plane."""
    x, y, z, w = q
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vector ``v`` by unit quaternion ``q``."""
    u = q[:3]
    return v + 2.0 * np.cross(u, np.cross(u, v) + q[3] * v)


def wrap_angle(a: float) -> float:
    """Wrap an angle to [-pi, pi)."""
    return (a + math.pi) % (2 * math.pi) - math.pi
