"""Reaction time on hand-built trajectories, and the harm rate of paired episodes.

Steps last 0.05 s: step ``j`` ends at ``t = 0.05 * (j + 1)`` and its command is issued at its
start, ``0.05 * j``. Actions are 7-D: (dx, dy, dz, droll, dpitch, dyaw, gripper).
"""

import math

import numpy as np
import pytest

from residual_bench.episodes.metrics import reaction_rate_at, reaction_time_median, summarize
from residual_bench.episodes.pairing import harm_rate
from residual_bench.episodes.reaction import (
    OPENS_GRIPPER,
    TOWARDS_DISPLACEMENT,
    held_through,
    reaction_rule,
    reaction_time,
)
from residual_bench.episodes.records import EpisodeRecord, PerturbationEvent

DT = 0.05
N = 20
TIMES = DT * np.arange(1, N + 1)
EAST = [1.0, 0.0, 0.0]  # the poke pushes the object along +x


def poke(t=0.5, direction=EAST):
    return PerturbationEvent("poke", "time", t, 0.4, "mug", 0.025, {"direction": direction})


def approaching(n=N):
    """A base descending onto the object along -y, gripper open."""
    actions = np.zeros((n, 7))
    actions[:, 1], actions[:, 2], actions[:, 6] = -0.5, -0.3, 1.0
    return actions


def issued_at(t):
    return round(t / DT)  # index of the command issued at time t


def test_a_residual_that_turns_towards_a_poked_object_within_one_step_reacts_at_50_ms():
    actions = approaching()
    actions[issued_at(0.55) :, 0] += 0.4  # the first command chosen after the poke at 0.5 s
    assert reaction_time(poke(0.5), TIMES, actions) == pytest.approx(0.05)


def test_a_base_holding_its_stale_chunk_150_ms_behind_reacts_later():
    actions = approaching()
    # The chunk requested before the poke plays on for three more steps (latency 150 ms).
    actions[issued_at(0.65) :, 0] += 0.4
    assert reaction_time(poke(0.5), TIMES, actions) == pytest.approx(0.15)


def test_a_command_that_keeps_going_the_same_way_is_not_a_reaction():
    actions = approaching()
    actions[:, 0] = 0.6  # already moving along the push before it, and after
    assert reaction_time(poke(0.5), TIMES, actions) is None


def test_a_command_that_only_slows_down_is_not_a_reaction():
    actions = approaching()
    actions[:, 0] = -0.8
    actions[issued_at(0.55) :, 0] = -0.2  # a change along the push, but still moving away
    assert reaction_time(poke(0.5), TIMES, actions) is None
    actions[issued_at(0.7) :, 0] = 0.2  # now it moves towards where the object went
    assert reaction_time(poke(0.5), TIMES, actions) == pytest.approx(0.2)


def test_a_turn_away_from_the_push_is_not_a_reaction():
    actions = approaching()
    actions[issued_at(0.55) :, 0] -= 0.4
    assert reaction_time(poke(0.5), TIMES, actions) is None


def test_the_command_issued_at_the_event_time_was_chosen_before_it():
    actions = approaching()
    actions[issued_at(0.5) :, 0] += 0.4  # turns already in the step the poke fires in
    assert reaction_time(poke(0.5), TIMES, actions) is None  # no change after the event
    assert reaction_time(poke(0.45), TIMES, actions) == pytest.approx(0.05)


def test_the_reaction_needs_at_least_the_minimum_change():
    actions = approaching()
    actions[issued_at(0.55) :, 0] += 0.1
    assert reaction_time(poke(0.5), TIMES, actions) == pytest.approx(0.05)
    assert reaction_time(poke(0.5), TIMES, actions, min_change=0.2) is None


def test_only_the_horizontal_direction_of_a_poke_counts():
    actions = approaching()
    actions[issued_at(0.55) :, 1] = 0.3  # from -0.5 to +0.3: towards +y
    tilted_north = [0.0, 0.6, 0.8]  # upwards and along +y
    assert reaction_time(poke(0.5, tilted_north), TIMES, actions) == pytest.approx(0.05)
    assert reaction_rule(poke(0.5, [0.0, 0.0, 1.0])) is None  # straight up: no direction


def test_a_slide_is_followed_along_its_azimuth():
    slide = PerturbationEvent("slide", "time", 0.5, 0.05, "mug", 0.0, {"azimuth": math.pi / 2})
    actions = approaching()
    actions[issued_at(0.6) :, 1] = 0.3  # from -0.5 to +0.3 along +y
    assert reaction_rule(slide) == TOWARDS_DISPLACEMENT
    assert reaction_time(slide, TIMES, actions) == pytest.approx(0.1)


def test_a_drop_is_answered_by_opening_the_gripper_not_by_moving_down():
    drop = PerturbationEvent("drop", "time", 0.5, 0.3, "mug", 0.3, {"duration": 0.3})
    actions = np.zeros((N, 7))
    actions[:, 6] = -1.0  # carrying, gripper closed
    actions[issued_at(0.55) :, 2] = -1.0  # moves down at once
    actions[issued_at(0.7) :, 6] = 1.0  # opens the gripper later
    assert reaction_rule(drop) == OPENS_GRIPPER
    assert reaction_time(drop, TIMES, actions) == pytest.approx(0.2)


@pytest.mark.parametrize(
    "event",
    [
        PerturbationEvent("latency", "time", 0.5, 0.3, "base_policy", 0.3, {"duration": 0.3}),
        PerturbationEvent("drop", "time", 0.5, 0.1, "mug", 0.0, {"mode": "from_height"}),
        PerturbationEvent("poke", "operator", 0.5, 0.0, "object", 0.0, {"cue_time": 0.4}),
        PerturbationEvent("wind", "time", 0.5, 1.0, "mug", 0.0, {}),
    ],
    ids=["latency", "drop-from-height", "poke-without-direction", "unknown-type"],
)
def test_an_event_type_without_a_defined_reaction_gives_none(event):
    actions = approaching()
    actions[issued_at(0.55) :] = 1.0  # every command changes at once, every way
    assert reaction_rule(event) is None
    assert reaction_time(event, TIMES, actions) is None


def test_a_push_the_grip_absorbed_has_no_reaction_time():
    grasped = np.array([True] * N)
    assert held_through(0.5, TIMES, grasped)
    assert reaction_rule(poke(0.5), held=True) is None
    knocked_out = grasped.copy()
    knocked_out[issued_at(0.5) :] = False  # the sample after the poke finds it released
    assert not held_through(0.5, TIMES, knocked_out)
    assert reaction_rule(poke(0.5), held=False) == TOWARDS_DISPLACEMENT


def test_actions_outside_the_7d_layout_have_no_reaction_time():
    assert reaction_rule(poke(), action_dim=3) is None
    assert reaction_time(poke(), TIMES, np.ones((N, 3))) is None
    with pytest.raises(ValueError, match="actions must have shape"):
        reaction_time(poke(), TIMES, np.ones((N - 1, 7)))


def _event(rt, rule=TOWARDS_DISPLACEMENT, kind="poke"):
    e = PerturbationEvent(kind, "time", 0.5, 1.0, "mug")
    e.reaction_time, e.reaction_rule = rt, rule
    return e


def test_reaction_rates_leave_out_events_without_a_rule():
    events = [_event(0.05), _event(0.15), _event(0.3), _event(None), _event(None, None, "latency")]
    assert [reaction_rate_at(events, h) for h in (0.05, 0.15, 0.5)] == [0.25, 0.5, 0.75]
    assert math.isnan(reaction_rate_at([_event(None, None)], 0.5))
    # Never reacting counts as infinitely late: the median of 0.05, 0.15, 0.3, inf.
    assert reaction_time_median(events) == pytest.approx(0.225)
    assert reaction_time_median([_event(0.05), _event(None), _event(None)]) is None
    assert reaction_time_median([]) is None


def record(success, seed, events=(), residual=None):
    return EpisodeRecord(
        env_id="ResidualPickPlace-v0",
        env_spec_hash="abc",
        seed=seed,
        suite="poke",
        objects="train",
        base="bc",
        residual=residual,
        instruction="",
        target_object="mug",
        success=success,
        first_success_time=1.0 if success else None,
        episode_time=10.0,
        n_steps=200,
        events=list(events),
    )


def test_summary_reports_reaction_rates_at_50_150_and_500_ms_with_intervals():
    records = [
        record(True, 0, [_event(0.05), _event(None, None, "latency")]),
        record(False, 1, [_event(0.2, OPENS_GRIPPER, "drop"), _event(None)]),
    ]
    s = summarize(records)
    assert s["n_reaction_events"] == 3
    rates = s["reaction_rate_at"]
    assert list(rates) == ["0.05", "0.15", "0.5"]
    assert (rates["0.05"]["k"], rates["0.5"]["k"], rates["0.5"]["n"]) == (1, 2, 3)
    assert rates["0.5"]["ci"][0] < 2 / 3 < rates["0.5"]["ci"][1]
    assert s["reaction_time_median"] == pytest.approx(0.2)
    assert s["reactions_by_type"]["drop"]["reaction_rate_at"]["0.15"] == 0.0
    assert "latency" not in s["reactions_by_type"]


def test_records_without_reaction_times_summarize_to_no_reaction_events():
    s = summarize([record(True, 0, [PerturbationEvent("poke", "time", 0.5, 1.0, "mug")])])
    assert s["n_reaction_events"] == 0
    assert s["reaction_rate_at"]["0.15"] == {"rate": None, "k": 0, "n": 0, "ci": [None, None]}
    assert s["reaction_time_median"] is None


# --- harm rate ---------------------------------------------------------------------------


def test_harm_rate_counts_only_pairs_the_base_solved_and_the_residual_failed():
    outcomes = [(True, False), (True, True), (False, True), (False, False), (True, False)]
    base = [record(b, seed) for seed, (b, _) in enumerate(outcomes)]
    residual = [
        record(r, seed, residual="sac") for seed, (_, r) in reversed(list(enumerate(outcomes)))
    ]
    h = harm_rate(base, residual)
    assert (h["n"], h["base_successes"]) == (5, 3)
    assert (h["harm_rate"]["k"], h["harm_rate"]["n"], h["harm_rate"]["rate"]) == (2, 5, 0.4)
    assert (h["help_rate"]["k"], h["help_rate"]["rate"]) == (1, 0.2)
    lo, hi = h["harm_rate"]["ci"]
    assert lo < 0.4 < hi


def test_harm_rate_refuses_mismatched_repeated_or_missing_seeds():
    base = [record(True, s) for s in range(3)]
    with pytest.raises(ValueError, match=r"different episodes \(2 seeds in one run only: 2, 7\)"):
        harm_rate(base, [record(True, s, residual="sac") for s in (0, 1, 7)])
    with pytest.raises(ValueError, match="seed 1 appears more than once for residual_records"):
        harm_rate(base, [record(True, s, residual="sac") for s in (0, 1, 1, 2)])
    with pytest.raises(ValueError, match="base_records: 1 record.* without a seed"):
        harm_rate([*base, record(True, None)], [record(True, s, residual="sac") for s in range(3)])


def test_harm_rate_of_no_pairs_is_undefined():
    h = harm_rate([], [])
    assert h["n"] == 0 and h["harm_rate"]["rate"] is None and h["harm_rate"]["ci"] == [None, None]
