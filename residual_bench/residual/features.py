"""What a residual sees besides proprioception and the base's action (``--features``).

- ``objects`` (default): the instructed object and where it must go (the plate; on other
  tasks the support, the fixture or the goal circle: the task's ``goal_class``), found in the
  camera's segmentation mask and lifted to 3D with the depth image and the camera's calibration:
  centroid relative to the gripper, extent, how much of it is visible, and the object's
  offset from the plate. This is what a real robot has (a segmenter and a depth camera); it
  never reads simulator state. Training adds pose noise and drops the detection now and then,
  as a real segmenter would.
- ``oriented-objects``: ``objects``, plus the target's narrow horizontal axis (the principal
  axes of its segmented points on the table plane) relative to the fingers' closing
  direction. The scripted base's grasp-direction error is invisible in ``objects``, so a
  residual seeing only those cannot know which way to turn the hand; this is the same camera
  and the same mask, read for orientation too.
- ``privileged``: the simulator's object and plate poses and velocities (an upper bound,
  clearly labelled as such in results).
- ``global``: the whole camera image, no masks, downsampled to ``GLOBAL_IMAGE_SIZE`` pixels;
  the agent learns its own CNN on it (the ablation "no object-centric pathway"). Not the full
  84 px: SB3's CNN on 84 px images trains at under 2 environment steps a second on one core
  (a 300k-step run would take days) and its replay buffer would hold 13 GB of images.
- ``proprio``: no object information at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from residual_bench.sim.camera import CameraPose, pixel_rays

FEATURE_MODES = ("objects", "oriented-objects", "privileged", "global", "proprio")
#: The modes that read the segmentation mask and the depth image.
MASK_FEATURE_MODES = ("objects", "oriented-objects")
TARGET_ID, PLATE_ID = 4, 3  # pick-and-place's segmentation ids (segment_ids gives any task's)
FEATURE_DIMS = {"objects": 15, "oriented-objects": 18, "privileged": 12, "global": 0, "proprio": 0}
#: Feature units. Positions come in units of 5 cm and velocities of 0.5 m/s, so the inputs
#: the residual's networks see are of order one: in metres, the centimetre offsets a grasp
#: correction depends on are too small next to the joint angles for the critic to resolve.
POSITION_UNIT_M = 0.05
VELOCITY_UNIT_M_S = 0.5
#: Side of the square image ``global`` features show the agent.
GLOBAL_IMAGE_SIZE = 42
#: The parts of ``objects``, which ``oriented-objects`` extends.
_OBJECT_PARTS = (
    ("target_from_gripper", 3),
    ("target_extent", 3),
    ("target_visible_percent", 1),
    ("target_seen", 1),
    ("plate_from_gripper", 3),
    ("plate_seen", 1),
    ("target_from_plate", 3),
)
#: Named parts of each feature vector, in order (sizes sum to ``FEATURE_DIMS``).
FEATURE_PARTS = {
    "objects": _OBJECT_PARTS,
    "oriented-objects": (
        *_OBJECT_PARTS,
        ("target_axis_from_fingers", 2),
        ("target_elongation", 1),
    ),
    "privileged": (
        ("target_from_gripper", 3),
        ("target_velocity", 3),
        ("plate_from_gripper", 3),
        ("target_from_plate", 3),
    ),
    "global": (),
    "proprio": (),
}
#: The env's observation mode each feature mode needs.
OBS_MODE_FOR = {"objects": "rgbd+seg", "oriented-objects": "rgbd+seg", "global": "rgb"}


def check_features(features: str) -> str:
    """Return ``features`` if it is a known mode, else raise a ValueError naming the choices."""
    if features not in FEATURE_MODES:
        raise ValueError(
            f"unknown features {features!r}; valid choices: {', '.join(FEATURE_MODES)}"
        )
    return features


@dataclass
class ObjectFeatureNoise:
    """Training-time corruption of the ``objects`` features (zero at evaluation).

    Attributes:
        position_std_m: Gaussian noise on each centroid, metres.
        dropout: probability per step that the target's detection is lost (features zeroed,
            visibility 0), as when a segmenter misses the object.
    """

    position_std_m: float = 0.005
    dropout: float = 0.05


def global_image(rgb: np.ndarray, size: int = GLOBAL_IMAGE_SIZE) -> np.ndarray:
    """The camera image at ``size`` x ``size`` pixels (uint8): block means when the side is a
    multiple of ``size``, the nearest pixels otherwise."""
    rgb = np.asarray(rgb)
    side = rgb.shape[0]
    if rgb.ndim != 3 or rgb.shape[1] != side or side < size:
        raise ValueError(
            f"global features need a square image of at least {size} px, got {rgb.shape}"
        )
    if side % size == 0:
        f = side // size
        blocks = rgb.reshape(size, f, size, f, rgb.shape[2]).astype(np.float32)
        return np.round(blocks.mean(axis=(1, 3))).astype(np.uint8)
    index = (np.arange(size) * side) // size
    return np.ascontiguousarray(rgb[index][:, index]).astype(np.uint8)


def _mask_points(points: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Centroid, extent (std per axis) and visible fraction of the masked 3D points."""
    selected = points[mask]
    if len(selected) == 0:
        return np.zeros(3), np.zeros(3), 0.0
    return selected.mean(0), selected.std(0), len(selected) / mask.size


def _scene_points(obs: dict[str, np.ndarray], pose: CameraPose) -> np.ndarray:
    """Each pixel's 3D point (world frame, m), from the depth image and the calibration."""
    depth = obs["depth"][..., 0]
    h, w = depth.shape
    return pose.eye + depth[..., None] * pixel_rays(pose, w, h)


def finger_closing_yaw(tcp_orientation: np.ndarray) -> float:
    """World yaw (rad) of the direction the fingers close along, from the grasp point's
    quaternion (x, y, z, w): the hand frame's y axis, projected on the table."""
    x, y, z, w = (float(q) for q in tcp_orientation)
    # The rotation matrix's second column: the hand's y axis in the world frame.
    axis_x = 2.0 * (x * y - w * z)
    axis_y = 1.0 - 2.0 * (x * x + z * z)
    return math.atan2(axis_y, axis_x)


def target_axis_features(points: np.ndarray, mask: np.ndarray, closing_yaw: float) -> np.ndarray:
    """The target's narrow horizontal axis relative to the fingers' closing direction.

    The narrow axis is the minor principal axis of the masked points' table-plane (x, y)
    coordinates, as the object catalogue defines each object's grasp direction from its
    mesh. A parallel gripper closing along +a or -a makes the same grasp, so the angle d
    between the two axes is given as (sin 2d, cos 2d), each times the footprint's
    elongation e = (l1 - l2) / (l1 + l2) of the principal variances: a round footprint has
    no narrow axis, and its direction reads as (0, 0). Layout: e sin 2d, e cos 2d, e; all
    zero when fewer than three points are seen.
    """
    xy = points[mask][:, :2]
    if len(xy) < 3:
        return np.zeros(3)
    narrow_var, long_var, narrow = _principal_axes(xy)
    total = narrow_var + long_var
    elongation = (long_var - narrow_var) / total if total > 0 else 0.0
    d = math.atan2(narrow[1], narrow[0]) - closing_yaw
    return np.array([elongation * math.sin(2 * d), elongation * math.cos(2 * d), elongation])


def _principal_axes(xy: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Smaller and larger variance of 2D points, and the unit axis of the smaller."""
    variances, axes = np.linalg.eigh(np.cov(xy.T))  # ascending
    return float(variances[0]), float(variances[1]), axes[:, 0]


def segment_ids(classes: tuple[str, ...], goal_class: str | None) -> tuple[int, int | None]:
    """The segmentation ids of the target and of the goal body (``None`` for a task without
    one) among a task's ``classes``.

    Raises:
        ValueError: ``classes`` lacks ``"target"`` or ``goal_class``.
    """
    missing = [name for name in ("target", goal_class) if name is not None and name not in classes]
    if missing:
        raise ValueError(
            f"segmentation classes {classes} have no {missing}: the objects features need "
            "the target and the goal body"
        )
    return classes.index("target"), None if goal_class is None else classes.index(goal_class)


def object_features(
    obs: dict[str, np.ndarray],
    pose: CameraPose,
    noise: ObjectFeatureNoise | None = None,
    rng: np.random.Generator | None = None,
    oriented: bool = False,
    ids: tuple[int, int | None] = (TARGET_ID, PLATE_ID),
) -> np.ndarray:
    """The 15-D ``objects`` features from an ``rgbd+seg`` observation, or with ``oriented``
    the 18-D ``oriented-objects`` ones.

    Layout: target centroid - gripper (3), target extent (3), target visible fraction x 100
    (1), target seen (1), plate centroid - gripper (3), plate seen (1), target - plate (3);
    positions and extents in units of ``POSITION_UNIT_M``. ``oriented`` appends
    :func:`target_axis_features` (3), zero while the detection is dropped. ``ids`` are the
    target's and the goal body's segmentation ids (:func:`segment_ids`; pick-and-place's by
    default), "plate" above meaning the goal body.
    """
    seg = obs["segmentation"][..., 0]
    points = _scene_points(obs, pose)
    tcp = np.asarray(obs["proprio"][9:12], dtype=float)
    target_mask = seg == ids[0]
    target, extent, fraction = _mask_points(points, target_mask)
    goal_mask = seg == ids[1] if ids[1] is not None else np.zeros_like(target_mask)
    plate, _, plate_fraction = _mask_points(points, goal_mask)
    seen, plate_seen = float(fraction > 0), float(plate_fraction > 0)
    if noise is not None and rng is not None:
        target = target + rng.normal(0.0, noise.position_std_m, 3) * seen
        plate = plate + rng.normal(0.0, noise.position_std_m, 3) * plate_seen
        if rng.random() < noise.dropout:
            target, extent, fraction, seen = np.zeros(3), np.zeros(3), 0.0, 0.0
    to_target = (target - tcp) * seen
    to_plate = (plate - tcp) * plate_seen
    unit = POSITION_UNIT_M
    parts = [
        to_target / unit,
        extent / unit,
        [fraction * 100.0, seen],
        to_plate / unit,
        [plate_seen],
        (target - plate) * seen * plate_seen / unit,
    ]
    if oriented:
        closing_yaw = finger_closing_yaw(np.asarray(obs["proprio"][12:16]))
        parts.append(target_axis_features(points, target_mask, closing_yaw) * seen)
    return np.concatenate(parts).astype(np.float32)


def privileged_features(sim) -> np.ndarray:
    """The 12-D ``privileged`` features from the simulator's state (an upper bound).

    Layout: target - gripper (3), target velocity (3), plate - gripper (3), target - plate (3);
    positions in units of ``POSITION_UNIT_M``, the velocity in units of ``VELOCITY_UNIT_M_S``.
    """
    state = sim.object_states[0]  # the target is always first
    tcp = sim.robot.tcp_state()[0]
    goal = sim.task.goal
    return np.concatenate(
        [
            (state.center - tcp) / POSITION_UNIT_M,
            np.asarray(state.linear_velocity) / VELOCITY_UNIT_M_S,
            (goal - tcp) / POSITION_UNIT_M,
            (state.center - goal) / POSITION_UNIT_M,
        ]
    ).astype(np.float32)
