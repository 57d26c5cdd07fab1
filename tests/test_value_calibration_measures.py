"""The measures of benchmarks/residual_value_calibration.py, on hand-built numbers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "residual_value_calibration.py"


@pytest.fixture(scope="module")
def calibration():
    spec = importlib.util.spec_from_file_location("residual_value_calibration", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_return_discounts_the_rewards_to_the_end_and_bootstraps_there(calibration):
    returns = calibration.bootstrapped_returns(np.array([0.0, 1.0, 1.0]), 10.0, 0.5)
    np.testing.assert_allclose(returns, [0.5 * 1 + 0.25 * 1 + 0.125 * 10, 1 + 0.5 + 2.5, 1 + 5])


def test_a_critic_whose_values_order_the_solved_steps_first_has_an_auc_of_one(calibration):
    q = np.array([0.1, 0.2, 0.8, 0.9])
    assert calibration.success_auc(q, np.array([False, False, True, True])) == 1.0
    assert calibration.success_auc(q, np.array([True, True, False, False])) == 0.0


def test_values_that_say_nothing_of_the_outcome_give_one_half(calibration):
    q = np.array([1.0, 1.0, 2.0, 2.0])
    assert calibration.success_auc(q, np.array([False, True, False, True])) == 0.5


def test_the_auc_is_undefined_when_every_episode_had_the_same_outcome(calibration):
    assert np.isnan(calibration.success_auc(np.array([1.0, 2.0]), np.array([True, True])))
