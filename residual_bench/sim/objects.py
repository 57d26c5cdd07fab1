"""Graspable objects: a catalogue of primitives and of pybullet_data's procedural meshes.

The catalogue splits into a ``train`` set (three primitives and random meshes 000-899) and a
``heldout`` set of novel objects (random meshes 900-999) that training never sees. Every
mesh is normalised at load time so its longest horizontal side matches a sampled size,
which keeps all of them within the Panda gripper's 8 cm stroke.

Each mesh is dropped once onto a table to find the pose it rests in; its statistics
(extents, principal axes) are taken in that pose. This is computed once from the OBJ files by
``python -m residual_bench.sim.objects`` and committed as ``data/object_catalog.json``; a test
recomputes a sample of entries.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pybullet_data
from tqdm import tqdm

from residual_bench.sim.geometry import quat_to_matrix
from residual_bench.sim.pybullet_world import PHYSICS_HZ, PyBulletWorld

OBJECT_SPLITS = ("train", "heldout")
HELDOUT_FIRST_MESH = 900
MESH_RAW_SCALE = 0.015  # the scale every random_urdfs/*.urdf applies to its OBJ
# After normalising the longest horizontal side to the nominal size, these bounds keep
# only objects a parallel gripper can hold and that do not tip over at the slightest touch.
MIN_NARROW_WIDTH = 0.02
MIN_HEIGHT, MAX_HEIGHT = 0.02, 0.07
NOMINAL_SIZE = 0.05


@dataclass(frozen=True)
class ObjectModel:
    """One graspable object type.

    Attributes:
        name: unique id, e.g. ``"cube"`` or ``"mesh_042"``.
        noun: the word an instruction uses for it (``"cube"``, ``"object"``).
        kind: ``"box"``, ``"cylinder"`` or ``"mesh"``.
        extents: (length, width, height) in metres at scale 1, ``length`` along the object's
            principal horizontal axis, ``width`` across it.
        grasp_yaw: angle (rad, object frame) of the narrow horizontal axis: the direction
            the fingers should close along.
        center: the body origin (also the centre of mass) in the object frame at scale 1:
            the centre of the OBJ file's bounding box, which is where the resting pose was
            found; the grasp point.
        urdf: path relative to pybullet_data, for meshes.
        rest_orientation: quaternion from the OBJ file's frame to the object frame, the pose
            the mesh rests in on a table (identity for primitives).
    """

    name: str
    noun: str
    kind: str
    extents: tuple[float, float, float]
    grasp_yaw: float
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    urdf: str | None = None
    rest_orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)

    def scale_for(self, size: float) -> float:
        """The scale that makes the longest horizontal side ``size`` metres."""
        return size / self.extents[0]


PRIMITIVES: tuple[ObjectModel, ...] = (
    ObjectModel("cube", "cube", "box", (1.0, 1.0, 1.0), 0.0),
    ObjectModel("block", "block", "box", (1.0, 0.6, 0.8), math.pi / 2),
    ObjectModel("cylinder", "cylinder", "cylinder", (1.0, 1.0, 1.2), 0.0),
)


def read_obj_vertices(obj_path: Path) -> np.ndarray:
    """The ``v`` lines of a Wavefront OBJ file as an (N, 3) array."""
    vertices = []
    with open(obj_path) as f:
        for line in f:
            if line.startswith("v "):
                vertices.append([float(x) for x in line.split()[1:4]])
    return np.asarray(vertices)


@lru_cache(maxsize=1024)
def mesh_vertices(model: ObjectModel) -> np.ndarray:
    """Vertices of a mesh model in its resting frame, at the URDF's scale (``MESH_RAW_SCALE``)."""
    path = Path(pybullet_data.getDataPath()) / model.urdf.replace(".urdf", ".obj")
    raw = read_obj_vertices(path) * MESH_RAW_SCALE
    return raw @ quat_to_matrix(np.asarray(model.rest_orientation)).T


def rest_orientation(vertices: np.ndarray, settle_seconds: float = 3.0) -> np.ndarray | None:
    """The orientation a convex body of these vertices comes to rest in on a table.

    Dropped once, flat, from just above a plane, in a world of its own. Spawning objects in
    this pose lets episodes start with every object already at rest, instead of rocking.
    Returns ``None`` for a shape that does not stay put when set down in that pose the way
    the environment builds it (some hulls balance on an edge or rock for seconds).
    """
    world = PyBulletWorld()
    try:
        world.create_ground_plane("ground")
        lo, hi = vertices.min(axis=0), vertices.max(axis=0)
        centered = vertices - (lo + hi) / 2
        world.create_hull("drop", centered, 0.1, (0, 0, (hi[2] - lo[2]) / 2 + 1e-4))
        world.step(int(settle_seconds * PHYSICS_HZ))
        orientation = world.body_state("drop").orientation
        world.remove("drop")
        # Rest means the body the environment builds (vertices turned into this pose) stays
        # put when set down, whatever size, mass and friction the randomisation gives it.
        rested = centered @ quat_to_matrix(np.asarray(orientation)).T
        for size in (0.8, 1.1):
            hull = rested * size
            world.create_hull("set_down", hull, 0.1, (0, 0, 1e-4 - hull[:, 2].min()))
            start = world.save_state()
            for mass, friction in ((0.05, 0.7), (0.05, 1.2), (0.25, 0.7), (0.25, 1.2)):
                world.restore_state(start)
                world.set_dynamics("set_down", mass=mass, lateralFriction=friction)
                world.step(PHYSICS_HZ // 2)
                if np.linalg.norm(world.body_state("set_down").linear_velocity) > 0.005:
                    return None
            world.remove("set_down")
        return np.asarray(orientation)
    finally:
        world.close()


def catalog_entry(data_path: str, index: int) -> dict | None:
    """The catalogue entry of ``random_urdfs/<index>``, or ``None`` if it is not graspable.

    The statistics are taken in the mesh's resting pose: extents and grasp direction are
    those of the object as it lies on the table.
    """
    rel = f"random_urdfs/{index:03d}/{index:03d}.urdf"
    raw = read_obj_vertices(Path(data_path) / rel.replace(".urdf", ".obj")) * MESH_RAW_SCALE
    # The resting pose does not depend on size: simulate at the nominal size.
    extent = raw.max(axis=0) - raw.min(axis=0)
    scale = NOMINAL_SIZE / max(extent[0], extent[1])
    orientation = rest_orientation(raw * scale)
    if orientation is None:
        return None
    rotation = quat_to_matrix(orientation)
    rested = raw @ rotation.T
    stats = mesh_statistics(rested)
    # The body origin (and centre of mass) must be the point it was when the resting pose
    # was found, the centre of the file's own bounding box, or the pose is not a rest.
    raw_center = (raw.min(axis=0) + raw.max(axis=0)) / 2
    stats["center"] = [float(c) for c in rotation @ raw_center]
    length, narrow, height = stats["extents"]
    scale = NOMINAL_SIZE / length
    if narrow * scale < MIN_NARROW_WIDTH or not MIN_HEIGHT <= height * scale <= MAX_HEIGHT:
        return None
    return {
        "name": f"mesh_{index:03d}",
        "urdf": rel,
        "rest_orientation": [round(float(q), 6) for q in orientation],
        **stats,
    }


def mesh_statistics(v: np.ndarray) -> dict:
    """Extents, principal horizontal axis and bounding-box centre of a vertex cloud."""
    xy = v[:, :2] - v[:, :2].mean(axis=0)
    # eigh sorts eigenvalues ascending: column 0 is the narrow axis, column 1 the long one.
    _, axes = np.linalg.eigh(np.cov(xy.T))
    proj = xy @ axes
    narrow, long = proj.max(axis=0) - proj.min(axis=0)
    lo, hi = v.min(axis=0), v.max(axis=0)
    return {
        "extents": [float(long), float(narrow), float(hi[2] - lo[2])],
        "grasp_yaw": float(math.atan2(axes[1, 0], axes[0, 0])),
        "center": [float(c) for c in (lo + hi) / 2],
    }


def build_catalog(data_path: str) -> list[dict]:
    """Scan pybullet_data's random_urdfs and keep the graspable ones (about a minute)."""
    entries = (catalog_entry(data_path, i) for i in tqdm(range(1000), desc="meshes"))
    return [e for e in entries if e is not None]


@lru_cache(maxsize=1)
def _mesh_models() -> tuple[ObjectModel, ...]:
    text = resources.files("residual_bench").joinpath("data/object_catalog.json").read_text()
    return tuple(
        ObjectModel(
            name=e["name"],
            noun="object",
            kind="mesh",
            extents=tuple(e["extents"]),
            grasp_yaw=e["grasp_yaw"],
            center=tuple(e["center"]),
            urdf=e["urdf"],
            rest_orientation=tuple(e["rest_orientation"]),
        )
        for e in json.loads(text)
    )


def objects_in_split(split: str) -> tuple[ObjectModel, ...]:
    """All object models of a split: ``"train"`` or ``"heldout"``."""
    if split not in OBJECT_SPLITS:
        raise ValueError(f"unknown object split {split!r}; expected one of {OBJECT_SPLITS}")
    meshes = _mesh_models()
    if split == "train":
        return PRIMITIVES + tuple(m for m in meshes if int(m.name[5:]) < HELDOUT_FIRST_MESH)
    return tuple(m for m in meshes if int(m.name[5:]) >= HELDOUT_FIRST_MESH)


def main() -> None:
    """Rebuild ``data/object_catalog.json`` from the installed pybullet_data."""
    out = Path(__file__).resolve().parent.parent / "data" / "object_catalog.json"
    entries = build_catalog(pybullet_data.getDataPath())
    out.write_text(json.dumps(entries, indent=1) + "\n")
    print(f"wrote {len(entries)} graspable meshes to {out}")


if __name__ == "__main__":
    main()
