"""The scene pieces every task shares: the table, catalogue objects on it, their colours.

Besides creating the body, :func:`create_scene_object` returns the body-frame vertices of
its collision shape: a task that needs the object's extent along a direction (where a
pusher meets it) reads them instead of asking the simulator.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from residual_bench.sim.geometry import quat_from_yaw
from residual_bench.sim.objects import MESH_RAW_SCALE, ObjectModel, mesh_vertices
from residual_bench.sim.pybullet_world import PyBulletWorld
from residual_bench.tasks.task import SceneObject

COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.10),
    "green": (0.15, 0.65, 0.20),
    "blue": (0.12, 0.25, 0.85),
    "yellow": (0.92, 0.82, 0.12),
    "orange": (0.95, 0.50, 0.08),
    "purple": (0.55, 0.18, 0.70),
    "pink": (0.95, 0.45, 0.70),
    "cyan": (0.10, 0.75, 0.80),
}
"""The named colours instructions use; an object's colour is one of them, jittered."""
TABLE_COLOR = (0.72, 0.62, 0.50, 1.0)
TABLE_HALF_EXTENTS = (0.55, 0.6, 0.025)
TABLE_CENTER = (0.35, 0.0, -0.025)  # its top at z = 0, where the ground plane is

CYLINDER_SIDES = 16
"""Corners of the polygon that stands in for a cylinder's outline in the returned vertices."""


def create_table(world: PyBulletWorld) -> None:
    """Create the table every task's scene stands on (segmentation body ``table``)."""
    # The table top collides as a plane; the box is only what the camera sees.
    world.create_ground_plane("table_top")
    world.create_primitive(
        "table", "box", TABLE_HALF_EXTENTS, 0.0, TABLE_CENTER, rgba=TABLE_COLOR, collision=False
    )


def distinct_color_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` different colour names of :data:`COLORS`, drawn from ``rng``."""
    return [list(COLORS)[i] for i in rng.choice(len(COLORS), size=n, replace=False)]


def jittered_rgba(
    rng: np.random.Generator, color_name: str, jitter: float
) -> tuple[float, float, float, float]:
    """The named colour with uniform per-channel ``jitter`` drawn from ``rng``, opaque."""
    rgb = np.clip(np.array(COLORS[color_name]) + rng.uniform(-1, 1, 3) * jitter, 0, 1)
    return (*rgb, 1.0)


def create_scene_object(
    world: PyBulletWorld, obj: SceneObject, xy: np.ndarray, yaw: float, rgba: tuple
) -> np.ndarray:
    """Create ``obj`` standing on the table at ``xy`` turned by ``yaw``; returns the
    (N, 3) body-frame vertices of its collision shape (the body origin is its centre)."""
    model, s = obj.model, obj.scale
    orn = quat_from_yaw(yaw)
    length, width, height = (e * s for e in model.extents)
    if model.kind == "box":
        half = (length / 2, width / 2, height / 2)
        world.create_primitive(obj.body_name, "box", half, 0.1, (*xy, height / 2 + 1e-4), orn, rgba)
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
        return signs * np.array(half)
    if model.kind == "cylinder":
        radius = length / 2
        world.create_primitive(
            obj.body_name, "cylinder", (radius, height), 0.1, (*xy, height / 2 + 1e-4), orn, rgba
        )
        angles = np.linspace(0.0, 2 * math.pi, CYLINDER_SIDES, endpoint=False)
        ring = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
        return np.concatenate(
            [np.c_[ring, np.full(len(ring), z)] for z in (-height / 2, height / 2)]
        )
    # The body frame is the mesh's resting pose with its origin (and so its centre of mass)
    # at the bounding-box centre: it lands at rest and stands the way it looks.
    center = np.array(model.center) * s
    hull = mesh_vertices(model) * s - center
    world.create_mesh(
        obj.body_name,
        hull,
        model.urdf.replace(".urdf", ".obj"),
        MESH_RAW_SCALE * s,
        -center,
        model.rest_orientation,
        0.1,
        (*xy, 1e-4 - hull[:, 2].min()),
        orn,
        rgba,
    )
    return hull


def add_catalogue_object(
    world: PyBulletWorld,
    rng: np.random.Generator,
    model: ObjectModel,
    color_name: str,
    index: int,
    xy: np.ndarray,
    size_range: list[float],
    mass_range: list[float],
    randomization: dict[str, Any],
) -> tuple[SceneObject, np.ndarray]:
    """Draw an object's size, yaw, colour jitter, mass and friction from ``rng`` (in that
    order: every task's episodes depend on it), create it at ``xy`` as body
    ``object_<index>`` and let it sleep once at rest; returns the object and its body-frame
    vertices (see :func:`create_scene_object`)."""
    body_name = f"object_{index}"
    scale = model.scale_for(float(rng.uniform(*size_range)))
    yaw = float(rng.uniform(-math.pi, math.pi))
    rgba = jittered_rgba(rng, color_name, randomization["color_jitter"])
    obj = SceneObject(model, color_name, scale, body_name)
    vertices = create_scene_object(world, obj, xy, yaw, rgba)
    world.set_dynamics(
        body_name,
        mass=float(rng.uniform(*mass_range)),
        lateralFriction=float(rng.uniform(*randomization["object_friction"])),
    )
    world.allow_sleeping(body_name)
    return obj, vertices
