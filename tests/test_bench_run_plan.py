"""``bench run`` says what it will do before it starts, and what came out when it ends.

The plan names each training seed's residual (shipped, found, or trained now), the cells and
episode counts, and a time estimated per phase from measured rates (a residual episode is
about five times slower than a base episode, so one rate for both would be wrong by that
much). The run ends with a table of the base alone against base + residual per cell.
"""

import pytest

from residual_bench.env_spec import SpecError
from residual_bench.eval.episode_tasks import make_tasks
from residual_bench.perturb.suite import suite_names
from residual_bench.protocol import (
    EPISODES_PER_SECOND,
    STANDARD_SUITES,
    Protocol,
    closing_table,
    heldout_suites,
    plan_benchmark,
)
from residual_bench.tasks.push import PushTask

PUSH = "ResidualPush-v0"


def test_the_plan_names_the_shipped_residual_and_the_episode_counts(tmp_path):
    plan = plan_benchmark("scripted", "sac", tmp_path, Protocol(), workers=2)
    text = plan.describe()
    assert "shipped:scripted-sac-seed0" in text
    assert plan.base_episodes == plan.residual_episodes == 600
    assert "600 episodes" in text and "estimated total" in text


def test_the_estimate_weights_each_phase_by_its_own_measured_rate(tmp_path):
    plan = plan_benchmark("scripted", "sac", tmp_path, Protocol(), workers=1)
    times = plan.estimated_seconds()
    assert times["base"] == pytest.approx(600 / EPISODES_PER_SECOND["base"])
    assert times["residual"] == pytest.approx(600 / EPISODES_PER_SECOND["residual"])
    assert times["residual"] > 4 * times["base"]
    two = plan_benchmark("scripted", "sac", tmp_path, Protocol(), workers=2).estimated_seconds()
    assert times["base"] / 2 < two["base"] < times["base"]


def test_a_seed_without_a_shipped_residual_is_planned_for_training(tmp_path):
    protocol = Protocol(seeds=[0, 7], train_steps=3000)
    plan = plan_benchmark("scripted", "sac", tmp_path, protocol, workers=2)
    assert plan.train_steps == {7: 3000}
    assert "trained now" in plan.residuals[7] and "3000 steps" in plan.describe()
    assert plan.estimated_seconds()["train"] > 0


def cell(residual, suite, k, n, seed=None):
    return {
        "residual": residual,
        "train_seed": seed,
        "suite": suite,
        "objects": "heldout",
        "success_rate": {"k": k, "n": n},
    }


def test_the_closing_table_pools_training_seeds_against_the_base():
    summary = {
        "cells": [
            cell(None, "mixed", 50, 100),
            cell("sac", "mixed", 60, 100, seed=0),
            cell("sac", "mixed", 70, 100, seed=1),
        ]
    }
    header, row = closing_table(summary).splitlines()
    assert header.split() == ["suite", "objects", "base", "+", "residual", "gain"]
    assert "50.0% (50/100)" in row and "65.0% (130/200)" in row and "+15.0%" in row


def test_the_closing_table_marks_held_out_suites_and_gives_the_mean_gain_of_each_kind():
    summary = {
        "cells": [
            cell(None, "mixed", 50, 100),
            cell("sac", "mixed", 70, 100, seed=0),
            cell(None, "heldout-magnitude", 40, 100),
            cell("sac", "heldout-magnitude", 35, 100, seed=0),
        ]
    }
    lines = closing_table(summary).splitlines()
    assert any(
        line.startswith("heldout-magnitude (held out)") and "-5.0%" in line for line in lines
    )
    assert lines[-2:] == [
        "mean gain on training suites: +20.0%",
        "mean gain on held-out suites: -5.0%",
    ]
    assert "mean gain" not in closing_table({"cells": summary["cells"][:2]})


def test_bench_run_heldout_adds_every_held_out_suite_once():
    assert heldout_suites() == sorted(suite_names("heldout")) and len(heldout_suites()) >= 4
    assert heldout_suites(["mixed", "heldout-combo"]) == [
        s for s in heldout_suites() if s != "heldout-combo"
    ]


def test_the_protocol_runs_the_tasks_own_suites_and_pick_and_places_by_default():
    assert Protocol().suites == list(STANDARD_SUITES)
    assert Protocol(env_id=PUSH).suites == list(PushTask.suites)
    assert Protocol.quick().suites == ["nominal", "mixed"]
    quick = Protocol.quick(PUSH)
    assert quick.suites == ["nominal", "push-mixed"] and quick.env_id == PUSH


def test_a_suite_that_does_not_fit_the_task_is_refused_before_any_episode_runs():
    with pytest.raises(SpecError, match=r"suite 'mixed'.*'grasp' is not a phase of " + PUSH):
        make_tasks("scripted", [None], ["nominal", "mixed"], ["heldout"], 1, env_id=PUSH)
    assert len(make_tasks("scripted", [None], PushTask.suites, ["heldout"], 2, env_id=PUSH)) == 10


def test_bench_run_heldout_adds_only_held_out_suites_that_fit_the_task():
    with pytest.raises(ValueError, match=f"--heldout: no held-out suite applies to {PUSH}"):
        heldout_suites(env_id=PUSH)
    assert heldout_suites(env_id="ResidualInsert-v0") == heldout_suites()
