"""Operator-run evaluation driven by scripted input, on the twin."""

import argparse
import json

import gymnasium as gym
import pytest

from residual_bench.episodes.records import read_jsonl
from residual_bench.real.cli import HoldBase, add_real_eval_parser
from residual_bench.real.session import OperatorAbort, ScriptedOperator, make_plan, run_session


def parse(argv):
    parser = argparse.ArgumentParser()
    add_real_eval_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_dry_run_writes_real_records_in_the_shared_format(tmp_path, capsys):
    args = parse(
        f"real-eval --base hold --trials 2 --plan poke --out {tmp_path} --dry-run "
        "--episode-seconds 1.5".split()
    )
    assert args.func(args) == 0
    records = read_jsonl(tmp_path / "episodes.jsonl")
    assert len(records) == 2 and all(r.extra["real"] is True for r in records)
    assert all(r.env_id == "PandaReal-v0" and r.suite == "poke" for r in records)
    assert [len(r.events) for r in records] == [1, 1]
    event = records[0].events[0]
    assert event.trigger == "operator" and event.time >= event.params["planned_time"]
    assert all((tmp_path / r.extra["video"]).is_file() for r in records)
    assert len(json.loads((tmp_path / "plan.json").read_text())) == 2
    assert "2 " not in capsys.readouterr().err

    from residual_bench.eval.report import load_results, method_table

    assert method_table(load_results(tmp_path))["episodes"].sum() == 2


def test_bad_plan_name_is_a_clear_error(tmp_path):
    args = parse(f"real-eval --base hold --plan wobble --out {tmp_path} --dry-run".split())
    with pytest.raises(ValueError, match="unknown plan 'wobble'; valid choices: nominal"):
        args.func(args)


def test_a_sim_only_base_is_refused(tmp_path):
    args = parse(f"real-eval --base expert --out {tmp_path} --dry-run --trials 1".split())
    with pytest.raises(ValueError, match="reads simulator state"):
        args.func(args)


@pytest.fixture
def env():
    env = gym.make(
        "PandaReal-v0", driver="twin", obs_mode="rgb", image_size=32, episode_seconds=1.0
    )
    yield env
    env.close()


def test_operator_labels_and_abort(tmp_path, env):
    plan = make_plan("mixed", 3, seed=1, episode_seconds=1.0)
    operator = ScriptedOperator(labels=[(True, None)], abort_at=(1, 5))
    with pytest.raises(OperatorAbort, match="aborted by the operator in trial 2; 1 record"):
        run_session(env, HoldBase(), plan, operator, tmp_path, base="hold", plan_name="mixed")
    (record,) = read_jsonl(tmp_path / "episodes.jsonl")
    assert record.success and record.first_success_time == record.episode_time
    assert operator.transcript[0].startswith("Keep the hardware E-stop in reach")


def test_a_fault_in_a_session_is_labelled_and_needs_acknowledgement(tmp_path, env):
    plan = make_plan("nominal", 2, episode_seconds=1.0)
    env.unwrapped.driver.inject("reflex", at=env.unwrapped.driver.clock() + 1.5)
    operator = ScriptedOperator(labels=[(True, None)])
    records = run_session(env, HoldBase(), plan, operator, tmp_path, base="hold")
    assert [r.extra["termination_reason"] for r in records] == [None, "reflex"]
    assert not records[1].success and records[1].extra["failure_category"] == "reflex"
    assert "fault reflex acknowledged=True" in operator.transcript

    env.unwrapped.driver.inject("user_stop", at=env.unwrapped.driver.clock() + 0.5)
    refuse = ScriptedOperator(labels=[(True, None)], acknowledge=False)
    with pytest.raises(OperatorAbort, match="not acknowledged"):
        run_session(env, HoldBase(), plan, refuse, tmp_path / "b", base="hold")
