"""The all-task summary: one row per method, one column per task, from hand-built boards.

Each cell is a method's verified, ranked entry on a task's main board (its mixed suite on
held-out objects); methods are ranked only against methods that cover the same tasks.
"""

from test_leaderboard_render import entry

from residual_bench.leaderboard.boards import Board
from residual_bench.leaderboard.render import render_html, render_markdown
from residual_bench.leaderboard.summary import (
    Method,
    build_summary,
    main_suite,
    task_columns,
)

PICK, PUSH, STACK = "ResidualPickPlace-v1", "ResidualPush-v0", "ResidualStack-v0"


def main_board(env_id: str) -> Board:
    return Board(env_id, main_suite(env_id), "heldout", 20)


def boards_from(*cells: tuple[Board, dict], unranked: tuple[Board, dict] | None = None) -> dict:
    """Boards as :func:`build_boards` returns them, from (board, entry) pairs, each board's
    ranked entries in the given order."""
    lists: dict[Board, dict] = {}
    for board, made in cells:
        made.pop("suite", None)  # an entry knows its board, not its suite
        lists.setdefault(board, {"ranked": [], "unranked": []})["ranked"].append(made)
    if unranked is not None:
        board, made = unranked
        made.pop("suite", None)
        lists.setdefault(board, {"ranked": [], "unranked": []})["unranked"].append(made)
    return {"boards": list(lists.items()), "history": []}


def verified(name: str, k: int, **changes) -> dict:
    return entry(name, k, status="verified", **changes)


def rows_by_name(summary: dict) -> dict[str, dict]:
    return {row["method"].name: row for row in summary["rows"]}


def test_the_columns_are_every_current_task_with_its_mixed_suite():
    assert task_columns() == [PICK, "ResidualInsert-v0", PUSH, STACK]
    assert [main_suite(t) for t in task_columns()] == ["mixed", "mixed", "push-mixed", "mixed"]


def test_a_method_on_two_tasks_fills_two_columns_and_one_on_a_single_task_fills_one():
    boards = boards_from(
        (main_board(PICK), verified("scripted + sac", 15)),
        (main_board(PICK), verified("bc", 6)),
        (main_board(PUSH), verified("scripted + sac", 9)),
    )
    rows = rows_by_name(build_summary(boards))
    both, one = rows["scripted + sac"], rows["bc"]
    assert both["tasks"] == (PICK, PUSH) and both["covered"] == 2
    assert both["cells"][PICK]["success"]["k"] == 15 and both["cells"][PUSH]["success"]["k"] == 9
    assert both["cells"][STACK] is None
    assert both["mean"]["rate"] == (15 / 20 + 9 / 20) / 2
    assert one["tasks"] == (PICK,) and one["cells"][PUSH] is None


def test_an_entry_that_is_not_verified_leaves_its_cell_empty():
    boards = boards_from(
        (main_board(PICK), verified("scripted", 12)),
        (main_board(PICK), entry("self-reported", 19)),
        (main_board(PICK), entry("failed", 18, status="failed")),
        (main_board(PICK), entry("gpu base", 17, status="not-verifiable")),
        (main_board(PUSH), entry("scripted", 10, status="failed")),
    )
    summary = build_summary(boards)
    assert list(rows_by_name(summary)) == ["scripted"]
    assert rows_by_name(summary)["scripted"]["cells"][PUSH] is None


def test_only_a_ranked_entry_on_the_tasks_main_board_counts():
    boards = boards_from(
        (Board(PICK, "nominal", "heldout", 20), verified("nominal only", 20)),
        (Board(PICK, "mixed", "train", 20), verified("train objects only", 20)),
        (Board(PUSH, "mixed", "heldout", 20), verified("a suite that is not push's", 20)),
        (Board("ResidualPickPlace-v0", "mixed", "heldout", 20), verified("earlier task", 20)),
        unranked=(main_board(PICK), verified("another protocol", 20)),
    )
    assert build_summary(boards)["rows"] == []


def test_a_method_is_ranked_only_against_methods_on_the_same_tasks():
    boards = boards_from(
        (main_board(PICK), verified("best on pick", 20)),
        (main_board(PICK), verified("two tasks", 10)),
        (main_board(PICK), verified("close behind", 18)),
        (main_board(PICK), verified("far behind", 2)),
        (main_board(PUSH), verified("two tasks", 4)),
        (main_board(STACK), verified("stack only", 5)),
    )
    rows = build_summary(boards)["rows"]
    order = [(row["method"].name, row["rank"]) for row in rows]
    # More tasks first, however low its mean; groups of one task follow the columns' order.
    assert order == [
        ("two tasks", 1),
        ("best on pick", 1),
        ("close behind", 1),  # 18/20 and 20/20: the intervals overlap, they share a rank
        ("far behind", 3),
        ("stack only", 1),
    ]


def test_the_same_name_from_another_submitter_is_another_method():
    boards = boards_from(
        (main_board(PICK), verified("scripted + sac", 15)),
        (main_board(PUSH), verified("scripted + sac", 9, submitter="someone else")),
    )
    rows = build_summary(boards)["rows"]
    assert [row["covered"] for row in rows] == [1, 1]
    assert {row["method"].submitter for row in rows} == {"t", "someone else"}
    assert rows[0]["method"] == Method("scripted + sac", "scripted", "sac", "t")


def test_several_entries_of_a_method_on_one_board_show_the_boards_first_and_their_count():
    boards = boards_from(
        (main_board(PICK), verified("scripted", 16, id="a" * 16)),
        (main_board(PICK), verified("scripted", 11, id="b" * 16)),
    )
    (row,) = build_summary(boards)["rows"]
    assert row["cells"][PICK]["id"] == "a" * 16 and row["cells"][PICK]["entries"] == 2
    assert "best of 2 entries" in render_markdown(boards)


def test_the_readme_and_the_page_show_the_summary_with_its_rule_and_a_dash_where_no_entry():
    boards = boards_from(
        (main_board(PICK), verified("scripted <b>", 15)),
        (main_board(PUSH), verified("scripted <b>", 9)),
    )
    text = render_markdown(boards)
    assert text.index("## All tasks: one row per method") < text.index(f"## {PICK}, mixed")
    assert "| ResidualPush-v0 (push-mixed) |" in text and "cover exactly the same tasks" in text
    (line,) = [x for x in text.splitlines() if x.startswith("| 1 | scripted <b>")]
    assert line.count("| - |") == 2 and "| 2 of 4 |" in line
    page = render_html(boards)
    assert '<table class="summary" id="table-summary">' in page
    assert "scripted &lt;b&gt;" in page and "scripted <b>" not in page


def test_boards_without_a_verified_main_board_entry_say_so():
    boards = boards_from((main_board(PICK), entry("self-reported", 12)))
    assert "No method has a verified entry on a task's main board yet." in render_markdown(boards)
