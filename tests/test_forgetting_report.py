"""The forgetting table (benchmarks/forgetting.py): success and how the actions changed."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "forgetting.py"


@pytest.fixture(scope="module")
def forgetting():
    spec = importlib.util.spec_from_file_location("forgetting", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def episodes(*jerks):
    return [
        SimpleNamespace(action_jerk=j, action_rate=None if j is None else j / 10) for j in jerks
    ]


def test_action_medians_skip_episodes_without_actions(forgetting):
    assert forgetting.action_medians(episodes(100.0, None, 300.0, 200.0)) == {
        "action_jerk": 200.0, "action_rate": 20.0,
    }  # fmt: skip
    assert forgetting.action_medians(episodes(None)) == {
        "action_jerk": None, "action_rate": None,
    }  # fmt: skip


def test_a_row_shows_the_jerk_before_and_after_and_none_before_for_scratch(forgetting):
    rate = {"rate": 0.4, "k": 40, "n": 100, "ci": (0.31, 0.5)}
    tuned = {
        "method": "finetune-dagger", "seed": 0, "suite": "nominal", "objects": "train",
        "before": rate, "after": {**rate, "rate": 0.0}, "change_pp": -40.0, "p_value": 1e-9,
        "actions_before": forgetting.action_medians(episodes(106.0)),
        "actions_after": forgetting.action_medians(episodes(239.4)),
    }  # fmt: skip
    scratch = {**tuned, "method": "scratch", "before": None, "change_pp": None,
               "actions_before": None}  # fmt: skip
    lines = forgetting.table_markdown([tuned, scratch], []).splitlines()
    assert "action jerk" in lines[0]
    assert lines[2].endswith("| -40 pp (p<0.001) | 106 -> 239 |")
    assert lines[3].endswith("| - | - -> 239 |")


def test_held_out_wordings_have_their_own_folder_and_column(forgetting):
    assert forgetting.condition_folder("nominal", "heldout", "train") == "nominal-heldout"
    assert forgetting.condition_folder("nominal", "heldout", "heldout") == (
        "nominal-heldout-heldout-words"
    )
    rate = {"rate": 0.4, "k": 40, "n": 100, "ci": (0.31, 0.5)}
    row = {
        "method": "residual", "seed": 1, "suite": "nominal", "objects": "heldout",
        "instructions": "heldout", "before": rate, "after": rate, "change_pp": 0.0,
        "p_value": 1.0, "actions_before": None, "actions_after": {"action_jerk": None},
    }  # fmt: skip
    header, _, line = forgetting.table_markdown([row], []).splitlines()[:3]
    assert "| wordings |" in header
    assert line.startswith("| residual | 1 | nominal | heldout | heldout |")
