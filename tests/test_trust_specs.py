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
        ("{type: poke, gap: .nan}", "gap: expected seconds"),
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
