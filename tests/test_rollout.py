"""Running a policy for a batch of episodes (``run_episodes`` and ``bench demo``).

``run_episodes`` writes one JSON line per episode with its perturbation events and their
recovery times, and a ``summary.json`` computed from that file; it never overwrites earlier
results. While the environment reports the base policy stalled it holds the last action.
``bench demo`` turns every input error into one line on stderr and exit status 2.
"""

import json

import gymnasium as gym
import numpy as np
import pytest

import residual_bench.rollout as rollout
from residual_bench.cli import main
from residual_bench.policies.registry import base_names
from residual_bench.rollout import run_episodes

SHORT = {"scene_overrides": {"task": {"episode_seconds": 6.0}}}


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def drop_run(tmp_path_factory):
    """Three expert episodes of the ``drop`` suite written to a directory."""
    out = tmp_path_factory.mktemp("runs") / "drop"
    records, summary = run_episodes(3, suite="drop", out=out, progress=False, env_kwargs=SHORT)
    return out, records, summary


def test_run_writes_one_record_per_episode_with_its_events(drop_run):
    out, records, _ = drop_run
    lines = read_lines(out / "episodes.jsonl")
    assert len(lines) == len(records) == 3
    for line, record in zip(lines, records, strict=True):
        assert line["suite"] == "drop"
        assert line["base"] == "expert"
        assert line["seed"] == record.seed
        assert line["events"], "every drop episode here is perturbed"
        assert len(line["events"]) == len(record.events)
        for event in line["events"]:
            assert event["type"] == "drop"
            assert event["trigger"] == "phase:transport"
            assert "recovery_time" in event and "grasped_at_event" in event
            assert event["grasped_at_event"] is True  # it fires while the object is carried


def test_recovery_time_of_every_event_in_a_successful_episode_is_set(drop_run):
    _, records, _ = drop_run
    assert any(record.success for record in records)
    for record in records:
        for event in record.events:
            if record.success:
                assert event.recovery_time is not None
            if event.recovery_time is not None:
                assert 0.0 <= event.recovery_time <= record.episode_time - event.time + 1e-9


def test_summary_on_disk_matches_the_records(drop_run):
    out, records, summary = drop_run
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert on_disk["n_episodes"] == 3
    assert on_disk["n_events"] == sum(len(r["events"]) for r in read_lines(out / "episodes.jsonl"))
    assert on_disk["n_perturbed_episodes"] == 3
    assert on_disk["success_rate"]["k"] == sum(record.success for record in records)
    assert on_disk["run"]["suite"] == "drop"
    assert on_disk["run"]["policy"] == "expert"
    assert on_disk["run"]["episodes"] == 3


def test_a_second_run_into_the_same_directory_is_refused_and_changes_nothing(drop_run):
    out, _, _ = drop_run
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(FileExistsError, match="episodes.jsonl"):
        run_episodes(1, suite="drop", out=out, progress=False, env_kwargs=SHORT)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_runs_are_deterministic_and_paired_across_policies():
    kwargs = {"suite": "slide", "progress": False, "env_kwargs": SHORT, "seed": 3}
    first, _ = run_episodes(2, **kwargs)
    again, _ = run_episodes(2, **kwargs)
    assert [r.to_dict() for r in first] == [r.to_dict() for r in again]
    # another policy meets the same scenes and the same (pre-drawn) perturbations
    other, _ = run_episodes(2, policy="expert-open-loop", **kwargs)
    for a, b in zip(first, other, strict=True):
        assert (a.seed, a.instruction, a.target_object) == (b.seed, b.instruction, b.target_object)
        assert [e.params for e in a.events] == [e.params for e in b.events]


def test_the_master_seed_changes_the_episodes():
    a, _ = run_episodes(2, seed=0, progress=False, env_kwargs=SHORT)
    b, _ = run_episodes(2, seed=1, progress=False, env_kwargs=SHORT)
    assert {r.seed for r in a}.isdisjoint({r.seed for r in b})


def test_unknown_policy_is_a_value_error_naming_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown base policy 'oracle'") as err:
        run_episodes(1, policy="oracle", out=tmp_path / "x", progress=False)
    for name in base_names():
        assert name in str(err.value)
    assert not (tmp_path / "x").exists()


def test_unknown_suite_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="unknown suite"):
        run_episodes(1, suite="wobble", out=tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def test_zero_episodes_is_refused():
    with pytest.raises(ValueError, match="episodes"):
        run_episodes(0, progress=False)


def test_a_shorter_run_is_extended_to_exactly_the_longer_run(tmp_path):
    kwargs = {"suite": "poke", "progress": False, "env_kwargs": SHORT}
    full, _ = run_episodes(3, out=tmp_path / "full", **kwargs)
    run_episodes(1, out=tmp_path / "grown", **kwargs)
    first_line = (tmp_path / "grown" / "episodes.jsonl").read_bytes()
    grown, summary = run_episodes(3, out=tmp_path / "grown", resume=True, **kwargs)
    assert [r.to_dict() for r in grown] == [r.to_dict() for r in full]
    on_disk = (tmp_path / "grown" / "episodes.jsonl").read_bytes()
    assert on_disk.startswith(first_line)  # the episode already run is kept, not re-run
    assert on_disk == (tmp_path / "full" / "episodes.jsonl").read_bytes()
    assert summary["n_episodes"] == 3
    assert json.loads((tmp_path / "grown" / "summary.json").read_text())["n_episodes"] == 3


def test_records_of_another_run_are_never_continued(tmp_path):
    run_episodes(1, suite="poke", out=tmp_path / "x", progress=False, env_kwargs=SHORT)
    before = (tmp_path / "x" / "episodes.jsonl").read_bytes()
    resume = {"out": tmp_path / "x", "resume": True, "progress": False}
    with pytest.raises(rollout.StaleRecordsError, match="episode 0 has suite 'poke'"):
        run_episodes(2, suite="slide", env_kwargs=SHORT, **resume)
    with pytest.raises(rollout.StaleRecordsError, match="episode 0 has seed"):
        run_episodes(2, suite="poke", seed=5, env_kwargs=SHORT, **resume)
    with pytest.raises(rollout.StaleRecordsError, match="episode 0 has env_spec_hash"):
        run_episodes(2, suite="poke", **resume)  # the environment has changed since
    assert (tmp_path / "x" / "episodes.jsonl").read_bytes() == before


def test_run_or_reuse_continues_an_interrupted_cell_and_reruns_a_stale_one(tmp_path):
    kwargs = {"suite": "poke", "env_kwargs": SHORT}
    cell = tmp_path / "cell"
    run_episodes(1, out=cell, progress=False, **kwargs)
    (cell / "summary.json").unlink()  # as if killed after the first episode
    with (cell / "episodes.jsonl").open("ab") as f:
        f.write(b'{"schema_version": 1, "env')  # and in the middle of the second
    summary = rollout.run_or_reuse(cell, 2, **kwargs)
    reference, _ = run_episodes(2, progress=False, **kwargs)
    assert [r.to_dict() for r in rollout.read_jsonl(cell / "episodes.jsonl")] == [
        r.to_dict() for r in reference
    ]
    assert summary["n_episodes"] == 2
    # records of another suite in the cell: thrown away and run afresh
    assert rollout.run_or_reuse(cell, 2, suite="slide", env_kwargs=SHORT)["run"]["suite"] == "slide"


class ActionLog(gym.Wrapper):
    """Records every action passed to ``step`` and the info it returned."""

    def __init__(self, env):
        super().__init__(env)
        self.log = []

    def step(self, action):
        result = super().step(action)
        self.log.append((np.array(action, copy=True), result[-1]))
        return result


def logged_make(monkeypatch) -> list:
    envs = []
    make = gym.make

    def _make(*args, **kwargs):
        env = ActionLog(make(*args, **kwargs))
        envs.append(env)
        return env

    monkeypatch.setattr(rollout.gym, "make", _make)
    return envs


def test_the_last_action_is_held_while_the_base_policy_is_stalled(monkeypatch):
    envs = logged_make(monkeypatch)
    stall = {
        "name": "stall",
        "perturbations": [
            {"type": "latency", "trigger": {"time": [0.5, 0.5]}, "duration": [0.6, 0.6]}
        ],
    }
    run_episodes(1, suite=stall, progress=False, env_kwargs=SHORT)
    (env,) = envs
    actions = [a for a, _ in env.log]
    stalled = [info["base_stalled"] for _, info in env.log]
    held = [k for k in range(1, len(actions)) if stalled[k - 1]]
    assert len(held) >= 10  # 0.6 s at 20 Hz, the first stalled step included
    for k in held:
        np.testing.assert_array_equal(actions[k], actions[k - 1])
    # the expert moves while it is not stalled: its actions are not constant throughout
    free = [k for k in range(1, 12) if not stalled[k - 1]]
    assert any(not np.array_equal(actions[k], actions[k - 1]) for k in free)


def test_a_run_that_cannot_create_its_output_directory_closes_its_env(monkeypatch, tmp_path):
    envs = logged_make(monkeypatch)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        run_episodes(1, out=blocker, progress=False, env_kwargs=SHORT)
    assert envs and all(env.unwrapped.world is None for env in envs)


# -- bench demo --------------------------------------------------------------------------


def demo(tmp_path, *extra) -> int:
    return main(["demo", "--episodes", "1", "--quiet", "--out", str(tmp_path), *extra])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("bench demo: error: ")
    return lines[0]


def test_demo_with_an_unknown_suite_exits_2_with_one_line(tmp_path, capsys):
    assert demo(tmp_path / "out", "--suite", "wobble") == 2
    line = one_error_line(capsys)
    assert "wobble" in line and "poke" in line
    assert not (tmp_path / "out").exists()


def test_demo_with_an_unknown_policy_exits_2_with_one_line(tmp_path, capsys):
    assert demo(tmp_path / "out", "--policy", "oracle") == 2
    assert "oracle" in one_error_line(capsys)


def test_demo_with_a_malformed_suite_file_exits_2_naming_the_field(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nperturbations:\n  - type: poke\n    forse: 2.0\n")
    assert demo(tmp_path / "out", "--suite", str(path)) == 2
    assert "forse" in one_error_line(capsys)


def test_demo_runs_writes_its_files_and_then_refuses_the_same_directory(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo(out, "--suite", "latency") == 0
    captured = capsys.readouterr()
    assert "success 1/1" in captured.out or "success 0/1" in captured.out
    assert "latency" in captured.out
    assert {p.name for p in out.iterdir()} >= {"episodes.jsonl", "summary.json", "scene.png"}
    (record,) = read_lines(out / "episodes.jsonl")
    assert record["suite"] == "latency" and record["events"]
    before = (out / "episodes.jsonl").read_bytes()

    assert demo(out) == 2
    line = one_error_line(capsys)
    assert str(out) in line and "episodes.jsonl" in line
    assert (out / "episodes.jsonl").read_bytes() == before
