"""Episode records, their JSONL storage, and the recorder that builds them from ``info``."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from residual_bench.episodes.recorder import EpisodeRecorder
from residual_bench.episodes.records import (
    SCHEMA_VERSION,
    EpisodeRecord,
    PerturbationEvent,
    append_jsonl,
    read_jsonl,
)


def make_record(seed=0, **overrides):
    fields = dict(
        env_id="PickPlace-v0",
        env_spec_hash="3f2a",
        seed=seed,
        suite="transport_pokes",
        objects="heldout",
        base="scripted",
        residual="sac_v1",
        instruction="put the mug away",
        target_object="mug",
        success=True,
        first_success_time=2.35,
        episode_time=4.0,
        n_steps=80,
        events=[
            PerturbationEvent(
                "poke", "transport", 1.2, 0.8, "mug", 0.0, {"dir": [1.0, 0.0]}, 0.35, True
            ),
            PerturbationEvent("latency", "time", 0.4, 0.25, "base", 0.25, {}, None, False),
        ],
        mean_abs_residual_ratio=0.12,
        action_jerk=31.5,
        action_rate=1.75,
        final_state_hash="9c1d",
        extra={"note": "x"},
    )
    fields.update(overrides)
    return EpisodeRecord(**fields)


# --- EpisodeRecord -----------------------------------------------------------------------


def test_record_round_trips_exactly_through_dict_and_json():
    r = make_record()
    assert EpisodeRecord.from_dict(r.to_dict()) == r
    assert EpisodeRecord.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    assert r.to_dict()["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize(
    "change,pattern",
    [
        (lambda d: d.update(colour="red"), "unknown field.*'colour'"),
        (lambda d: d.pop("suite"), "missing field.*'suite'"),
        (lambda d: d.pop("extra"), "missing field.*'extra'"),
        (lambda d: d.update(schema_version=2), "'schema_version'"),
        (lambda d: d.update(success="yes"), "'success'"),
        (lambda d: d.update(seed=True), "'seed'"),
        (lambda d: d["events"][1].pop("time"), r"events\[1\].*missing field.*'time'"),
        (lambda d: d["events"][0].update(when=1), r"events\[0\].*unknown field.*'when'"),
        (lambda d: d["events"][0].update(duration=-1.0), r"events\[0\].*'duration'"),
        (lambda d: d["events"][0].update(reaction_time=-0.1), r"events\[0\].*'reaction_time'"),
        (lambda d: d["events"][0].update(reaction_rule=1), r"events\[0\].*'reaction_rule'"),
    ],
)
def test_from_dict_names_the_offending_field(change, pattern):
    d = make_record().to_dict()
    change(d)
    with pytest.raises(ValueError, match=pattern):
        EpisodeRecord.from_dict(d)


def test_a_record_written_before_reaction_times_reads_them_as_none():
    d = make_record().to_dict()
    for e in d["events"]:
        del e["reaction_time"], e["reaction_rule"]
    r = EpisodeRecord.from_dict(d)
    assert [(e.reaction_time, e.reaction_rule) for e in r.events] == [(None, None)] * 2
    assert r == make_record()


def test_committed_record_files_still_read():
    results = Path(__file__).resolve().parents[1] / "results"
    path = results / "suites" / "poke" / "expert" / "episodes.jsonl"
    records = read_jsonl(path)
    assert records and all(r.schema_version == SCHEMA_VERSION for r in records)
    events = [e for r in records for e in r.events]
    assert events and all(e.reaction_rule is None for e in events)
    assert "reaction_time" not in path.read_text().splitlines()[0]


def test_event_from_info_converts_numpy_values_and_fills_defaults():
    e = PerturbationEvent.from_info(
        {
            "type": "slide",
            "trigger": "pre_grasp",
            "time": np.float64(0.6),
            "magnitude": np.float32(0.5),
            "target": "mug",
            "params": {"offset": np.array([0.01, -0.02])},
        }
    )
    assert e == PerturbationEvent(
        "slide", "pre_grasp", 0.6, 0.5, "mug", 0.0, {"offset": [0.01, -0.02]}
    )
    assert type(e.time) is float and type(e.params["offset"][0]) is float
    whole = PerturbationEvent.from_info(
        {"type": "drop", "trigger": "t", "time": 1, "magnitude": 2, "target": "mug"}
    )
    assert (whole.time, whole.magnitude) == (1.0, 2.0) and type(whole.magnitude) is float
    with pytest.raises(ValueError, match="'type'"):
        PerturbationEvent.from_info({"trigger": "t", "time": 0.1, "magnitude": 1, "target": "x"})


# --- JSONL -------------------------------------------------------------------------------


def test_jsonl_round_trip_is_append_only(tmp_path):
    path = tmp_path / "episodes.jsonl"
    first, second = make_record(seed=1), make_record(seed=2, residual=None, events=[])
    append_jsonl(path, first)
    before = path.read_bytes()
    append_jsonl(path, second)
    after = path.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 2
    assert read_jsonl(path) == [first, second]


def test_truncated_final_line_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "episodes.jsonl"
    append_jsonl(path, make_record(seed=1))
    append_jsonl(path, make_record(seed=2))
    with open(path, "a") as f:
        f.write(json.dumps(make_record(seed=3).to_dict())[:57])  # killed mid-write
    with pytest.warns(UserWarning, match="truncated"):
        records = read_jsonl(path)
    assert [r.seed for r in records] == [1, 2]


def test_appending_after_a_killed_writer_drops_only_the_fragment(tmp_path):
    path = tmp_path / "episodes.jsonl"
    append_jsonl(path, make_record(seed=1))
    complete = path.read_bytes()
    with open(path, "ab") as f:
        f.write(b'{"schema_version": 1, "env_')
    with pytest.warns(UserWarning, match="truncated"):
        append_jsonl(path, make_record(seed=2))
    assert path.read_bytes().startswith(complete)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r.seed for r in read_jsonl(path)] == [1, 2]


def test_malformed_middle_line_is_rejected_with_its_line_number(tmp_path):
    path = tmp_path / "episodes.jsonl"
    append_jsonl(path, make_record(seed=1))
    with open(path, "a") as f:
        f.write('{"not": "closed"\n')
    append_jsonl(path, make_record(seed=2))
    with pytest.raises(ValueError, match=r"episodes\.jsonl:2: malformed JSON"):
        read_jsonl(path)


def test_complete_final_line_that_is_malformed_is_not_treated_as_truncation(tmp_path):
    path = tmp_path / "episodes.jsonl"
    append_jsonl(path, make_record(seed=1))
    bad = make_record(seed=2).to_dict()
    del bad["n_steps"]
    with open(path, "a") as f:
        f.write(json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match=r"episodes\.jsonl:2: missing field.*'n_steps'"):
        read_jsonl(path)


def test_non_finite_values_are_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "episodes.jsonl"
    with pytest.raises(ValueError):
        append_jsonl(path, make_record(action_jerk=float("nan")))
    assert not path.exists()


# --- EpisodeRecorder ---------------------------------------------------------------------

DT = 0.05
RESET_INFO = {"seed": 7, "instruction": "put the mug in the bin", "target_object": "mug"}
# Per step 1..20: horizontal tcp-object distance, grasp flag, success flag.
XY = [
    0.10,
    0.06,
    0.03,
    0.01,
    0.07,
    0.04,
    0.015,
    0.01,
    0.005,
    0.0,
    0.0,
    0.0,
    0.03,
    0.03,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
]
GRASP = "00000000" + "1111" + "000" + "11111"
SUCCESS = "0" * 17 + "111"
EVENTS = {
    5: {
        "type": "poke",
        "trigger": "pre_grasp",
        "time": 0.21,
        "magnitude": 0.6,
        "target": "mug",
        "duration": 0.0,
        "params": {},
    },
    13: {
        "type": "drop",
        "trigger": "transport",
        "time": 0.61,
        "magnitude": 1.0,
        "target": "mug",
        "duration": 0.0,
        "params": {"height": 0.1},
    },
}


def synthetic_episode(recorder, *, residual=True):
    recorder.start(
        RESET_INFO,
        env_id="PickPlace-v0",
        env_spec_hash="3f2a",
        suite="mixed",
        objects="train",
        base="scripted",
        residual="sac_v1" if residual else None,
    )
    for step in range(1, 21):
        info = {
            "time": DT * step,
            "success": SUCCESS[step - 1] == "1",
            "is_grasped": GRASP[step - 1] == "1",
            "tcp_to_object_xy": XY[step - 1],
            "object_to_goal": 0.3 - 0.01 * step,
            "new_events": [EVENTS.get(step)],
            "instruction": RESET_INFO["instruction"],
        }
        info["new_events"] = [e for e in info["new_events"] if e]
        if residual:
            info["residual_action"] = np.full(7, 0.05)
            info["alpha"] = np.full(7, 0.1)
        recorder.step(np.full(7, 0.01 * step), info)


def test_recorder_end_to_end_on_a_synthetic_info_stream(tmp_path):
    recorder = EpisodeRecorder()
    synthetic_episode(recorder)
    r = recorder.finish(final_state_hash="beef")
    assert (r.seed, r.target_object, r.residual, r.final_state_hash) == (7, "mug", "sac_v1", "beef")
    assert r.success is True and r.n_steps == 20
    assert r.first_success_time == pytest.approx(0.90)
    assert r.episode_time == pytest.approx(1.0)
    poke, drop = r.events
    # Poke before the grasp: realigned (<= 2 cm) from 0.35 s for 0.35, 0.40, 0.45 s.
    assert poke.grasped_at_event is False
    assert poke.recovery_time == pytest.approx(0.35 - 0.21)
    # Drop in transport: regrasped stably from 0.80 s.
    assert drop.grasped_at_event is True
    assert drop.recovery_time == pytest.approx(0.80 - 0.61)
    assert r.mean_abs_residual_ratio == pytest.approx(0.5)
    assert r.action_jerk == pytest.approx(0.0, abs=1e-9)
    assert r.action_rate == pytest.approx(0.01 * np.sqrt(7) / DT)
    assert r.extra["control_dt"] == pytest.approx(DT)
    assert r.extra["final_object_to_goal"] == pytest.approx(0.1)
    append_jsonl(tmp_path / "e.jsonl", r)
    assert read_jsonl(tmp_path / "e.jsonl") == [r]
    assert not recorder.active


def test_recorder_works_with_only_the_required_keys():
    recorder = EpisodeRecorder()
    recorder.start({}, env_id="e", env_spec_hash="h", suite="s", objects="o", base="b")
    for step in range(1, 4):
        recorder.step(
            np.zeros(7),
            {"time": DT * step, "success": False, "is_grasped": False, "tcp_to_object_xy": 0.2},
        )
    r = recorder.finish()
    assert (r.seed, r.instruction, r.events, r.mean_abs_residual_ratio) == (None, "", [], None)
    assert r.success is False and r.first_success_time is None and r.action_jerk == 0.0


def test_reset_state_decides_the_grasp_state_of_a_first_step_event():
    recorder = EpisodeRecorder()
    reset = {"time": 0.0, "success": False, "is_grasped": True, "tcp_to_object_xy": 0.0}
    recorder.start(reset, env_id="e", env_spec_hash="h", suite="s", objects="o", base="b")
    ev = {"type": "drop", "trigger": "time", "time": 0.0, "magnitude": 1.0, "target": "mug"}
    for step, grasped in enumerate([False, True, True, True], start=1):
        recorder.step(
            np.zeros(7),
            {
                "time": DT * step,
                "success": False,
                "is_grasped": grasped,
                "tcp_to_object_xy": 0.0,
                "new_events": [ev] if step == 1 else [],
            },
        )
    (event,) = recorder.finish().events
    assert event.grasped_at_event is True
    assert event.recovery_time == pytest.approx(0.10)


def test_recorder_dates_the_reaction_from_the_executed_actions():
    recorder = EpisodeRecorder()
    reset = {"time": 0.0, "success": False, "is_grasped": False, "tcp_to_object_xy": 0.1}
    recorder.start(reset, env_id="e", env_spec_hash="h", suite="s", objects="o", base="b")
    pushed_east = {
        "type": "poke",
        "trigger": "phase:approach",
        "time": 0.10,
        "magnitude": 0.4,
        "target": "mug",
        "params": {"direction": np.array([1.0, 0.0, 0.1])},
    }
    latency = {"type": "latency", "trigger": "t", "time": 0.10, "magnitude": 0.3, "target": "b"}
    for step in range(1, 9):
        action = np.array([0.0, -0.5, -0.3, 0.0, 0.0, 0.0, 1.0])
        if step >= 5:  # issued at 0.20 s, two steps after the poke
            action[0] = 0.5
        recorder.step(
            action,
            {
                "time": DT * step,
                "success": False,
                "is_grasped": False,
                "tcp_to_object_xy": 0.1,
                "new_events": [pushed_east, latency] if step == 3 else [],
            },
        )
    poke, stall = recorder.finish().events
    assert poke.reaction_rule == "towards_displacement"
    assert poke.reaction_time == pytest.approx(0.10)
    assert (stall.reaction_rule, stall.reaction_time) == (None, None)


def test_recorder_rejects_misuse_with_clear_errors():
    recorder = EpisodeRecorder()
    with pytest.raises(RuntimeError):
        recorder.step(np.zeros(7), {})
    recorder.start({}, env_id="e", env_spec_hash="h", suite="s", objects="o", base="b")
    with pytest.raises(ValueError, match="no recorded steps"):
        recorder.finish()
    recorder.start({}, env_id="e", env_spec_hash="h", suite="s", objects="o", base="b")
    with pytest.raises(ValueError, match="is_grasped"):
        recorder.step(np.zeros(7), {"time": 0.05, "success": False, "tcp_to_object_xy": 0.1})
    state = {"success": False, "is_grasped": False, "tcp_to_object_xy": 0.1}
    late = {"type": "poke", "trigger": "t", "time": 0.2, "magnitude": 1.0, "target": "mug"}
    with pytest.raises(ValueError, match="poke event at t=0.2"):
        recorder.step(np.zeros(7), {"time": 0.05, **state, "new_events": [late]})
    recorder.step(np.zeros(7), {"time": 0.05, **state})
    with pytest.raises(ValueError, match="increase"):
        recorder.step(np.zeros(7), {"time": 0.05, **state})
    recorder.step(
        np.zeros(7), {"time": 0.10, **state, "residual_action": np.zeros(7), "alpha": np.ones(7)}
    )
    with pytest.raises(ValueError, match="all steps or none"):
        recorder.finish()
