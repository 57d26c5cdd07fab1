"""The action and observation conventions shared by the simulated and the real env.

Both envs must accept the same actions and produce observations of the same layout, so the
checks and spaces live here, below both (the action convention itself is described in
:mod:`residual_bench.sim.panda`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from residual_bench.language import INSTRUCTION_DIM

OBS_MODES = ("state", "rgb", "rgbd", "rgb+seg", "rgbd+seg")
PROPRIO_DIM = 20
"""7 arm joints, 2 finger joints, grasp-point position (3), quaternion (4), linear
velocity (3), gripper width (1)."""
MAX_ALPHA = 2.0
"""The largest residual scale per dimension: the action box is [-1, 1], so with alpha 2 a
residual can take any dimension from any base action to either end; beyond it a correction
can only saturate."""
OBJECT_FEATURES = 13
"""Per object: position (3), quaternion (4), linear velocity (3), position relative to the
grasp point (3)."""


def observation_space(
    obs_mode: str, size: int, object_rows: int, segmentation_classes: int
) -> spaces.Dict:
    """The simulated env's observation space (see ``ResidualTaskEnv``)."""
    inf = np.inf
    obs = {
        "proprio": spaces.Box(-inf, inf, (PROPRIO_DIM,), np.float32),
        "instruction": spaces.Box(-1.0, 1.0, (INSTRUCTION_DIM,), np.float32),
    }
    if obs_mode == "state":
        obs["objects"] = spaces.Box(-inf, inf, (object_rows, OBJECT_FEATURES), np.float32)
        obs["object_mask"] = spaces.Box(0.0, 1.0, (object_rows,), np.float32)
        obs["goal"] = spaces.Box(-inf, inf, (3,), np.float32)
    else:
        obs.update(camera_spaces(obs_mode, size, segmentation_classes))
    return spaces.Dict(obs)


def camera_spaces(obs_mode: str, size: int, segmentation_classes: int) -> dict[str, spaces.Box]:
    """The image entries of the observation for an image ``obs_mode`` at ``size`` pixels,
    with segmentation ids ``0 .. segmentation_classes - 1``."""
    out = {"rgb": spaces.Box(0, 255, (size, size, 3), np.uint8)}
    if obs_mode.startswith("rgbd"):
        out["depth"] = spaces.Box(0.0, np.inf, (size, size, 1), np.float32)
    if obs_mode.endswith("+seg"):
        out["segmentation"] = spaces.Box(0, segmentation_classes - 1, (size, size, 1), np.uint8)
    return out


def validate_action(action: Any) -> np.ndarray:
    """Check a 7-D action and return it as float64, clipped to [-1, 1].

    Raises:
        ValueError: wrong shape, a non-numeric dtype, or NaN/inf entries.
    """
    arr = np.asarray(action)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"action must be a real numeric array, got dtype {arr.dtype}")
    if arr.shape != (7,):
        raise ValueError(
            f"action must have shape (7,) = (dx, dy, dz, droll, dpitch, dyaw, gripper), "
            f"got shape {arr.shape}"
        )
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        bad = [i for i in range(7) if not np.isfinite(arr[i])]
        raise ValueError(f"action contains NaN or inf at index {bad}: {arr.tolist()}")
    return np.clip(arr, -1.0, 1.0)
