"""``bench leaderboard build``: deterministic README.md and index.html from the submissions.

The committed ``leaderboards/README.md`` and ``leaderboards/index.html`` must be exactly what
the build gives for the committed submissions: run ``bench leaderboard build`` and commit the
result when this fails.
"""

import argparse
import re
import shutil
from pathlib import Path

import pytest
from test_leaderboard_submission import shared_results
from test_leaderboard_validate import tamper

from residual_bench.episodes.metrics import wilson_interval
from residual_bench.episodes.records import read_jsonl
from residual_bench.leaderboard.boards import (
    RANK_RULE,
    Board,
    build_boards,
    honest_ranks,
    paired_gain,
    protocol_difference,
)
from residual_bench.leaderboard.cli import add_leaderboard_parsers
from residual_bench.leaderboard.render import build, render_html, render_markdown
from residual_bench.leaderboard.submission import submit
from residual_bench.leaderboard.validate import validate_submission
from residual_bench.leaderboard.verify import write_verification
from residual_bench.registration import ENV_ID

REPO_LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return shared_results(tmp_path_factory)


@pytest.fixture(scope="module")
def board(shared, tmp_path_factory):
    """A leaderboard of the two shared submissions, the residual one verified."""
    root = tmp_path_factory.mktemp("board")
    for key in ("base", "residual"):
        shutil.copytree(shared[key], root / "submissions" / shared[key].name)
    write_verification(root, {"submission": shared["residual"].name, "status": "verified"})
    return root


def entry(name: str, k: int, n: int = 20, suite: str = "nominal", **changes) -> dict:
    """A board entry as :func:`build_boards` makes it, from a success count."""
    low, high = wilson_interval(k, n)
    made = {
        "name": name,
        "base": "scripted",
        "residual": "sac" if "+" in name else None,
        "submitter": "t",
        "id": f"{k:02d}{suite}".encode().hex()[:16],
        "status": "self-reported",
        "success": {"rate": k / n, "k": k, "n": n, "ci": [low, high]},
        "recovery": {"rate": k / (n + 5), "k": k, "n": n + 5, "ci": [0.1, 0.9]},
        "recovery_150ms": {"rate": 0.1, "k": 2, "n": 20, "ci": [0.0, 0.3]},
        "completion": 6.0 + k / 10,
        "seed_rates": [k / n],
        "train_seeds": [0] if "+" in name else [],
        "iqm": None,
        "gain": None,
        "suite": suite,  # boards_of takes it out: an entry knows its board, not its suite
    }
    return {**made, **changes}


def boards_of(*entries: dict) -> dict:
    """A leaderboard of the given entries, one board per suite, ranked by the rule."""
    boards: dict = {}
    for e in entries:
        board = Board(ENV_ID, e.pop("suite", "nominal"), "heldout", 20)
        boards.setdefault(board, {"ranked": [], "unranked": []})["ranked"].append(e)
    for lists in boards.values():
        lists["ranked"].sort(key=lambda e: -e["success"]["rate"])
        ranks = honest_ranks([tuple(e["success"]["ci"]) for e in lists["ranked"]])
        for e, r in zip(lists["ranked"], ranks, strict=True):
            e["rank"] = r
    return {"boards": list(boards.items()), "history": []}


def test_the_committed_generated_files_are_up_to_date(tmp_path):
    written = build(REPO_LEADERBOARDS, tmp_path)
    for path in written:
        committed = REPO_LEADERBOARDS / path.name
        assert committed.read_text() == path.read_text(), (
            f"leaderboards/{path.name} is out of date: run `bench leaderboard build`"
        )


def test_an_empty_leaderboard_still_builds(tmp_path):
    readme, page = build(tmp_path / "empty")
    assert "No submissions yet." in readme.read_text()
    assert '<p id="empty">No submissions yet.</p>' in page.read_text()


def test_entries_whose_intervals_overlap_share_a_rank():
    assert honest_ranks([(0.4, 0.6), (0.5, 0.7)]) == [1, 1]
    assert honest_ranks([(0.7, 0.9), (0.5, 0.68), (0.1, 0.3)]) == [1, 2, 3]
    # Told apart from the best, but not from the second: still behind only one entry.
    assert honest_ranks([(0.7, 0.9), (0.6, 0.8), (0.5, 0.65)]) == [1, 1, 2]
    assert "share a rank" in RANK_RULE


def test_an_off_protocol_cell_is_listed_unranked_naming_the_field_that_differs(board):
    boards = build_boards(board)  # the benchmark's boards: 100 episodes, the tests ran 2
    assert boards["boards"] and all(not lists["ranked"] for _, lists in boards["boards"])
    reasons = {e["reason"] for _, lists in boards["boards"] for e in lists["unranked"]}
    assert reasons == {"episodes is 2 per cell; the board needs exactly 100"}
    target = Board(ENV_ID, "mixed", "heldout")
    cell = {"env_id": ENV_ID, "episodes": 100, "master_seed": 3}
    assert protocol_difference(cell, target) == "master_seed is 3; the board's is 0"
    cell = {"env_id": "ResidualPickPlace-v0", "episodes": 100, "master_seed": 0}
    assert protocol_difference(cell, target).startswith("env_id is ResidualPickPlace-v0")
    assert protocol_difference({**cell, "env_id": ENV_ID}, target) is None


def test_a_residual_is_ranked_beside_its_base_alone_with_its_paired_gain_and_harm_rate(
    shared, board
):
    boards = build_boards(board, episodes=2)
    for _, lists in boards["boards"]:
        assert not lists["unranked"] and len(lists["ranked"]) == 2
        residual = next(e for e in lists["ranked"] if e["residual"] is not None)
        gain = residual["gain"]
        assert gain["base_id"] == shared["base"].name and gain["harm"]["n"] == 2
        assert [s["train_seed"] for s in gain["per_seed"]] == [0]


def test_paired_gain_refuses_runs_of_different_episodes(shared):
    records = read_jsonl(shared["residual"] / "episodes.jsonl")
    base = [r for r in read_jsonl(shared["base"] / "episodes.jsonl") if r.suite == "poke"]
    with pytest.raises(ValueError, match="not the base alone's episodes"):
        paired_gain(base, [r for r in records if r.suite == "nominal"])


def test_a_superseded_submission_leaves_the_ranking_for_the_history(shared, board, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(board, root)
    newer = submit(shared["results"], name="scripted + sac, again", base="scripted",
                   residual="sac", submitter="tests", root=root,
                   supersedes=[shared["residual"].name])  # fmt: skip
    boards = build_boards(root, episodes=2)
    ranked = {e["id"] for _, lists in boards["boards"] for e in lists["ranked"]}
    assert shared["residual"].name not in ranked and newer.name in ranked
    assert {(e["id"], e["superseded_by"]) for e in boards["history"]} == {
        (shared["residual"].name, newer.name)
    }
    assert "## History (superseded submissions)" in render_markdown(boards)


def test_a_submission_cannot_supersede_another_submitters(shared, board, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(board, root)
    mine = {"base": "scripted", "residual": None, "submitter": "someone else", "root": root}
    path = submit(shared["results"], name="not mine", supersedes=[shared["base"].name], **mine)
    failures = validate_submission(path)
    assert [f.rule for f in failures] == ["lineage"] and "another submitter" in failures[0].message


def test_the_build_shows_every_board_with_its_entries_intervals_and_badges(shared, board):
    readme, page = build(board)
    text = readme.read_text()
    assert "## ResidualPickPlace-v1, poke, held-out objects, 100 episodes, master seed 0" in text
    for key, badge in (("base", "| self-reported |"), ("residual", "| verified |")):
        lines = [x for x in text.splitlines() if shared[key].name in x]
        assert len(lines) == 2 and all(badge in x for x in lines)  # nominal and poke
    html = page.read_text()
    assert html.count("<tr data-suite=") == 4 and 'class="badge-verified"' in html
    assert '<svg class="plot"' in html and "share a rank" in html


def test_the_build_is_deterministic_and_self_contained(board, tmp_path):
    first = [p.read_text() for p in build(board, tmp_path / "a")]
    second = [p.read_text() for p in build(board, tmp_path / "b")]
    assert first == second
    html = first[1]
    assert not re.search(r"(src|href)=\"?https?:", html)  # no CDN, nothing fetched
    assert "<script>" in html and "sortTable" in html and "applyFilters" in html


def test_the_build_refuses_invalid_submissions(shared, tmp_path):
    tamper(shared["base"], tmp_path, data=lambda d: d.update(name="x"), rehash=False)
    with pytest.raises(ValueError, match=rf"{shared['base'].name}: \[id\]"):
        build(tmp_path)


def test_html_escapes_submitted_text():
    page = render_html(boards_of(entry("<script>alert(1)</script>", 5)))
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_bench_leaderboard_build_writes_both_files(board, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="bench")
    add_leaderboard_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["leaderboard", "build", "--root", str(board), "--out", str(tmp_path)])
    assert args.func(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "index.html"]
    assert "wrote" in capsys.readouterr().out


def test_supersedes_holds_submission_ids_only_never_a_path(shared, tmp_path):
    path = tamper(shared["base"], tmp_path, data=lambda d: d.update(supersedes=["../../etc"]))
    failures = validate_submission(path)
    assert [f.rule for f in failures] == ["schema"]
    assert "supersedes must hold submission ids" in failures[0].message


def test_a_residual_is_never_paired_with_a_base_alone_of_another_task_version(shared, tmp_path):
    def earlier(lines):
        for line in lines:
            line["env_id"] = "ResidualPickPlace-v0"
        return lines

    tamper(shared["base"], tmp_path, lines=earlier, resummarize=True)
    shutil.copytree(shared["residual"], tmp_path / "submissions" / shared["residual"].name)
    boards = build_boards(tmp_path, episodes=2)
    for _, lists in boards["boards"]:
        assert [e["reason"] is not None for e in lists["unranked"]] == [True]
        assert [e["gain"] for e in lists["ranked"]] == [None]
