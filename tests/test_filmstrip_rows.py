"""Which perturbations a task's filmstrip shows (benchmarks/filmstrip.py): one row per kind a
camera can see, from a suite that applies to the task; a kind the task refuses has no row."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from residual_bench.perturb import load_suite, suite_applies
from residual_bench.tasks import task_entry
from residual_bench.tasks.pick_place import PickPlaceTask
from residual_bench.tasks.push import PushTask

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "filmstrip.py"


@pytest.fixture(scope="module")
def filmstrip():
    spec = importlib.util.spec_from_file_location("filmstrip", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pick_and_place_keeps_its_poke_slide_and_drop_rows(filmstrip):
    assert filmstrip.filmed_suites(PickPlaceTask) == [
        ("poke", "poke"),
        ("slide", "slide"),
        ("drop", "drop"),
    ]


def test_push_films_its_own_suites_and_has_no_drop_row_since_nothing_is_held(filmstrip):
    assert filmstrip.filmed_suites(PushTask) == [("push-poke", "poke"), ("push-slide", "slide")]


def test_every_row_of_every_task_is_a_suite_of_that_kind_alone_that_the_task_accepts(filmstrip):
    for env_id in filmstrip.current_task_ids():
        task = task_entry(env_id).task
        rows = filmstrip.filmed_suites(task)
        assert rows, env_id
        for name, kind in rows:
            suite = load_suite(name)
            assert {entry.type for entry in suite.entries} == {kind}
            assert suite_applies(suite, task.phases, task.perturbation_kinds), (env_id, name)


def test_each_task_has_its_own_file_named_after_its_scene(filmstrip):
    ids = filmstrip.current_task_ids()
    names = [filmstrip.filmstrip_path(env_id).name for env_id in ids]
    assert len(set(names)) == len(ids)
    assert filmstrip.filmstrip_path("ResidualPickPlace-v1").name == "filmstrip-pick-place.png"
    assert filmstrip.filmstrip_path("ResidualPush-v0").name == "filmstrip-push.png"


def test_an_earlier_version_of_a_task_overwrites_nothing(filmstrip):
    assert "ResidualPickPlace-v0" not in filmstrip.current_task_ids()
    earlier = filmstrip.filmstrip_path("ResidualPickPlace-v0").name
    assert earlier == "filmstrip-ResidualPickPlace-v0.png"
