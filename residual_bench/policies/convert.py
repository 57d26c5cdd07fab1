"""Translate a base policy's native action into the environment's 7-D action.

The environment's action (see ``residual_bench.sim.panda``) is a per-*control-step* delta,
normalised so that +-1 means ``POSITION_SCALE`` metres / ``ROTATION_SCALE`` radians, plus an
absolute gripper command (-1 closed, +1 open). A base policy's native action is a per-*base-step*
delta in its own units. Converting one therefore takes three steps:

1. units: translation times ``position_unit_m`` (metres), rotation times ``rotation_unit_rad``;
2. time: a native delta covers ``1 / spec.control_hz`` seconds but an env action only ``env_dt``,
   so the delta is multiplied by ``env_dt * spec.control_hz``. Holding the converted action for
   the ``1 / (env_dt * control_hz)`` env steps of one base period then moves the arm by the
   native delta (5 Hz base, 20 Hz env: each env step does a quarter);
3. normalisation: divide by the env's scales, clip to [-1, 1] and record whether that cut.

Rotations: Euler deltas are roll, pitch, yaw about the world axes (the env's convention, so they
pass through) and are scaled per component. Axis-angle vectors are scaled first (the same axis
with a fraction of the angle, so the env steps compose exactly to the native rotation) and then
turned into the env's roll-pitch-yaw through rotation matrices.
"""

from __future__ import annotations

import math

import numpy as np

from residual_bench.policies.base import PolicySpec
from residual_bench.sim.panda import POSITION_SCALE, ROTATION_SCALE

DEFAULT_ENV_DT = 1.0 / 20.0
"""Control period of the environment at its default 20 Hz; pass ``env.unwrapped.dt`` otherwise."""


def axangle_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (axis times angle in radians), by Rodrigues."""
    v = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(angle) * kx + (1.0 - math.cos(angle)) * (kx @ kx)


def matrix_to_rpy(m: np.ndarray) -> np.ndarray:
    """Roll, pitch, yaw of a rotation matrix ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``.

    This is the convention of ``pybullet.getQuaternionFromEuler``, which the env applies.
    """
    pitch = math.asin(float(np.clip(-m[2, 0], -1.0, 1.0)))
    roll = math.atan2(m[2, 1], m[2, 2])
    yaw = math.atan2(m[1, 0], m[0, 0])
    return np.array([roll, pitch, yaw])


class ActionConverter:
    """Native base-policy action -> env action, with the gripper state some conventions need.

    Gripper conventions (output is the env's absolute -1 closed / +1 open):
    ``absolute_pm1`` as is; ``absolute_01`` ``2 g - 1``; ``binary_pm1`` the sign, where 0 keeps
    the previous command; ``relative`` previous command plus the native value. The previous
    command is the converter's own state (:attr:`gripper`), open (+1) after :meth:`reset`.

    Args:
        spec: the base policy's spec.
        env_position_scale: metres of an env translation action of 1.0.
        env_rotation_scale: radians of an env rotation action of 1.0.
        env_dt: the env's control period in seconds (``env.unwrapped.dt``).

    Raises:
        ValueError: a non-positive scale or period.
    """

    def __init__(
        self,
        spec: PolicySpec,
        env_position_scale: float = POSITION_SCALE,
        env_rotation_scale: float = ROTATION_SCALE,
        env_dt: float = DEFAULT_ENV_DT,
    ) -> None:
        for name, value in (
            ("env_position_scale", env_position_scale),
            ("env_rotation_scale", env_rotation_scale),
            ("env_dt", env_dt),
        ):
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}: must be positive and finite, got {value!r}")
        self.spec = spec
        self.env_position_scale = float(env_position_scale)
        self.env_rotation_scale = float(env_rotation_scale)
        self.env_dt = float(env_dt)
        self.step_fraction = self.env_dt * spec.control_hz
        """Fraction of one base step that one env step covers."""
        self._gripper = 1.0
        self.last_clipped = False
        """Whether the last conversion had to clip any entry to [-1, 1]."""
        self.last_clip_excess = 0.0
        """By how much the furthest entry of the last conversion lay outside [-1, 1]."""

    def reset(self) -> None:
        """Forget the gripper state (open) and the clipping record."""
        self._gripper = 1.0
        self.last_clipped = False
        self.last_clip_excess = 0.0

    @property
    def gripper(self) -> float:
        """The previous gripper command in [-1, 1] that relative / binary values refer to."""
        return self._gripper

    @gripper.setter
    def gripper(self, value: float) -> None:
        value = float(value)
        if not -1.0 <= value <= 1.0:
            raise ValueError(f"gripper: must be in [-1, 1], got {value!r}")
        self._gripper = value

    def convert(self, native: np.ndarray) -> np.ndarray:
        """Convert one native action.

        Args:
            native: shape ``(spec.action_dim,)``, the model's convention.

        Returns:
            The env action, shape (7,), float64, in [-1, 1]; :attr:`last_clipped` and
            :attr:`last_clip_excess` say whether and how far it was clipped.

        Raises:
            ValueError: wrong shape, or NaN / inf entries.
        """
        a = self._check(native, (self.spec.action_dim,))
        raw = self._convert_raw(a)
        out = np.clip(raw, -1.0, 1.0)
        self._gripper = float(out[6])
        excess = float(np.max(np.abs(raw) - 1.0))
        self.last_clip_excess = max(excess, 0.0)
        self.last_clipped = excess > 0.0
        return out

    def convert_chunk(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Convert a chunk row by row (the gripper state carries from row to row).

        Args:
            actions: shape ``(H, spec.action_dim)``.

        Returns:
            ``(env_actions, clipped)``: shapes (H, 7) float64 and (H,) bool. Afterwards
            :attr:`last_clipped` / :attr:`last_clip_excess` summarise the whole chunk.

        Raises:
            ValueError: wrong shape, or NaN / inf entries.
        """
        a = self._check(actions, (None, self.spec.action_dim))
        out = np.empty((a.shape[0], 7))
        clipped = np.zeros(a.shape[0], dtype=bool)
        excess = 0.0
        for i, row in enumerate(a):
            out[i] = self.convert(row)
            clipped[i] = self.last_clipped
            excess = max(excess, self.last_clip_excess)
        self.last_clipped = bool(clipped.any())
        self.last_clip_excess = excess
        return out, clipped

    def _convert_raw(self, a: np.ndarray) -> np.ndarray:
        spec, frac = self.spec, self.step_fraction
        raw = np.empty(7)
        raw[:3] = a[:3] * spec.position_unit_m * frac / self.env_position_scale
        rot = a[3:6] * spec.rotation_unit_rad * frac
        if spec.action_repr == "delta_ee_axangle":
            rot = matrix_to_rpy(axangle_to_matrix(rot))
        raw[3:6] = rot / self.env_rotation_scale
        g = float(a[6])
        if spec.gripper == "absolute_pm1":
            raw[6] = g
        elif spec.gripper == "absolute_01":
            raw[6] = 2.0 * g - 1.0
        elif spec.gripper == "binary_pm1":
            raw[6] = float(np.sign(g)) if g != 0.0 else self._gripper
        else:  # relative
            raw[6] = self._gripper + g
        return raw

    @staticmethod
    def _check(x: np.ndarray, shape: tuple[int | None, ...]) -> np.ndarray:
        a = np.asarray(x)
        if a.dtype.kind not in "fiu":
            raise ValueError(f"native action must be a real numeric array, got dtype {a.dtype}")
        a = a.astype(np.float64)
        fits = a.ndim == len(shape) and all(
            s is None or s == n for s, n in zip(shape, a.shape, strict=True)
        )
        if not fits:
            want = tuple("H" if s is None else s for s in shape)
            raise ValueError(f"native action must have shape {want}, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError("native action contains NaN or inf")
        return a
