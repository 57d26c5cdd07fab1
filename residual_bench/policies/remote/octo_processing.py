"""Octo's pre- and post-processing, as pure numpy functions (no JAX, no TensorFlow).

Octo (octo-models/octo) cannot share our environment, so ``scripts/octo_server.py`` runs it in
its own and serves it over the websocket protocol. What happens around the model lives here,
importable and tested without Octo:

- the image is resized to 256 x 256 (Octo's primary camera);
- a window of the last 2 observations is stacked, and ``timestep_pad_mask`` marks the slots
  that are padding: at the start of an episode the first observation fills the window and only
  the newest slot is real, as Octo's ``HistoryWrapper`` does;
- the predicted chunk (4 actions of 7) is un-normalised with the dataset statistics, ``normal``
  (``x * std + mean``) or ``bounds`` (``(x + 1) / 2 * (max - min + 1e-8) + min``), only on the
  dimensions the statistics' ``mask`` selects (the gripper is not normalised).

This module imports only numpy: the server script loads it by file path, so that the Octo
environment needs neither this package's dependencies nor an install of it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

WINDOW = 2
CHUNK_LEN = 4
ACTION_DIM = 7
IMAGE_SIZE = 256
NORMALIZATION_TYPES = ("normal", "bounds")
BOUNDS_EPS = 1e-8  # Octo's, so that a constant dimension does not divide by zero


def resize_image(image: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Resize an (H, W, 3) uint8 image to (size, size, 3) uint8, bilinearly.

    Pixel centres are aligned (``src = (dst + 0.5) * in / out - 0.5``, clamped at the border),
    as ``tf.image.resize(method="bilinear")`` does; an image already at the size is returned
    as a copy, untouched. The server uses TensorFlow's lanczos3 resize instead when it runs
    in Octo's environment (what Octo was trained with) - our env can render 256 px directly,
    so neither changes a pixel in the default setup.

    Raises:
        ValueError: not an (H, W, 3) uint8 array, or ``size < 1``.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: expected (H, W, 3) uint8, got {image.dtype} {image.shape}")
    if size < 1:
        raise ValueError(f"size: must be >= 1, got {size}")
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image.copy()
    rows = _taps(h, size)
    cols = _taps(w, size)
    x = image.astype(np.float64)
    # Separable: first along the rows, then along the columns.
    x = x[rows[0]] * (1 - rows[2])[:, None, None] + x[rows[1]] * rows[2][:, None, None]
    x = x[:, cols[0]] * (1 - cols[2])[None, :, None] + x[:, cols[1]] * cols[2][None, :, None]
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    src = np.clip(src, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, src - lo


def unnormalize_actions(
    actions: np.ndarray, stats: dict[str, Any], normalization: str = "normal"
) -> np.ndarray:
    """Octo's action un-normalisation, on the masked dimensions only.

    Args:
        actions: (..., D) normalised actions.
        stats: the dataset's action statistics: ``mean``, ``std`` (normal) or ``min``,
            ``max`` (bounds), and optionally ``mask`` (True = un-normalise that dimension).
        normalization: ``"normal"`` or ``"bounds"``.

    Raises:
        ValueError: an unknown normalisation, or statistics that do not fit ``D``.
    """
    if normalization not in NORMALIZATION_TYPES:
        raise ValueError(
            f"normalization: unknown {normalization!r}; valid choices: "
            f"{', '.join(NORMALIZATION_TYPES)}"
        )
    actions = np.asarray(actions, dtype=np.float64)
    keys = ("mean", "std") if normalization == "normal" else ("min", "max")
    a, b = (np.asarray(stats[k], dtype=np.float64) for k in keys)
    mask = np.asarray(stats.get("mask", np.ones(a.shape, dtype=bool)), dtype=bool)
    if not a.shape == b.shape == mask.shape == actions.shape[-1:]:
        raise ValueError(
            f"stats: {keys} and mask must have shape {actions.shape[-1:]}, got "
            f"{a.shape}, {b.shape}, {mask.shape}"
        )
    if normalization == "normal":
        out = actions * b + a
    else:
        out = (actions + 1) / 2 * (b - a + BOUNDS_EPS) + a
    return np.where(mask, out, actions)


def postprocess_actions(
    raw: np.ndarray,
    stats: dict[str, Any],
    normalization: str = "normal",
    chunk_len: int = CHUNK_LEN,
    action_dim: int = ACTION_DIM,
) -> np.ndarray:
    """The model's sampled actions -> a (chunk_len, action_dim) float32 chunk.

    ``raw`` is (1, H, D) or (H, D) with ``H >= chunk_len`` and ``D >= action_dim`` (Octo pads
    the action head; the statistics' length decides, as in ``sample_actions``).

    Raises:
        ValueError: too few rows or dimensions, or a batch of more than one.
    """
    raw = np.asarray(raw)
    if raw.ndim == 3:
        if raw.shape[0] != 1:
            raise ValueError(f"raw: expected a batch of one, got {raw.shape[0]}")
        raw = raw[0]
    if raw.ndim != 2 or raw.shape[0] < chunk_len or raw.shape[1] < action_dim:
        raise ValueError(f"raw: expected (>= {chunk_len}, >= {action_dim}), got {raw.shape}")
    actions = unnormalize_actions(raw[:chunk_len, :action_dim], stats, normalization)
    return actions.astype(np.float32)


class ObservationHistory:
    """The last ``window`` observations, stacked, with Octo's ``timestep_pad_mask``.

    Args:
        window: observations per model call (Octo: 2).
    """

    def __init__(self, window: int = WINDOW) -> None:
        if window < 1:
            raise ValueError(f"window: must be >= 1, got {window}")
        self.window = window
        self._history: deque[dict[str, np.ndarray]] = deque(maxlen=window)
        self._count = 0

    def reset(self) -> None:
        """Forget the episode's observations."""
        self._history.clear()
        self._count = 0

    def push(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Add an observation; return each key stacked (window, ...), oldest first, plus
        ``timestep_pad_mask`` (window,) bool, False on the padding slots."""
        if not self._history:
            # Pad with copies of the first observation, as Octo's HistoryWrapper does.
            self._history.extend([obs] * self.window)
        else:
            self._history.append(obs)
        self._count += 1
        stacked = {k: np.stack([o[k] for o in self._history]) for k in obs}
        pad = self.window - min(self._count, self.window)
        mask = np.ones(self.window, dtype=bool)
        mask[:pad] = False
        stacked["timestep_pad_mask"] = mask
        return stacked


def octo_spec_wire(control_hz: float = 5.0) -> dict[str, Any]:
    """The ``policy_spec`` the Octo server sends (Bridge-trained Octo: 4 actions at 5 Hz,
    end-effector deltas in metres / radians, gripper 0 closed .. 1 open)."""
    return {
        "name": "octo",
        "control_hz": control_hz,
        "chunk_len": CHUNK_LEN,
        "action_dim": ACTION_DIM,
        "action_repr": "delta_ee_euler",
        "gripper": "absolute_01",
        "position_unit_m": 1.0,
        "rotation_unit_rad": 1.0,
        "cameras": {"rgb": [IMAGE_SIZE, IMAGE_SIZE]},
        "needs_instruction": True,
        "needs_state": False,
        "normalization_key": "bridge_dataset",
        "description": "Octo (JAX) served by scripts/octo_server.py",
    }
