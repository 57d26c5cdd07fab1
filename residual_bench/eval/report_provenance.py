"""Where a report's numbers come from: the residuals, the protocol and the code that ran.

Everything here is read from the episode records (each carries its residual's path, training
seed, master seed, package versions and git commit) and from the residuals' own
``residual.json`` where it can still be found, so a reader knows which checkpoint, how long
it trained and with what alpha, without opening a file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from residual_bench.episodes.records import EpisodeRecord
from residual_bench.residual.checkpoint import read_metadata


def _residual_row(path: str, records: list[EpisodeRecord]) -> list[str]:
    first = records[0]
    try:
        meta: dict[str, Any] = read_metadata(path)
    except (OSError, ValueError):
        meta = {}
    steps = meta.get("train_steps")
    return [
        f"{first.base}+{first.residual}",
        path,
        str(first.extra.get("train_seed", "")),
        f"{steps:,}" if isinstance(steps, int) else "not found here",
        str(meta.get("alpha", "")),
        str(meta.get("features", "")),
        str(meta.get("train_suite", "")),
    ]


def provenance_blocks(records: Iterable[EpisodeRecord]) -> list[tuple]:
    """Report blocks: a table of the residuals evaluated and a paragraph on the protocol and
    the code (suites, object splits, episodes per cell, master seeds, commits, versions)."""
    records = list(records)
    by_residual: dict[str, list[EpisodeRecord]] = {}
    for r in records:
        path = r.extra.get("residual_path")
        if r.residual is not None and path is not None:
            by_residual.setdefault(str(path), []).append(r)
    blocks: list[tuple] = [("h2", "Provenance")]
    if by_residual:
        head = [
            "method",
            "residual",
            "training seed",
            "training steps",
            "alpha",
            "features",
            "training suite",
        ]
        rows = [_residual_row(path, recs) for path, recs in sorted(by_residual.items())]
        blocks.append(("table", head, rows))
    cells: dict[tuple, int] = {}
    for r in records:
        key = (r.env_id, r.suite, r.objects, r.base, r.residual, r.extra.get("train_seed"))
        cells[key] = cells.get(key, 0) + 1
    suites = sorted({r.suite for r in records})
    objects = sorted({r.objects for r in records})
    counts = sorted(set(cells.values()))
    masters = sorted({str(r.extra.get("master_seed", "?")) for r in records})
    commits = sorted({str(r.extra.get("git_commit") or "unknown") for r in records})
    versions = sorted(
        {
            ", ".join(f"{k} {v}" for k, v in sorted(r.extra.get("versions", {}).items()))
            for r in records
        }
    )
    blocks.append(
        (
            "p",
            f"Suites: {', '.join(suites)}. Object splits: {', '.join(objects)}. Episodes per "
            f"cell: {', '.join(map(str, counts))}. Master seed(s): {', '.join(masters)}. "
            f"Code: commit {', '.join(commits)}; {'; '.join(versions) or 'versions unknown'}.",
        )
    )
    return blocks
