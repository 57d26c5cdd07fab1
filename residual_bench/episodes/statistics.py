"""Statistics the benchmark reports, built on numpy and scipy only.

- Success rates: Wilson score interval, ``wilson_interval`` from ``metrics`` (re-exported).
- Times (completion, recovery) are skewed, so their intervals use the percentile bootstrap
  (:func:`bootstrap_interval`).
- Across training seeds: interquartile mean (:func:`iqm`), robust to one diverged seed, with a
  stratified bootstrap interval (:func:`iqm_interval`).
- Base versus base-plus-residual on the same episode seeds: exact McNemar test on the paired
  successes (:func:`mcnemar_exact`); :func:`paired_bootstrap_difference` for paired values.
- Method comparisons: probability of improvement (:func:`probability_of_improvement`,
  :func:`probability_of_improvement_interval`).

All functions return plain Python numbers, ready for JSON.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import binomtest, trim_mean

from residual_bench.episodes.metrics import wilson_interval

__all__ = [
    "bootstrap_interval",
    "iqm",
    "iqm_interval",
    "mcnemar_exact",
    "paired_bootstrap_difference",
    "probability_of_improvement",
    "probability_of_improvement_interval",
    "wilson_interval",
]

Statistic = Callable[..., Any]


def _finite_array(name: str, values: Any, ndim: int | None) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _runs_by_tasks(name: str, scores: Any) -> np.ndarray:
    arr = _finite_array(name, scores, 2)
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} needs at least one run and one task, got shape {arr.shape}")
    return arr


def _check_settings(confidence: float, n_resamples: int) -> None:
    # Written as a negated range test so that NaN is rejected too.
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer):
        raise ValueError(f"n_resamples must be an integer, got {n_resamples!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")


def _percentiles(stats: np.ndarray, confidence: float) -> list[float]:
    alpha = 1.0 - confidence
    lo, hi = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return [float(lo), float(hi)]


def _per_row(statistic: Statistic, samples: np.ndarray) -> np.ndarray:
    """``statistic`` of every row of ``samples``, in one call when it understands ``axis``."""
    try:
        out = np.asarray(statistic(samples, axis=1), dtype=float)
        if out.shape == (samples.shape[0],):
            return out
    except TypeError:  # no ``axis`` argument; a statistic that ignores ``axis`` falls through too
        pass
    return np.array([float(statistic(row)) for row in samples])


def bootstrap_interval(
    values: Any,
    statistic: Statistic = np.mean,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic(values)``.

    Args:
        values: 1-D finite sample.
        statistic: Reduces a 1-D array to a number; called with ``axis=1`` when it accepts it.
        confidence: Coverage of the interval, in (0, 1).
        n_resamples: Number of resamples drawn with replacement (>= 1).
        seed: Seed for ``np.random.default_rng``.

    Returns:
        ``(lo, hi)``; ``(nan, nan)`` for an empty sample, ``(s, s)`` with ``s = statistic(values)``
        for a single value.

    Raises:
        ValueError: If ``values`` is not 1-D or not finite, or a setting is out of range.
    """
    x = _finite_array("values", values, 1)
    _check_settings(confidence, n_resamples)
    if x.size == 0:
        return (math.nan, math.nan)
    if x.size == 1:
        s = float(statistic(x))
        return (s, s)
    idx = np.random.default_rng(seed).integers(0, x.size, size=(n_resamples, x.size))
    lo, hi = _percentiles(_per_row(statistic, x[idx]), confidence)
    return (lo, hi)


def iqm(values: Any) -> float:
    """Interquartile mean: the mean of the middle 50% of the flattened values.

    Follows ``scipy.stats.trim_mean(x, 0.25)``: ``int(0.25 * n)`` values are cut from each end.

    Args:
        values: Finite numbers of any shape; they are flattened.

    Returns:
        The interquartile mean, ``nan`` if there are no values.

    Raises:
        ValueError: If ``values`` contains NaN or inf.
    """
    x = _finite_array("values", values, None).ravel()
    if x.size == 0:
        return math.nan
    return float(trim_mean(x, 0.25))


def iqm_interval(
    scores: Any, confidence: float = 0.95, n_resamples: int = 2_000, seed: int = 0
) -> dict[str, Any]:
    """IQM over all runs and tasks with a stratified bootstrap interval.

    Each resample draws runs with replacement independently within every task column, so each
    task keeps its weight in the aggregate.

    Args:
        scores: Finite array of shape ``(n_runs, n_tasks)``, e.g. training seeds x suites.
        confidence: Coverage of the interval, in (0, 1).
        n_resamples: Number of bootstrap resamples.
        seed: Seed for ``np.random.default_rng``.

    Returns:
        ``{"iqm": float, "ci": [lo, hi], "n_runs": int, "n_tasks": int}``.

    Raises:
        ValueError: If ``scores`` is not 2-D, empty or not finite, or a setting is invalid.
    """
    s = _runs_by_tasks("scores", scores)
    _check_settings(confidence, n_resamples)
    n_runs, n_tasks = s.shape
    idx = np.random.default_rng(seed).integers(0, n_runs, size=(n_resamples, n_runs, n_tasks))
    resampled = s[idx, np.arange(n_tasks)].reshape(n_resamples, -1)
    stats = trim_mean(resampled, 0.25, axis=1)
    return {
        "iqm": iqm(s),
        "ci": _percentiles(stats, confidence),
        "n_runs": int(n_runs),
        "n_tasks": int(n_tasks),
    }


def _binary(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf" or not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{name} must contain only booleans or 0/1")
    return arr.astype(bool)


def mcnemar_exact(a_success: Any, b_success: Any) -> dict[str, Any]:
    """Exact two-sided McNemar test for paired binary outcomes of two methods.

    Args:
        a_success: Per-episode success of method A (booleans or 0/1).
        b_success: Per-episode success of method B on the same episodes, in the same order.

    Returns:
        ``{"n", "n01", "n10", "p_value", "difference"}`` where ``n01`` counts episodes A fails
        and B solves, ``n10`` the reverse, and ``difference`` is B's success rate minus A's
        (``nan`` when there are no episodes). ``p_value`` is 1.0 without discordant pairs.

    Raises:
        ValueError: If an input is not 1-D binary, or the lengths differ.
    """
    a = _binary("a_success", a_success)
    b = _binary("b_success", b_success)
    if a.size != b.size:
        raise ValueError(
            f"a_success and b_success must have the same length, got {a.size} and {b.size}"
        )
    n01 = int(np.sum(~a & b))
    n10 = int(np.sum(a & ~b))
    discordant = n01 + n10
    p_value = 1.0
    if discordant:
        p_value = float(binomtest(min(n01, n10), discordant, 0.5).pvalue)
    n = int(a.size)
    difference = (n01 - n10) / n if n else math.nan
    return {"n": n, "n01": n01, "n10": n10, "p_value": p_value, "difference": float(difference)}


def probability_of_improvement(x: Any, y: Any) -> float:
    """``P(X > Y) + 0.5 P(X = Y)`` for independent draws from samples ``x`` and ``y``.

    Equals the Mann-Whitney U statistic of ``x`` divided by ``len(x) * len(y)``.

    Args:
        x: 1-D finite sample of the method claimed to improve.
        y: 1-D finite sample of the method compared against.

    Returns:
        The probability, ``nan`` if either sample is empty.

    Raises:
        ValueError: If a sample is not 1-D or not finite.
    """
    xa = _finite_array("x", x, 1)
    ya = _finite_array("y", y, 1)
    if xa.size == 0 or ya.size == 0:
        return math.nan
    # Sorting counts the wins without building the len(x) x len(y) comparison matrix.
    ys = np.sort(ya)
    below = np.searchsorted(ys, xa, side="left")
    at_or_below = np.searchsorted(ys, xa, side="right")
    u = np.sum(below) + 0.5 * np.sum(at_or_below - below)
    return float(u / (xa.size * ya.size))


def probability_of_improvement_interval(
    x_scores: Any,
    y_scores: Any,
    confidence: float = 0.95,
    n_resamples: int = 2_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Task-averaged probability of improvement with a stratified bootstrap interval.

    Args:
        x_scores: Finite array ``(n_runs_x, n_tasks)`` of the method claimed to improve.
        y_scores: Finite array ``(n_runs_y, n_tasks)`` of the method compared against.
        confidence: Coverage of the interval, in (0, 1).
        n_resamples: Number of bootstrap resamples.
        seed: Seed for ``np.random.default_rng``.

    Returns:
        ``{"probability": float, "ci": [lo, hi]}``; the point estimate is the mean over tasks of
        :func:`probability_of_improvement` of the two task columns.

    Raises:
        ValueError: If an input is not 2-D, empty or not finite, the task counts differ, or a
            setting is invalid.
    """
    xs = _runs_by_tasks("x_scores", x_scores)
    ys = _runs_by_tasks("y_scores", y_scores)
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(
            "x_scores and y_scores must have the same number of tasks (columns), "
            f"got {xs.shape[1]} and {ys.shape[1]}"
        )
    _check_settings(confidence, n_resamples)
    rng = np.random.default_rng(seed)
    nx, ny, n_tasks = xs.shape[0], ys.shape[0], xs.shape[1]
    point = float(np.mean([probability_of_improvement(xs[:, t], ys[:, t]) for t in range(n_tasks)]))
    stats = np.zeros(n_resamples)
    for t in range(n_tasks):
        # A resample only matters through how often each run was drawn, so the average over
        # resampled pairs is cx @ wins @ cy / (nx * ny) for the multinomial draw counts cx, cy.
        cx = rng.multinomial(nx, np.full(nx, 1.0 / nx), size=n_resamples)
        cy = rng.multinomial(ny, np.full(ny, 1.0 / ny), size=n_resamples)
        x, y = xs[:, t, None], ys[None, :, t]
        wins = (x > y) + 0.5 * (x == y)
        stats += np.einsum("ri,ij,rj->r", cx, wins, cy) / (nx * ny)
    return {"probability": point, "ci": _percentiles(stats / n_tasks, confidence)}


def paired_bootstrap_difference(
    a: Any,
    b: Any,
    statistic: Statistic = np.mean,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """``statistic(b) - statistic(a)`` for paired samples, with a paired bootstrap interval.

    Pairs are resampled together, so the correlation between ``a[i]`` and ``b[i]`` (e.g. the
    same episode seed) is kept.

    Args:
        a: 1-D finite sample of the reference method.
        b: 1-D finite sample of the other method, paired with ``a`` element by element.
        statistic: Reduces a 1-D array to a number; used with ``axis=1`` when it accepts it.
        confidence: Coverage of the interval, in (0, 1).
        n_resamples: Number of bootstrap resamples.
        seed: Seed for ``np.random.default_rng``.

    Returns:
        ``{"difference": float, "ci": [lo, hi]}``; all ``nan`` for empty samples.

    Raises:
        ValueError: If a sample is not 1-D or not finite, the lengths differ, or a setting is
            out of range.
    """
    aa = _finite_array("a", a, 1)
    bb = _finite_array("b", b, 1)
    if aa.size != bb.size:
        raise ValueError(f"a and b must have the same length, got {aa.size} and {bb.size}")
    _check_settings(confidence, n_resamples)
    if aa.size == 0:
        return {"difference": math.nan, "ci": [math.nan, math.nan]}
    difference = float(statistic(bb)) - float(statistic(aa))
    idx = np.random.default_rng(seed).integers(0, aa.size, size=(n_resamples, aa.size))
    stats = _per_row(statistic, bb[idx]) - _per_row(statistic, aa[idx])
    return {"difference": difference, "ci": _percentiles(stats, confidence)}
