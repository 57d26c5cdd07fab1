"""``bench eval``, ``bench run``, ``bench train`` and ``bench report`` on the command line.

``bench eval`` writes ``episodes.jsonl`` and ``summary.json`` and prints one success line per
(method, suite, objects) cell; it never overwrites results (``--resume`` continues them).
Every input error is one line on stderr naming the problem (and the valid choices where
there are any), exit status 2 and no traceback; nothing is written for a rejected command.
"""

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from residual_bench.cli import main
from residual_bench.rollout import format_rate

EVAL = ["eval", "--base", "scripted", "--suite", "nominal", "drop", "--episodes", "2"]
QUICK = ["--executor", "serial", "--quiet"]


def bench_script() -> str:
    """The installed ``bench`` console script (next to this interpreter, else on PATH)."""
    here = Path(sys.executable).with_name("bench")
    script = str(here) if here.is_file() else shutil.which("bench")
    assert script, "the bench console script is not installed"
    return script


def run_main(argv: list[str]) -> SimpleNamespace:
    """``main(argv)`` in this process, with its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return SimpleNamespace(rc=rc, out=out.getvalue(), err=err.getvalue())


def assert_one_line_error(err: str, command: str, *needles: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"bench {command}: error: ")
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """``bench eval`` of the scripted base on nominal and drop, held-out objects, 2 episodes."""
    out = tmp_path_factory.mktemp("cli") / "eval"
    result = run_main([*EVAL, "--out", str(out), *QUICK])
    result.dir = out
    return result


def test_eval_exits_0_and_writes_the_records_and_summary(evaluated):
    assert evaluated.rc == 0
    assert evaluated.err == ""  # --quiet: no progress bar
    records = [json.loads(line) for line in (evaluated.dir / "episodes.jsonl").open()]
    assert len(records) == 4
    assert {(r["suite"], r["objects"], r["base"]) for r in records} == {
        ("nominal", "heldout", "scripted"),
        ("drop", "heldout", "scripted"),
    }
    summary = json.loads((evaluated.dir / "summary.json").read_text())
    assert summary["run"]["episodes"] == 4
    assert [c["n_episodes"] for c in summary["cells"]] == [2, 2]


def test_eval_prints_one_success_line_per_cell(evaluated):
    cells = json.loads((evaluated.dir / "summary.json").read_text())["cells"]
    lines = [line for line in evaluated.out.splitlines() if "success" in line]
    assert len(lines) == len(cells) == 2
    for cell in cells:
        expected = f"success {format_rate(cell['success_rate'])}"
        assert any(
            line.split()[:3] == ["scripted", cell["suite"], cell["objects"]] and expected in line
            for line in lines
        ), (cell["suite"], lines)
    assert (
        evaluated.out.splitlines()[-1] == f"wrote {evaluated.dir}/episodes.jsonl and summary.json"
    )


def test_eval_resume_on_a_finished_directory_adds_nothing(evaluated):
    before = (evaluated.dir / "episodes.jsonl").read_bytes()
    result = run_main([*EVAL, "--out", str(evaluated.dir), *QUICK, "--resume"])
    assert result.rc == 0
    assert (evaluated.dir / "episodes.jsonl").read_bytes() == before
    assert len([line for line in result.out.splitlines() if "success" in line]) == 2


def test_eval_into_a_directory_with_results_is_refused_without_resume(evaluated):
    before = {p.name: p.read_bytes() for p in evaluated.dir.iterdir()}
    result = run_main([*EVAL, "--out", str(evaluated.dir), *QUICK])
    assert result.rc == 2
    assert_one_line_error(result.err, "eval", "--resume", "episodes.jsonl")
    assert {p.name: p.read_bytes() for p in evaluated.dir.iterdir()} == before


def test_report_writes_markdown_and_html_from_a_results_directory(evaluated, tmp_path):
    out = tmp_path / "report"
    result = run_main(["report", str(evaluated.dir), "--out", str(out)])
    assert result.rc == 0, result.err
    assert "report.md" in result.out and "report.html" in result.out
    markdown = (out / "report.md").read_text()
    for suite in ("nominal", "drop"):
        assert f"| heldout | {suite} | scripted | 2 |" in markdown
    html = (out / "report.html").read_text()
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert "<table" in html


# Each case: argv (``OUT`` stands for a path that must not be created), the subcommand and
# what the error line must name.
BAD_INPUT = {
    "eval-unknown-base": (
        ["eval", "--base", "no-such-base", "--out", "OUT"],
        "eval",
        ["no-such-base", "valid choices", "scripted-expert"],
    ),
    "eval-unknown-suite": (
        ["eval", "--base", "scripted", "--suite", "no-such-suite", "--out", "OUT"],
        "eval",
        ["no-such-suite", "nominal", "drop"],
    ),
    "eval-missing-residual": (
        ["eval", "--base", "scripted", "--residual", "MISSING", "--out", "OUT"],
        "eval",
        ["--residual", "MISSING", "does not exist"],
    ),
    "eval-no-episodes": (
        ["eval", "--base", "scripted", "--episodes", "0", "--out", "OUT"],
        "eval",
        ["episodes", "0"],
    ),
    "run-unknown-residual-algorithm": (
        ["run", "--base", "scripted", "--residual", "no-such-algo", "--out", "OUT"],
        "run",
        ["no-such-algo", "valid choices", "sac", "td3", "ppo"],
    ),
    "run-unknown-suite-before-training": (
        ["run", "--base", "scripted", "--suite", "no-such-suite", "--out", "OUT"],
        "run",
        ["no-such-suite", "nominal"],
    ),
    "run-bad-seeds": (
        ["run", "--base", "scripted", "--seeds", "zero", "--out", "OUT"],
        "run",
        ["--seeds", "zero"],
    ),
    "train-unknown-base": (
        ["train", "--base", "no-such-base", "--out", "OUT"],
        "train",
        ["no-such-base", "valid choices", "scripted"],
    ),
    "train-unknown-residual": (
        ["train", "--base", "scripted", "--residual", "no-such-algo", "--out", "OUT"],
        "train",
        ["no-such-algo", "valid choices", "sac"],
    ),
    "report-without-episodes": (
        ["report", "EMPTY", "--out", "OUT"],
        "report",
        ["episodes.jsonl", "EMPTY"],
    ),
}


@pytest.mark.parametrize(("argv", "command", "needles"), BAD_INPUT.values(), ids=BAD_INPUT)
def test_bad_input_is_one_error_line_exit_status_2_and_nothing_written(
    argv, command, needles, tmp_path
):
    paths = {
        "OUT": tmp_path / "out",
        "MISSING": tmp_path / "missing-residual",
        "EMPTY": tmp_path / "empty",
    }
    paths["EMPTY"].mkdir()
    argv = [str(paths.get(arg, arg)) for arg in argv]
    needles = [str(paths.get(needle, needle)) for needle in needles]
    result = run_main([*argv, "--quiet"] if command != "report" else argv)
    assert result.rc == 2
    assert_one_line_error(result.err, command, *needles)
    assert not paths["OUT"].exists()


def test_an_unknown_executor_is_refused_by_the_parser_naming_the_valid_choices(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--base", "scripted", "--executor", "threads", "--out", str(out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(r"--executor: invalid choice: 'threads'", err)
    assert all(f"'{name}'" in err for name in ("local", "serial", "ray"))
    assert not out.exists()


def test_help_lists_the_train_eval_run_and_report_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    for command in ("train", "eval", "run", "report"):
        assert re.search(rf"^\s+{command}\s+\S", help_text, re.MULTILINE), command


def test_console_script_reports_an_unknown_base_without_a_traceback(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [bench_script(), "eval", "--base", "no-such-base", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "eval", "no-such-base", "valid choices")
    assert not out.exists()


def test_console_script_refuses_existing_results_without_a_traceback(evaluated):
    before = (evaluated.dir / "episodes.jsonl").read_bytes()
    result = subprocess.run(
        [bench_script(), *EVAL, "--out", str(evaluated.dir), *QUICK],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "eval", "--resume")
    assert (evaluated.dir / "episodes.jsonl").read_bytes() == before
