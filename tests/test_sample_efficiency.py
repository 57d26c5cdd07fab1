"""Steps to a target success, read off learning curves (the issue's sample-efficiency ratio)."""

import pandas as pd
import pytest

from residual_bench.eval.sample_efficiency import (
    compare_to_reference,
    final_success,
    steps_to_reach,
)


def curve(*success: float, every: int = 10_000) -> pd.DataFrame:
    steps = [every * (i + 1) for i in range(len(success))]
    return pd.DataFrame({"timesteps": steps, "success_rate": success})


def test_final_success_averages_each_seeds_last_evaluations_then_the_seeds():
    seeds = [curve(0.0, 0.9, 0.3, 0.6), curve(0.0, 0.0, 0.0, 0.3)]
    assert final_success(seeds, window=2) == pytest.approx((0.45 + 0.15) / 2)
    assert final_success(seeds, window=2, budget=30_000) == pytest.approx((0.6 + 0.0) / 2)


def test_one_lucky_evaluation_does_not_count_as_reaching_the_target():
    lucky = curve(0.0, 0.6, 0.0, 0.0, 0.6, 0.6, 0.6)
    assert steps_to_reach([lucky], 0.5, window=1).per_seed == (20_000,)
    assert steps_to_reach([lucky], 0.5, window=3).per_seed == (70_000,)


def test_steps_are_the_mean_over_seeds_when_every_seed_reaches_the_target():
    reach = steps_to_reach([curve(0, 1, 1), curve(0, 0, 1)], 0.5, window=1)
    assert reach.steps == 25_000 and reach.at_least is None


def test_a_seed_that_never_reaches_the_target_makes_the_steps_a_lower_bound():
    reach = steps_to_reach([curve(0, 1), curve(0, 0, 0, 0)], 0.5, window=1)
    assert reach.per_seed == (20_000, None) and reach.covered == (20_000, 40_000)
    assert reach.steps is None and reach.at_least == 30_000


def test_the_residuals_saving_is_one_minus_the_ratio_of_steps():
    curves = {
        "residual": [curve(0.0, 0.5, 0.5, 0.5)],  # final 0.5, target 0.4, reached at 20k
        "finetune": [curve(0, 0, 0, 0, 0, 0, 0, 0.5)],  # reaches 0.4 at 80k
    }
    results = compare_to_reference(curves, "residual", fraction=0.8, window=1)
    assert results["residual"]["target"] == pytest.approx(0.4)
    assert results["finetune"]["steps"] == 80_000
    assert results["finetune"]["fewer_steps"] == pytest.approx(0.75)


def test_a_method_stopped_early_gets_a_bound_only_once_it_ran_past_the_reference():
    curves = {
        "residual": [curve(0.0, 0.0, 0.5, 0.5)],  # reached at 30k
        "short": [curve(0.0, 0.0)],  # 20k without reaching: nothing can be said
        "long": [curve(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)],  # 60k without reaching: >= 50% fewer
    }
    results = compare_to_reference(curves, "residual", window=1)
    assert results["short"]["steps"] is None and results["short"]["fewer_at_least"] is None
    assert results["long"]["fewer_at_least"] == pytest.approx(0.5)


def test_bad_curves_and_settings_are_named():
    with pytest.raises(ValueError, match="'timesteps' and 'success_rate'"):
        final_success([pd.DataFrame({"step": [1], "success": [0.0]})])
    with pytest.raises(ValueError, match="no learning curves for the reference 'residual'"):
        compare_to_reference({"scratch": [curve(0.0)]}, "residual")
    with pytest.raises(ValueError, match="ends at 0% success"):
        compare_to_reference({"residual": [curve(0.0, 0.0)]}, "residual")
    with pytest.raises(ValueError, match="a seed of the reference 'residual' never reaches"):
        compare_to_reference({"residual": [curve(0, 1, 1), curve(0, 0, 0)]}, "residual")
    with pytest.raises(ValueError, match="no evaluation within 5 steps"):
        final_success([curve(0.5)], budget=5)
