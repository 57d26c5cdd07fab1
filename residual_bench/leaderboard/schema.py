"""The shape of ``submission.json``: its fields, their JSON types and their bounded values.

The ``schema`` rule of :mod:`residual_bench.leaderboard.validate`, apart from the rules that
read the episodes, because it is the one that must hold before anything else is trusted:
every value that later becomes a path (suite and object names, checkpoint entries) or a loop
bound (training seeds, episodes, list lengths) is checked here first, so the later rules
build a grid of bounded size from plain names only.
"""

from __future__ import annotations

import re
from typing import Any

from residual_bench.leaderboard.files import excerpt
from residual_bench.leaderboard.layout import (
    CHECKPOINTS_DIR,
    FORMAT,
    SCHEMA_VERSION,
    SUBMISSION_FILE,
)

FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "format": str,
    "schema_version": int,
    "benchmark_version": str,
    "name": str,
    "submitter": str,
    "spec_hashes": dict,
    "protocol": dict,
    "base": dict,
    "residual": (dict, type(None)),
    "versions": dict,
    "git_commit": (str, type(None)),
    "hardware": dict,
    "summary": dict,
}
OPTIONAL_FIELDS: dict[str, type] = {"supersedes": list, "env_id": str}
"""Fields a submission may leave out: ``supersedes`` lists earlier submissions (ids) of the
same submitter that this one replaces (they move to the leaderboard's history); ``env_id``
is the task its episodes ran, when it is not pick-and-place (submissions without it are)."""
MAX_SUPERSEDED = 16
SUBMISSION_ID = re.compile(r"[0-9a-f]{16}")
PROTOCOL_FIELDS = {
    "suites": list,
    "objects": list,
    "train_seeds": list,
    "episodes": int,
    "master_seed": int,
}
MAX_TRAIN_SEED = 1_000_000
MAX_EPISODES = 100_000
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def schema_problems(data: Any) -> list[str]:
    """Every way ``data`` (the parsed ``submission.json``) breaks the schema; empty when none."""
    if not isinstance(data, dict):
        return [f"{SUBMISSION_FILE} must hold a JSON object"]
    if data.get("format") != FORMAT or data.get("schema_version") != SCHEMA_VERSION:
        return [f"expected format {FORMAT!r} schema_version {SCHEMA_VERSION}"]
    problems = [f"missing field {k!r}" for k in FIELDS if k not in data]
    known = set(FIELDS) | set(OPTIONAL_FIELDS)
    problems += [f"unknown field {k!r}" for k in sorted(set(data) - known)]
    for key, kind in FIELDS.items():
        if key in data and not isinstance(data[key], kind):
            problems.append(f"field {key!r} has the wrong type ({type(data[key]).__name__})")
    if "supersedes" in data:
        problems += _superseded_ids(data["supersedes"])
    protocol = data.get("protocol")
    if isinstance(protocol, dict):
        for key, kind in PROTOCOL_FIELDS.items():
            if not isinstance(protocol.get(key), kind) or isinstance(protocol.get(key), bool):
                problems.append(f"protocol.{key} must be a {kind.__name__}")
        problems += _protocol_values(protocol)
    if isinstance(data.get("base"), dict) and not isinstance(data["base"].get("name"), str):
        problems.append("base.name must be a string")
    if isinstance(data.get("residual"), dict):
        residual = data["residual"]
        if not isinstance(residual.get("name"), str):
            problems.append("residual.name must be a string")
        if not isinstance(residual.get("checkpoints"), dict):
            problems.append("residual.checkpoints must be an object")
        else:
            problems += _checkpoint_entries(residual["checkpoints"])
    if isinstance(data.get("summary"), dict) and not isinstance(data["summary"].get("cells"), list):
        problems.append("summary.cells must be a list")
    return problems


def _superseded_ids(ids: Any) -> list[str]:
    """``supersedes``: a short list of distinct submission ids (16 hex digits each)."""
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_SUPERSEDED:
        return [f"supersedes must list 1 to {MAX_SUPERSEDED} submission ids"]
    if not all(isinstance(i, str) and SUBMISSION_ID.fullmatch(i) for i in ids):
        return ["supersedes must hold submission ids (16 hex digits)"]
    if len(set(ids)) != len(ids):
        return ["supersedes must not repeat an id"]
    return []


def _is_count(value: Any, most: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most


def _protocol_values(protocol: dict[str, Any]) -> list[str]:
    """Values that become paths or loop bounds: plain names and bounded counts only."""
    problems = []
    seeds = protocol.get("train_seeds")
    if isinstance(seeds, list) and not all(_is_count(s, MAX_TRAIN_SEED) for s in seeds):
        problems.append(f"protocol.train_seeds must be integers in [0, {MAX_TRAIN_SEED}]")
    for key in ("suites", "objects"):
        names = protocol.get(key)
        if isinstance(names, list) and not all(
            isinstance(n, str) and PLAIN_NAME.fullmatch(n) for n in names
        ):
            problems.append(f"protocol.{key} must be plain names (no paths)")
    episodes = protocol.get("episodes")
    if isinstance(episodes, int) and not 1 <= episodes <= MAX_EPISODES:
        problems.append(f"protocol.episodes must be in [1, {MAX_EPISODES}]")
    # Their product sizes the grid the check builds: each list is bounded.
    for key, least, most in (("suites", 1, 32), ("objects", 1, 4), ("train_seeds", 0, 32)):
        values = protocol.get(key)
        if isinstance(values, list) and not least <= len(values) <= most:
            problems.append(f"protocol.{key} must list {least} to {most} entries")
        elif isinstance(values, list) and len(set(map(str, values))) != len(values):
            problems.append(f"protocol.{key} must not repeat")
    return problems


def _checkpoint_entries(checkpoints: dict[str, Any]) -> list[str]:
    """Each entry names ``checkpoints/seed<S>`` of an integer seed and a sha256: never a
    path of the submitter's choosing."""
    problems = []
    for seed, entry in checkpoints.items():
        where = f"residual.checkpoints[{excerpt(seed)}]"
        if not (isinstance(seed, str) and seed.isdigit() and seed == str(int(seed))):
            problems.append(f"{where}: the key must be a training seed")
        elif not isinstance(entry, dict) or entry.get("path") != f"{CHECKPOINTS_DIR}/seed{seed}":
            problems.append(f"{where}.path must be {CHECKPOINTS_DIR}/seed{seed}")
        elif not (
            isinstance(entry.get("sha256"), str)
            and len(entry["sha256"]) == 64
            and all(c in "0123456789abcdef" for c in entry["sha256"])
        ):
            problems.append(f"{where}.sha256 must be 64 hex digits")
    return problems
