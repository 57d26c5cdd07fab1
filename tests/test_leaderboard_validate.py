"""``bench leaderboard check``: every rule, and a tampered submission that breaks each one.

Each tampering is made on a copy of a valid submission and, where it matters, the copy's
summary and id are made consistent again, so that exactly one rule is left broken: the test
then says that this rule - and only this rule - is reported, naming the submission.
Every submission committed to the repository must pass all rules.
"""

import argparse
import json
import shutil
from pathlib import Path

import pytest
from test_leaderboard_submission import shared_results

from residual_bench.episodes.records import read_jsonl
from residual_bench.eval.runner import cell_summaries
from residual_bench.leaderboard.cli import add_leaderboard_parsers
from residual_bench.leaderboard.layout import MAX_BYTES
from residual_bench.leaderboard.submission import submission_id
from residual_bench.leaderboard.validate import validate_all, validate_submission

REPO_LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return shared_results(tmp_path_factory)


def tamper(source: Path, into: Path, *, data=None, lines=None, resummarize=False, rehash=True):
    """A copy of ``source`` changed by ``data(dict)`` / ``lines(list[dict])``.

    ``resummarize`` recomputes the claimed summary from the changed episodes; ``rehash``
    recomputes the id and renames the directory, so only the intended rule breaks.
    """
    path = into / "submissions" / source.name
    shutil.copytree(source, path)
    sub = json.loads((path / "submission.json").read_text())
    episodes = [json.loads(x) for x in (path / "episodes.jsonl").read_text().splitlines()]
    if lines is not None:
        episodes = lines(episodes)
        text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in episodes)
        (path / "episodes.jsonl").write_text(text)
    if resummarize:
        cells = cell_summaries(read_jsonl(path / "episodes.jsonl"))
        sub["summary"]["cells"] = json.loads(json.dumps(cells))
    if data is not None:
        data(sub)
    if rehash:
        sub["id"] = submission_id(sub, (path / "episodes.jsonl").read_bytes())
    (path / "submission.json").write_text(json.dumps(sub, indent=2))
    if rehash and sub["id"] != path.name:
        path = path.rename(path.with_name(sub["id"]))
    return path


def rules(path: Path) -> set[str]:
    failures = validate_submission(path)
    assert all(str(f).startswith(f"{path.name}: [{f.rule}] ") for f in failures)
    return {f.rule for f in failures}


def test_the_reference_submissions_pass_every_rule(shared):
    assert validate_submission(shared["base"]) == []
    assert validate_submission(shared["residual"]) == []


def test_every_submission_committed_to_the_repository_passes_every_rule():
    assert [str(f) for f in validate_all(REPO_LEADERBOARDS)] == []


def test_files_rule_missing_episodes_or_a_stray_file(shared, tmp_path):
    path = tamper(shared["base"], tmp_path / "a")
    (path / "episodes.jsonl").unlink()
    assert rules(path) == {"files"}
    path = tamper(shared["base"], tmp_path / "b")
    (path / "notes.txt").write_text("hi")
    assert rules(path) == {"files"}


def test_size_rule_caps_the_whole_directory(shared, tmp_path):
    path = tamper(shared["residual"], tmp_path)
    (path / "checkpoints" / "seed0" / "policy.safetensors").write_bytes(b"0" * (MAX_BYTES + 1))
    assert "size" in rules(path)


def test_schema_rule_missing_unknown_or_mistyped_fields(shared, tmp_path):
    path = tamper(shared["base"], tmp_path / "a", data=lambda d: d.pop("submitter"))
    assert rules(path) == {"schema"}
    path = tamper(shared["base"], tmp_path / "b", data=lambda d: d.update(extra=1))
    assert rules(path) == {"schema"}
    path = tamper(shared["base"], tmp_path / "c", data=lambda d: d["protocol"].update(episodes="2"))
    assert rules(path) == {"schema"}
    path = tamper(shared["base"], tmp_path / "d", data=lambda d: d.update(schema_version=2))
    assert rules(path) == {"schema"}


def test_id_rule_any_edit_without_a_new_id_is_caught(shared, tmp_path):
    edit = tamper(
        shared["base"], tmp_path / "a", data=lambda d: d.update(name="better"), rehash=False
    )
    assert rules(edit) == {"id"}
    renamed = tamper(shared["base"], tmp_path / "b")
    renamed = renamed.rename(renamed.with_name("0123456789abcdef"))
    assert rules(renamed) == {"id"}


def test_benchmark_rule_unknown_version_or_other_spec_hashes(shared, tmp_path):
    path = tamper(shared["base"], tmp_path / "a", data=lambda d: d.update(benchmark_version="9.9"))
    assert rules(path) == {"benchmark"}

    def other_hash(d):
        d["spec_hashes"]["suites"]["poke"] = "0" * 16

    assert rules(tamper(shared["base"], tmp_path / "b", data=other_hash)) == {"benchmark"}

    def episodes_on_another_spec(lines):
        lines[0]["env_spec_hash"] = "0" * 16
        return lines

    path = tamper(shared["base"], tmp_path / "c", lines=episodes_on_another_spec, resummarize=True)
    assert rules(path) == {"benchmark"}


def test_records_rule_malformed_lines_or_another_method(shared, tmp_path):
    def another_base(lines):
        lines[1]["base"] = "scripted-expert"
        return lines

    path = tamper(shared["base"], tmp_path / "a", lines=another_base)
    assert rules(path) == {"records"}
    path = tamper(shared["base"], tmp_path / "b", lines=lambda x: [*x, {"seed": 1}])
    assert rules(path) == {"records"}


def test_grid_rule_a_missing_or_repeated_episode(shared, tmp_path):
    path = tamper(shared["base"], tmp_path / "a", lines=lambda x: x[:-1], resummarize=True)
    assert rules(path) == {"grid"}
    path = tamper(shared["base"], tmp_path / "b", lines=lambda x: [*x, x[0]], resummarize=True)
    assert rules(path) == {"grid"}
    failures = [str(f) for f in validate_submission(path)]
    assert failures == [f"{path.name}: [grid] nominal/heldout episode 0 is present 2 times"]


def test_seeds_rule_episodes_not_on_their_derived_seed(shared, tmp_path):
    def cherry_pick(lines):
        lines[0]["seed"] += 1  # e.g. a re-roll of an unlucky episode
        return lines

    path = tamper(shared["base"], tmp_path / "a", lines=cherry_pick, resummarize=True)
    assert rules(path) == {"seeds"}

    def another_master_seed(d):
        d["protocol"]["master_seed"] = 7

    assert "seeds" in rules(tamper(shared["base"], tmp_path / "b", data=another_master_seed))


def test_summary_rule_claims_must_equal_the_recomputed_summary(shared, tmp_path):
    def inflate(d):
        d["summary"]["cells"][0]["success_rate"]["rate"] = 1.5

    assert rules(tamper(shared["base"], tmp_path / "a", data=inflate)) == {"summary"}

    def flip(lines):
        lines[0]["success"] = not lines[0]["success"]
        return lines

    assert rules(tamper(shared["base"], tmp_path / "b", lines=flip)) == {"summary"}


def test_checkpoint_rule_the_weights_must_have_the_declared_hash(shared, tmp_path):
    path = tamper(shared["residual"], tmp_path / "a")
    (path / "checkpoints" / "seed0" / "policy.safetensors").write_bytes(b"other weights")
    assert rules(path) == {"checkpoint"}
    path = tamper(shared["residual"], tmp_path / "b")
    shutil.rmtree(path / "checkpoints" / "seed0")
    assert rules(path) == {"checkpoint"}


def test_bench_leaderboard_check_names_each_failure_and_exits_1(shared, tmp_path, capsys):
    good = tamper(shared["base"], tmp_path)
    bad = tamper(shared["residual"], tmp_path, data=lambda d: d.update(name="x"), rehash=False)
    parser = argparse.ArgumentParser(prog="bench")
    add_leaderboard_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["leaderboard", "check", "--root", str(tmp_path)])
    assert args.func(args) == 1
    out = capsys.readouterr()
    assert f"{bad.name}: [id]" in out.err and good.name not in out.err
    assert "2 submission(s) checked, 1 invalid" in out.out
    shutil.rmtree(bad)
    assert args.func(args) == 0


def test_a_submission_made_before_a_metric_existed_claims_none_for_it_and_stays_valid(
    shared, tmp_path
):
    def older(data):
        for cell in data["summary"]["cells"]:
            cell.pop("reaction_rate_at", None)

    assert validate_submission(tamper(shared["base"], tmp_path / "a", data=older)) == []

    def without_success(data):
        data["summary"]["cells"][0].pop("success_rate")

    failures = validate_submission(tamper(shared["base"], tmp_path / "b", data=without_success))
    assert [f.rule for f in failures] == ["summary"]
