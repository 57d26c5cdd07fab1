"""Boards: who is ranked against whom, on which episodes, and by which rule.

A board is one protocol: (task, suite, object split, episodes per cell, master seed). A
submission's cell enters the ranked table of its board only when its episodes are exactly
that protocol's (the validation already recomputes every seed, so the same protocol means
the same episodes); anything else is listed as unranked, with the field that differs. A
submission that another of the same submitter supersedes leaves the boards for the history.

On a board, a residual is shown against its own base alone on the same episodes: the paired
gain (the difference in success and exact McNemar p per training seed) and the harm rate
(episodes the base alone solved and the residual lost). Across training seeds: the pooled
success with its Wilson interval (what ranks), the interquartile mean of the seeds with its
bootstrap interval, and the spread from the lowest to the highest seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from residual_bench.episodes.metrics import summarize, wilson_interval
from residual_bench.episodes.records import EpisodeRecord, read_jsonl
from residual_bench.episodes.statistics import iqm, iqm_interval, mcnemar_exact
from residual_bench.leaderboard.layout import EPISODES_FILE, SUBMISSION_FILE, SUBMISSIONS_DIR
from residual_bench.leaderboard.validate import validate_all
from residual_bench.leaderboard.verify import verification_status
from residual_bench.tasks import task_entry, task_ids

BOARD_EPISODES = 100
"""Episodes per cell (per training seed) of every board: enough that a 15-point difference
is more than noise, and the minimum the issue of honest ranks asks for."""
BOARD_MASTER_SEED = 0
RANK_RULE = (
    "An entry's rank is one plus the number of entries whose whole 95% interval lies above "
    "its own: entries whose intervals overlap cannot be told apart, and share a rank."
)
SUITE_ORDER = ("nominal", "poke", "slide", "drop", "latency", "mixed")
OBJECTS_ORDER = ("heldout", "train")


@dataclass(frozen=True)
class Board:
    """One protocol: the episodes every ranked entry on it ran."""

    env_id: str
    suite: str
    objects: str
    episodes: int = BOARD_EPISODES
    master_seed: int = BOARD_MASTER_SEED

    @property
    def title(self) -> str:
        split = "held-out objects" if self.objects == "heldout" else f"{self.objects} objects"
        return (
            f"{self.env_id}, {self.suite}, {split}, {self.episodes} episodes, "
            f"master seed {self.master_seed}"
        )

    @property
    def key(self) -> str:
        """A plain id for the page (``table-<key>``)."""
        return f"{self.env_id}-{self.suite}-{self.objects}".replace(".", "_")


def current_id(env_id: str) -> str:
    """The current id of the task an id belongs to (``ResidualPickPlace-v0`` -> ``-v1``)."""
    return task_entry(env_id).task.env_id if env_id in task_ids() else env_id


def protocol_difference(cell: dict[str, Any], board: Board) -> str | None:
    """Which field of a cell's protocol differs from its board's, or None when none does."""
    if cell["env_id"] != board.env_id:
        return f"env_id is {cell['env_id']}; the board is {board.env_id}"
    if cell["episodes"] != board.episodes:
        return f"episodes is {cell['episodes']} per cell; the board needs exactly {board.episodes}"
    if cell["master_seed"] != board.master_seed:
        return f"master_seed is {cell['master_seed']}; the board's is {board.master_seed}"
    return None


def honest_ranks(intervals: list[tuple[float, float]]) -> list[int]:
    """:data:`RANK_RULE` for 95% intervals ``(low, high)``."""
    return [1 + sum(other_low > high for other_low, _ in intervals) for _, high in intervals]


def paired_gain(base: list[EpisodeRecord], residual: list[EpisodeRecord]) -> dict[str, Any]:
    """The residual against the base alone on the same episodes, per training seed: the
    difference in success, exact McNemar p, and the harm rate (base solved, residual lost).

    Raises:
        ValueError: a seed's episodes are not the base's episodes.
    """
    by_seed = {r.seed: r for r in base}
    per_seed, harmed, paired = [], 0, 0
    for train_seed, records in sorted(_seeds(residual).items()):
        if sorted(r.seed for r in records) != sorted(by_seed):
            raise ValueError(f"training seed {train_seed}: not the base alone's episodes")
        test = mcnemar_exact(
            [by_seed[r.seed].success for r in records], [r.success for r in records]
        )
        per_seed.append({"train_seed": train_seed, "difference": test["difference"],
                         "p_value": test["p_value"]})  # fmt: skip
        harmed += sum(by_seed[r.seed].success and not r.success for r in records)
        paired += len(records)
    low, high = wilson_interval(harmed, paired)
    return {
        "difference": sum(s["difference"] for s in per_seed) / len(per_seed),
        "per_seed": per_seed,
        "harm": {"k": harmed, "n": paired, "rate": harmed / paired, "ci": [low, high]},
    }


def _seeds(records: list[EpisodeRecord]) -> dict[Any, list[EpisodeRecord]]:
    out: dict[Any, list[EpisodeRecord]] = {}
    for r in records:
        out.setdefault(r.extra.get("train_seed"), []).append(r)
    return out


def _entry(data: dict[str, Any], records: list[EpisodeRecord], status: str) -> dict[str, Any]:
    s = summarize(records)
    # A seed's rate only: the full summary is computed once, over all of them, above.
    seeds = {seed: sum(r.success for r in rs) / len(rs) for seed, rs in _seeds(records).items()}
    rates = [seeds[k] for k in sorted(seeds, key=str)]
    entry = {
        "name": data["name"],
        "base": data["base"]["name"],
        "residual": data["residual"]["name"] if data["residual"] else None,
        "submitter": data["submitter"],
        "id": data["id"],
        "env_id": records[0].env_id,
        "status": status,
        "success": s["success_rate"],
        "recovery": s["recovery_rate"],
        "recovery_150ms": s["recovery_rate_at"]["0.15"],
        # Events with a reaction rule, in records made since reaction time exists.
        "reaction_150ms": s.get("reaction_rate_at", {}).get("0.15"),
        "completion": s["completion_time_mean"],
        "seed_rates": rates,
        "train_seeds": sorted(seed for seed in seeds if seed is not None),
        "iqm": None,
        "gain": None,
        "records": records,
    }
    if len(rates) > 1:
        interval = iqm_interval([[rate] for rate in rates])  # seeds x one task
        entry["iqm"] = {"rate": iqm(rates), "ci": interval["ci"]}
    return entry


def build_boards(root: str | Path, episodes: int = BOARD_EPISODES) -> dict[str, Any]:
    """Every board with its ranked and unranked entries, and the history (superseded
    submissions), from the valid submissions under ``root``; ``episodes`` is the boards'
    episode count (the benchmark's is :data:`BOARD_EPISODES`; tests use small boards).

    Raises:
        ValueError: a submission breaks a rule (listing every failure).
    """
    failures = validate_all(root)
    if failures:
        raise ValueError("invalid submissions: " + "; ".join(str(f) for f in failures))
    folder = Path(root) / SUBMISSIONS_DIR
    paths = (
        sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    )
    submissions = [(json.loads((p / SUBMISSION_FILE).read_text()), p) for p in paths]
    superseded = {old: d["id"] for d, _ in submissions for old in d.get("supersedes", [])}
    boards: dict[Board, dict[str, list]] = {}
    history = []
    for data, path in submissions:
        status = verification_status(root, data["id"])
        cells: dict[tuple[str, str, str], list[EpisodeRecord]] = {}
        for r in read_jsonl(path / EPISODES_FILE):
            cells.setdefault((r.env_id, r.suite, r.objects), []).append(r)
        for (env_id, suite, objects), records in cells.items():
            entry = _entry(data, records, status)
            # An earlier version of a task is listed on its current board, unranked.
            board = Board(current_id(env_id), suite, objects, episodes)
            if data["id"] in superseded:
                entry.update(board=board, superseded_by=superseded[data["id"]])
                history.append(entry)
                continue
            protocol = data["protocol"]
            cell = {"env_id": env_id, "episodes": protocol["episodes"],
                    "master_seed": protocol["master_seed"]}  # fmt: skip
            entry["reason"] = protocol_difference(cell, board)
            lists = boards.setdefault(board, {"ranked": [], "unranked": []})
            lists["unranked" if entry["reason"] else "ranked"].append(entry)
    for lists in boards.values():
        _add_gains(lists["ranked"] + lists["unranked"])
        _rank(lists["ranked"])
        lists["unranked"].sort(key=lambda e: (-(e["success"]["rate"] or 0.0), e["name"]))
    ordered = sorted(boards.items(), key=lambda kv: _board_order(kv[0]))
    history.sort(key=lambda e: (_board_order(e["board"]), e["name"]))
    return {"boards": ordered, "history": history}


def _add_gains(entries: list[dict[str, Any]]) -> None:
    """Each residual's paired gain over its own base alone on the same episodes (same task
    version, same seeds), when the board holds that base alone (the ranked one first)."""
    alone = [e for e in entries if e["residual"] is None]
    for entry in entries:
        if entry["residual"] is None:
            continue
        seeds = {r.seed for r in entry["records"]}
        for base in alone:
            same_run = base["base"] == entry["base"] and base["env_id"] == entry["env_id"]
            if same_run and {r.seed for r in base["records"]} == seeds:
                gain = paired_gain(base["records"], entry["records"])
                gain.update(base_id=base["id"], base_rate=base["success"]["rate"])
                entry["gain"] = gain
                break


def _rank(entries: list[dict[str, Any]]) -> None:
    entries.sort(key=lambda e: (-(e["success"]["rate"] or 0.0), -(e["success"]["ci"][0] or 0.0),
                                e["name"], e["id"]))  # fmt: skip
    ranks = honest_ranks([tuple(e["success"]["ci"]) for e in entries])
    for entry, rank in zip(entries, ranks, strict=True):
        entry["rank"] = rank


def _board_order(board: Board) -> tuple:
    suite = SUITE_ORDER.index(board.suite) if board.suite in SUITE_ORDER else len(SUITE_ORDER)
    objects = OBJECTS_ORDER.index(board.objects) if board.objects in OBJECTS_ORDER else 9
    return (board.env_id, objects, suite, board.suite, board.objects)
