"""``--env ID`` on every command that makes envs: ``bench train``, ``eval``, ``run``, ``demo``
and ``submit``.

The default is the pick-and-place id, so a command without ``--env`` does what it did before;
another registered task id runs the same command on that task and is recorded in every
record, summary, residual and submission. An unknown id is one line naming the registered
ids. A residual knows the task it was trained on (``residual.json``'s ``env_id``; one from
before the field existed reads as pick-and-place) and is never evaluated on another.

Budgets are tiny: one or two episodes, a residual of 40 steps on the scripted base.
"""

import json
import shutil
from pathlib import Path

import pytest
from test_cli_eval import assert_one_line_error, run_main

from residual_bench.eval.episode_tasks import make_tasks
from residual_bench.leaderboard.validate import validate_submission
from residual_bench.protocol import Protocol, plan_benchmark
from residual_bench.registration import ENV_ID
from residual_bench.residual.checkpoint import read_metadata, trained_env_id

PUSH = "ResidualPush-v0"
QUICK = ["--executor", "serial", "--quiet"]
TINY_SAC = """\
algo: sac
description: a 40-step SAC residual for command-line tests
features: privileged
alpha: [0.3, 0.1, 0.3]
hyperparams:
  buffer_size: 1000
  batch_size: 16
  learning_starts: 20
  policy_kwargs:
    net_arch: [16, 16]
safeguards:
  warmup_steps: 0
  critic_only_steps: 0
  exploration_ramp_steps: 0
train:
  steps: 40
  suite: nominal
  eval_every: 40
  eval_episodes: 1
  checkpoint_every: 40
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("env-option")


@pytest.fixture(scope="module")
def tiny_config(work) -> Path:
    path = work / "tiny-sac.yaml"
    path.write_text(TINY_SAC)
    return path


@pytest.fixture(scope="module")
def push_residual(work, tiny_config) -> Path:
    """``bench train --env ResidualPush-v0``: a 40-step residual of the scripted base."""
    out = work / "train-push"
    argv = ["train", "--env", PUSH, "--base", "scripted", "--residual", str(tiny_config)]
    result = run_main([*argv, "--out", str(out), "--quiet"])
    assert result.rc == 0, result.err
    assert f"on {PUSH}" in result.out
    return out / "residual"


@pytest.fixture(scope="module")
def push_eval(work, push_residual) -> Path:
    """``bench eval --env ResidualPush-v0``: the base alone and with the push residual."""
    out = work / "eval-push"
    argv = ["eval", "--env", PUSH, "--base", "scripted", "--episodes", "1"]
    result = run_main([*argv, "--residual", "none", str(push_residual), "--out", str(out), *QUICK])
    assert result.rc == 0, result.err
    return out


def records(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "episodes.jsonl").open()]


def test_bench_train_records_the_task_in_residual_json(push_residual):
    assert read_metadata(push_residual)["env_id"] == PUSH
    progress = (push_residual.parent / "progress.csv").read_text().splitlines()
    assert len(progress) == 2  # the header and the one evaluation at step 40


def test_bench_eval_runs_every_method_on_the_task_it_is_given(push_eval):
    rows = records(push_eval)
    assert len(rows) == 2
    assert {r["env_id"] for r in rows} == {PUSH}
    assert {r["residual"] for r in rows} == {None, "tiny-sac"}


def test_a_residual_trained_on_one_task_is_refused_on_another(work, push_residual):
    out = work / "eval-cross"
    argv = ["eval", "--base", "scripted", "--episodes", "1", "--residual", str(push_residual)]
    result = run_main([*argv, "--out", str(out), *QUICK])
    assert result.rc == 2
    assert_one_line_error(result.err, "eval", f"trained on {PUSH}, not {ENV_ID}", f"--env {PUSH}")
    assert not out.exists()


def test_a_residual_from_before_the_task_was_recorded_is_a_pick_and_place_residual(
    work, push_residual
):
    old = work / "old-residual"
    shutil.copytree(push_residual, old)
    meta = json.loads((old / "residual.json").read_text())
    del meta["env_id"]
    (old / "residual.json").write_text(json.dumps(meta))
    assert trained_env_id(read_metadata(old)) == ENV_ID
    # An earlier version of pick-and-place is the same task: its residuals run there too.
    grid = (["nominal"], ["heldout"], 1)
    assert make_tasks("scripted", [str(old)], *grid, env_id="ResidualPickPlace-v0")
    argv = ["eval", "--env", PUSH, "--base", "scripted", "--residual", str(old)]
    result = run_main([*argv, "--out", str(work / "eval-old"), *QUICK])
    assert result.rc == 2
    assert_one_line_error(result.err, "eval", f"trained on {ENV_ID}, not {PUSH}")


def test_bench_demo_runs_the_policy_on_the_task(work):
    out = work / "demo-push"
    argv = ["demo", "--env", PUSH, "--policy", "scripted", "--episodes", "1"]
    result = run_main([*argv, "--out", str(out), "--quiet"])
    assert result.rc == 0, result.err
    assert f"scripted on {PUSH}" in result.out
    assert [r["env_id"] for r in records(out)] == [PUSH]
    assert json.loads((out / "summary.json").read_text())["run"]["env_id"] == PUSH


def test_bench_run_trains_and_evaluates_on_the_task_with_its_own_suites(work, tiny_config):
    out = work / "run-push"
    argv = ["run", "--env", PUSH, "--base", "scripted", "--residual", str(tiny_config)]
    argv += ["--quick", "--steps", "40", "--episodes", "1", "--retrain", "--out", str(out)]
    result = run_main([*argv, *QUICK])
    assert result.rc == 0, result.err
    assert f"on {PUSH}" in result.out.splitlines()[0]  # the plan names the task
    assert "(nominal, push-mixed)" in result.out.splitlines()[0]  # its nominal and mixed
    assert {r["env_id"] for r in records(out)} == {PUSH}
    assert {r["suite"] for r in records(out)} == {"nominal", "push-mixed"}
    assert read_metadata(out / "train" / "seed0" / "residual")["env_id"] == PUSH


def test_bench_run_never_takes_a_pick_and_place_residual_shipped_for_the_base(tmp_path):
    pick_place = plan_benchmark("scripted", "sac", tmp_path, Protocol())
    push = plan_benchmark("scripted", "sac", tmp_path, Protocol(env_id=PUSH))
    assert "shipped" in pick_place.residuals[0]
    assert "trained now" in push.residuals[0]
    assert PUSH not in pick_place.describe()  # without --env: the plan of before, word for word


def test_bench_submit_makes_a_valid_submission_that_names_its_task(work, push_eval):
    root = work / "leaderboard"
    common = ["--name", "scripted", "--base", "scripted", "--residual", "none"]
    common += ["--submitter", "tests", "--root", str(root)]
    result = run_main(["submit", str(push_eval), "--env", PUSH, *common])
    assert result.rc == 0, result.err
    (submission,) = (root / "submissions").iterdir()
    assert json.loads((submission / "submission.json").read_text())["env_id"] == PUSH
    assert validate_submission(submission) == []
    # Without --env the command looks for pick-and-place episodes, and says there are none.
    result = run_main(["submit", str(push_eval), *common])
    assert result.rc == 2
    assert_one_line_error(result.err, "submit", f"on {ENV_ID}", f"scripted + none on {PUSH}")


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--base", "scripted", "--quiet"],
        ["run", "--base", "scripted", "--quiet"],
        ["train", "--base", "scripted", "--quiet"],
        ["demo", "--quiet"],
        ["submit", "results", "--name", "n", "--base", "scripted", "--residual", "none"],
    ],
    ids=lambda argv: argv[0],
)
def test_an_unknown_env_id_is_one_line_listing_the_registered_tasks(tmp_path, argv):
    where = ["--submitter", "s", "--root"] if argv[0] == "submit" else ["--out"]
    result = run_main([*argv, "--env", "ResidualNope-v0", *where, str(tmp_path / "out")])
    assert result.rc == 2
    needles = ("'ResidualNope-v0'", ENV_ID, PUSH, "ResidualStack-v0")
    assert_one_line_error(result.err, argv[0], *needles)
    assert not (tmp_path / "out").exists()


def test_an_interrupted_training_run_resumes_on_its_own_task_only(work, push_residual, tiny_config):
    interrupted = work / "train-interrupted"
    shutil.copytree(push_residual.parent, interrupted)
    shutil.rmtree(interrupted / "residual")  # as if killed after its last checkpoint
    argv = ["train", "--base", "scripted", "--residual", str(tiny_config), "--steps", "80"]
    result = run_main([*argv, "--out", str(interrupted), "--resume", "--quiet"])
    assert result.rc == 2
    assert_one_line_error(result.err, "train", f"started on {PUSH}", f"--env {PUSH}")
