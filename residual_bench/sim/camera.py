"""A fixed third-person RGB-D camera with segmentation, rendered by TinyRenderer on the CPU."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from residual_bench.sim.pybullet_world import PyBulletWorld


@dataclass(frozen=True)
class CameraPose:
    """Where the camera sits and looks; all in the world frame (metres, degrees)."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    fov_deg: float = 50.0
    near: float = 0.05
    far: float = 3.0


@dataclass
class CameraFrame:
    """One rendered frame. Arrays are (H, W, C); absent modalities are ``None``."""

    rgb: np.ndarray | None = None  # uint8, (H, W, 3)
    depth: np.ndarray | None = None  # float32 metres from the camera plane, (H, W, 1)
    segmentation: np.ndarray | None = None  # uint8 semantic ids, (H, W, 1)


class Camera:
    """Renders the scene from a :class:`CameraPose` at ``width`` x ``height`` pixels.

    Segmentation comes out as PyBullet body ids; ``body_to_class`` maps them to the small
    semantic ids the environment documents (unknown bodies and background become 0).
    """

    def __init__(self, world: PyBulletWorld, width: int, height: int) -> None:
        self.world = world
        self.width = width
        self.height = height
        self.pose: CameraPose | None = None
        self._view: list[float] | None = None
        self._proj: list[float] | None = None
        self.light_direction: list[float] = [0.4, -0.3, 1.0]
        self._class_lut = np.zeros(256, dtype=np.uint8)

    def set_pose(self, pose: CameraPose) -> None:
        """Move the camera (recomputes the view and projection matrices)."""
        client = self.world.client
        self.pose = pose
        self._view = client.computeViewMatrix(pose.eye, pose.target, [0.0, 0.0, 1.0])
        self._proj = client.computeProjectionMatrixFOV(
            pose.fov_deg, self.width / self.height, pose.near, pose.far
        )

    def set_segmentation_classes(self, body_to_class: dict[int, int]) -> None:
        """Map PyBullet body ids to semantic class ids (both below 256)."""
        lut = np.zeros(256, dtype=np.uint8)
        for body, cls in body_to_class.items():
            lut[body + 1] = cls  # +1 so that background (-1) lands on index 0
        self._class_lut = lut

    def resized(self, width: int, height: int) -> Camera:
        """A camera with the same pose, light and segmentation classes at another size."""
        other = Camera(self.world, width, height)
        if self.pose is not None:
            other.set_pose(self.pose)
        other.light_direction = list(self.light_direction)
        other._class_lut = self._class_lut.copy()
        return other

    def render(
        self, rgb: bool = True, depth: bool = False, segmentation: bool = False
    ) -> CameraFrame:
        """Render the requested modalities in one pass."""
        if self.pose is None:
            raise RuntimeError("Camera.set_pose must be called before render")
        client = self.world.client
        flags = 0 if segmentation else client.ER_NO_SEGMENTATION_MASK
        _, _, color, z_buffer, seg = client.getCameraImage(
            self.width,
            self.height,
            viewMatrix=self._view,
            projectionMatrix=self._proj,
            renderer=client.ER_TINY_RENDERER,
            lightDirection=self.light_direction,
            shadow=0,
            flags=flags,
        )
        frame = CameraFrame()
        if rgb:
            frame.rgb = (
                np.asarray(color, dtype=np.uint8)
                .reshape(self.height, self.width, 4)[..., :3]
                .copy()
            )
        if depth:
            z = np.asarray(z_buffer, dtype=np.float32).reshape(self.height, self.width, 1)
            near, far = self.pose.near, self.pose.far
            frame.depth = (far * near / (far - (far - near) * z)).astype(np.float32)
        if segmentation:
            ids = np.asarray(seg, dtype=np.int64).reshape(self.height, self.width, 1)
            frame.segmentation = self._class_lut[np.clip(ids + 1, 0, 255)]
        return frame


def _camera_axes(pose: CameraPose) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    eye, target = np.asarray(pose.eye, float), np.asarray(pose.target, float)
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return forward, right, np.cross(right, forward)


def _focal_px(pose: CameraPose, height: int) -> float:
    # PyBullet's field of view is vertical.
    return (height / 2) / math.tan(math.radians(pose.fov_deg) / 2)


@functools.lru_cache(maxsize=8)
def pixel_rays(pose: CameraPose, width: int, height: int) -> np.ndarray:
    """(H, W, 3) world-frame offsets per metre of depth along the optical axis (read-only).

    A pixel's 3D point is ``eye + depth * ray``; depth is the distance from the camera plane,
    as the env reports it. PyBullet's field of view is vertical. Cached: the pose changes once
    per episode while the object features need the rays every step.
    """
    forward, right, up = _camera_axes(pose)
    focal = _focal_px(pose, height)
    u = (np.arange(width) + 0.5 - width / 2) / focal
    v = (np.arange(height) + 0.5 - height / 2) / focal
    rays = forward + u[None, :, None] * right - v[:, None, None] * up
    rays.setflags(write=False)
    return rays


def project_to_image(pose: CameraPose, width: int, height: int, point: np.ndarray) -> np.ndarray:
    """A world point's image position in normalised coordinates (x, y in [-1, 1] across the
    image, x left to right, y top to bottom); the inverse of :func:`pixel_rays`."""
    forward, right, up = _camera_axes(pose)
    offset = np.asarray(point, float) - np.asarray(pose.eye, float)
    depth = offset @ forward
    focal = _focal_px(pose, height)
    col = (offset @ right) / depth * focal + width / 2  # in pixels from the left edge
    row = -(offset @ up) / depth * focal + height / 2
    return np.array([col / width * 2 - 1, row / height * 2 - 1])


def jitter_cameras(cameras: list[Camera], spec: dict, rng: np.random.Generator) -> float:
    """Give ``cameras`` one pose and light drawn around the scene spec's camera (eye, target,
    then light, in that order from ``rng``) and return the spec's RGB pixel-noise std."""
    rand, cam = spec["randomization"], spec["camera"]
    eye = np.array(cam["eye"]) + rng.uniform(-1, 1, 3) * rand["camera_eye_jitter"]
    target = np.array(cam["target"]) + rng.uniform(-1, 1, 3) * rand["camera_target_jitter"]
    light = rng.uniform(rand["light_direction"]["low"], rand["light_direction"]["high"])
    for camera in cameras:
        camera.set_pose(CameraPose(tuple(eye), tuple(target), cam["fov_deg"]))
        camera.light_direction = light.tolist()
    return float(rand["pixel_noise_std"])
