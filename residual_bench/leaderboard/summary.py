"""The all-task summary: one row per method, one column per task, from the boards.

A task's **main board** is its mixed suite (the last of ``Task.suites``: ``mixed``, or
``push-mixed`` for push) on held-out objects, under the boards' protocol. A **method** is what
a submission states about itself: its name, base, residual and submitter; the same method
on another task is another submission under the same four values (the submitter is part of
it, so that nobody else's entry can fill a cell of your row).

Each cell is the method's number on that task's main board: success pooled over training
seeds with its 95% Wilson interval, the statistic the board ranks by. Only entries the board
ranks (the board's exact protocol, not superseded) and whose episodes ``bench verify``
re-ran and matched enter; a self-reported, not-verifiable or failed entry stays on its board
with its badge and leaves the cell "-". When a method has several such entries on one
board, the cell is the one the board ranks first and says how many there were.

Ranking (:data:`SUMMARY_RULE`): a mean over different tasks is not comparable, so a method
is only ranked against the methods that cover exactly the same tasks. Within such a group,
the mean of its tasks' success rates orders it, and its rank is one plus the number of
methods in the group whose whole interval of the mean (the mean of the tasks' 95% Wilson
bounds, no narrower than an interval of a mean of independent rates) lies above its own, as
on the boards. Groups that cover more tasks come first; groups of as many tasks follow the
order of the task columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from residual_bench.leaderboard.boards import Board, honest_ranks
from residual_bench.leaderboard.verify import VERIFIED
from residual_bench.registration import ENV_ID
from residual_bench.tasks import task_entry, task_ids

MAIN_OBJECTS = "heldout"
SUMMARY_RULE = (
    "A mean over different tasks is not comparable, so a method is ranked only against the "
    "methods that cover exactly the same tasks: methods covering more tasks are listed first, "
    "and within each group the rank is one plus the number of methods whose whole interval "
    "of the mean (the mean of the tasks' 95% Wilson bounds) lies above its own."
)


@dataclass(frozen=True)
class Method:
    """What identifies a method across tasks: the fields its submissions state."""

    name: str
    base: str
    residual: str | None
    submitter: str


def task_columns() -> list[str]:
    """The summary's columns: every task's current id, the reference task first, then by id."""
    current = {task_entry(env_id).task.env_id for env_id in task_ids()}
    return sorted(current, key=lambda env_id: (env_id != ENV_ID, env_id))


def main_suite(env_id: str) -> str:
    """The suite of a task's main board: its mixed suite, the last of ``Task.suites``."""
    return task_entry(env_id).task.suites[-1]


def is_main_board(board: Board) -> bool:
    """Whether ``board`` is its task's main board (mixed suite, held-out objects)."""
    return board.objects == MAIN_OBJECTS and board.suite == main_suite(board.env_id)


def build_summary(boards: dict[str, Any]) -> dict[str, Any]:
    """The summary of :func:`~residual_bench.leaderboard.boards.build_boards`'s boards.

    Returns:
        ``{"tasks": [env_id, ...], "suites": {env_id: main suite}, "rows": [...]}``, rows in
        rank order, each ``{"method", "cells": {env_id: cell or None}, "tasks", "covered",
        "mean", "rank"}``; a cell is ``{"success", "id", "entries"}`` (``entries``: the
        method's verified ranked entries on that board), ``tasks`` the covered ids in
        column order and ``mean`` ``{"rate", "ci"}`` over them.
    """
    tasks = task_columns()
    cells: dict[Method, dict[str, dict[str, Any]]] = {}
    for board, lists in boards["boards"]:
        if board.env_id not in tasks or not is_main_board(board):
            continue
        for entry in lists["ranked"]:  # in the board's rank order
            if entry["status"] != VERIFIED:
                continue
            method = Method(entry["name"], entry["base"], entry["residual"], entry["submitter"])
            row = cells.setdefault(method, {})
            if board.env_id in row:
                row[board.env_id]["entries"] += 1
            else:
                row[board.env_id] = {"success": entry["success"], "id": entry["id"], "entries": 1}
    rows = [_row(method, row, tasks) for method, row in cells.items()]
    return {
        "tasks": tasks,
        "suites": {env_id: main_suite(env_id) for env_id in tasks},
        "rows": rank_summary(rows, tasks),
    }


def _row(method: Method, cells: dict[str, dict[str, Any]], tasks: list[str]) -> dict[str, Any]:
    covered = [env_id for env_id in tasks if env_id in cells]
    rates = [cells[env_id]["success"] for env_id in covered]
    mean = {
        "rate": sum(r["rate"] for r in rates) / len(rates),
        "ci": [sum(r["ci"][i] for r in rates) / len(rates) for i in (0, 1)],
    }
    return {
        "method": method,
        "cells": {env_id: cells.get(env_id) for env_id in tasks},
        "tasks": tuple(covered),
        "covered": len(covered),
        "mean": mean,
    }


def rank_summary(rows: list[dict[str, Any]], tasks: list[str]) -> list[dict[str, Any]]:
    """``rows`` in :data:`SUMMARY_RULE`'s order, each with its ``rank`` within its group."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["tasks"], []).append(row)
    ordered = []
    for covered in sorted(groups, key=lambda ids: (-len(ids), [tasks.index(i) for i in ids])):
        group = groups[covered]
        group.sort(key=lambda r: (-r["mean"]["rate"], -r["mean"]["ci"][0], _label(r["method"])))
        ranks = honest_ranks([tuple(r["mean"]["ci"]) for r in group])
        for row, rank in zip(group, ranks, strict=True):
            row["rank"] = rank
        ordered += group
    return ordered


def _label(method: Method) -> tuple[str, str, str, str]:
    return (method.name, method.base, method.residual or "", method.submitter)
