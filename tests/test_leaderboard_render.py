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

from residual_bench.leaderboard.cli import add_leaderboard_parsers
from residual_bench.leaderboard.render import build, rank, render_html, render_markdown
from residual_bench.leaderboard.verify import write_verification

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


def row(name: str, k: int, track: str = "heldout", suite: str = "nominal", n: int = 10) -> dict:
    low = {10: 0.1, 9: 0.6, 5: 0.2}.get(k, 0.0)
    return {
        "track": track,
        "suite": suite,
        "name": name,
        "base": "scripted",
        "residual": None,
        "success": {"rate": k / n, "k": k, "n": n, "ci": [low, 1.0]},
        "recovery": {"rate": None, "k": 0, "n": 0, "ci": [None, None]},
        "completion": 8.5,
        "status": "self-reported",
        "id": f"{k:016x}",
        "submitter": "t",
    }


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


def test_rows_are_ranked_by_success_within_each_track_and_suite_ties_sharing_a_rank():
    rows = rank(
        [row("a", 5), row("b", 9), row("c", 9), row("d", 10, suite="poke"), row("e", 2, "train")]
    )
    got = [(r["track"], r["suite"], r["name"], r["rank"]) for r in rows]
    assert got == [
        ("heldout", "nominal", "b", 1),
        ("heldout", "nominal", "c", 1),
        ("heldout", "nominal", "a", 3),
        ("heldout", "poke", "d", 1),
        ("train", "nominal", "e", 1),
    ]
    text = render_markdown(rows)
    assert text.index("## Held-out objects (main track)") < text.index("## Training objects")
    assert "| nominal | 1 | b | scripted | none | 90.0% [60.0%, 100.0%] (9/10) | - | 8.50 |" in text


def test_the_build_shows_both_submissions_with_their_intervals_and_badges(shared, board):
    readme, page = build(board)
    text = readme.read_text()
    for key, badge in (("base", "| self-reported |"), ("residual", "| verified |")):
        lines = [x for x in text.splitlines() if shared[key].name in x]
        assert len(lines) == 2 and all(badge in x for x in lines)  # nominal and poke
    assert re.search(r"\| poke \| 1 \| scripted \+ sac \| scripted \| sac \| \d+\.\d% \[", text)
    html = page.read_text()
    assert html.count("<tr data-suite=") == 4 and 'class="badge-verified"' in html
    assert '<svg class="plot"' in html


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
    page = render_html(rank([row("<script>alert(1)</script>", 5)]))
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_bench_leaderboard_build_writes_both_files(board, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="bench")
    add_leaderboard_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["leaderboard", "build", "--root", str(board), "--out", str(tmp_path)])
    assert args.func(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "index.html"]
    assert "wrote" in capsys.readouterr().out
