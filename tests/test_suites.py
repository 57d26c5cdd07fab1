"""Perturbation suites: the shipped YAML files, and what a malformed suite is told.

A suite is given to ``gym.make(..., suite=...)`` by shipped name, by YAML path or as a dict.
Every suite problem is found when the environment is built, as a
:class:`~residual_bench.env_spec.SpecError` that names the field (and the file, for files);
an unknown name is a ``ValueError`` that lists the shipped suites.
"""

import re

import gymnasium as gym
import pytest
import yaml

import residual_bench.perturb.suite as suite_module
from residual_bench.cli import main
from residual_bench.env_spec import SpecError
from residual_bench.perturb import PERTURBATIONS, load_suite, suite_names

ENV_ID = "ResidualPickPlace-v1"
KINDS = ("poke", "slide", "drop", "latency", "mixed")


def one_entry(**entry) -> dict:
    """A suite dict with the single perturbation entry ``entry``."""
    return {"name": "test", "perturbations": [entry]}


# -- the shipped suites ------------------------------------------------------------------


def test_every_kind_has_a_normal_and_a_hard_suite_and_there_is_a_nominal_one():
    names = suite_names()
    assert "nominal" in names
    for kind in KINDS:
        assert kind in names
        assert f"{kind}-hard" in names


@pytest.mark.parametrize("name", suite_names())
def test_every_shipped_suite_loads_under_its_own_name_with_a_description(name):
    suite = load_suite(name)
    assert suite.name == name
    assert suite.description.strip()
    for entry in suite.entries:
        assert entry.type in PERTURBATIONS


def test_nominal_suite_has_no_perturbations_and_is_the_default():
    assert load_suite("nominal").entries == ()
    assert load_suite(None).name == "nominal"
    assert load_suite(None).entries == ()


@pytest.mark.parametrize("kind", ["poke", "slide", "drop", "latency"])
def test_single_kind_suites_only_contain_their_kind(kind):
    for name in (kind, f"{kind}-hard"):
        types = {entry.type for entry in load_suite(name).entries}
        assert types == {kind}, name


def test_mixed_suites_contain_every_kind():
    for name in ("mixed", "mixed-hard"):
        types = {entry.type for entry in load_suite(name).entries}
        assert types == set(PERTURBATIONS), name


def test_bench_list_shows_every_suite_with_its_description(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in suite_names():
        assert re.search(rf"^\s+{re.escape(name)}\s+\S", out, re.MULTILINE), name
        assert load_suite(name).description in out


# -- three ways to give a suite ----------------------------------------------------------

POKE_DICT = {
    "name": "poke",
    "description": "a push",
    "perturbations": [{"type": "poke", "trigger": {"phase": ["approach", "grasp"]}}],
}


def _suite_of(env):
    return env.unwrapped.suite


def test_suite_by_name_path_and_dict_give_the_same_entries(make_env, tmp_path):
    path = tmp_path / "my_poke.yaml"
    path.write_text(yaml.safe_dump(POKE_DICT))
    by_path = _suite_of(make_env(suite=str(path)))
    by_pathlib = _suite_of(make_env(suite=path))
    by_dict = _suite_of(make_env(suite=POKE_DICT))
    by_name = _suite_of(make_env(suite="poke"))
    assert by_name.name == by_path.name == by_dict.name == "poke"
    assert by_path.entries == by_dict.entries == by_pathlib.entries
    assert [e.type for e in by_name.entries] == ["poke"]


def test_reset_info_reports_the_suite_name(make_env, tmp_path):
    _, info = make_env(suite="slide").reset(seed=0)
    assert info["suite"] == "slide"
    _, info = make_env().reset(seed=0)
    assert info["suite"] == "nominal"
    _, info = make_env(suite={"name": "my-own", "perturbations": []}).reset(seed=0)
    assert info["suite"] == "my-own"


def test_yml_extension_is_accepted(tmp_path):
    path = tmp_path / "s.yml"
    path.write_text(yaml.safe_dump(POKE_DICT))
    assert load_suite(path).entries == load_suite(POKE_DICT).entries


def test_unknown_suite_name_is_a_value_error_listing_the_shipped_suites():
    with pytest.raises(ValueError, match="unknown suite 'pokee'") as err:
        gym.make(ENV_ID, suite="pokee")
    for name in suite_names():
        assert name in str(err.value)


def test_missing_suite_file_is_a_spec_error_naming_the_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(SpecError, match="absent.yaml"):
        gym.make(ENV_ID, suite=str(path))


# -- malformed suites --------------------------------------------------------------------

MALFORMED = {
    "unknown type": (one_entry(type="shove"), r"perturbations\[0\]\.type"),
    "unknown field": (one_entry(type="poke", forse=[1.0, 2.0]), r"perturbations\[0\]\.forse"),
    "field of another kind": (one_entry(type="poke", mode="kick"), r"perturbations\[0\]\.mode"),
    "bad phase": (one_entry(type="poke", trigger={"phase": "lift"}), r"trigger\.phase"),
    "empty phase list": (one_entry(type="poke", trigger={"phase": []}), r"trigger\.phase"),
    "unknown trigger": (one_entry(type="poke", trigger={"when": 1.0}), r"\.trigger"),
    "two triggers": (
        one_entry(type="poke", trigger={"phase": "grasp", "time": [1.0, 2.0]}),
        r"\.trigger",
    ),
    "low above high": (one_entry(type="poke", speed=[0.6, 0.3]), r"perturbations\[0\]\.speed"),
    "time window low above high": (
        one_entry(type="poke", trigger={"time": [2.0, 1.0]}),
        r"trigger\.time",
    ),
    "negative delay": (one_entry(type="poke", delay=-0.1), r"perturbations\[0\]\.delay"),
    "negative range": (one_entry(type="slide", distance=[-0.05, 0.05]), r"\.distance"),
    "negative gap": (one_entry(type="poke", gap=-1.0), r"perturbations\[0\]\.gap"),
    "fractional count": (one_entry(type="poke", count=[1.5, 2]), r"perturbations\[0\]\.count"),
    "string count": (one_entry(type="poke", count="two"), r"perturbations\[0\]\.count"),
    "probability above one": (one_entry(type="poke", probability=1.5), r"\.probability"),
    "negative probability": (one_entry(type="poke", probability=-0.1), r"\.probability"),
    "slide mode": (one_entry(type="slide", mode="push"), r"perturbations\[0\]\.mode"),
    "drop mode": (one_entry(type="drop", mode="throw"), r"perturbations\[0\]\.mode"),
    "range of three": (one_entry(type="latency", duration=[0.1, 0.2, 0.3]), r"\.duration"),
    "entry not a mapping": ({"name": "t", "perturbations": ["poke"]}, r"perturbations\[0\]"),
    "perturbations not a list": (
        {"name": "t", "perturbations": {"type": "poke"}},
        "perturbations",
    ),
    "unknown top-level field": ({"name": "t", "perturbation": []}, "perturbation"),
    "no name": ({"perturbations": []}, "name"),
}


@pytest.mark.parametrize("raw, field", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_suite_dict_is_a_spec_error_naming_the_field(raw, field):
    with pytest.raises(SpecError, match=field):
        gym.make(ENV_ID, suite=raw)


@pytest.mark.parametrize(
    "raw, field",
    [MALFORMED["unknown field"], MALFORMED["bad phase"], MALFORMED["slide mode"]],
    ids=["unknown field", "bad phase", "slide mode"],
)
def test_malformed_suite_file_is_a_spec_error_naming_file_and_field(tmp_path, raw, field):
    path = tmp_path / "bad_suite.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match=field) as err:
        gym.make(ENV_ID, suite=str(path))
    assert "bad_suite.yaml" in str(err.value)


def test_malformed_yaml_file_is_a_spec_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nperturbations:\n  - type: poke\n    speed: [0.3, 0.6\n")
    with pytest.raises(SpecError, match="broken.yaml") as err:
        gym.make(ENV_ID, suite=str(path))
    assert "YAML" in str(err.value)


def test_yaml_file_that_is_not_a_mapping_is_a_spec_error(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- type: poke\n")
    with pytest.raises(SpecError, match="list.yaml"):
        gym.make(ENV_ID, suite=str(path))


def test_valid_edge_values_are_accepted():
    suite = load_suite(
        {
            "name": "edges",
            "perturbations": [
                {"type": "poke", "probability": 0, "count": 0, "delay": 0},
                {"type": "latency", "probability": 1, "trigger": {"time": 2.0}, "gap": 0},
                {"type": "slide", "mode": "kick", "trigger": {"phase": "done"}},
                {"type": "drop", "mode": "from_height", "trigger": {"phase": ["grasp"]}},
            ],
        }
    )
    poke, latency, slide, drop = suite.entries
    assert poke.count == (0, 0) and poke.probability == 0.0
    assert latency.time == (2.0, 2.0) and latency.phases is None
    assert slide.phases == ("done",) and slide.params["mode"] == "kick"
    assert drop.phases == ("grasp",) and drop.params["mode"] == "from_height"


def test_fields_left_out_keep_the_defaults_of_their_kind():
    (entry,) = load_suite(one_entry(type="drop")).entries
    for key, default in PERTURBATIONS["drop"].fields.items():
        assert entry.params[key] == default, key


@pytest.mark.parametrize("field", ["probability", "gap"])
def test_boolean_where_a_number_is_expected_is_refused(field):
    with pytest.raises(SpecError, match=field):
        load_suite(one_entry(type="poke", **{field: True}))


def test_the_documented_example_suite_is_valid():
    example = suite_module.__doc__.split("::", 1)[1].split("\n\n", 2)[1]
    suite = load_suite(yaml.safe_load(example))  # raises SpecError if the example is invalid
    assert suite.name == "poke"
    assert [e.type for e in suite.entries] == ["poke"]
    assert suite.entries[0].phases == ("approach", "grasp")
