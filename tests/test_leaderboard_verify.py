"""``bench verify``: re-run drawn episodes from the submitted checkpoint, compare exactly.

The episodes are drawn with a nonce the verifier picks at verification time, combined with
the submission id (the submitter can neither know nor aim the draw), and the draw is stored
so anyone can audit it. Success, recovery and completion time of each re-run must equal the
record's. A submission whose records were doctored consistently (summary and id recomputed,
so it passes every rule of ``bench leaderboard check``) is caught here. Remote bases are
reported as not verifiable; ``--heldout-seeds`` runs a submission on a maintainer's private
master seed.
"""

import argparse
import hashlib
import json

import pytest
from test_leaderboard_submission import shared_results
from test_leaderboard_validate import tamper

from residual_bench.episodes.records import read_jsonl
from residual_bench.leaderboard.cli import add_leaderboard_parsers
from residual_bench.leaderboard.draw import draw_indices
from residual_bench.leaderboard.submission import base_info
from residual_bench.leaderboard.validate import validate_submission
from residual_bench.leaderboard.verify import (
    not_verifiable_reason,
    read_heldout_seeds,
    verification_status,
    verify_submission,
    write_verification,
)
from residual_bench.policies.bc.model import shipped_checkpoint


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return shared_results(tmp_path_factory)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench")
    add_leaderboard_parsers(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


NONCE = "0123456789abcdef" * 2


def test_the_episodes_to_rerun_are_drawn_from_the_nonce_and_the_submission_id(shared):
    n = len(read_jsonl(shared["residual"] / "episodes.jsonl"))
    sub_id = shared["residual"].name
    first = draw_indices(sub_id, NONCE, n, 2)
    assert first == draw_indices(sub_id, NONCE, n, 2)  # repeatable from the stored nonce
    assert len(set(first)) == 2 and all(0 <= i < n for i in first)
    assert draw_indices(sub_id, NONCE, n, 100) == list(range(n))
    others = {tuple(draw_indices(sub_id, f"{i:032x}", 40, 3)) for i in range(20)}
    assert len(others) > 1  # the nonce, not the submission alone, decides
    with pytest.raises(ValueError, match="at least 1"):
        draw_indices(sub_id, NONCE, n, 0)
    with pytest.raises(ValueError, match="hex digits"):
        draw_indices(sub_id, "not-hex", n, 2)


def test_a_residual_submission_is_verified_from_its_own_checkpoint(shared, tmp_path, capsys):
    args = parse("verify", str(shared["residual"]), "--k", "2", "--record", "--root", str(tmp_path))
    assert verification_status(tmp_path, shared["residual"].name) == "self-reported"
    assert args.func(args) == 0
    stored = json.loads(
        (tmp_path / "verifications" / f"{shared['residual'].name}.json").read_text()
    )
    result = stored["replay"]
    assert result["status"] == "verified" and len(result["episodes"]) == 2
    for e in result["episodes"]:
        assert e["match"] and e["claimed"] == e["rerun"] and e["train_seed"] == 0
        assert set(e["rerun"]) == {"success", "recovered", "recovery_times", "completion_time"}
    assert verification_status(tmp_path, shared["residual"].name) == "verified"
    assert "verified" in capsys.readouterr().out
    draw = result["draw"]
    assert len(draw["nonce"]) == 32 and draw["k"] == 2 and "sha256" in draw["rule"]
    assert [e["record_index"] for e in result["episodes"]] == draw["indices"]
    # The submission itself is untouched: its files and id stay valid.
    assert validate_submission(shared["residual"]) == []


def test_doctored_but_consistent_records_fail_verification(shared, tmp_path):
    def faster(lines):
        for line in lines:  # every record, so that any chosen episode shows it
            assert line["success"]  # the scripted base solves these episodes
            line["first_success_time"] -= 0.5
        return lines

    path = tamper(shared["base"], tmp_path, lines=faster, resummarize=True)
    assert validate_submission(path) == []
    result = verify_submission(path, k=1)
    assert result["status"] == "failed"
    (episode,) = result["episodes"]
    assert not episode["match"]
    assert episode["rerun"]["completion_time"] == pytest.approx(
        episode["claimed"]["completion_time"] + 0.5
    )


def test_verify_refuses_an_invalid_submission_or_a_swapped_checkpoint(shared, tmp_path):
    path = tamper(shared["residual"], tmp_path)
    (path / "checkpoints" / "seed0" / "policy.safetensors").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"\[checkpoint\]"):
        verify_submission(path, k=1)
    with pytest.raises(FileNotFoundError, match="not a submission"):
        verify_submission(tmp_path, k=1)


def test_bases_that_need_a_gpu_server_are_marked_not_verifiable(shared, tmp_path):
    assert not_verifiable_reason(base_info("scripted")) is None
    assert not_verifiable_reason(base_info("bc")) is None
    assert "GPU" in not_verifiable_reason({"name": "remote:ws://gpu-box:8000"})
    assert "GPU" in not_verifiable_reason({"name": "octo"})
    assert "outside the package" in not_verifiable_reason({"name": "bc:runs/dagger/final.pt"})

    def remote(lines):
        for line in lines:
            line["base"] = "remote:ws://gpu-box:8000"
        return lines

    def declare(d):
        d["base"] = {"name": "remote:ws://gpu-box:8000", "description": "remote"}

    path = tamper(shared["base"], tmp_path, lines=remote, data=declare, resummarize=True)
    assert validate_submission(path) == []
    result = verify_submission(path, k=1)
    assert result["status"] == "not-verifiable" and result["episodes"] == []
    write_verification(tmp_path, result)
    assert verification_status(tmp_path, path.name) == "not-verifiable"


def test_a_submission_run_with_other_bc_weights_is_not_verifiable_but_says_why():
    base = base_info("bc")
    # The shipped weights, named by the hash `sha256sum` prints for the file.
    weights = hashlib.sha256(shipped_checkpoint().read_bytes()).hexdigest()
    assert base["weights_sha256"] == weights
    assert "weights_sha256" not in base_info("scripted")  # nothing to name
    reason = not_verifiable_reason({**base, "weights_sha256": "0" * 64})
    assert "000000000000" in reason and "ships" in reason


def test_heldout_seeds_run_a_private_master_seed(shared, tmp_path, capsys):
    seeds = tmp_path / "private-seeds.json"
    seeds.write_text(json.dumps({"master_seed": 918273, "episodes": 1}))
    argv = ["--heldout-seeds", str(seeds), "--record", "--root", str(tmp_path)]
    args = parse("verify", str(shared["base"]), *argv)
    assert args.func(args) == 0
    stored = json.loads((tmp_path / "verifications" / f"{shared['base'].name}.json").read_text())
    result = stored["heldout"]
    assert result["status"] == "consistent"
    assert [(c["suite"], c["hidden"][1]) for c in result["cells"]] == [("nominal", 1), ("poke", 1)]
    assert "918273" not in json.dumps(stored)  # the private seed is never published
    assert "claimed 2/2, hidden" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"master_seed": 0, "episodes": 5}, "private master seed"),
        ({"episodes": 5}, "expected a JSON object"),
        ({"master_seed": 3, "episodes": 0}, "episodes >= 1"),
    ],
)
def test_heldout_seed_files_must_hold_a_private_master_seed(tmp_path, content, match):
    path = tmp_path / "seeds.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=match):
        read_heldout_seeds(path)
    with pytest.raises(FileNotFoundError):
        read_heldout_seeds(tmp_path / "absent.json")
