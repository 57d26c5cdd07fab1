"""A run never loses or doubles work, wherever it is killed.

Fault injection, not timing: each test makes one write or rename raise, as a kill at that
point would stop it, then resumes and checks the records. An evaluation holds its results
directory's lock, so a second one into the same ``--out`` is refused; its summary is written
atomically, and one left unreadable or outdated is recomputed; a final record (or learning
curve row) that lost only its newline is kept; a directory replaced by a checkpoint write that
was killed between its two renames is put back, and what such writes leave behind is removed.
No write goes through a link planted in a run directory received from elsewhere.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from residual_bench import run_directory
from residual_bench.cli import main
from residual_bench.episodes.records import MAX_RECORDS_BYTES, read_jsonl
from residual_bench.eval import runner
from residual_bench.eval.episode_tasks import make_tasks, record_key, task_key
from residual_bench.eval.runner import evaluate
from residual_bench.run_directory import (
    RunInUseError,
    finish_interrupted_write,
    run_lock,
    write_directory_atomically,
    write_file_atomically,
)
from residual_bench.training.learning_curve import append_progress

# Resuming after a kill mid-line warns that it drops the remainder: expected here.
pytestmark = pytest.mark.filterwarnings("ignore:.*truncated final line:UserWarning")

TASKS = make_tasks("scripted", [None], ["nominal", "drop"], ["heldout"], 3)


class Killed(BaseException):
    """What a SIGKILL at this point would do: stop everything, run no handler."""


def key(task) -> tuple:
    return task_key(task.base, task.residual, task.suite_name, task.objects, task.seed)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A clean evaluation: each task's record and the summary's cells."""
    out = tmp_path_factory.mktemp("clean")
    summary = evaluate(TASKS, out, executor="serial", progress=False)
    by_key = {record_key(r): r.to_dict() for r in read_jsonl(out / "episodes.jsonl")}
    return by_key, summary["cells"]


def replay(reference):
    """An ``execute`` that answers each task with its clean record: runs take no time."""
    by_key, _ = reference

    def execute(tasks, executor="local", workers=None):
        return (copy.deepcopy(by_key[key(t)]) for t in tasks)

    return execute


@pytest.fixture
def replayed(reference, monkeypatch):
    monkeypatch.setattr(runner, "execute", replay(reference))


def kill_on(monkeypatch, target, name: str, call: int, before=None) -> None:
    """Make the ``call``-th call of ``target.name`` raise :class:`Killed`; ``before(*args)``
    runs first on that call (a partial write)."""
    original, calls = getattr(target, name), []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            if before is not None:
                before(*args, **kwargs)
            raise Killed
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapper)


def assert_complete_and_single(out: Path, reference) -> None:
    _, cells = reference
    assert episode_keys(out) == sorted((key(t) for t in TASKS), key=str), "lost or doubled"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cells"] == cells


def episode_keys(out: Path) -> list[tuple]:
    return sorted((record_key(r) for r in read_jsonl(out / "episodes.jsonl")), key=str)


def half_line(path, record) -> None:
    line = json.dumps(record.to_dict(), separators=(",", ":")).encode()
    with open(path, "ab") as f:
        f.write(line[: len(line) // 2])


def line_without_newline(path, record) -> None:
    with open(path, "ab") as f:
        f.write(json.dumps(record.to_dict(), separators=(",", ":")).encode())


@pytest.mark.parametrize("call", range(1, len(TASKS) + 1))
@pytest.mark.parametrize(
    "partial", [None, half_line, line_without_newline], ids=["before", "mid-line", "no-newline"]
)
def test_a_kill_while_appending_any_record_loses_and_doubles_nothing(
    reference, replayed, monkeypatch, tmp_path, call, partial
):
    kill_on(monkeypatch, runner, "append_jsonl", call, before=partial)
    with pytest.raises(Killed):
        evaluate(TASKS, tmp_path, executor="serial", progress=False)
    monkeypatch.undo()
    monkeypatch.setattr(runner, "execute", replay(reference))
    evaluate(TASKS, tmp_path, executor="serial", progress=False, resume=True)
    assert_complete_and_single(tmp_path, reference)


@pytest.mark.parametrize("point", ["write", "rename"])
def test_a_kill_while_writing_the_summary_is_recovered_on_resume(
    reference, replayed, monkeypatch, tmp_path, point
):
    if point == "write":

        def partial(path, write):  # the temporary file half written, as a kill leaves it
            Path(path).with_name(f".{Path(path).name}.tmp").write_text('{"cells": [')

        kill_on(monkeypatch, runner, "write_file_atomically", 1, before=partial)
    else:
        kill_on(monkeypatch, run_directory.os, "replace", 1)
    with pytest.raises(Killed):
        evaluate(TASKS, tmp_path, executor="serial", progress=False)
    monkeypatch.undo()
    monkeypatch.setattr(runner, "execute", replay(reference))
    assert not (tmp_path / "summary.json").exists()  # never a truncated one
    evaluate(TASKS, tmp_path, executor="serial", progress=False, resume=True)
    assert_complete_and_single(tmp_path, reference)


def test_a_kill_before_the_summary_of_added_episodes_is_recovered_on_resume(
    reference, replayed, monkeypatch, tmp_path
):
    # bench run's two phases: the first leaves a summary of its episodes; the second appends
    # every record of its own and is killed before it writes theirs. The summary on disk
    # is readable but no longer the records' one.
    evaluate(TASKS[:3], tmp_path, executor="serial", progress=False)
    kill_on(monkeypatch, runner, "write_file_atomically", 1)
    with pytest.raises(Killed):
        evaluate(TASKS, tmp_path, executor="serial", progress=False, resume=True)
    monkeypatch.undo()
    monkeypatch.setattr(runner, "execute", replay(reference))
    for phase in (TASKS[:3], TASKS):
        summary = evaluate(phase, tmp_path, executor="serial", progress=False, resume=True)
        assert summary["cells"] == reference[1]
    assert_complete_and_single(tmp_path, reference)


def test_a_summary_of_all_the_records_is_left_as_it_was_when_nothing_is_left_to_run(
    replayed, tmp_path
):
    first = evaluate(TASKS, tmp_path, executor="serial", progress=False)
    written = (tmp_path / "summary.json").read_bytes()
    again = evaluate(TASKS[:2], tmp_path, executor="serial", progress=False, resume=True)
    assert (tmp_path / "summary.json").read_bytes() == written
    assert again["run"] == first["run"]


def test_an_empty_summary_left_by_an_older_writer_does_not_block_a_resume(
    reference, replayed, tmp_path
):
    evaluate(TASKS, tmp_path, executor="serial", progress=False)
    (tmp_path / "summary.json").write_text("")
    summary = evaluate(TASKS, tmp_path, executor="serial", progress=False, resume=True)
    assert summary["cells"] == reference[1]
    assert_complete_and_single(tmp_path, reference)


def test_a_second_evaluation_into_a_directory_in_use_is_refused(replayed, tmp_path):
    with run_lock(tmp_path):
        with pytest.raises(RunInUseError, match="another process"):
            evaluate(TASKS, tmp_path, executor="serial", progress=False, resume=True)
    assert not (tmp_path / "episodes.jsonl").exists()


def test_bench_eval_into_a_directory_in_use_is_one_error_line_naming_the_holder(tmp_path, capsys):
    argv = ["eval", "--base", "scripted", "--episodes", "1", "--out", str(tmp_path)]
    with run_lock(tmp_path):
        rc = main([*argv, "--executor", "serial", "--quiet", "--resume"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and "Traceback" not in err
    assert f"(pid {os.getpid()})" in err
    assert not (tmp_path / "episodes.jsonl").exists()


def test_a_final_record_that_lost_only_its_newline_is_kept_on_resume(reference, replayed, tmp_path):
    evaluate(TASKS, tmp_path, executor="serial", progress=False)
    path = tmp_path / "episodes.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]) + lines[3].rstrip(b"\n"))  # killed before "\n"
    kept = json.loads(lines[3])["seed"]
    evaluate(TASKS, tmp_path, executor="serial", progress=False, resume=True)
    assert kept in [r.seed for r in read_jsonl(path)[:4]], "the whole final record was kept"
    assert_complete_and_single(tmp_path, reference)


# -- atomic files and directories ----------------------------------------------------------------


@pytest.mark.parametrize("point", ["write", "rename"])
def test_a_kill_while_writing_a_file_leaves_the_old_one(tmp_path, monkeypatch, point):
    path = tmp_path / "state.json"
    path.write_text("old")

    def write(f):
        f.write(b"ne")
        if point == "write":
            raise Killed
        f.write(b"w")

    if point == "rename":
        kill_on(monkeypatch, run_directory.os, "replace", 1)
    with pytest.raises(Killed):
        write_file_atomically(path, write)
    monkeypatch.undo()
    assert path.read_text() == "old"
    write_file_atomically(path, lambda f: f.write(b"new"))  # the next write is not blocked
    assert path.read_text() == "new"


def test_a_file_write_never_writes_through_a_link_planted_at_its_temporary_name(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not the run's")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".summary.json.tmp").symlink_to(elsewhere)
    write_file_atomically(run / "summary.json", lambda f: f.write(b"{}"))
    assert elsewhere.read_text() == "not the run's"
    assert (run / "summary.json").read_text() == "{}"
    assert not (run / "summary.json").is_symlink()


def fill(text: str):
    def write(directory: Path) -> None:
        (directory / "a").write_text(text)
        (directory / "b").write_text(text)

    return write


@pytest.mark.parametrize("call", [1, 2])
def test_a_kill_at_either_rename_of_a_directory_write_leaves_old_or_new(
    tmp_path, monkeypatch, call
):
    out = tmp_path / "checkpoint"
    write_directory_atomically(out, fill("old"))
    kill_on(monkeypatch, run_directory.os, "replace", call)
    with pytest.raises(Killed):
        write_directory_atomically(out, fill("new"))
    monkeypatch.undo()
    finish_interrupted_write(out)
    contents = {(out / "a").read_text(), (out / "b").read_text()}
    assert contents in ({"old"}, {"new"})
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"], "debris left beside it"


def test_a_kill_while_removing_the_replaced_directory_leaves_the_new_one_and_no_debris(
    tmp_path, monkeypatch
):
    out = tmp_path / "checkpoint"
    write_directory_atomically(out, fill("old"))

    def half_removed(path, *args, **kwargs):
        (Path(path) / "a").unlink()

    # rmtree calls: clear a stale aside (1), remove the replaced directory (2)
    kill_on(monkeypatch, run_directory.shutil, "rmtree", 2, before=half_removed)
    with pytest.raises(Killed):
        write_directory_atomically(out, fill("new"))
    monkeypatch.undo()
    finish_interrupted_write(out)
    assert (out / "a").read_text() == (out / "b").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"], "debris left beside it"


def test_recovering_one_directory_leaves_a_sibling_whose_name_extends_it_alone(
    tmp_path, monkeypatch
):
    out, sibling = tmp_path / "checkpoint", tmp_path / "checkpoint.b"
    write_directory_atomically(out, fill("out"))
    write_directory_atomically(sibling, fill("sibling"))
    kill_on(monkeypatch, run_directory.os, "replace", 2)  # the sibling's moved aside, no new
    with pytest.raises(Killed):
        write_directory_atomically(sibling, fill("new sibling"))
    monkeypatch.undo()
    finish_interrupted_write(out)
    finish_interrupted_write(sibling)
    assert (sibling / "a").read_text() == "sibling"


def test_a_kill_while_filling_a_directory_leaves_the_old_one_and_its_debris_is_removed(
    tmp_path, monkeypatch
):
    out = tmp_path / "checkpoint"
    write_directory_atomically(out, fill("old"))

    def write(directory: Path) -> None:
        (directory / "a").write_text("new")
        # A killed process runs no cleanup: its half-filled directory stays.
        monkeypatch.setattr(run_directory.shutil, "rmtree", lambda *a, **k: None)
        raise Killed

    with pytest.raises(Killed):
        write_directory_atomically(out, write)
    monkeypatch.undo()
    assert (out / "a").read_text() == (out / "b").read_text() == "old"
    assert len(list(tmp_path.iterdir())) == 2, "the half-filled directory is left beside it"
    finish_interrupted_write(out)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]


def test_a_results_file_too_large_or_not_regular_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "huge" / "episodes.jsonl"
    huge.parent.mkdir()
    with open(huge, "wb") as f:
        f.truncate(MAX_RECORDS_BYTES + 1)  # sparse: nothing on disk
    with pytest.raises(ValueError, match="more than the"):
        read_jsonl(huge)
    fifo = tmp_path / "episodes.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        read_jsonl(fifo)


def test_a_lock_file_planted_as_a_link_is_refused_and_its_target_left_alone(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not the run's")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(elsewhere)
    with pytest.raises(PermissionError, match=r"\.lock: .*not a regular file"):
        with run_lock(run):
            pass
    assert elsewhere.read_text() == "not the run's"


def test_records_are_never_appended_through_a_link_and_no_episode_runs(
    reference, monkeypatch, tmp_path
):
    elsewhere = tmp_path / "elsewhere.jsonl"
    monkeypatch.setattr(runner, "execute", replay(reference))
    evaluate(TASKS[:2], tmp_path / "first", executor="serial", progress=False)
    elsewhere.write_bytes((tmp_path / "first" / "episodes.jsonl").read_bytes()[:-1])
    before = elsewhere.read_bytes()
    run = tmp_path / "run"
    run.mkdir()
    (run / "episodes.jsonl").symlink_to(elsewhere)
    ran = []
    monkeypatch.setattr(runner, "execute", lambda tasks, *a, **k: ran.extend(tasks) or iter(()))
    with pytest.raises(PermissionError, match=r"episodes\.jsonl: a link, not a regular file"):
        evaluate(TASKS, run, executor="serial", progress=False, resume=True)
    assert elsewhere.read_bytes() == before
    assert ran == []


def test_a_learning_curve_is_never_appended_through_a_link(tmp_path):
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_bytes(b"timesteps,success_rate\r\n10,0.5")
    (tmp_path / "progress.csv").symlink_to(elsewhere)
    with pytest.raises(PermissionError, match=r"progress\.csv: a link, not a regular file"):
        append_progress(tmp_path / "progress.csv", 20, 0.5, 4, 0.0)
    assert elsewhere.read_bytes() == b"timesteps,success_rate\r\n10,0.5"
