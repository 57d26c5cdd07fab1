"""Scene specs (``envs/pick_place.yaml``): loading, overriding, and refusing bad specs.

A spec may come from the shipped file, a YAML path, a dict, and ``scene_overrides``; every
mistake raises :class:`residual_bench.env_spec.SpecError` naming the field by its dotted
path (and the file, when there is one).
"""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

from residual_bench.env_spec import SpecError, load_env_spec

ENV_ID = "ResidualPickPlace-v1"
REPO_SPEC = Path(__file__).resolve().parents[1] / "envs" / "pick_place.yaml"


def n_objects_seen(env, seeds) -> set[int]:
    counts = set()
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        assert int(obs["object_mask"].sum()) == len(info["objects"])
        counts.add(len(info["objects"]))
    return counts


# -- loading -------------------------------------------------------------------------------


def test_shipped_spec_loads_and_is_the_repository_file():
    assert load_env_spec() == yaml.safe_load(REPO_SPEC.read_text())


@pytest.mark.parametrize("spec", ["pick_place", str(REPO_SPEC)], ids=["name", "path"])
def test_shipped_spec_can_be_named_explicitly(make_env, spec):
    env = make_env(scene_spec=spec)
    assert env.unwrapped.scene_spec == load_env_spec()


def test_env_uses_the_shipped_spec_by_default(env):
    assert env.unwrapped.scene_spec == load_env_spec()
    assert n_objects_seen(env, range(20)) == {1, 2, 3}  # the shipped n_objects: [1, 3]


def test_default_episode_lasts_the_shipped_episode_seconds(make_env):
    env = make_env(control_hz=10)  # 12 s at 10 Hz: 120 steps
    env.reset(seed=0)
    steps = 0
    truncated = False
    while not truncated:
        *_, truncated, info = env.step(np.zeros(7, dtype=np.float32))
        steps += 1
    assert steps == 120
    assert info["time"] == pytest.approx(12.0)


@pytest.mark.parametrize("as_path", [str, Path], ids=["str", "Path"])
def test_yaml_file_path_is_laid_over_the_shipped_spec(make_env, tmp_path, as_path):
    path = tmp_path / "one_object.yaml"
    path.write_text("task:\n  n_objects: [1, 1]\n  episode_seconds: 0.5\n")
    env = make_env(scene_spec=as_path(path))
    assert n_objects_seen(env, range(4)) == {1}
    spec = env.unwrapped.scene_spec
    assert spec["task"]["episode_seconds"] == 0.5
    # Everything the file does not mention keeps its shipped value.
    assert spec["task"]["goal_radius"] == load_env_spec()["task"]["goal_radius"]
    assert spec["randomization"] == load_env_spec()["randomization"]
    env.reset(seed=0)
    results = [env.step(np.zeros(7, dtype=np.float32)) for _ in range(10)]
    assert [r[3] for r in results] == [False] * 9 + [True]


def test_dict_spec_and_overrides_are_laid_over_in_order(make_env):
    env = make_env(
        scene_spec={"task": {"n_objects": [2, 2], "episode_seconds": 3.0}},
        scene_overrides={"task": {"n_objects": [3, 3]}},
    )
    assert n_objects_seen(env, range(3)) == {3}
    assert env.unwrapped.scene_spec["task"]["episode_seconds"] == 3.0


@pytest.mark.parametrize("n", [1, 2, 3])
def test_n_objects_override_sets_the_number_of_objects(make_env, n):
    env = make_env(scene_overrides={"task": {"n_objects": [n, n]}})
    assert n_objects_seen(env, range(5)) == {n}


def test_n_objects_override_gives_exactly_one_segmentation_object(make_env):
    env = make_env(obs_mode="rgb+seg", scene_overrides={"task": {"n_objects": [1, 1]}})
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        ids = set(np.unique(obs["segmentation"]).tolist())
        assert 4 in ids
        assert not ids & {5, 6}


def test_randomization_overrides_set_mass_and_friction_of_every_object(make_env):
    env = make_env(
        scene_overrides={
            "task": {"n_objects": [3, 3]},
            "randomization": {"object_mass": [0.2, 0.2], "object_friction": [0.9, 0.9]},
        }
    )
    env.reset(seed=0)
    sim = env.unwrapped
    for obj in sim.task.objects:
        info = sim.world.client.getDynamicsInfo(sim.world.bodies[obj.body_name], -1)
        assert info[0] == pytest.approx(0.2)  # mass
        assert info[1] == pytest.approx(0.9)  # lateral friction


def test_objects_are_sampled_within_the_shipped_ranges(make_env):
    env = make_env()
    spec = load_env_spec()
    lo, hi = spec["randomization"]["object_mass"]
    f_lo, f_hi = spec["randomization"]["object_friction"]
    size_lo, size_hi = spec["task"]["object_size"]
    sim = env.unwrapped
    for seed in range(6):
        env.reset(seed=seed)
        for obj in sim.task.objects:
            info = sim.world.client.getDynamicsInfo(sim.world.bodies[obj.body_name], -1)
            assert lo <= info[0] <= hi
            assert f_lo <= info[1] <= f_hi
            assert size_lo <= obj.model.extents[0] * obj.scale <= size_hi + 1e-9


def test_plate_and_objects_are_placed_in_their_regions_and_kept_apart(make_env):
    env = make_env(scene_overrides={"task": {"n_objects": [3, 3]}})
    task = load_env_spec()["task"]
    settle_drift = 0.03  # objects rock and shift a little (up to ~2.5 cm) while they settle
    for seed in range(8):
        obs, _ = env.reset(seed=seed)
        goal = obs["goal"][:2]
        assert np.all(goal >= task["goal_region"]["low"])
        assert np.all(goal <= task["goal_region"]["high"])
        centres = [state.center[:2] for state in env.unwrapped.object_states]
        for c in centres:
            assert np.all(c >= np.array(task["object_region"]["low"]) - settle_drift)
            assert np.all(c <= np.array(task["object_region"]["high"]) + settle_drift)
        for i, a in enumerate([goal, *centres]):
            for b in [goal, *centres][i + 1 :]:
                assert np.linalg.norm(a - b) >= task["min_separation"] - settle_drift


def test_overrides_change_the_reported_scene_spec_hash(make_env):
    hashes = {}
    for name, overrides in {
        "default": None,
        "default_again": None,
        "one_object": {"task": {"n_objects": [1, 1]}},
        "heavy": {"randomization": {"object_mass": [0.3, 0.4]}},
    }.items():
        env = make_env(scene_overrides=overrides)
        hashes[name] = env.reset(seed=0)[1]["scene_spec_hash"]
    assert hashes["default"] == hashes["default_again"]
    assert len({hashes["default"], hashes["one_object"], hashes["heavy"]}) == 3


def test_region_overrides_place_the_plate_and_objects_inside_them(make_env):
    goal_region = {"low": [0.40, -0.24], "high": [0.60, -0.10]}
    object_region = {"low": [0.40, 0.10], "high": [0.60, 0.22]}
    env = make_env(
        scene_overrides={
            "task": {
                "n_objects": [1, 1],
                "goal_region": goal_region,
                "object_region": object_region,
            }
        }
    )
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        assert np.all(obs["goal"][:2] >= goal_region["low"])
        assert np.all(obs["goal"][:2] <= goal_region["high"])
        assert env.unwrapped.object_states[0].center[1] > 0.05


def test_overriding_a_region_with_its_shipped_value_is_accepted():
    shipped = load_env_spec()
    region = shipped["task"]["object_region"]
    assert load_env_spec(None, {"task": {"object_region": region}}) == shipped


# -- refusing bad specs ----------------------------------------------------------------------

UNKNOWN_FIELDS = {
    "typo in randomization": (
        {"randomization": {"object_mas": [0.1, 0.2]}},
        "randomization.object_mas",
    ),
    "unknown section": ({"tsk": {"n_objects": [1, 1]}}, "tsk"),
    "unknown region key": ({"task": {"goal_region": {"lo": [0.4, 0.0]}}}, "task.goal_region.lo"),
}
WRONG_TYPES = {
    "string for a number": ({"task": {"episode_seconds": "long"}}, "task.episode_seconds"),
    "number for a section": ({"task": 3}, "task"),
    "short vector": ({"camera": {"eye": [1.0, 0.0]}}, "camera.eye"),
    "list for a number": ({"randomization": {"color_jitter": [0.1, 0.2]}}, "color_jitter"),
    "number for a range": ({"randomization": {"object_mass": 0.1}}, "object_mass"),
    "bool for a number": ({"task": {"goal_radius": True}}, "task.goal_radius"),
    "strings in a range": ({"task": {"object_size": ["a", "b"]}}, "task.object_size"),
    "negative number": ({"task": {"goal_radius": -0.1}}, "task.goal_radius"),
}
INVERTED_RANGES = {
    "object_size": ({"task": {"object_size": [0.06, 0.04]}}, "task.object_size"),
    "object_mass": ({"randomization": {"object_mass": [0.3, 0.1]}}, "object_mass"),
    "light_direction": (
        {"randomization": {"light_direction": {"low": [0.7, 0.0, 0.9]}}},
        "randomization.light_direction",
    ),
}
BAD_N_OBJECTS = {
    "zero": ({"task": {"n_objects": [0, 1]}}, "task.n_objects"),
    "four": ({"task": {"n_objects": [2, 4]}}, "task.n_objects"),
    "fraction": ({"task": {"n_objects": [1.5, 2]}}, "task.n_objects"),
    "inverted": ({"task": {"n_objects": [3, 1]}}, "task.n_objects"),
}
# Checked on the merged spec each layer produces (not expressible as structure).
CHECKED_AFTER_MERGING = {
    "n_objects zero": {"task": {"n_objects": [0, 1]}},
    "n_objects four": {"task": {"n_objects": [2, 4]}},
    "n_objects fraction": {"task": {"n_objects": [1.5, 2]}},
    "version": {"version": 1},
}
BAD_SPECS = {
    **{f"unknown field: {k}": v for k, v in UNKNOWN_FIELDS.items()},
    **{f"wrong type: {k}": v for k, v in WRONG_TYPES.items()},
    **{f"low > high: {k}": v for k, v in INVERTED_RANGES.items()},
    **{f"n_objects: {k}": v for k, v in BAD_N_OBJECTS.items()},
    "version": ({"version": 1}, "version"),
}


@pytest.mark.parametrize("overrides, field", BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_bad_override_raises_spec_error_naming_the_field(overrides, field):
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        gym.make(ENV_ID, scene_overrides=overrides)


@pytest.mark.parametrize("overrides, field", BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_bad_spec_file_raises_spec_error_naming_the_file_and_the_field(tmp_path, overrides, field):
    path = tmp_path / "bad_spec.yaml"
    path.write_text(yaml.safe_dump(overrides))
    with pytest.raises(SpecError, match=field.replace(".", r"\.")) as excinfo:
        gym.make(ENV_ID, scene_spec=str(path))
    assert "bad_spec.yaml" in str(excinfo.value)


@pytest.mark.parametrize(
    "overrides", CHECKED_AFTER_MERGING.values(), ids=CHECKED_AFTER_MERGING.keys()
)
def test_out_of_bounds_value_in_a_file_raises_spec_error_naming_the_file(tmp_path, overrides):
    path = tmp_path / "bad_spec.yaml"
    path.write_text(yaml.safe_dump(overrides))
    with pytest.raises(SpecError, match="bad_spec.yaml"):
        gym.make(ENV_ID, scene_spec=str(path))


def test_unknown_field_error_lists_the_valid_fields():
    with pytest.raises(SpecError) as excinfo:
        load_env_spec(None, {"randomization": {"object_mas": [0.1, 0.2]}})
    assert "object_mass" in str(excinfo.value).split("object_mas:", 1)[1]


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


@pytest.mark.parametrize(
    "text",
    ["task: [1, 2\n", "task:\n  n_objects: [1, 1]\n   bad_indent: 2\n", "- just\n- a list\n"],
    ids=["unclosed bracket", "bad indentation", "not a mapping"],
)
def test_malformed_yaml_raises_spec_error_naming_the_file(tmp_path, text):
    path = tmp_path / "malformed.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="malformed.yaml"):
        gym.make(ENV_ID, scene_spec=str(path))


def test_nonexistent_spec_path_raises_a_clear_error(tmp_path):
    missing = tmp_path / "no_such_spec.yaml"
    with pytest.raises(SpecError, match=r"no_such_spec\.yaml.*does not exist"):
        gym.make(ENV_ID, scene_spec=str(missing))


def test_unknown_shipped_spec_name_raises_a_clear_error():
    with pytest.raises(SpecError, match=r"no_such_spec.*does not exist"):
        gym.make(ENV_ID, scene_spec="no_such_spec")


def test_range_override_is_checked_against_the_spec_it_is_laid_over():
    file_spec = {
        "randomization": {"light_direction": {"low": [-1, -1, 0.2], "high": [-0.8, -0.8, 0.4]}}
    }
    override = {"randomization": {"light_direction": {"high": [-0.9, -0.9, 0.3]}}}
    spec = load_env_spec(file_spec, override)
    assert spec["randomization"]["light_direction"] == {
        "low": [-1, -1, 0.2],
        "high": [-0.9, -0.9, 0.3],
    }


def test_range_inverted_by_an_override_of_a_file_is_refused():
    file_spec = {
        "randomization": {"light_direction": {"low": [0, 0, 0.5], "high": [0.1, 0.1, 0.6]}}
    }
    override = {"randomization": {"light_direction": {"low": [0.2, 0.2, 0.55]}}}
    with pytest.raises(SpecError, match=r"randomization\.light_direction"):
        load_env_spec(file_spec, override)
