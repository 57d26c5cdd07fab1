"""Creating a catalogue object on the table, shared by the tasks that place them.

Besides creating the body, :func:`create_scene_object` returns the body-frame vertices of
its collision shape: a task that needs the object's extent along a direction (where a
pusher meets it) reads them instead of asking the simulator.
"""

from __future__ import annotations

import math

import numpy as np

from residual_bench.sim.geometry import quat_from_yaw
from residual_bench.sim.objects import MESH_RAW_SCALE, mesh_vertices
from residual_bench.sim.pybullet_world import PyBulletWorld
from residual_bench.tasks.task import SceneObject

CYLINDER_SIDES = 16
"""Corners of the polygon that stands in for a cylinder's outline in the returned vertices."""


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
