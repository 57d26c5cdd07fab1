"""Graspable objects: a catalogue of primitives and of pybullet_data's procedural meshes.

The catalogue splits into a ``train`` set (three primitives and random meshes 000-899) and a
``heldout`` set of novel objects (random meshes 900-999) that training never sees. Every
mesh is normalised at load time so its longest horizontal side matches a sampled size,
which keeps all of them within the Panda gripper's 8 cm stroke.

The mesh statistics (extents, principal axes) are computed once from the OBJ files by
``python -m residual_bench.sim.objects`` and committed as ``data/object_catalog.json``;
a test recomputes a sample of them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

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
        center: centre of the bounding box in the object frame at scale 1.
        urdf: path relative to pybullet_data, for meshes.
    """

    name: str
    noun: str
    kind: str
    extents: tuple[float, float, float]
    grasp_yaw: float
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    urdf: str | None = None

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
    """Vertices of a mesh model at the URDF's own scale (``MESH_RAW_SCALE``)."""
    import pybullet_data

    path = Path(pybullet_data.getDataPath()) / model.urdf.replace(".urdf", ".obj")
    return read_obj_vertices(path) * MESH_RAW_SCALE


def mesh_statistics(obj_path: Path) -> dict:
    """Extents, principal horizontal axis and bounding-box centre of one OBJ file."""
    v = read_obj_vertices(obj_path) * MESH_RAW_SCALE
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
    """Scan pybullet_data's random_urdfs and keep the graspable ones."""
    entries = []
    for index in range(1000):
        rel = f"random_urdfs/{index:03d}/{index:03d}.urdf"
        stats = mesh_statistics(Path(data_path) / rel.replace(".urdf", ".obj"))
        length, narrow, height = stats["extents"]
        scale = NOMINAL_SIZE / length
        if narrow * scale < MIN_NARROW_WIDTH or not MIN_HEIGHT <= height * scale <= MAX_HEIGHT:
            continue
        entries.append({"name": f"mesh_{index:03d}", "urdf": rel, **stats})
    return entries


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
    import pybullet_data

    out = Path(__file__).resolve().parent.parent / "data" / "object_catalog.json"
    entries = build_catalog(pybullet_data.getDataPath())
    out.write_text(json.dumps(entries, indent=1) + "\n")
    print(f"wrote {len(entries)} graspable meshes to {out}")


if __name__ == "__main__":
    main()
