"""``bench submit``: a results directory becomes an immutable, self-contained submission.

The results are real but small: ``evaluate`` runs the ``scripted`` base alone and with a
zero-initialised (untrained) SAC residual, on ``nominal`` and ``poke``, held-out objects, two
episodes per cell. They are built once per test session and shared with the other
``test_leaderboard_*`` modules through :func:`shared_results`.
"""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from residual_bench.episodes.records import read_jsonl
from residual_bench.eval.episode_tasks import make_tasks
from residual_bench.eval.runner import cell_summaries, evaluate
from residual_bench.leaderboard.cli import add_leaderboard_parsers
from residual_bench.leaderboard.layout import MAX_BYTES
from residual_bench.leaderboard.submission import (
    checkpoint_hash,
    submission_id,
    submit,
    suite_spec_hashes,
)
from residual_bench.leaderboard.validate import validate_submission
from residual_bench.seeding import episode_seed

BASE, SUITES, OBJECTS, EPISODES = "scripted", ["nominal", "poke"], ["heldout"], 2
_CACHE: dict[str, Path] = {}


def shared_results(tmp_path_factory) -> dict[str, Path]:
    """``{"results", "base", "residual"}``: a results directory and its two submissions.

    The submissions live in ``<root>/submissions/``; tests copy them before changing them.
    """
    if not _CACHE:
        from residual_bench.residual.agents import build_agent
        from residual_bench.residual.checkpoint import save_residual
        from residual_bench.residual.config import load_config
        from residual_bench.residual.factory import make_residual_env

        work = tmp_path_factory.mktemp("leaderboard-results")
        config = load_config("sac")
        env = make_residual_env(BASE, "privileged", tuple(config.alpha))
        try:
            model = build_agent(config, env, seed=0)
            meta = {"algo": "sac", "name": "sac", "base": BASE, "features": "privileged"}
            meta.update(alpha=list(config.alpha), train_seed=0)
            residual = save_residual(model, work / "residual", meta)
        finally:
            env.close()
        tasks = make_tasks(BASE, [None, str(residual)], SUITES, OBJECTS, EPISODES)
        evaluate(tasks, work / "results", executor="serial", progress=False)
        root = work / "leaderboard"
        common = {"base": BASE, "submitter": "tests", "root": root}
        _CACHE["results"] = work / "results"
        _CACHE["base"] = submit(work / "results", name="scripted", residual=None, **common)
        _CACHE["residual"] = submit(
            work / "results", name="scripted + sac", residual="sac", **common
        )
    return dict(_CACHE)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return shared_results(tmp_path_factory)


def load(path: Path) -> dict:
    return json.loads((path / "submission.json").read_text())


def test_a_submission_holds_the_protocol_provenance_and_claimed_summary(shared):
    data = load(shared["residual"])
    assert data["format"] == "residual-bench-submission" and data["schema_version"] == 1
    assert data["protocol"] == {
        "suites": SUITES,
        "objects": OBJECTS,
        "train_seeds": [0],
        "episodes": EPISODES,
        "master_seed": 0,
    }
    assert data["spec_hashes"] == suite_spec_hashes(SUITES)
    assert data["base"]["name"] == BASE and data["base"]["description"]
    assert data["residual"]["name"] == "sac" and data["residual"]["algo"] == "sac"
    assert set(data["versions"]) >= {"residual-bench", "torch"}
    assert {"system", "machine", "python", "cpu_count"} <= set(data["hardware"])
    assert data["submitter"] == "tests" and data["name"] == "scripted + sac"
    records = read_jsonl(shared["residual"] / "episodes.jsonl")
    assert data["summary"]["cells"] == json.loads(json.dumps(cell_summaries(records)))


def test_the_spec_hashes_are_the_ones_episodes_record(shared):
    hashes = suite_spec_hashes(SUITES)["suites"]
    for record in read_jsonl(shared["results"] / "episodes.jsonl"):
        assert record.env_spec_hash == hashes[record.suite]


def test_a_submission_holds_only_its_method_in_canonical_order_with_derived_seeds(shared):
    base = read_jsonl(shared["base"] / "episodes.jsonl")
    residual = read_jsonl(shared["residual"] / "episodes.jsonl")
    assert {r.residual for r in base} == {None} and {r.residual for r in residual} == {"sac"}
    for records in (base, residual):
        keys = [(r.suite, r.objects, r.extra["episode_index"]) for r in records]
        assert keys == sorted(keys) and len(keys) == len(SUITES) * EPISODES
        for r in records:
            assert r.seed == episode_seed(0, r.suite, r.objects, r.extra["episode_index"])


def test_the_residual_checkpoint_is_copied_hashed_and_referenced_relatively(shared):
    path = shared["residual"]
    checkpoint = path / "checkpoints" / "seed0"
    assert sorted(p.name for p in checkpoint.iterdir()) == ["policy.safetensors", "residual.json"]
    entry = load(path)["residual"]["checkpoints"]["0"]
    assert entry == {"path": "checkpoints/seed0", "sha256": checkpoint_hash(checkpoint)}
    records = read_jsonl(path / "episodes.jsonl")
    assert {r.extra["residual_path"] for r in records} == {"checkpoints/seed0"}
    assert not (shared["base"] / "checkpoints").exists()


def test_the_id_is_the_content_hash_and_names_the_directory(shared):
    for key in ("base", "residual"):
        path = shared[key]
        data = load(path)
        assert (
            path.name == data["id"] == submission_id(data, (path / "episodes.jsonl").read_bytes())
        )
        assert len(data["id"]) == 16
        assert validate_submission(path) == []
    assert shared["base"].name != shared["residual"].name


def test_a_weights_file_hashes_to_its_bytes_and_a_missing_one_is_an_error(tmp_path):
    weights = tmp_path / "net.pt"
    weights.write_bytes(b"weights")
    assert checkpoint_hash(weights) == hashlib.sha256(b"weights").hexdigest()
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        checkpoint_hash(tmp_path / "missing.pt")


def test_the_checkpoint_hash_covers_names_and_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"1")
    first = checkpoint_hash(tmp_path / "a")
    (tmp_path / "a" / "x").write_bytes(b"2")
    second = checkpoint_hash(tmp_path / "a")
    (tmp_path / "a" / "x").rename(tmp_path / "a" / "y")
    assert len({first, second, checkpoint_hash(tmp_path / "a")}) == 3


def test_submissions_are_append_only(shared):
    root = shared["base"].parent.parent
    with pytest.raises(FileExistsError, match=shared["base"].name):
        submit(
            shared["results"],
            name="scripted",
            base=BASE,
            residual=None,
            submitter="tests",
            root=root,
        )
    # A different description is a different submission, next to the first one.
    other = submit(
        shared["results"],
        name="scripted again",
        base=BASE,
        residual=None,
        submitter="tests",
        root=root,
    )
    try:
        assert other.name != shared["base"].name and validate_submission(other) == []
    finally:
        shutil.rmtree(other)


def test_submit_refuses_a_method_that_is_not_in_the_results(shared, tmp_path):
    with pytest.raises(ValueError, match="no episodes of base 'scripted' with residual 'td3'"):
        submit(shared["results"], name="x", base=BASE, residual="td3", submitter="t", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="no episodes.jsonl"):
        submit(tmp_path, name="x", base=BASE, residual=None, submitter="t", root=tmp_path)


def test_the_size_cap_is_five_mebibytes():
    assert MAX_BYTES == 5 * 1024 * 1024


def test_bench_submit_writes_a_valid_submission(shared, tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser(prog="bench")
    add_leaderboard_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "submit",
            str(shared["results"]),
            "--name",
            "n",
            "--base",
            BASE,
            "--residual",
            "sac",
            "--submitter",
            "me",
            "--root",
            str(tmp_path),
        ]
    )
    assert args.func(args) == 0
    (path,) = (tmp_path / "submissions").iterdir()
    assert f"wrote submission {path.name}" in capsys.readouterr().out
    assert validate_submission(path) == []
