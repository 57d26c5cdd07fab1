"""A scene or suite file from elsewhere cannot explode, hang, or run absurd physics.

YAML aliases are refused (a "billion laughs" file of a few lines would expand to gigabytes
while its error message is rendered), a spec file's size and kind are checked before it is
read, error messages quote a bounded excerpt, and every number is finite and within the
physical bounds declared beside its field, named in the error.
"""

from __future__ import annotations

import os
import signal

import pytest

from residual_bench.env_spec import MAX_SPEC_BYTES, SpecError, load_env_spec, read_yaml
from residual_bench.perturb import load_suite, suite_names

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
name: *i
"""


def suite_file(tmp_path, entry: str) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text(f"name: mine\nperturbations:\n  - {entry}\n")
    return str(path)


@pytest.mark.parametrize("load", [load_suite, load_env_spec], ids=["suite", "scene"])
def test_a_yaml_alias_bomb_is_refused_at_once_with_a_short_error(tmp_path, load):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    with pytest.raises(SpecError, match=r"aliases \(\*name\) are not allowed") as caught:
        load(str(path))
    assert len(str(caught.value)) < 500 and "line 2" in str(caught.value)


def test_a_spec_file_too_large_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:
        f.truncate(MAX_SPEC_BYTES + 1)
    with pytest.raises(SpecError, match="more than a spec's"):
        read_yaml(path)


def test_a_fifo_posing_as_a_spec_file_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "fifo.yaml")
    signal.alarm(20)  # a regression fails instead of hanging
    try:
        with pytest.raises(SpecError, match="not a regular file"):
            load_suite(str(tmp_path / "fifo.yaml"))
    finally:
        signal.alarm(0)


@pytest.mark.parametrize(
    "entry, field",
    [
        ("{type: poke, speed: [.nan, .nan]}", "speed: expected finite"),
        ("{type: poke, speed: [1.0, .inf]}", "speed: expected finite"),
        ("{type: poke, delay: .inf}", "delay: expected finite"),
        ("{type: poke, gap: .nan}", "gap: expected a number in [0, 120]"),
        ("{type: poke, probability: .nan}", "probability"),
        ("{type: poke, elevation: 400}", "elevation: expected -60 <= low"),
        ("{type: poke, speed: [6, 10]}", "speed: expected 0 <= low <= high <= 3"),
        ("{type: poke, count: 100000000}", "count: expected 0 <= low <= high <= 10"),
        ("{type: slide, distance: 0.5}", "distance: expected 0 <= low <= high <= 0.25"),
        ("{type: latency, duration: [1, 1.0e6]}", "YAML reads a number like 1.0e6 as text"),
        ("{type: poke, trigger: {time: [0, .inf]}}", "trigger.time: expected finite"),
    ],
)
def test_an_absurd_or_non_finite_suite_value_is_refused_naming_its_field(tmp_path, entry, field):
    with pytest.raises(SpecError, match="perturbations\\[0\\]") as caught:
        load_suite(suite_file(tmp_path, entry))
    assert field in str(caught.value)


def test_a_downward_poke_is_allowed(tmp_path):
    suite = load_suite(suite_file(tmp_path, "{type: poke, elevation: [-30, -10]}"))
    assert suite.entries[0].params["elevation"] == [-30.0, -10.0]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"randomization": {"object_mass": [0.1, float("nan")]}}, "expected finite"),
        ({"randomization": {"object_mass": [0.1, 1e6]}}, "object_mass"),
        ({"task": {"episode_seconds": float("inf")}}, "expected a finite number"),
        ({"task": {"episode_seconds": 1e9}}, "episode_seconds"),
        ({"task": {"object_size": [0.04, 2.0]}}, "object_size"),
        ({"camera": {"fov_deg": 179.0}}, "fov_deg"),
    ],
)
def test_an_absurd_or_non_finite_scene_value_is_refused_naming_its_field(overrides, field):
    with pytest.raises(SpecError, match=field):
        load_env_spec(None, overrides)


def test_an_error_quotes_a_long_value_briefly(tmp_path):
    with pytest.raises(SpecError) as caught:
        load_suite(suite_file(tmp_path, "{type: poke, speed: [" + "1, " * 50_000 + "1]}"))
    assert len(str(caught.value)) < 600


def test_every_shipped_suite_and_the_shipped_scene_are_within_bounds():
    names = suite_names()
    assert len(names) >= 11  # nominal, five kinds and their -hard variants
    assert all(load_suite(name).name == name for name in names)
    assert load_env_spec(None)["task"]["episode_seconds"] == 12.0


def write(tmp_path, text: str, name: str = "spec.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


HUGE_INT = "9" * 400  # a whole number no float can hold


@pytest.mark.parametrize(
    "load, text, field",
    [
        (load_suite, f"name: x\nperturbations:\n  - {{type: poke, count: {HUGE_INT}}}\n", "count"),
        (load_suite, f"name: x\nperturbations:\n  - {{type: poke, speed: {HUGE_INT}}}\n", "speed"),
        (load_env_spec, f"task: {{episode_seconds: {HUGE_INT}}}\n", "task.episode_seconds"),
        (load_env_spec, f"randomization: {{object_mass: [0.1, {HUGE_INT}]}}\n", "object_mass"),
        (load_env_spec, f"version: {HUGE_INT}\n", "version"),
    ],
    ids=["suite count", "suite speed", "scene seconds", "scene mass", "scene version"],
)
def test_a_whole_number_too_large_for_a_float_is_refused_naming_its_field(
    tmp_path, load, text, field
):
    with pytest.raises(SpecError, match=field) as caught:
        load(write(tmp_path, text))
    assert len(str(caught.value)) < 500


@pytest.mark.parametrize("load", [load_suite, load_env_spec], ids=["suite", "scene"])
def test_a_number_with_more_digits_than_python_reads_is_refused_naming_file_and_line(
    tmp_path, load
):
    path = write(tmp_path, f"name: x\na: {'9' * 5000}\n")
    with pytest.raises(SpecError, match="spec.yaml: line 2: a whole number of 5000") as caught:
        load(path)
    assert len(str(caught.value)) < 500


@pytest.mark.parametrize("load", [load_suite, load_env_spec], ids=["suite", "scene"])
def test_an_impossible_date_is_a_yaml_error_naming_the_file(tmp_path, load):
    with pytest.raises(SpecError, match="spec.yaml: malformed YAML: month must be in 1..12"):
        load(write(tmp_path, "name: x\ndescription: 2026-13-45\n"))


def test_a_perturbation_type_that_is_not_a_name_is_refused_naming_the_field(tmp_path):
    with pytest.raises(SpecError, match=r"perturbations\[0\]\.type: expected one of"):
        load_suite(suite_file(tmp_path, "{type: [poke]}"))


LONG_KEY = "k" * 10_000  # past the 1024 characters of a plain YAML key: written as ? KEY


@pytest.mark.parametrize(
    "load, text",
    [
        (load_suite, f"name: x\n? {LONG_KEY}\n: 1\n"),
        (load_suite, f"name: x\nperturbations:\n  - type: poke\n    ? {LONG_KEY}\n    : 1\n"),
        (load_env_spec, f"task:\n  ? {LONG_KEY}\n  : 1\n"),
        (load_env_spec, f"? {LONG_KEY}\n: 1\n"),
    ],
    ids=["suite", "suite entry", "scene section", "scene"],
)
def test_an_unknown_field_with_a_very_long_name_is_quoted_briefly(tmp_path, load, text):
    with pytest.raises(SpecError, match="unknown field") as caught:
        load(write(tmp_path, text))
    assert len(str(caught.value)) < 600


def test_a_scene_number_yaml_reads_as_text_is_refused_with_how_to_write_it(tmp_path):
    path = write(tmp_path, "randomization: {object_mass: [0.1, 1.0e6]}\n")
    with pytest.raises(SpecError, match=r"object_mass.*write 1\.0e\+6"):
        load_env_spec(path)


def test_a_suite_with_more_events_per_episode_than_the_bound_is_refused(tmp_path):
    entries = "\n".join(["  - {type: latency, count: [0, 6]}"] * 2)
    path = write(tmp_path, f"name: x\nperturbations:\n{entries}\n")
    with pytest.raises(SpecError, match=r"perturbations: up to 12 events per episode") as caught:
        load_suite(path)
    assert "at most 10" in str(caught.value)


def test_a_suite_with_a_thousand_entries_is_refused_before_they_are_parsed(tmp_path):
    entries = "\n".join(["  - {type: poke, count: 0}"] * 1000)
    with pytest.raises(SpecError, match=r"perturbations: 1000 entries, at most 10"):
        load_suite(write(tmp_path, f"name: x\nperturbations:\n{entries}\n"))


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"name": "n" * 10_000}, "name: expected"),
        ({"name": "two\nlines"}, "name: expected"),
        ({"name": "x", "description": ["a", "list"]}, "description: expected"),
        ({"name": "x", "description": "d" * 10_000}, "description: expected"),
    ],
)
def test_a_suite_name_or_description_that_is_not_a_short_line_is_refused(raw, field):
    with pytest.raises(SpecError, match=field) as caught:
        load_suite(raw)
    assert len(str(caught.value)) < 500


def test_a_spec_file_of_a_hundred_kilobytes_is_refused_unparsed(tmp_path):
    # A spec is a page of YAML (the shipped ones are under 2 KB); PyYAML parses about 100 KB
    # a second, so a bound of megabytes would let one file hold a process for many seconds.
    path = write(tmp_path, "a: [" + "1, " * 34_000 + "1]\n")
    with pytest.raises(SpecError, match="more than a spec's"):
        read_yaml(path)


def test_a_spec_file_that_grows_after_its_size_was_checked_is_still_refused(tmp_path, monkeypatch):
    path = write(tmp_path, "a: [" + "1, " * (MAX_SPEC_BYTES // 3) + "1]\n")
    real_stat, real_fstat = os.stat, os.fstat

    def small(result: os.stat_result) -> os.stat_result:
        fields = list(result)
        fields[6] = 10  # st_size: what the file held when it was checked
        return os.stat_result(fields)

    monkeypatch.setattr(os, "stat", lambda p, *a, **k: small(real_stat(p, *a, **k)))
    monkeypatch.setattr(os, "fstat", lambda fd: small(real_fstat(fd)))
    with pytest.raises(SpecError, match="more than a spec's"):
        read_yaml(path)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"randomization": {"light_direction": {"low": [0, 0, 0], "high": [0, 0, 0]}}},
            r"randomization\.light_direction: .*outside \[0\.1, 10\]",
        ),
        (
            {"randomization": {"light_direction": {"low": [0, 0, -1], "high": [0, 0, 1]}}},
            r"randomization\.light_direction: .*outside \[0\.1, 10\]",
        ),
        (
            {"camera": {"eye": [0.5, 0.0, 0.5], "target": [0.5, 0.0, 0.5]}},
            r"camera\.eye: .* from camera\.target",
        ),
        ({"randomization": {"object_friction": [0.0, 0.0]}}, r"object_friction"),
    ],
)
def test_a_scene_the_simulator_cannot_light_or_view_or_grip_is_refused(overrides, message):
    with pytest.raises(SpecError, match=message):
        load_env_spec(None, overrides)


def test_a_valid_custom_suite_file_loads_with_every_field_as_written(tmp_path):
    path = write(
        tmp_path,
        "name: my-suite\n"
        "description: two pokes and a stall\n"
        "perturbations:\n"
        "  - {type: poke, trigger: {phase: grasp}, delay: [0.1, 0.2], count: [1, 2], gap: 0.5,\n"
        "     probability: 0.75, speed: [0.5, 1.5], duration: 0.02, elevation: [-10, 45]}\n"
        "  - {type: latency, trigger: {time: [1.0, 2.5]}, duration: [0.2, 1.0e+0]}\n",
    )
    suite = load_suite(path)
    poke, stall = suite.entries
    assert (suite.name, suite.description) == ("my-suite", "two pokes and a stall")
    assert poke.phases == ("grasp",) and poke.delay == (0.1, 0.2) and poke.count == (1, 2)
    assert (poke.gap, poke.probability) == (0.5, 0.75)
    assert poke.params == {"speed": [0.5, 1.5], "duration": [0.02, 0.02], "elevation": [-10, 45]}
    assert stall.time == (1.0, 2.5) and stall.params == {"duration": [0.2, 1.0]}
