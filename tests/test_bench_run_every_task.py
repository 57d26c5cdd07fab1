"""``bench run`` without ``--env`` runs every task; with ``--env ID`` it runs that one, as before.

Over every task, each current task (not an earlier id of one) gets its own folder of the run
folder, laid out and resumed as a one-task run, with only the suites that apply to it; one
report at the top of the run folder then tables every task against every suite: success of
the base alone and with the residual, the difference and the exact McNemar p, "–" where a
suite was not run on a task. A trained residual belongs to one task, so it is refused there.

Plans and reports only: no episode runs here (the runs themselves are faked by hand-built
records), so every expected number can be computed on paper.
"""

import shutil

import pytest
from test_cli_eval import assert_one_line_error, run_main

from residual_bench import benchmark_run
from residual_bench.benchmark_run import ProtocolOptions, execute_run, plan_run
from residual_bench.cli import build_parser
from residual_bench.env_spec import SpecError
from residual_bench.episodes.records import EpisodeRecord, append_jsonl
from residual_bench.eval.report_tasks import build_task_report, task_suite_block, task_suite_table
from residual_bench.perturb.suite import suite_names
from residual_bench.protocol import Protocol, plan_benchmark
from residual_bench.registration import ENV_ID
from residual_bench.residual.checkpoint import residual_location
from residual_bench.tasks import task_entry

TASKS = ["ResidualPickPlace-v1", "ResidualInsert-v0", "ResidualPush-v0", "ResidualStack-v0"]
PUSH = "ResidualPush-v0"
SHIPPED = "shipped:scripted-sac-seed0"  # trained on pick-and-place
POUR_POKE = """\
name: pour-poke
description: a poke while pouring, a phase of no task
split: train
perturbations:
  - type: poke
    trigger: {phase: [pour]}
"""


def record(env_id, suite, seed, success, residual=None):
    return EpisodeRecord(
        env_id=env_id,
        env_spec_hash="abc",
        seed=seed,
        suite=suite,
        objects="heldout",
        base="scripted",
        residual=residual,
        instruction="do the task",
        target_object="cube",
        success=success,
        first_success_time=2.0 if success else None,
        episode_time=10.0,
        n_steps=200,
        extra={"train_seed": 0} if residual else {},
    )


def paired(env_id, suite, base, residual, seeds=range(6)):
    """The base alone and with a residual on the same seeds, with the outcomes given."""
    return [record(env_id, suite, s, base) for s in seeds] + [
        record(env_id, suite, s, residual, residual=f"{env_id}/train/seed0/residual") for s in seeds
    ]


def write(directory, records):
    directory.mkdir(parents=True, exist_ok=True)
    for r in records:
        append_jsonl(directory / "episodes.jsonl", r)
    return directory


def test_without_env_every_current_task_is_planned_each_in_its_own_folder(tmp_path):
    run = plan_run("scripted", "sac", tmp_path, None, workers=1)
    assert run.every_task
    assert [task.env_id for task in run.tasks] == TASKS  # ResidualPickPlace-v0 is no other task
    assert [task.out for task in run.tasks] == [tmp_path / env_id for env_id in TASKS]
    for task in run.tasks:
        assert task.plan.protocol.suites == list(task_entry(task.env_id).task.suites)
    text = run.describe()
    assert text.splitlines()[0].startswith("bench run: scripted + sac on every task (4)")
    assert all(f"[{n}/4] {env_id}" in text for n, env_id in enumerate(TASKS, 1))
    assert "estimated total over every task" in text


def test_a_residual_algorithm_is_trained_once_per_task_unless_one_is_shipped_for_it(tmp_path):
    run = plan_run("scripted", "sac", tmp_path, None, workers=1)
    sources = {task.env_id: task.plan.residuals[0] for task in run.tasks}
    assert "shipped" in sources[ENV_ID]
    for env_id in TASKS[1:]:
        assert f"trained now into {tmp_path / env_id / 'train' / 'seed0'}" in sources[env_id]


def test_suites_asked_for_every_task_run_only_where_they_apply(tmp_path):
    options = ProtocolOptions(suites=["nominal", "poke", "push-poke"])
    run = plan_run("scripted", "sac", tmp_path, None, options, workers=1)
    suites = {task.env_id: task.plan.protocol.suites for task in run.tasks}
    assert suites == {
        ENV_ID: ["nominal", "poke"],
        "ResidualInsert-v0": ["nominal", "poke"],
        PUSH: ["nominal", "push-poke"],
        "ResidualStack-v0": ["nominal", "poke"],
    }
    assert run.left_out[PUSH] == ["poke"] and run.left_out[ENV_ID] == ["push-poke"]
    assert "left out (they do not apply to the task): poke" in run.describe()


def test_a_task_that_no_suite_asked_for_fits_is_left_out_and_named_and_none_at_all_is_refused(
    tmp_path,
):
    run = plan_run("scripted", "sac", tmp_path, None, ProtocolOptions(suites=["drop"]))
    assert PUSH not in [task.env_id for task in run.tasks] and len(run.tasks) == 3
    assert f"{PUSH}: none of the suites applies (drop)" in run.describe()
    pour = tmp_path / "pour-poke.yaml"
    pour.write_text(POUR_POKE)
    with pytest.raises(ValueError, match=f"--suite: none of {pour} applies to any task"):
        plan_run("scripted", "sac", tmp_path, None, ProtocolOptions(suites=[str(pour)]))


def test_held_out_and_quick_runs_over_every_task_take_what_fits_each_task(tmp_path):
    run = plan_run("scripted", "sac", tmp_path, None, ProtocolOptions(quick=True, heldout=True))
    suites = {task.env_id: task.plan.protocol.suites for task in run.tasks}
    assert suites[PUSH] == ["nominal", "push-mixed"]  # no held-out suite applies to push
    assert suites[ENV_ID] == ["nominal", "mixed", *sorted(suite_names("heldout"))]


def test_with_env_the_run_is_the_one_task_run_of_before_word_for_word(tmp_path):
    for env_id in (ENV_ID, PUSH):
        run = plan_run("scripted", "sac", tmp_path, env_id, workers=2)
        assert not run.every_task and [task.out for task in run.tasks] == [tmp_path]
        before = plan_benchmark("scripted", "sac", tmp_path, Protocol(env_id=env_id), workers=2)
        assert run.describe() == before.describe()
    # A suite that does not fit the one task asked for is still refused, not left out.
    with pytest.raises(SpecError, match=r"suite 'mixed'"):
        plan_run("scripted", "sac", tmp_path, PUSH, ProtocolOptions(suites=["mixed"]))


def test_only_bench_run_defaults_to_every_task():
    parser = build_parser()
    assert parser.parse_args(["run", "--base", "scripted", "--out", "o"]).env is None
    assert parser.parse_args(["eval", "--base", "scripted", "--out", "o"]).env == ENV_ID
    assert parser.parse_args(["run", "--env", PUSH, "--base", "b", "--out", "o"]).env == PUSH


@pytest.mark.parametrize("residual", ["shipped", "directory"])
def test_a_trained_residual_without_env_is_refused_naming_its_task(tmp_path, residual):
    if residual == "shipped":
        value = SHIPPED
    else:
        value = str(tmp_path / "my-residual")
        shutil.copytree(residual_location(SHIPPED), value)
    out = tmp_path / "out"
    result = run_main(["run", "--base", "scripted", "--residual", value, "--out", str(out)])
    assert result.rc == 2
    needles = ("--residual", "trained residual", f"({ENV_ID})", "one residual per task")
    assert_one_line_error(result.err, "run", *needles, f"bench eval --env {ENV_ID}")
    assert not out.exists()


def test_the_combined_table_is_task_by_suite_with_a_dash_where_a_suite_was_not_run():
    records = paired(ENV_ID, "nominal", base=False, residual=True)  # p = 2 / 2**6
    records += paired(ENV_ID, "poke", base=True, residual=True)
    records += paired(PUSH, "nominal", base=True, residual=True)  # the same seeds: not paired
    records += paired(PUSH, "push-poke", True, False, seeds=range(2))  # across tasks
    table = task_suite_table(records)
    assert list(table["task"]) == [ENV_ID, ENV_ID, PUSH, PUSH]
    _, head, rows = task_suite_block(table)
    assert head == ["task", "nominal", "poke", "push-poke"]
    assert rows == [
        [ENV_ID, "0% → 100%, +100 pp (p=0.031)", "100% → 100%, +0 pp (p=1.000)", "–"],
        [PUSH, "100% → 100%, +0 pp (p=1.000)", "–", "100% → 0%, -100 pp (p=0.500)"],
    ]


def test_the_combined_report_sits_at_the_top_and_links_each_tasks_own_report(tmp_path):
    pick = write(tmp_path / ENV_ID, paired(ENV_ID, "nominal", False, True))
    push = paired(PUSH, "push-poke", True, False) + paired(PUSH, "nominal", True, True)
    push = write(tmp_path / PUSH, push)
    report = build_task_report([pick, push], tmp_path, title="every task")
    assert report == tmp_path / "report.md" and (tmp_path / "report.html").is_file()
    text = report.read_text()
    assert "| task | nominal | push-poke |" in text
    assert f"| {ENV_ID} | 0% → 100%, +100 pp (p=0.031) | – |" in text
    assert "Episodes per cell: 6." in text  # two tasks' nominal cells are not one cell
    assert f"| {PUSH} | {PUSH}/report/report.md |" in text


def fake_runs(monkeypatch):
    """Replace each task's run by hand-built records in its folder; returns the calls."""
    calls = []

    def run_benchmark(base, algo, out, protocol, **kwargs):
        calls.append((protocol.env_id, out, kwargs["resume"]))
        if not (out / "episodes.jsonl").exists():
            write(out, paired(protocol.env_id, protocol.suites[0], False, True))
        return out / "report" / "report.md"

    monkeypatch.setattr(benchmark_run, "run_benchmark", run_benchmark)
    return calls


def test_a_run_over_every_task_runs_them_in_turn_and_ends_with_one_report(
    tmp_path, monkeypatch, capsys
):
    calls = fake_runs(monkeypatch)
    run = plan_run("scripted", "sac", tmp_path, None, ProtocolOptions(quick=True))
    report = execute_run(run, progress=False)
    assert calls == [(env_id, tmp_path / env_id, False) for env_id in TASKS]
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        f"[{n}/4] {env_id} -> {tmp_path / env_id}" for n, env_id in enumerate(TASKS, 1)
    ]
    assert report == tmp_path / "report.md"
    assert all(env_id in report.read_text() for env_id in TASKS)
    assert all(env_id in run.closing_text() for env_id in TASKS)


def test_a_run_over_every_task_is_refused_before_any_task_starts_unless_resumed(
    tmp_path, monkeypatch
):
    calls = fake_runs(monkeypatch)
    run = plan_run("scripted", "sac", tmp_path, None, ProtocolOptions(quick=True))
    write(tmp_path / PUSH, paired(PUSH, "nominal", False, True))  # an interrupted run
    with pytest.raises(FileExistsError, match=f"{PUSH}/episodes.jsonl already exists"):
        execute_run(run, progress=False)
    assert calls == []
    execute_run(run, progress=False, resume=True)  # each task resumes as a one-task run does
    assert calls == [(env_id, tmp_path / env_id, True) for env_id in TASKS]


def test_a_one_task_run_folder_is_not_taken_over_by_a_run_over_every_task(tmp_path, monkeypatch):
    calls = fake_runs(monkeypatch)
    write(tmp_path, paired(ENV_ID, "nominal", False, True))
    run = plan_run("scripted", "sac", tmp_path, None, ProtocolOptions(quick=True))
    with pytest.raises(FileExistsError, match="holds the run of one task"):
        execute_run(run, progress=False, resume=True)
    assert calls == []
