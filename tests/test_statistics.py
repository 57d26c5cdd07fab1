"""Behaviour of the reported statistics, checked against values worked out independently.

Expected values come from hand counts, direct sums of binomial probabilities with ``math.comb``,
``scipy.stats`` reference functions, or brute-force resampling written out in the test.
"""

import json
import math

import numpy as np
import pytest
from scipy.stats import mannwhitneyu, trim_mean

from residual_bench.episodes.statistics import (
    bootstrap_interval,
    iqm,
    iqm_interval,
    mcnemar_exact,
    paired_bootstrap_difference,
    probability_of_improvement,
    probability_of_improvement_interval,
    wilson_interval,
)

R = 2_000  # resamples: enough for stable percentiles, small enough to keep the suite fast


def paired_outcomes(n01, n10, both=0, neither=0):
    """Success arrays for A and B with the given discordant and concordant counts."""
    a = [False] * n01 + [True] * n10 + [True] * both + [False] * neither
    b = [True] * n01 + [False] * n10 + [True] * both + [False] * neither
    return a, b


def exact_mcnemar_p(n01, n10):
    """Two-sided exact McNemar p-value summed directly from Binomial(n01 + n10, 1/2)."""
    n, k = n01 + n10, min(n01, n10)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2.0 * tail)


# ---------------------------------------------------------------- McNemar


def test_mcnemar_all_discordant_pairs_favour_a_hand_worked():
    a, b = paired_outcomes(n01=0, n10=6, both=4)
    result = mcnemar_exact(a, b)
    assert result == {
        "n": 10,
        "n01": 0,
        "n10": 6,
        "p_value": pytest.approx(2 * 0.5**6),
        "difference": pytest.approx(-0.6),
    }
    assert result["p_value"] == pytest.approx(0.03125)


def test_mcnemar_balanced_discordance_gives_p_one():
    a, b = paired_outcomes(n01=5, n10=5, both=3, neither=2)
    result = mcnemar_exact(a, b)
    assert result["p_value"] == pytest.approx(1.0)
    assert result["difference"] == 0.0


def test_mcnemar_without_discordant_pairs_gives_p_one():
    a, b = paired_outcomes(n01=0, n10=0, both=7, neither=3)
    result = mcnemar_exact(a, b)
    assert (result["n01"], result["n10"], result["p_value"]) == (0, 0, 1.0)


@pytest.mark.parametrize(("n01", "n10"), [(0, 1), (1, 8), (3, 12), (9, 2), (7, 9), (0, 20)])
def test_mcnemar_matches_direct_binomial_sum(n01, n10):
    a, b = paired_outcomes(n01, n10, both=5, neither=4)
    result = mcnemar_exact(a, b)
    assert result["p_value"] == pytest.approx(exact_mcnemar_p(n01, n10), rel=1e-9)
    assert result["difference"] == pytest.approx((n01 - n10) / (n01 + n10 + 9))


def test_mcnemar_accepts_zero_one_integers_like_booleans():
    a, b = paired_outcomes(n01=2, n10=7, both=1)
    as_ints = mcnemar_exact(np.array(a, dtype=int), [int(v) for v in b])
    assert as_ints == mcnemar_exact(a, b)


def test_mcnemar_length_mismatch_names_both_lengths():
    with pytest.raises(ValueError, match=r"a_success and b_success .*got 5 and 4"):
        mcnemar_exact([True] * 5, [True] * 4)


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        ([1, 0, 2], [1, 0, 1], "a_success must contain only booleans or 0/1"),
        ([1, 0, 1], [1.0, math.nan, 0.0], "b_success must contain only booleans or 0/1"),
        ([[1, 0]], [1, 0], "a_success must be 1-D"),
    ],
)
def test_mcnemar_rejects_non_binary_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        mcnemar_exact(a, b)


# ---------------------------------------------------------------- IQM


def test_iqm_of_one_to_eight_is_mean_of_middle_four():
    assert iqm([8, 1, 7, 2, 6, 3, 5, 4]) == pytest.approx((3 + 4 + 5 + 6) / 4)


def test_iqm_cuts_floor_of_a_quarter_from_each_end():
    # n = 10: int(2.5) = 2 values cut from each end, leaving 0, 10, 20, 30, 40, 50.
    assert iqm([0, 0, 0, 10, 20, 30, 40, 50, 900, 1000]) == pytest.approx(25.0)
    x = np.random.default_rng(3).normal(size=13)
    assert iqm(x) == pytest.approx(trim_mean(x, 0.25))


def test_iqm_flattens_multidimensional_input():
    x = np.random.default_rng(4).exponential(size=(5, 3))
    assert iqm(x) == pytest.approx(trim_mean(x.ravel(), 0.25))


def test_iqm_ignores_an_outlier_that_drags_the_mean():
    values = [1, 2, 3, 4, 5, 6, 7, 1e6]
    assert iqm(values) == pytest.approx(4.5)
    assert np.mean(values) > 1e5


def test_iqm_of_nothing_is_nan():
    assert math.isnan(iqm([]))


# ---------------------------------------------------------------- probability of improvement


def test_probability_of_improvement_extremes():
    assert probability_of_improvement([5, 6, 7], [1, 2]) == 1.0
    assert probability_of_improvement([1, 2], [5, 6, 7]) == 0.0
    assert probability_of_improvement([3, 3, 3], [3, 3]) == 0.5


def test_probability_of_improvement_counts_pairs_by_hand():
    # Pairs (x, y): (1,2) loss, (1,3) loss, (3,2) win, (3,3) tie, (5,2) win, (5,3) win.
    assert probability_of_improvement([1, 3, 5], [2, 3]) == pytest.approx((3 + 0.5) / 6)


def test_probability_of_improvement_matches_mann_whitney_u():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 6, size=17)  # small integer range: many ties
    y = rng.integers(1, 7, size=11)
    u = mannwhitneyu(x, y).statistic
    assert probability_of_improvement(x, y) == pytest.approx(u / (17 * 11))
    assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == pytest.approx(1)


def test_probability_of_improvement_of_empty_sample_is_nan():
    assert math.isnan(probability_of_improvement([], [1.0]))
    assert math.isnan(probability_of_improvement([1.0], []))


# ---------------------------------------------------------------- bootstrap interval


def brute_force_percentile_bootstrap(x, statistic, confidence, n_resamples, seed):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_resamples, len(x)))
    stats = [statistic(x[row]) for row in idx]
    alpha = 1 - confidence
    return tuple(np.quantile(stats, [alpha / 2, 1 - alpha / 2]))


def spread(v):
    """A statistic without an ``axis`` argument."""
    return max(v) - min(v)


@pytest.mark.parametrize("statistic", [np.mean, np.median, spread])
def test_bootstrap_matches_percentiles_of_resampled_statistic(statistic):
    x = np.random.default_rng(6).exponential(size=30)
    expected = brute_force_percentile_bootstrap(x, statistic, 0.9, 500, seed=11)
    got = bootstrap_interval(x, statistic=statistic, confidence=0.9, n_resamples=500, seed=11)
    assert got == pytest.approx(expected)


def test_bootstrap_interval_contains_the_sample_mean():
    x = np.random.default_rng(7).exponential(scale=2.0, size=50)
    lo, hi = bootstrap_interval(x, n_resamples=R)
    assert lo < np.mean(x) < hi


def test_bootstrap_interval_shrinks_as_the_sample_grows():
    rng = np.random.default_rng(8)
    small = rng.normal(size=25)
    large = rng.normal(size=400)
    lo_s, hi_s = bootstrap_interval(small, n_resamples=R)
    lo_l, hi_l = bootstrap_interval(large, n_resamples=R)
    # Width scales like 1/sqrt(n): a factor of 4 here, so 2 leaves ample room.
    assert (hi_l - lo_l) < (hi_s - lo_s) / 2


def test_bootstrap_interval_of_the_mean_matches_normal_theory():
    x = np.random.default_rng(9).normal(loc=3.0, scale=2.0, size=200)
    lo, hi = bootstrap_interval(x, n_resamples=R)
    half_width = 1.96 * np.std(x, ddof=1) / math.sqrt(len(x))
    assert (hi - lo) / 2 == pytest.approx(half_width, rel=0.2)
    assert (lo + hi) / 2 == pytest.approx(np.mean(x), abs=0.2 * half_width)


def test_bootstrap_is_deterministic_per_seed():
    x = np.random.default_rng(10).normal(size=40)
    assert bootstrap_interval(x, n_resamples=500, seed=1) == bootstrap_interval(
        x, n_resamples=500, seed=1
    )
    assert bootstrap_interval(x, n_resamples=500, seed=1) != bootstrap_interval(
        x, n_resamples=500, seed=2
    )


def test_bootstrap_degenerate_samples():
    assert bootstrap_interval([2.5] * 12, n_resamples=200) == pytest.approx((2.5, 2.5))
    assert bootstrap_interval([4.0]) == (4.0, 4.0)
    lo, hi = bootstrap_interval([])
    assert math.isnan(lo) and math.isnan(hi)


# ---------------------------------------------------------------- IQM interval


def test_iqm_interval_point_estimate_inside_interval():
    scores = np.random.default_rng(12).normal(loc=[0.2, 0.5, 0.8], scale=0.1, size=(10, 3))
    result = iqm_interval(scores, n_resamples=R)
    assert result["iqm"] == pytest.approx(trim_mean(scores.ravel(), 0.25))
    assert result["ci"][0] < result["iqm"] < result["ci"][1]
    assert (result["n_runs"], result["n_tasks"]) == (10, 3)


def test_iqm_interval_resamples_within_each_task():
    # Task 0 always scores 0 and task 1 always 1. Resampling within each task keeps four of each
    # in every resample, whose IQM is then always 0.5; pooled resampling would vary.
    scores = np.array([[0.0, 1.0]] * 4)
    result = iqm_interval(scores, n_resamples=300)
    assert result["iqm"] == pytest.approx(0.5)
    assert result["ci"] == pytest.approx([0.5, 0.5])


def test_iqm_interval_with_a_single_run_is_degenerate():
    result = iqm_interval([[0.1, 0.4, 0.9, 0.3]], n_resamples=100)
    assert result["ci"] == pytest.approx([result["iqm"]] * 2)


def test_iqm_interval_is_deterministic_per_seed():
    scores = np.random.default_rng(13).uniform(size=(6, 4))
    assert iqm_interval(scores, n_resamples=300, seed=3) == iqm_interval(
        scores, n_resamples=300, seed=3
    )
    assert iqm_interval(scores, n_resamples=300, seed=3) != iqm_interval(
        scores, n_resamples=300, seed=4
    )


# ---------------------------------------------------------------- PoI interval


def test_probability_of_improvement_interval_averages_over_tasks():
    # Task 0: x always beats y (1.0). Task 1: all scores equal (0.5). Any resample keeps both.
    x = np.array([[5.0, 1.0], [6.0, 1.0], [7.0, 1.0]])
    y = np.array([[1.0, 1.0], [2.0, 1.0]])
    result = probability_of_improvement_interval(x, y, n_resamples=300)
    assert result["probability"] == pytest.approx(0.75)
    assert result["ci"] == pytest.approx([0.75, 0.75])


def test_probability_of_improvement_interval_matches_brute_force_resampling():
    rng = np.random.default_rng(14)
    x = rng.normal(loc=0.5, size=(6, 2))
    y = rng.normal(size=(5, 2))
    n = 4_000
    stats = np.zeros(n)
    for t in range(2):
        xb = x[rng.integers(0, 6, size=(n, 6)), t]
        yb = y[rng.integers(0, 5, size=(n, 5)), t]
        diff = xb[:, :, None] - yb[:, None, :]
        stats += ((diff > 0) + 0.5 * (diff == 0)).mean(axis=(1, 2)) / 2
    expected = np.quantile(stats, [0.025, 0.975])
    result = probability_of_improvement_interval(x, y, n_resamples=n)
    point = np.mean([probability_of_improvement(x[:, t], y[:, t]) for t in range(2)])
    assert result["probability"] == pytest.approx(point)
    assert result["ci"][0] < result["probability"] < result["ci"][1]
    # Two independent bootstrap runs: endpoints agree to Monte Carlo precision.
    assert result["ci"] == pytest.approx(expected, abs=0.04)


def test_probability_of_improvement_interval_is_deterministic_per_seed():
    rng = np.random.default_rng(15)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    first = probability_of_improvement_interval(x, y, n_resamples=300, seed=5)
    assert first == probability_of_improvement_interval(x, y, n_resamples=300, seed=5)
    assert first != probability_of_improvement_interval(x, y, n_resamples=300, seed=6)


# ---------------------------------------------------------------- paired bootstrap difference


def test_paired_difference_point_estimate():
    result = paired_bootstrap_difference([1, 2, 3, 4], [2, 3, 5, 4], n_resamples=200)
    assert result["difference"] == pytest.approx(1.0)
    assert result["ci"][0] <= 1.0 <= result["ci"][1]


def test_paired_difference_of_a_constant_shift_is_exact():
    a = np.random.default_rng(16).normal(size=30)
    result = paired_bootstrap_difference(a, a + 2.0, n_resamples=300)
    assert result["difference"] == pytest.approx(2.0)
    assert result["ci"] == pytest.approx([2.0, 2.0])


def test_paired_difference_uses_the_pairing():
    # A small, consistent improvement hidden under large between-episode variation: the paired
    # interval excludes zero although the two samples' own intervals overlap.
    rng = np.random.default_rng(17)
    a = rng.normal(scale=5.0, size=40)
    b = a + 0.3 + rng.normal(scale=0.1, size=40)
    result = paired_bootstrap_difference(a, b, n_resamples=R)
    assert result["ci"][0] > 0
    lo_a, hi_a = bootstrap_interval(a, n_resamples=R)
    lo_b, hi_b = bootstrap_interval(b, n_resamples=R)
    assert lo_b < hi_a and lo_a < hi_b


def test_paired_difference_with_median_statistic():
    a, b = [1.0, 5.0, 2.0, 8.0, 3.0], [2.0, 9.0, 2.5, 9.0, 4.0]
    result = paired_bootstrap_difference(a, b, statistic=np.median, n_resamples=200)
    assert result["difference"] == pytest.approx(np.median(b) - np.median(a))


def test_paired_difference_of_empty_samples_is_nan():
    result = paired_bootstrap_difference([], [])
    assert math.isnan(result["difference"]) and all(math.isnan(v) for v in result["ci"])


# ---------------------------------------------------------------- shared contracts


def test_results_are_plain_python_numbers():
    rng = np.random.default_rng(18)
    scores = rng.uniform(size=(4, 2))
    results = [
        bootstrap_interval(rng.normal(size=10), n_resamples=50),
        iqm(np.arange(6)),
        iqm_interval(scores, n_resamples=50),
        mcnemar_exact(np.array([True, False, True]), np.array([True, True, False])),
        probability_of_improvement(np.arange(3), np.arange(4)),
        probability_of_improvement_interval(scores, scores + 0.1, n_resamples=50),
        paired_bootstrap_difference(np.arange(5.0), np.arange(5.0) ** 2, n_resamples=50),
    ]

    def leaves(obj):
        if isinstance(obj, dict):
            return [leaf for v in obj.values() for leaf in leaves(v)]
        if isinstance(obj, list | tuple):
            return [leaf for v in obj for leaf in leaves(v)]
        return [obj]

    for result in results:
        assert all(type(leaf) in (int, float) for leaf in leaves(result)), result
        json.dumps(result, allow_nan=False)


def test_wilson_interval_is_reexported():
    from residual_bench.episodes import metrics

    assert wilson_interval is metrics.wilson_interval


GOOD_2D = np.ones((3, 2))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: bootstrap_interval([1.0, math.nan]), "values contains NaN or inf"),
        (lambda: bootstrap_interval([1.0, math.inf]), "values contains NaN or inf"),
        (lambda: bootstrap_interval([[1.0, 2.0]]), r"values must be 1-D"),
        (lambda: bootstrap_interval(["a", "b"]), "values must be numeric"),
        (lambda: bootstrap_interval([1.0, 2.0], confidence=0.0), "confidence"),
        (lambda: bootstrap_interval([1.0, 2.0], confidence=1.0), "confidence"),
        (lambda: bootstrap_interval([1.0, 2.0], confidence=math.nan), "confidence"),
        (lambda: bootstrap_interval([1.0, 2.0], n_resamples=0), "n_resamples must be >= 1"),
        (lambda: bootstrap_interval([1.0, 2.0], n_resamples=2.5), "n_resamples must be an int"),
        (lambda: iqm([1.0, math.nan]), "values contains NaN or inf"),
        (lambda: iqm_interval([1.0, 2.0]), r"scores must be 2-D"),
        (lambda: iqm_interval(np.ones((0, 3))), "scores needs at least one run"),
        (lambda: iqm_interval([[1.0, math.nan]]), "scores contains NaN or inf"),
        (lambda: iqm_interval(GOOD_2D, confidence=1.5), "confidence"),
        (lambda: iqm_interval(GOOD_2D, n_resamples=-3), "n_resamples"),
        (lambda: probability_of_improvement([[1.0]], [1.0]), r"x must be 1-D"),
        (lambda: probability_of_improvement([1.0], [math.nan]), "y contains NaN or inf"),
        (
            lambda: probability_of_improvement_interval(GOOD_2D, np.ones((3, 4))),
            r"x_scores and y_scores must have the same number of tasks.*got 2 and 4",
        ),
        (lambda: probability_of_improvement_interval([1.0], GOOD_2D), r"x_scores must be 2-D"),
        (
            lambda: probability_of_improvement_interval(GOOD_2D, [[math.inf, 1.0]]),
            "y_scores contains NaN or inf",
        ),
        (
            lambda: probability_of_improvement_interval(GOOD_2D, GOOD_2D, confidence=-0.1),
            "confidence",
        ),
        (lambda: paired_bootstrap_difference([1.0, 2.0], [1.0]), r"a and b .*got 2 and 1"),
        (lambda: paired_bootstrap_difference([math.nan], [1.0]), "a contains NaN or inf"),
        (lambda: paired_bootstrap_difference([1.0], [[1.0]]), r"b must be 1-D"),
        (lambda: paired_bootstrap_difference([1.0], [2.0], n_resamples=0), "n_resamples"),
    ],
)
def test_invalid_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
