"""The comparison's run queue (benchmarks/compare_runs.py): what it runs, skips and reports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from residual_bench.run_directory import run_lock

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "compare_runs.py"


@pytest.fixture
def queue(tmp_path, monkeypatch):
    """The script as a module, its collected results in an empty folder of the test's."""
    spec = importlib.util.spec_from_file_location("compare_runs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "COLLECTED", tmp_path / "collected")
    return module


def finish(run: Path, kind: str = "final.pt") -> None:
    run.mkdir(parents=True)
    if kind == "final.pt":
        (run / "final.pt").write_bytes(b"")
    else:
        (run / "residual").mkdir()
        (run / "residual" / "residual.json").write_text("{}")


def test_finished_runs_here_or_collected_are_not_run_again(queue, tmp_path):
    runs = tmp_path / "runs"
    finish(runs / "finetune-rl-seed0")
    finish(tmp_path / "collected" / "scratch-seed0", kind="residual")
    (runs / "finetune-dagger-seed0").mkdir()  # started, not finished: it resumes
    left = queue.pending(runs, ["finetune-rl", "finetune-dagger", "scratch"], [0, 1])
    assert left == [
        ("finetune-dagger", 0),
        ("finetune-rl", 1),
        ("finetune-dagger", 1),
        ("scratch", 1),
    ]


def test_each_run_is_the_bench_train_command_of_its_method(queue, tmp_path):
    cmd = queue.command("scratch", 2, tmp_path / "scratch-seed2")
    assert cmd[1:4] == ["-m", "residual_bench.cli", "train"]
    assert cmd[4:] == [
        "--base", "zero", "--residual", "scratch", "--seed", "2",
        "--out", str(tmp_path / "scratch-seed2"), "--resume", "--quiet",
    ]  # fmt: skip
    ppo = queue.command("finetune-rl-ppo", 0, tmp_path)
    assert ppo[5:8] == ["bc", "--residual", "finetune-rl-ppo"]


@pytest.mark.parametrize("text, seeds", [("0-2", [0, 1, 2]), ("0,2", [0, 2]), ("1", [1])])
def test_seeds_are_a_range_or_a_list(queue, text, seeds):
    assert queue.parse_seeds(text) == seeds


def test_the_queue_runs_each_run_once_skips_one_in_use_and_counts_failures(
    queue, tmp_path, monkeypatch, capsys
):
    runs = tmp_path / "runs"
    runs.mkdir()

    def fake(method, seed, out):  # a run that writes its output and fails for seed 1
        code = f"open({str(out) + '.done'!r}, 'w').write('x'); raise SystemExit({seed})"
        return [sys.executable, "-c", code]

    monkeypatch.setattr(queue, "command", fake)
    monkeypatch.setattr(queue.time, "sleep", lambda _: None)
    with run_lock(runs / "scratch-seed2"):
        failed = queue.run_queue(runs, [("scratch", 0), ("scratch", 1), ("scratch", 2)], jobs=2)
    assert failed == 1
    done = sorted(p.name for p in runs.glob("*.done"))
    assert done == ["scratch-seed0.done", "scratch-seed1.done"]
    out = capsys.readouterr().out
    assert "skip scratch-seed2: another process is training it" in out
    assert "FAILED scratch-seed1 (exit 1)" in out
    assert (runs / "scratch-seed0.log").exists()
