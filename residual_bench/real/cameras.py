"""Cameras and segmenters behind small protocols, so the real env can run with any of them.

- :class:`RealSenseCamera`: an Intel RealSense through ``pyrealsense2`` (imported lazily).
- :class:`ReplayCamera`: frames from an ``.npz`` file, for tests and offline debugging.
- The twin's camera lives in :mod:`residual_bench.real.twin`.

A segmenter turns a frame into the env's semantic ids
(:data:`residual_bench.tasks.pick_place.SEGMENTATION_CLASSES`: plate 3, target object 4).
The only one shipped is the twin's ground truth; a real one (e.g. an open-vocabulary
detector prompted with the instruction) plugs in through :class:`Segmenter`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from residual_bench.real.driver import DriverUnavailableError, lazy_import
from residual_bench.sim.camera import CameraPose


@dataclass
class Frame:
    """One camera frame. ``segmentation`` is only filled by a simulated camera."""

    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray | None  # (H, W, 1) float32 metres from the camera plane
    timestamp: float  # the driver's clock when the frame was exposed
    segmentation: np.ndarray | None = None  # (H, W, 1) uint8


@runtime_checkable
class CameraSource(Protocol):
    """A camera: ``pose`` is its calibrated extrinsics and vertical field of view, which the
    ``objects`` residual features need to lift masks to 3D (``None`` if uncalibrated)."""

    name: str
    pose: CameraPose | None

    def start(self) -> None:
        """Open the device (idempotent)."""

    def read(self) -> Frame:
        """The newest frame."""

    def stop(self) -> None:
        """Release the device."""


@runtime_checkable
class Segmenter(Protocol):
    """Maps a frame (and the instruction naming the target) to (H, W, 1) uint8 class ids."""

    def segment(self, frame: Frame, instruction: str) -> np.ndarray:
        """The class id of every pixel."""


class GroundTruthSegmenter:
    """The twin's segmenter: the simulator's own mask. Twin only - it cannot see real scenes."""

    def segment(self, frame: Frame, instruction: str) -> np.ndarray:
        """Return the simulated mask the frame carries."""
        if frame.segmentation is None:
            raise ValueError(
                "GroundTruthSegmenter only works with the twin's camera; plug a real "
                "segmenter into PandaRealEnv(segmenter=...)"
            )
        return frame.segmentation


def fit_image(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to ``size`` x ``size`` (nearest neighbour).

    Nearest neighbour keeps depth and class ids exact (no blending across edges).
    """
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side]
    idx = (np.arange(size) * side / size).astype(int)
    return square[idx][:, idx]


def fit_frame(frame: Frame, size: int) -> Frame:
    """:func:`fit_image` on every image of a frame."""

    def fit(image: np.ndarray | None) -> np.ndarray | None:
        return None if image is None else fit_image(image, size)

    return replace(
        frame, rgb=fit(frame.rgb), depth=fit(frame.depth), segmentation=fit(frame.segmentation)
    )


class ReplayCamera:
    """Frames from an ``.npz`` file with ``rgb`` (N, H, W, 3) and optionally ``depth``
    (N, H, W, 1), played in a loop; each read is stamped with ``clock()``.

    Args:
        path: the file.
        clock: the env driver's clock (so frame ages are comparable with robot states).
        pose: the camera's calibration, if known.
    """

    name = "replay"

    def __init__(
        self,
        path: str | Path,
        clock: Callable[[], float] = time.monotonic,
        pose: CameraPose | None = None,
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"replay camera file {str(path)!r} does not exist")
        with np.load(path) as data:
            if "rgb" not in data:
                raise ValueError(f"{path}: needs an 'rgb' array of shape (N, H, W, 3)")
            self.rgb = np.asarray(data["rgb"], dtype=np.uint8)
            self.depth = np.asarray(data["depth"], np.float32) if "depth" in data else None
        if self.rgb.ndim != 4 or self.rgb.shape[-1] != 3 or len(self.rgb) == 0:
            raise ValueError(f"{path}: rgb must be (N, H, W, 3), got {self.rgb.shape}")
        self.clock = clock
        self.pose = pose
        self._index = 0

    def start(self) -> None:
        """Rewind to the first frame."""
        self._index = 0

    def read(self) -> Frame:
        """The next frame of the file."""
        i = self._index % len(self.rgb)
        self._index += 1
        depth = None if self.depth is None else self.depth[i]
        return Frame(self.rgb[i].copy(), depth, self.clock())

    def stop(self) -> None:
        """Nothing to release."""


class RealSenseCamera:
    """An Intel RealSense (D4xx) colour + aligned depth stream through ``pyrealsense2``.

    Args:
        pose: the camera's calibrated pose in the robot base frame (hand-eye calibration).
        width, height, fps: stream settings.
        serial: device serial number, or ``None`` for the first one found.
        clock: the driver's clock, used to stamp frames on arrival.
    """

    name = "realsense"

    def __init__(
        self,
        pose: CameraPose | None = None,
        width: int = 640,
        height: int = 480,
        fps: int = 30,
        serial: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rs = lazy_import("pyrealsense2", "realsense", "pip install pyrealsense2")
        self.pose = pose
        self.width, self.height, self.fps, self.serial = width, height, fps, serial
        self.clock = clock
        self._pipeline = None

    def start(self) -> None:
        """Start the colour and depth streams; raises if no device answers."""
        if self._pipeline is not None:
            return
        rs = self.rs
        config = rs.config()
        if self.serial:
            config.enable_device(self.serial)
        config.enable_stream(rs.stream.color, self.width, self.height, rs.format.rgb8, self.fps)
        config.enable_stream(rs.stream.depth, self.width, self.height, rs.format.z16, self.fps)
        pipeline = rs.pipeline()
        try:
            profile = pipeline.start(config)
        except RuntimeError as exc:
            raise DriverUnavailableError(f"no RealSense camera could be started: {exc}") from None
        self._scale = profile.get_device().first_depth_sensor().get_depth_scale()
        self._align = rs.align(rs.stream.color)
        self._pipeline = pipeline

    def read(self) -> Frame:
        """Wait for the next frame pair (depth aligned to colour)."""
        if self._pipeline is None:
            self.start()
        frames = self._align.process(self._pipeline.wait_for_frames())
        stamp = self.clock()
        rgb = np.asanyarray(frames.get_color_frame().get_data()).copy()
        depth = np.asanyarray(frames.get_depth_frame().get_data()).astype(np.float32)
        return Frame(rgb, (depth * self._scale)[..., None], stamp)

    def stop(self) -> None:
        """Stop the streams."""
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None
