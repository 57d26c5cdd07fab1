"""Behaviour of the benchmark metrics on small hand-built trajectories.

Trajectories are sampled every 0.05 s: sample ``i`` is taken at ``t = 0.05 * (i + 1)``.
Grasp and success flags are written as strings of ``1``/``0``, one character per sample.
"""

import json
import math

import numpy as np
import pytest

from residual_bench.episodes.metrics import (
    CURVE_HORIZONS,
    action_jerk,
    action_rate,
    completion_time,
    first_success_time,
    grasped_at,
    mean_abs_residual_ratio,
    recovery_curve,
    recovery_rate_at,
    recovery_time,
    summarize,
    wilson_interval,
)
from residual_bench.episodes.records import EpisodeRecord, PerturbationEvent

DT = 0.05


def times(n):
    return DT * np.arange(1, n + 1)


def flags(s):
    return np.array([c == "1" for c in s])


def event(kind, t, duration=0.0, recovery=None):
    return PerturbationEvent(kind, "time", t, 1.0, "mug", duration, {}, recovery)


def rec(kind, t, grasp, success=None, xy=None, duration=0.0, **kw):
    n = len(grasp)
    success = "0" * n if success is None else success
    xy = np.full(n, 0.5) if xy is None else np.asarray(xy, dtype=float)
    ev = event(kind, t, duration)
    return recovery_time(ev, times(n), flags(grasp), xy, flags(success), **kw)


# --- events while the object is grasped -------------------------------------------------


def test_recovery_time_is_measured_from_event_to_regrasp():
    # Grasped until 0.30 s, drop at 0.32 s, grasped again from 0.55 s (sample 10).
    rt = rec("drop", 0.32, "111111" + "0000" + "1111111111")
    assert rt == pytest.approx(0.55 - 0.32)


def test_recovery_counts_from_start_of_stable_window_not_its_end():
    # A one-sample regrasp at 0.45 s is a flicker; the stable window starts at 0.55 s and
    # is only confirmed at 0.65 s, but recovery is dated to its start.
    rt = rec("poke", 0.32, "111111" + "0010" + "1111111111")
    assert rt == pytest.approx(0.23)


def test_regrasp_cut_off_by_episode_end_is_not_a_recovery():
    assert rec("drop", 0.32, "111111" + "0000" + "11") is None


def test_never_recovered_event_has_no_recovery_time():
    grasp = "111111" + "0" * 14
    assert rec("drop", 0.32, grasp) is None
    assert grasped_at(0.32, times(len(grasp)), flags(grasp)) is True


def test_success_short_circuits_recovery():
    # The object is never regrasped but falls into the goal at 0.70 s (sample 13).
    grasp = "111111" + "0" * 14
    success = "0" * 13 + "1" * 7
    assert rec("drop", 0.32, grasp, success) == pytest.approx(0.70 - 0.32)


def test_success_before_stable_regrasp_wins():
    grasp = "111111" + "0000" + "1111111111"
    success = "0" * 7 + "1" * 13  # success from 0.40 s, before the regrasp at 0.55 s
    assert rec("drop", 0.32, grasp, success) == pytest.approx(0.40 - 0.32)


def test_grasp_that_survives_the_event_recovers_at_the_first_post_event_sample():
    assert rec("poke", 0.32, "1" * 20) == pytest.approx(0.35 - 0.32)


# --- events before the grasp -------------------------------------------------------------


def test_poke_before_grasp_recovers_when_realigned_within_tolerance():
    # Aligned at 0.10 s, poked at 0.12 s, back within 2 cm (inclusive) from 0.40 s.
    xy = [0.05, 0.01, 0.08, 0.08, 0.07, 0.05, 0.03, 0.02, 0.015, 0.01, 0.01, 0.01]
    assert rec("poke", 0.12, "0" * 12, xy=xy) == pytest.approx(0.40 - 0.12)


def test_alignment_tolerance_is_configurable():
    xy = [0.05, 0.01, 0.08, 0.08, 0.07, 0.05, 0.03, 0.02, 0.015, 0.01, 0.01, 0.01]
    assert rec("poke", 0.12, "0" * 12, xy=xy, align_tol_m=0.012) == pytest.approx(0.50 - 0.12)


def test_alignment_then_grasp_form_one_stable_window():
    # Aligned at 0.20 and 0.25 s, then grasped (distance no longer within tolerance).
    xy = [0.08, 0.08, 0.08, 0.01, 0.01, 0.03, 0.03, 0.03]
    assert rec("slide", 0.12, "00000111", xy=xy) == pytest.approx(0.20 - 0.12)


def test_unknown_distance_never_counts_as_aligned():
    xy = [0.08, 0.08, np.nan, np.nan, np.nan, np.nan]
    assert rec("slide", 0.07, "000000", xy=xy) is None


def test_sample_taken_at_the_event_time_is_the_pre_event_state():
    # An event applied after the physics of the step ending at 0.20 s is stamped 0.20 s;
    # that sample still shows the grasp, the drop shows from 0.25 s.
    grasp = "1111" + "000" + "111"
    assert grasped_at(0.20, times(10), flags(grasp)) is True
    assert rec("drop", 0.20, grasp) == pytest.approx(0.40 - 0.20)


def test_event_before_first_sample_finds_object_not_grasped():
    assert grasped_at(0.0, times(3), flags("111")) is False


# --- latency -----------------------------------------------------------------------------


def test_latency_recovery_is_measured_from_the_stall_end():
    # Stall from 0.20 to 0.50 s; grasp lost at 0.25 s, regrasped stably from 0.60 s.
    grasp = "1111" + "0" * 7 + "1" * 10
    assert rec("latency", 0.20, grasp, duration=0.30) == pytest.approx(0.10)


def test_latency_state_restored_during_the_stall_counts_at_the_stall_end():
    grasp = "1111" + "00" + "1111111111"  # back in hand at 0.35 s, stall ends at 0.50 s
    assert rec("latency", 0.20, grasp, duration=0.30) == pytest.approx(0.0)


def test_latency_without_grasp_needs_alignment_after_the_stall():
    xy = [0.01] * 3 + [0.05] * 8 + [0.01] * 5  # misaligned 0.20-0.55 s, aligned from 0.60 s
    rt = rec("latency", 0.15, "0" * 16, xy=xy, duration=0.20)
    assert rt == pytest.approx(0.60 - 0.35)


# --- events after success ----------------------------------------------------------------


def test_event_while_success_holds_has_zero_recovery_time():
    assert rec("poke", 0.32, "0" * 10, success="0000011111") == 0.0


def test_event_after_success_was_lost_is_measured_normally():
    grasp = "0" * 10
    success = "0111000111"  # held 0.10-0.20 s, lost at 0.25 s, back at 0.40 s
    assert rec("poke", 0.27, grasp, success) == pytest.approx(0.40 - 0.27)


def test_recovery_time_rejects_inconsistent_inputs():
    ev = event("poke", 0.1)
    with pytest.raises(ValueError, match="increasing"):
        recovery_time(ev, [0.1, 0.1, 0.2], flags("000"), [0, 0, 0], flags("000"))
    with pytest.raises(ValueError, match="is_grasped"):
        recovery_time(ev, times(3), flags("00"), [0, 0, 0], flags("000"))


# --- rates and curves --------------------------------------------------------------------


def test_recovery_rate_at_150ms_includes_the_boundary():
    rts = [3 * 0.05, 0.2, None, 0.1]  # 3 * 0.05 is 0.15000000000000002 in floating point
    assert recovery_rate_at(rts, 0.15) == 0.5
    assert recovery_rate_at(rts, 0.5) == 0.75
    assert recovery_rate_at(rts, 1.0) == 0.75
    events = [event("poke", 0.0, recovery=r) for r in rts]
    assert recovery_rate_at(events, 0.15) == 0.5


def test_recovery_curve_counts_never_recovered_events_as_infinite():
    curve = recovery_curve([0.0, 0.1, None], [0.0, 0.05, 0.1, 10.0])
    np.testing.assert_allclose(curve, [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert np.isnan(recovery_curve([], [0.1])).all()
    assert math.isnan(recovery_rate_at([], 0.5))


# --- completion time ---------------------------------------------------------------------


def test_completion_time_is_first_success_of_successful_episodes():
    success = flags("00000011100011")  # first at 0.35 s, lost, holds again at the end
    assert completion_time(times(14), success) == pytest.approx(0.35)
    failed = flags("00000011100000")
    assert first_success_time(times(14), failed) == pytest.approx(0.35)
    assert completion_time(times(14), failed) is None


# --- smoothness --------------------------------------------------------------------------


def test_jerk_of_constant_and_linear_ramp_actions_is_zero():
    constant = np.full((10, 7), 0.3)
    ramp = np.outer(np.arange(10), np.linspace(-0.1, 0.1, 7))
    assert action_jerk(constant, DT) == 0.0
    assert action_jerk(ramp, DT) == pytest.approx(0.0, abs=1e-9)
    assert action_rate(constant, DT) == 0.0


def test_action_rate_and_jerk_are_normalised_by_dt():
    ramp = np.zeros((5, 2))
    ramp[:, 0] = 0.1 * np.arange(5)
    assert action_rate(ramp, DT) == pytest.approx(0.1 / DT)  # 2 action units / s
    quad = np.zeros((4, 2))
    quad[:, 0] = 0.03 * np.arange(4) ** 2 / 2
    quad[:, 1] = 0.04 * np.arange(4) ** 2 / 2
    assert action_jerk(quad, 0.1) == pytest.approx(0.05 / 0.1**2)  # |(0.03, 0.04)| = 0.05
    assert action_jerk(quad[:2], 0.1) is None
    assert action_rate(quad[:1], 0.1) is None


def test_residual_ratio_averages_over_dimensions_with_authority():
    residual = np.array([[0.05, -0.1], [0.0, 0.2]])
    assert mean_abs_residual_ratio(residual, [0.1, 0.2]) == pytest.approx(0.5)
    assert mean_abs_residual_ratio([[0.05, 0.0], [0.1, 0.0]], [0.1, 0.0]) == pytest.approx(0.75)
    assert mean_abs_residual_ratio(np.zeros((0, 2)), [0.1, 0.1]) is None
    assert mean_abs_residual_ratio(np.zeros((3, 2)), 0.0) is None


# --- confidence intervals ----------------------------------------------------------------


@pytest.mark.parametrize("k,n", [(7, 10), (0, 5), (5, 5), (1, 1000)])
def test_wilson_interval_matches_closed_form(k, n):
    z = 1.959963984540054
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(max(0.0, centre - half), abs=1e-12)
    assert hi == pytest.approx(min(1.0, centre + half), abs=1e-12)


def test_wilson_interval_without_trials_is_nan_and_bad_counts_are_rejected():
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


# --- summary -----------------------------------------------------------------------------


def record(success, first, rts, ratio, jerk, rate, kinds=None):
    kinds = kinds or ["poke"] * len(rts)
    return EpisodeRecord(
        env_id="PickPlace-v0",
        env_spec_hash="abc",
        seed=0,
        suite="s",
        objects="train",
        base="b",
        residual="r",
        instruction="",
        target_object="mug",
        success=success,
        first_success_time=first,
        episode_time=2.0,
        n_steps=40,
        events=[event(k, 0.5, recovery=r) for k, r in zip(kinds, rts, strict=True)],
        mean_abs_residual_ratio=ratio,
        action_jerk=jerk,
        action_rate=rate,
    )


def test_summary_aggregates_over_the_right_populations():
    records = [
        record(True, 0.30, [0.10], 0.2, 1.0, 2.0),
        record(True, 0.70, [0.50, 0.15], 0.4, 3.0, 4.0, kinds=["drop", "latency"]),
        record(False, 0.10, [None], 0.6, None, 1.0),  # succeeded once, failed at the end
        record(True, 0.50, [], None, 2.0, None),
    ]
    s = summarize(records)
    assert s["n_episodes"] == 4
    assert s["success_rate"]["rate"] == 0.75
    assert s["success_rate"]["ci"] == pytest.approx(list(wilson_interval(3, 4)))
    assert s["completion_time_mean"] == pytest.approx(0.5)  # the failure's 0.10 is excluded
    assert s["completion_time_median"] == pytest.approx(0.5)
    assert (s["n_perturbed_episodes"], s["n_events"]) == (3, 4)
    assert s["recovery_rate"]["rate"] == pytest.approx(2 / 3)
    assert {h: v["rate"] for h, v in s["recovery_rate_at"].items()} == {
        "0.15": 0.5,
        "0.5": 0.75,
        "1.0": 0.75,
    }
    assert s["events_by_type"]["latency"]["recovery_rate_at"]["0.15"] == 1.0
    assert s["events_by_type"]["poke"]["n_events"] == 2
    assert len(s["recovery_curve"]["rates"]) == len(CURVE_HORIZONS) == 61
    assert s["recovery_curve"]["horizons"][-1] == 3.0
    assert s["recovery_curve"]["rates"][2] == 0.25  # 0.10 s: only the poke in episode 1
    assert s["mean_abs_residual_ratio"] == pytest.approx(0.4)
    assert s["action_jerk"] == pytest.approx(2.0)
    assert s["action_rate"] == pytest.approx(7 / 3)
    json.dumps(s, allow_nan=False)


def test_summary_of_nothing_is_undefined_not_nan():
    s = summarize([record(False, None, [], None, None, None)])
    assert s["completion_time_mean"] is None
    assert s["recovery_rate"] == {"rate": None, "k": 0, "n": 0, "ci": [None, None]}
    assert s["recovery_curve"]["rates"][0] is None
    json.dumps(s, allow_nan=False)
