"""Perturbation suites: the shipped YAML files, and what a malformed suite is told.

A suite is given to ``gym.make(..., suite=...)`` by shipped name, by YAML path or as a dict.
Every suite problem is found when the environment is built, as a
:class:`~residual_bench.env_spec.SpecError` that names the field (and the file, for files);
an unknown name is a ``ValueError`` that lists the shipped suites.

Every suite is filed under a split: ``train`` (residual training may see it) or ``heldout``.
Each held-out suite names the feature that makes it held out, and no training suite has it.
"""

import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import pytest
import yaml

import residual_bench.perturb.suite as suite_module
from residual_bench.cli import main
from residual_bench.env_spec import SpecError, read_yaml, spec_dir, spec_hash
from residual_bench.leaderboard.submission import suite_spec_hashes
from residual_bench.perturb import PERTURBATIONS, PHASES, Suite, load_suite, suite_names
from residual_bench.perturb.suite import SPLITS, HeldOutSuite, SuiteEntry
from residual_bench.rollout import run_episodes

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


def test_bench_list_shows_every_suite_with_its_split_and_description(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in suite_names():
        suite = load_suite(name)
        line = rf"^\s+{re.escape(name)}\s+{suite.split}\s+{re.escape(suite.description)}$"
        assert re.search(line, out, re.MULTILINE), name


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
    "unknown split": ({"name": "t", "split": "test", "perturbations": []}, "split"),
    "split not a string": ({"name": "t", "split": ["heldout"], "perturbations": []}, "split"),
}


@pytest.mark.parametrize("raw, field", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_suite_dict_is_a_spec_error_naming_the_field(raw, field):
    with pytest.raises(SpecError, match=field):
        gym.make(ENV_ID, suite=raw)


@pytest.mark.parametrize(
    "raw, field",
    [
        MALFORMED["unknown field"],
        MALFORMED["bad phase"],
        MALFORMED["slide mode"],
        MALFORMED["unknown split"],
    ],
    ids=["unknown field", "bad phase", "slide mode", "unknown split"],
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


# -- the training / held-out split -------------------------------------------------------

# The ``env_spec_hash`` the records of each suite shipped before the split carry (scene +
# suite + control rate, as ``bench`` records it), and the hash of the suite's own content.
RECORDED_HASHES = {
    "nominal": ("bcb6b3ba5ad25013", "53db794d4b3a3b18"),
    "poke": ("9393a0c663dbb062", "a1aacb860f4c5ba3"),
    "slide": ("3c1c9fa330841aae", "e26471e82f2e6efd"),
    "drop": ("32b245030027b828", "4b60613009ce9810"),
    "latency": ("c34491c7e5627c52", "fdd24b8d6576dd48"),
    "mixed": ("d4ac9e3c8997e666", "b8389642049b8bb4"),
    "poke-hard": ("36dbdfdd908c062c", "d868e1270728a9c0"),
    "slide-hard": ("63b87e5ffb9d3716", "fd7f1fa7de59a7a8"),
    "drop-hard": ("58843ab22f13858f", "046158aa55234d54"),
    "latency-hard": ("4bf3cca60264f44a", "b37b03241df6b8ee"),
    "mixed-hard": ("de2a80b4f6eb7218", "99359dff10a9488a"),
}


def test_the_suites_shipped_before_the_split_keep_the_hashes_their_records_carry(make_env):
    recorded = suite_spec_hashes(RECORDED_HASHES)["suites"]
    for name, (env_spec_hash, content_hash) in RECORDED_HASHES.items():
        assert load_suite(name).split == "train", name
        assert spec_hash(dataclasses.asdict(load_suite(name))) == content_hash, name
        assert recorded[name] == env_spec_hash, name
    # The environment records the same hash as the leaderboard computes without a simulator.
    assert make_env(suite="mixed").unwrapped.env_spec_hash == RECORDED_HASHES["mixed"][0]


def test_the_split_is_a_label_left_out_of_the_hashed_content():
    content = {"name": "t", "perturbations": [{"type": "poke"}]}
    train, heldout = load_suite(content), load_suite({**content, "split": "heldout"})
    assert dataclasses.asdict(train) == dataclasses.asdict(heldout)
    assert "split" not in dataclasses.asdict(heldout)
    assert train != heldout  # the same draws, filed under different splits


def test_a_suite_without_a_split_is_a_training_suite_and_heldout_is_the_other_split():
    assert SPLITS == ("train", "heldout")
    assert load_suite({"name": "t"}).split == "train"
    assert type(load_suite({"name": "t"})) is Suite
    assert load_suite({"name": "t", "split": "train"}) == load_suite({"name": "t"})
    heldout = load_suite({"name": "t", "split": "heldout"})
    assert isinstance(heldout, HeldOutSuite) and heldout.split == "heldout"


def test_suite_names_by_split_partition_the_shipped_suites():
    train, heldout = suite_names("train"), suite_names("heldout")
    assert sorted(train + heldout) == suite_names()
    assert "mixed" in train and "train-broad" in train
    assert len(heldout) >= 4
    assert all(name.startswith("heldout-") for name in heldout)
    with pytest.raises(ValueError, match="split"):
        suite_names("test")


def _named_suites(value: Any) -> Iterator[str]:
    """Every suite a baseline's YAML trains on: the values of its ``suite``/``suites`` keys."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "suite" and isinstance(item, str):
                yield item
            elif key == "suites" and isinstance(item, list):
                yield from item
            else:
                yield from _named_suites(item)


def baseline_training_suites() -> set[str]:
    names = set()
    for path in spec_dir("baselines").glob("*.yaml"):
        names |= set(_named_suites(read_yaml(path)))
    return names


def training_suites() -> dict[str, Suite]:
    """``mixed``, ``train-broad``, every suite the shipped baselines train on, and every
    other shipped suite filed under ``train``: all of what residual training may see."""
    names = {"mixed", "train-broad"} | baseline_training_suites() | set(suite_names("train"))
    return {name: load_suite(name) for name in sorted(names)}


def test_every_suite_a_shipped_baseline_trains_on_is_a_training_suite():
    named = baseline_training_suites()
    assert "mixed" in named  # train.suite of baselines/sac.yaml
    for name in named:
        assert load_suite(name).split == "train", name


# What makes each held-out suite held out: a feature of the suite as the loader parsed it.

LATE_PHASES = {"transport", "done"}
RANK = {phase: i for i, phase in enumerate(PHASES)}
# The field an event of each (kind, mode) records as its ``magnitude``.
MAGNITUDE = {
    ("poke", None): "speed",
    ("slide", "displace"): "distance",
    ("slide", "kick"): "speed",
    ("drop", "release"): "duration",
    ("drop", "from_height"): "height",
    ("latency", None): "duration",
}


def _fires(entry: SuiteEntry) -> bool:
    return entry.probability > 0 and entry.count[1] > 0


def _firing(suite: Suite, kind: str) -> list[SuiteEntry]:
    """The entries of ``kind`` that can fire at all."""
    return [e for e in suite.entries if e.type == kind and _fires(e)]


def _magnitude(entry: SuiteEntry) -> tuple[tuple[str, str | None], list[float]]:
    key = (entry.type, entry.params.get("mode"))
    return key, entry.params[MAGNITUDE[key]]


def pokes_late(suite: Suite) -> bool:
    """A poke triggered while the object is carried or placed (a time trigger may be then)."""
    return any(e.phases is None or LATE_PHASES & set(e.phases) for e in _firing(suite, "poke"))


def _heldout_magnitude_floors() -> dict[tuple[str, str | None], float]:
    """The lowest magnitude ``heldout-magnitude`` draws, per kind and mode."""
    floors: dict[tuple[str, str | None], float] = {}
    for entry in load_suite("heldout-magnitude").entries:
        key, (low, _) = _magnitude(entry)
        floors[key] = min(low, floors.get(key, low))
    return floors


def reaches_heldout_magnitudes(suite: Suite) -> bool:
    """Some entry can draw a magnitude as large as ``heldout-magnitude`` draws for its kind."""
    floors = _heldout_magnitude_floors()
    for entry in filter(_fires, suite.entries):
        key, (_, high) = _magnitude(entry)
        if key in floors and high >= floors[key]:
            return True
    return False


def _may_follow(first: SuiteEntry, then: SuiteEntry) -> bool:
    """Whether an event of ``then`` can fire after one of ``first``. Phases are first seen
    in the order approach, grasp, transport, done, and delays count from a phase's first
    sighting; a time trigger may land anywhere."""
    if first.phases is None or then.phases is None:
        return True
    latest_then = then.delay[1] + (then.count[1] - 1) * then.gap
    return any(
        RANK[b] > RANK[a] or (RANK[b] == RANK[a] and latest_then > first.delay[0])
        for a in first.phases
        for b in then.phases
    )


def slides_after_a_drop(suite: Suite) -> bool:
    """A slide that can fire after a drop in the same episode."""
    drops, slides = _firing(suite, "drop"), _firing(suite, "slide")
    return any(_may_follow(drop, slide) for drop in drops for slide in slides)


def stalls_more_than_twice(suite: Suite) -> bool:
    """More than two base stalls in one episode."""
    return sum(e.count[1] for e in _firing(suite, "latency")) > 2


HELD_OUT_FEATURES: dict[str, tuple[str, Callable[[Suite], bool]]] = {
    "heldout-poke-late": ("pokes in the transport or done phase", pokes_late),
    "heldout-magnitude": ("magnitudes past every training range", reaches_heldout_magnitudes),
    "heldout-combo": ("a slide after a drop", slides_after_a_drop),
    "heldout-stutter": ("more than two stalls per episode", stalls_more_than_twice),
}


def test_every_held_out_suite_names_the_feature_that_makes_it_held_out():
    assert set(HELD_OUT_FEATURES) == set(suite_names("heldout"))
    for name, (feature, has) in HELD_OUT_FEATURES.items():
        assert has(load_suite(name)), f"{name} lacks its feature: {feature}"


@pytest.mark.parametrize("heldout", sorted(HELD_OUT_FEATURES))
def test_no_training_suite_has_a_held_out_suites_feature(heldout):
    feature, has = HELD_OUT_FEATURES[heldout]
    training = training_suites()
    assert {"mixed", "train-broad"} <= set(training)
    offending = [name for name, suite in training.items() if has(suite)]
    assert not offending, f"training suites with the feature of {heldout} ({feature}): {offending}"


def test_held_out_magnitudes_start_past_the_largest_any_training_suite_draws():
    highest: dict[tuple[str, str | None], float] = {}
    for suite in training_suites().values():
        for entry in suite.entries:
            key, (_, high) = _magnitude(entry)
            highest[key] = max(high, highest.get(key, high))
    for key, floor in _heldout_magnitude_floors().items():
        assert floor > highest[key], key


def test_the_combo_suite_always_slides_after_the_drop_is_over():
    (drop,), (slide,) = (_firing(load_suite("heldout-combo"), kind) for kind in ("drop", "slide"))
    assert drop.phases == slide.phases == ("transport",)
    assert drop.probability == slide.probability == 1.0
    assert slide.delay[0] > drop.delay[1] + drop.params["duration"][1]


def test_train_broad_draws_every_kind_of_mixed_in_its_phases_and_more_broadly():
    broad = load_suite("train-broad")
    assert {e.type for e in broad.entries} == set(PERTURBATIONS)
    for entry in load_suite("mixed").entries:
        key, (low, high) = _magnitude(entry)
        same = [e for e in broad.entries if _magnitude(e)[0] == key]
        assert set(entry.phases) <= {p for e in same for p in e.phases}, key
        assert min(_magnitude(e)[1][0] for e in same) < low, key
        assert max(_magnitude(e)[1][1] for e in same) >= high, key


@pytest.mark.parametrize("name", [*suite_names("heldout"), "train-broad"])
def test_every_new_suite_runs_an_episode_of_the_scripted_base_in_state_mode(name):
    suite = load_suite(name)
    (record,), _ = run_episodes(
        1, policy="scripted", suite=name, progress=False, env_kwargs={"obs_mode": "state"}
    )
    assert record.suite == name
    assert record.env_spec_hash == suite_spec_hashes([name])["suites"][name]
    declared = {(e.type, f"phase:{p}") for e in suite.entries for p in e.phases or ()}
    for event in record.events:
        assert (event.type, event.trigger) in declared, event
