"""A leaderboard submission is a stranger's files: each attack an audit tried is refused.

- a checkpoint carrying a pickle payload is loaded by none of ``bench submit``,
  ``bench leaderboard check`` and ``bench verify``, and the payload never runs;
- the submitter cannot steer which episodes ``bench verify`` re-runs (a nonce the verifier
  picks decides, and the draw is recorded and audited);
- nothing in a submission points outside it (``..``, absolute paths, symlinks, suite files)
  and every file is covered by a hash;
- nothing makes the checker read without bound or hang (huge files, ``/dev/zero``, FIFOs).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from test_leaderboard_submission import shared_results
from test_leaderboard_validate import tamper
from test_trust_checkpoints import (
    build_sb3_zip,
    plant_payload,
    run_main,
    write_legacy_residual,
)

from residual_bench.leaderboard.draw import draw_indices
from residual_bench.leaderboard.files import SubmissionFileError, read_bounded
from residual_bench.leaderboard.validate import validate_submission
from residual_bench.leaderboard.verify import (
    audit_verifications,
    verify_submission,
    write_verification,
)
from residual_bench.residual.checkpoint import PICKLED_MODEL_FILE


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return shared_results(tmp_path_factory)


def rules(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for failure in validate_submission(path):
        out.setdefault(failure.rule, []).append(failure.message)
    return out


@pytest.fixture
def no_hang():
    """Fail, rather than hang, if a check blocks for more than 20 seconds."""

    def expired(*_):
        raise TimeoutError("the check blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# -- pickles ------------------------------------------------------------------------------------


@pytest.fixture
def pickled_submission(shared, tmp_path, sb3_zip) -> Path:
    """The residual submission with a payload-carrying model.zip beside its checkpoint."""
    path = tamper(shared["residual"], tmp_path)
    evil = path / "checkpoints" / "seed0" / PICKLED_MODEL_FILE
    evil.write_bytes(sb3_zip[0].read_bytes())
    plant_payload(evil, tmp_path / "pwned")
    return path


@pytest.fixture(scope="module")
def sb3_zip(tmp_path_factory):
    return build_sb3_zip(tmp_path_factory.mktemp("legacy"))


def test_check_refuses_a_pickle_bearing_checkpoint_and_never_runs_it(pickled_submission, tmp_path):
    found = rules(pickled_submission)
    assert any("bench residual convert" in m for m in found["checkpoint"])
    result = run_main(["leaderboard", "check", "--root", str(pickled_submission.parents[1])])
    assert result.rc == 1 and "pickle-bearing" in result.err
    assert not (tmp_path / "pwned").exists()


def test_verify_refuses_a_pickle_bearing_checkpoint_and_never_runs_it(pickled_submission, tmp_path):
    result = run_main(["verify", str(pickled_submission), "--k", "1"])
    assert result.rc == 2 and "pickle-bearing" in result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / "pwned").exists()


def test_submit_refuses_a_pickled_residual_and_never_runs_it(shared, tmp_path, sb3_zip):
    residual = write_legacy_residual(tmp_path / "old-residual", sb3_zip, tmp_path / "pwned")
    results = tmp_path / "results"
    shutil.copytree(shared["results"], results)
    lines = (results / "episodes.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for record in records:
        if record["residual"] is not None:
            record["extra"]["residual_path"] = str(residual)
    (results / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = run_main(
        [
            "submit",
            str(results),
            "--name",
            "x",
            "--base",
            "scripted",
            "--residual",
            "sac",
            "--submitter",
            "x",
            "--root",
            str(tmp_path / "board"),
        ]
    )
    assert result.rc == 2 and "bench residual convert" in result.err
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "board" / "submissions").exists() or not any(
        p for p in (tmp_path / "board" / "submissions").iterdir() if not p.name.startswith(".")
    )


def test_leaderboard_convert_resubmits_a_pickled_checkpoint_without_running_it(
    shared, tmp_path, sb3_zip
):
    path = tamper(shared["residual"], tmp_path)
    checkpoint = path / "checkpoints" / "seed0"
    shutil.rmtree(checkpoint)
    write_legacy_residual(checkpoint, sb3_zip, tmp_path / "pwned")
    assert "checkpoint" in rules(path)
    result = run_main(["leaderboard", "convert", str(path)])
    assert result.rc == 0, result.err
    (converted,) = [p for p in path.parent.iterdir() if not p.name.startswith(".")]
    assert converted.name != path.name and not path.exists()
    assert validate_submission(converted) == []
    assert not (tmp_path / "pwned").exists()


# -- the draw -----------------------------------------------------------------------------------


def test_the_submitter_cannot_aim_the_draw_by_padding_a_free_text_field(shared):
    """The audit's attack: pad ``submitter`` until the episodes drawn miss the edited ones.
    With the nonce, every padding leaves the draw to the verifier: over fresh nonces each
    episode is drawn about k / n of the time, whatever the id."""
    n, k, edited = 40, 10, set(range(0, 40, 4))
    for padding in range(3):
        sub_id = f"{padding:016x}"
        hits = sum(
            bool(edited & set(draw_indices(sub_id, f"{nonce:032x}", n, k))) for nonce in range(200)
        )
        assert hits > 180  # P(miss all 10 edited) = C(30,10)/C(40,10), about 3.5%


def test_two_verifications_draw_with_fresh_nonces_and_record_them(shared, tmp_path):
    first = verify_submission(shared["base"], k=1)
    second = verify_submission(shared["base"], k=1)
    assert first["draw"]["nonce"] != second["draw"]["nonce"]
    again = verify_submission(shared["base"], k=1, nonce=first["draw"]["nonce"])
    assert again["draw"] == first["draw"] and again["episodes"] == first["episodes"]


def test_an_edited_draw_in_a_stored_verification_is_reported(shared, tmp_path):
    root = tmp_path / "board"
    path = tamper(shared["base"], root)
    result = verify_submission(path, k=1)
    where = write_verification(root, result)
    assert audit_verifications(root) == []
    stored = json.loads(where.read_text())
    n = stored["replay"]["draw"]["n"]
    stored["replay"]["draw"]["indices"] = [(stored["replay"]["draw"]["indices"][0] + 1) % n]
    where.write_text(json.dumps(stored))
    (problem,) = audit_verifications(root)
    assert "not the ones its nonce draws" in problem
    result = run_main(["leaderboard", "check", "--root", str(root)])
    assert result.rc == 1 and "not the ones its nonce draws" in result.err


# -- containment --------------------------------------------------------------------------------


def test_a_train_seed_that_is_a_path_is_refused(shared, tmp_path):
    def escape(data):
        data["protocol"]["train_seeds"] = ["../../outside"]

    found = rules(tamper(shared["residual"], tmp_path, data=escape))
    assert any("train_seeds" in m for m in found["schema"])


def test_a_checkpoint_entry_pointing_outside_is_refused(shared, tmp_path):
    def escape(data):
        data["residual"]["checkpoints"]["0"]["path"] = "../../../elsewhere"

    found = rules(tamper(shared["residual"], tmp_path, data=escape))
    assert any("path must be checkpoints/seed0" in m for m in found["schema"])


def test_a_suite_named_by_a_path_is_never_read(shared, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("name: x\n")

    def escape(data):
        data["protocol"]["suites"] = [str(outside)]

    found = rules(tamper(shared["base"], tmp_path / "a", data=escape))
    assert any("plain names" in m for m in found["schema"])


@pytest.mark.parametrize("target", ["episodes.jsonl", "checkpoints/seed0/residual.json"])
def test_a_symlink_anywhere_in_a_submission_is_refused(shared, tmp_path, target):
    path = tamper(shared["residual"], tmp_path)
    real = path / target
    outside = tmp_path / "outside"
    shutil.move(real, outside)
    real.symlink_to(outside)
    found = rules(path)
    assert any("symlink" in m for m in found["files"])


def test_an_extra_file_under_checkpoints_is_refused_as_outside_every_hash(shared, tmp_path):
    path = tamper(shared["residual"], tmp_path)
    (path / "checkpoints" / "seed0" / "notes.txt").write_text("not hashed")
    found = rules(path)
    assert any("not covered by any hash" in m for m in found["files"])


# -- exhaustion ---------------------------------------------------------------------------------


def test_a_huge_episode_file_is_refused_before_it_is_read(shared, tmp_path, no_hang):
    path = tamper(shared["base"], tmp_path)
    with open(path / "episodes.jsonl", "r+b") as f:
        f.truncate(3 * 1024**3)  # sparse: 3 GB by size, nothing on disk
    found = rules(path)
    assert "size" in found and "files" not in found


def test_an_episode_file_linked_to_dev_zero_is_refused(shared, tmp_path, no_hang):
    path = tamper(shared["base"], tmp_path)
    (path / "episodes.jsonl").unlink()
    (path / "episodes.jsonl").symlink_to("/dev/zero")
    found = rules(path)
    assert any("symlink" in m for m in found["files"])


def test_a_fifo_never_hangs_the_check(shared, tmp_path, no_hang):
    path = tamper(shared["base"], tmp_path)
    (path / "episodes.jsonl").unlink()
    os.mkfifo(path / "episodes.jsonl")
    found = rules(path)
    assert any("FIFO" in m for m in found["files"])


def test_a_fifo_swapped_in_after_listing_does_not_block_a_read(tmp_path, no_hang):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(SubmissionFileError, match="not a regular file"):
        read_bounded(tmp_path / "fifo")


def test_a_deeply_nested_submission_json_is_refused_not_crashed(shared, tmp_path):
    path = tamper(shared["base"], tmp_path)
    (path / "submission.json").write_text("[" * 100_000 + "]" * 100_000)
    found = rules(path)
    assert any("not valid JSON" in m for m in found["schema"])


def test_a_protocol_that_would_make_the_check_build_a_huge_grid_is_refused(shared, tmp_path):
    def huge(data):
        data["protocol"]["suites"] = ["nominal"] * 10_000
        data["protocol"]["episodes"] = 100_000

    found = rules(tamper(shared["base"], tmp_path, data=huge))
    assert any("suites must list 1 to 32" in m for m in found["schema"])


def test_failure_messages_quote_submitted_text_briefly(shared, tmp_path):
    def long_name(data):
        data["protocol"]["suites"] = ["x" * 100_000]

    found = rules(tamper(shared["base"], tmp_path, data=long_name))
    assert all(len(m) < 400 for messages in found.values() for m in messages)
