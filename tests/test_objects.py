"""The object catalogue and its train / held-out split.

Held-out objects (random meshes 900-999) must never appear in training episodes, and the
committed ``data/object_catalog.json`` must be what ``python -m residual_bench.sim.objects``
computes from the installed pybullet_data.
"""

import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pybullet_data
import pytest

from residual_bench.env_spec import load_env_spec
from residual_bench.sim.objects import (
    HELDOUT_FIRST_MESH,
    MAX_HEIGHT,
    MIN_HEIGHT,
    MIN_NARROW_WIDTH,
    NOMINAL_SIZE,
    PRIMITIVES,
    build_catalog,
    catalog_entry,
    mesh_statistics,
    objects_in_split,
)

LARGEST_SIZE = load_env_spec()["task"]["object_size"][1]
CATALOG = json.loads(
    resources.files("residual_bench").joinpath("data/object_catalog.json").read_text()
)


def mesh_number(name: str) -> int:
    assert name.startswith("mesh_"), name
    return int(name.removeprefix("mesh_"))


def names(split: str) -> set[str]:
    return {model.name for model in objects_in_split(split)}


def test_splits_are_non_empty_and_disjoint():
    train, heldout = names("train"), names("heldout")
    assert train and heldout
    assert not train & heldout


def test_heldout_split_holds_only_meshes_900_to_999():
    assert HELDOUT_FIRST_MESH == 900
    for model in objects_in_split("heldout"):
        assert model.kind == "mesh"
        assert 900 <= mesh_number(model.name) <= 999


def test_train_split_holds_the_primitives_and_only_meshes_below_900():
    train = objects_in_split("train")
    assert {p.name for p in PRIMITIVES} <= {m.name for m in train}
    for model in train:
        if model.kind == "mesh":
            assert mesh_number(model.name) < 900


def test_splits_together_are_the_primitives_and_the_whole_catalogue():
    catalogue = {entry["name"] for entry in CATALOG}
    assert names("train") | names("heldout") == catalogue | {p.name for p in PRIMITIVES}


def test_heldout_split_has_enough_objects_for_a_full_scene():
    assert len(objects_in_split("heldout")) >= 3


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="test"):
        objects_in_split("test")


def test_catalogue_entries_are_unique_and_point_at_their_own_mesh():
    assert len({entry["name"] for entry in CATALOG}) == len(CATALOG)
    for entry in CATALOG:
        n = mesh_number(entry["name"])
        assert entry["urdf"] == f"random_urdfs/{n:03d}/{n:03d}.urdf"
        assert (Path(pybullet_data.getDataPath()) / entry["urdf"]).is_file()


SAMPLED = sorted({0, 1, len(CATALOG) // 3, len(CATALOG) // 2, len(CATALOG) - 1})


@pytest.mark.parametrize("index", SAMPLED)
def test_committed_entries_match_a_recomputation_from_pybullet_data(index):
    entry = CATALOG[index]
    recomputed = catalog_entry(pybullet_data.getDataPath(), mesh_number(entry["name"]))
    assert recomputed is not None
    np.testing.assert_allclose(recomputed["extents"], entry["extents"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(recomputed["center"], entry["center"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(recomputed["rest_orientation"], entry["rest_orientation"])
    # A principal axis has no sign: the grasp direction is only defined modulo pi.
    diff = (recomputed["grasp_yaw"] - entry["grasp_yaw"]) % math.pi
    assert min(diff, math.pi - diff) < 1e-6


def test_a_mesh_left_out_of_the_catalogue_is_refused_on_recomputation():
    listed = {mesh_number(e["name"]) for e in CATALOG}
    left_out = next(i for i in range(1000) if i not in listed)
    assert catalog_entry(pybullet_data.getDataPath(), left_out) is None


def test_mesh_statistics_measure_a_known_box():
    corners = np.array([[x, y, z] for x in (0, 0.04) for y in (0, 0.02) for z in (0, 0.03)])
    stats = mesh_statistics(corners)
    np.testing.assert_allclose(stats["extents"], [0.04, 0.02, 0.03], atol=1e-12)
    np.testing.assert_allclose(stats["center"], [0.02, 0.01, 0.015], atol=1e-12)
    # The narrow side runs along y: the fingers close along +-90 degrees.
    assert abs(abs(stats["grasp_yaw"]) - math.pi / 2) < 1e-9


@pytest.mark.slow
def test_catalogue_is_exactly_the_graspable_meshes_of_pybullet_data():
    rebuilt = build_catalog(pybullet_data.getDataPath())
    assert rebuilt == CATALOG


def test_every_catalogue_mesh_fits_the_gripper_at_the_nominal_size():
    for entry in CATALOG:
        length, narrow, height = entry["extents"]
        scale = NOMINAL_SIZE / length
        assert narrow * scale >= MIN_NARROW_WIDTH
        assert MIN_HEIGHT <= height * scale <= MAX_HEIGHT
        # Even at the largest sampled size the fingers (8 cm stroke) close around it.
        assert narrow * scale * LARGEST_SIZE / NOMINAL_SIZE < 0.08


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_episodes_only_contain_objects_of_their_split(make_env, split):
    env = make_env(objects=split)
    allowed = names(split)
    seen = set()
    for seed in range(10):
        _, info = env.reset(seed=seed)
        assert set(info["objects"]) <= allowed, f"seed {seed}: {info['objects']}"
        seen.update(info["objects"])
        # info["objects"] names what is really in the scene, target first.
        scene = [obj.model.name for obj in env.unwrapped.task.objects]
        assert info["objects"] == scene
    assert len(seen) > 5, "episodes should draw from the whole split"


def test_objects_in_one_scene_are_different_models(make_env):
    env = make_env(objects="heldout", scene_overrides={"task": {"n_objects": [3, 3]}})
    for seed in range(6):
        _, info = env.reset(seed=seed)
        assert len(set(info["objects"])) == 3


def test_objects_start_on_the_table_top(make_env):
    env = make_env(scene_overrides={"task": {"n_objects": [3, 3]}})
    sim = env.unwrapped
    for seed in range(6):
        env.reset(seed=seed)
        for obj, state in zip(sim.task.objects, sim.object_states, strict=True):
            largest = max(obj.model.extents) * obj.scale
            assert 0.0 < state.center[2] < largest, (seed, obj.model.name)


def test_objects_are_at_rest_when_an_episode_starts(env):
    # Seeds where a mesh was still rocking after the one-second settle.
    for seed in (28, 65, 93, 101, 130, 163, 177, 190):
        env.reset(seed=seed)
        sim = env.unwrapped
        for obj, state in zip(sim.task.objects, sim.object_states, strict=True):
            speed = float(np.linalg.norm(state.linear_velocity))
            # The task itself counts an object below 5 cm/s as resting.
            assert speed < 0.05, f"seed {seed}: {obj.model.name} moves at {speed:.3f} m/s"
