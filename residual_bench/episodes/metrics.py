"""Benchmark metrics as pure functions of per-step arrays and episode records.

Conventions shared by every function (the full definitions are in ``docs/metrics.md``):

- ``times[i]`` is the simulated time at the END of control step ``i``; the per-step signals
  (``is_grasped``, ``tcp_to_object_xy``, ``success``) are sampled at those instants.
- The state "at" an event is the last sample taken at or before the event time; samples
  strictly after the event time are post-event. An event before the first sample finds the
  object not grasped, not aligned and the task not solved (the state after ``reset``).
- Time comparisons use a tolerance of :data:`TIME_EPS` so that ``3 * 0.05`` counts as 0.15 s.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest

from residual_bench.episodes.records import EpisodeRecord, PerturbationEvent

TIME_EPS = 1e-9
ALIGN_TOL_M = 0.02
STABLE_S = 0.1
LATENCY = "latency"
RATE_HORIZONS: tuple[float, ...] = (0.15, 0.5, 1.0)
REACTION_HORIZONS: tuple[float, ...] = (0.05, 0.15, 0.5)
# 0, 0.05, ..., 3.0 s; rounded so that the JSON keys and values print cleanly.
CURVE_HORIZONS: np.ndarray = np.round(np.arange(61) * 0.05, 10)


def _as_1d(name: str, values: Any, n: int | None, dtype: type) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        raise ValueError(f"{name} must be 1-D with {n} entries, got shape {arr.shape}")
    return arr


def _validate_times(times: Any) -> np.ndarray:
    t = _as_1d("times", times, None, float)
    if t.size > 1 and np.any(np.diff(t) <= 0.0):
        raise ValueError("times must be strictly increasing")
    return t


def state_index(times: np.ndarray, t: float) -> int:
    """Index of the last sample taken at or before ``t`` (``-1`` if there is none)."""
    return int(np.searchsorted(times, t + TIME_EPS, side="right")) - 1


def grasped_at(event_time: float, times: Any, is_grasped: Any) -> bool:
    """Whether the object was grasped in the last sample at or before ``event_time``."""
    t = _validate_times(times)
    g = _as_1d("is_grasped", is_grasped, t.size, bool)
    i = state_index(t, event_time)
    return bool(g[i]) if i >= 0 else False


def stable_starts(times: np.ndarray, cond: np.ndarray, stable_s: float) -> np.ndarray:
    """Mark samples that start a window in which ``cond`` holds for ``stable_s`` seconds.

    Sample ``i`` qualifies when ``cond`` is true at every sample in ``[t_i, t_i + stable_s]``
    and the episode lasts until at least ``t_i + stable_s`` (a window cut off by the end of the
    episode is not stable).
    """
    n = cond.size
    run_end = np.full(n, -1, dtype=int)
    for i in range(n - 1, -1, -1):
        if cond[i]:
            run_end[i] = run_end[i + 1] if i + 1 < n and cond[i + 1] else i
    # First sample at or after the end of the window starting at each sample.
    window_end = np.searchsorted(times, times + stable_s - TIME_EPS, side="left")
    return cond & (window_end < n) & (run_end >= window_end)


def recovery_time(
    event: PerturbationEvent,
    times: Any,
    is_grasped: Any,
    tcp_to_object_xy: Any,
    success: Any,
    *,
    align_tol_m: float = ALIGN_TOL_M,
    stable_s: float = STABLE_S,
) -> float | None:
    """Simulated seconds from a perturbation until recovery, ``None`` if never recovered.

    Recovery is the earliest post-event sample at which either the task condition holds, or a
    stable window starts in which the pre-event grasp state is restored: grasped if the object
    was grasped at the event, otherwise aligned (``tcp_to_object_xy <= align_tol_m``) or
    grasped. The time is measured to the START of the stable window. For ``latency`` events
    only samples at or after the end of the stall count and the time is measured from the end
    of the stall. An event that finds the task already solved has recovery time 0.

    :param event: the perturbation (its ``type``, ``time`` and ``duration`` are used).
    :param times: sample times, strictly increasing, shape (T,).
    :param is_grasped: grasp flag per sample, shape (T,).
    :param tcp_to_object_xy: horizontal gripper-object distance in metres per sample, (T,).
    :param success: task condition per sample, shape (T,).
    :param align_tol_m: horizontal distance under which the gripper counts as aligned.
    :param stable_s: how long the restored state must persist.
    :return: recovery time in simulated seconds, or ``None``.
    """
    t = _validate_times(times)
    g = _as_1d("is_grasped", is_grasped, t.size, bool)
    d = _as_1d("tcp_to_object_xy", tcp_to_object_xy, t.size, float)
    s = _as_1d("success", success, t.size, bool)
    if event.duration < 0.0:
        raise ValueError(f"event duration must be >= 0, got {event.duration}")
    pre = state_index(t, event.time)
    if pre >= 0 and s[pre]:
        return 0.0
    was_grasped = pre >= 0 and bool(g[pre])
    origin = event.time + event.duration if event.type == LATENCY else event.time
    candidate = (t > event.time + TIME_EPS) & (t >= origin - TIME_EPS)
    # NaN distances compare False, i.e. an unknown distance is never "aligned".
    restored = g if was_grasped else g | (d <= align_tol_m)
    hits = np.flatnonzero(candidate & (s | stable_starts(t, restored, stable_s)))
    if hits.size == 0:
        return None
    return max(0.0, float(t[hits[0]] - origin))


def _recovery_times(items: Iterable[PerturbationEvent | float | None]) -> list[float | None]:
    return [i.recovery_time if isinstance(i, PerturbationEvent) else i for i in items]


def _count_within(times: Sequence[float | None], horizon: float) -> int:
    return sum(1 for rt in times if rt is not None and rt <= horizon + TIME_EPS)


def recovery_rate_at(items: Iterable[PerturbationEvent | float | None], horizon: float) -> float:
    """Fraction of events recovered within ``horizon`` seconds (nan if there are no events).

    :param items: events (their ``recovery_time`` is used) or recovery times, ``None`` = never.
    :param horizon: horizon in simulated seconds, inclusive.
    """
    times = _recovery_times(items)
    return _count_within(times, horizon) / len(times) if times else math.nan


def recovery_curve(
    items: Iterable[PerturbationEvent | float | None], horizons: Any = CURVE_HORIZONS
) -> np.ndarray:
    """Recovery rate at each horizon (all nan if there are no events).

    :param items: events or recovery times, ``None`` = never recovered.
    :param horizons: horizons in simulated seconds, shape (H,).
    :return: rates, shape (H,).
    """
    times = _recovery_times(items)
    h = _as_1d("horizons", horizons, None, float)
    return np.array([recovery_rate_at(times, x) for x in h], dtype=float)


def _reaction_times(events: Iterable[PerturbationEvent]) -> list[float | None]:
    """Reaction times of the events that have a reaction rule (``None`` = never reacted)."""
    return [e.reaction_time for e in events if e.reaction_rule is not None]


def reaction_rate_at(events: Iterable[PerturbationEvent], horizon: float) -> float:
    """Fraction of events with a reaction rule that reacted within ``horizon`` seconds.

    Events without a rule (``reaction_rule`` is ``None``: the type has none, or the record
    predates reaction times) are left out; nan if no event has one.

    :param events: perturbation events (``reaction_rule`` and ``reaction_time`` are used).
    :param horizon: horizon in simulated seconds, inclusive.
    """
    times = _reaction_times(events)
    return _count_within(times, horizon) / len(times) if times else math.nan


def reaction_time_median(events: Iterable[PerturbationEvent]) -> float | None:
    """Median reaction time over the events with a reaction rule, an event that never reacted
    counting as infinitely late; ``None`` without such events or when the median is one that
    never reacted (half of them or more did not)."""
    times = [math.inf if t is None else t for t in _reaction_times(events)]
    median = statistics.median(times) if times else math.inf
    return float(median) if math.isfinite(median) else None


def first_success_time(times: Any, success: Any) -> float | None:
    """Time of the first sample at which the task condition holds, ``None`` if never."""
    t = _validate_times(times)
    hits = np.flatnonzero(_as_1d("success", success, t.size, bool))
    return float(t[hits[0]]) if hits.size else None


def completion_time(times: Any, success: Any) -> float | None:
    """Seconds from reset to the first success, only for episodes that end in success."""
    s = _as_1d("success", success, None, bool)
    if s.size == 0 or not s[-1]:
        return None
    return first_success_time(times, s)


def _mean_diff_norm(actions: Any, dt: float, order: int) -> float | None:
    a = np.asarray(actions, dtype=float)
    if a.ndim != 2 or dt <= 0.0:
        raise ValueError(f"need actions of shape (T, D) and dt > 0, got {a.shape} and {dt}")
    if a.shape[0] <= order:
        return None
    return float(np.mean(np.linalg.norm(np.diff(a, n=order, axis=0), axis=1)) / dt**order)


def action_rate(actions: Any, dt: float) -> float | None:
    """Mean over steps of ``||a[i+1] - a[i]||_2 / dt`` in action units per second.

    :param actions: executed actions, shape (T, D).
    :param dt: control period in simulated seconds.
    :return: the mean rate, ``None`` with fewer than two actions.
    """
    return _mean_diff_norm(actions, dt, 1)


def action_jerk(actions: Any, dt: float) -> float | None:
    """Mean over steps of ``||a[i+2] - 2 a[i+1] + a[i]||_2 / dt^2`` in action units per s^2.

    :param actions: executed actions, shape (T, D).
    :param dt: control period in simulated seconds.
    :return: the mean, ``None`` with fewer than three actions.
    """
    return _mean_diff_norm(actions, dt, 2)


def mean_abs_residual_ratio(residual_actions: Any, alphas: Any) -> float | None:
    """Mean of ``|alpha * tanh(r)| / alpha`` over steps and action dimensions.

    Dimensions with ``alpha == 0`` have no residual authority and are left out.

    :param residual_actions: applied corrections ``alpha * tanh(r)``, shape (T, D).
    :param alphas: residual scale, broadcastable to (T, D).
    :return: the mean ratio in [0, 1], ``None`` without residual data or authority.
    """
    r = np.abs(np.asarray(residual_actions, dtype=float))
    if r.size == 0:
        return None
    a = np.broadcast_to(np.asarray(alphas, dtype=float), r.shape)
    active = a > 0.0
    if not np.any(active):
        return None
    return float(np.mean(r[active] / a[active]))


def smoothness(
    actions: Any, dt: float, residual_actions: Any = None, alphas: Any = None
) -> dict[str, float | None]:
    """The three smoothness metrics of one episode.

    :return: ``{"mean_abs_residual_ratio", "action_jerk", "action_rate"}``.
    """
    ratio = None
    if residual_actions is not None and alphas is not None:
        ratio = mean_abs_residual_ratio(residual_actions, alphas)
    return {
        "mean_abs_residual_ratio": ratio,
        "action_jerk": action_jerk(actions, dt),
        "action_rate": action_rate(actions, dt),
    }


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials, ``(nan, nan)`` if ``n == 0``."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (math.nan, math.nan)
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def _json_float(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = wilson_interval(k, n)
    return {
        "rate": _json_float(k / n if n else math.nan),
        "k": k,
        "n": n,
        "ci": [_json_float(lo), _json_float(hi)],
    }


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def summarize(
    records: Sequence[EpisodeRecord],
    horizons: Sequence[float] = RATE_HORIZONS,
    reaction_horizons: Sequence[float] = REACTION_HORIZONS,
) -> dict[str, Any]:
    """Aggregate episode records into the benchmark metrics (JSON-serialisable).

    Records are pooled as given; group them by suite, base and residual first.
    Undefined quantities (no successes, no events, ...) are ``None``.

    :param records: episode records.
    :param horizons: horizons for ``recovery_rate_at``.
    :param reaction_horizons: horizons for ``reaction_rate_at``.
    :return: dict of plain ints, floats, lists, dicts and ``None``.
    """
    n = len(records)
    n_success = sum(r.success for r in records)
    completions = [
        r.first_success_time for r in records if r.success and r.first_success_time is not None
    ]
    perturbed = [r for r in records if r.perturbed]
    events = [e for r in records for e in r.events]
    times = _recovery_times(events)
    by_type: dict[str, list[float | None]] = {}
    for e in events:
        by_type.setdefault(e.type, []).append(e.recovery_time)
    curve = recovery_curve(times, CURVE_HORIZONS)
    return {
        "n_episodes": n,
        "success_rate": _rate(n_success, n),
        "completion_time_mean": _mean(completions),
        "completion_time_median": float(statistics.median(completions)) if completions else None,
        "n_perturbed_episodes": len(perturbed),
        "n_events": len(events),
        "recovery_rate": _rate(sum(r.success for r in perturbed), len(perturbed)),
        "recovery_rate_at": {
            repr(float(h)): _rate(_count_within(times, h), len(times)) for h in horizons
        },
        "recovery_curve": {
            "horizons": [float(h) for h in CURVE_HORIZONS],
            "rates": [_json_float(x) for x in curve],
        },
        "events_by_type": {
            kind: {
                "n_events": len(ts),
                "recovery_rate_at": {
                    repr(float(h)): _json_float(recovery_rate_at(ts, h)) for h in horizons
                },
            }
            for kind, ts in sorted(by_type.items())
        },
        "mean_abs_residual_ratio": _mean(r.mean_abs_residual_ratio for r in records),
        "action_jerk": _mean(r.action_jerk for r in records),
        "action_rate": _mean(r.action_rate for r in records),
        **_reaction_summary(events, reaction_horizons),
    }


def _reaction_summary(events: list[PerturbationEvent], horizons: Sequence[float]) -> dict[str, Any]:
    reacting = _reaction_times(events)
    by_type: dict[str, list[PerturbationEvent]] = {}
    for e in events:
        if e.reaction_rule is not None:
            by_type.setdefault(e.type, []).append(e)
    return {
        "n_reaction_events": len(reacting),
        "reaction_rate_at": {
            repr(float(h)): _rate(_count_within(reacting, h), len(reacting)) for h in horizons
        },
        "reaction_time_median": reaction_time_median(events),
        "reactions_by_type": {
            kind: {
                "n_events": len(es),
                "reaction_rate_at": {
                    repr(float(h)): _json_float(reaction_rate_at(es, h)) for h in horizons
                },
                "reaction_time_median": reaction_time_median(es),
            }
            for kind, es in sorted(by_type.items())
        },
    }
