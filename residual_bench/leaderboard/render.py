"""``leaderboards/README.md`` and ``leaderboards/index.html`` from the submissions.

One table per track (the object split: held-out objects is the main track), one row per
suite x submission, ranked within each suite by success rate (ties: the lower end of its 95%
interval, then name). A residual submitted with several training seeds is pooled over them.
The output depends on the submissions only - no timestamps, no random ids - so a test can
rebuild it and compare it with the committed files. The page is self-contained: inline CSS,
inline JS for sorting and filtering, inline SVG plots, nothing fetched from a CDN.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from residual_bench.episodes.metrics import summarize
from residual_bench.episodes.records import read_jsonl
from residual_bench.leaderboard.assets import CSS, JS
from residual_bench.leaderboard.layout import EPISODES_FILE, SUBMISSION_FILE, SUBMISSIONS_DIR
from residual_bench.leaderboard.validate import validate_all
from residual_bench.leaderboard.verify import verification_status

TRACKS = {"heldout": "Held-out objects (main track)", "train": "Training objects"}
SUITE_ORDER = ("nominal", "poke", "slide", "drop", "latency", "mixed")
BADGES = {
    "verified": "verified",
    "failed": "verification failed",
    "not-verifiable": "self-reported (needs a GPU, not verifiable here)",
    "self-reported": "self-reported",
}
COLUMNS = (
    ("suite", "Suite", "text"),
    ("rank", "Rank", "num"),
    ("name", "Method", "text"),
    ("base", "Base", "text"),
    ("residual", "Residual", "text"),
    ("success", "Success (95% CI)", "num"),
    ("recovery", "Recovery", "num"),
    ("completion", "Completion (s)", "num"),
    ("status", "Status", "text"),
    ("id", "Submission", "text"),
)


def leaderboard_rows(root: str | Path) -> list[dict[str, Any]]:
    """One row per (track, suite, submission), ranked; the submissions must all be valid.

    Raises:
        ValueError: a submission breaks a rule (listing every failure).
    """
    failures = validate_all(root)
    if failures:
        raise ValueError("invalid submissions: " + "; ".join(str(f) for f in failures))
    rows = []
    submissions = Path(root) / SUBMISSIONS_DIR
    paths = sorted(submissions.iterdir()) if submissions.is_dir() else []
    for path in (p for p in paths if not p.name.startswith(".")):
        data = json.loads((path / SUBMISSION_FILE).read_text())
        cells: dict[tuple[str, str], list] = {}
        for r in read_jsonl(path / EPISODES_FILE):
            cells.setdefault((r.objects, r.suite), []).append(r)
        for (objects, suite), records in cells.items():
            s = summarize(records)
            rows.append(
                {
                    "track": objects,
                    "suite": suite,
                    "name": data["name"],
                    "base": data["base"]["name"],
                    "residual": data["residual"]["name"] if data["residual"] else None,
                    "success": s["success_rate"],
                    "recovery": s["recovery_rate"],
                    "completion": s["completion_time_mean"],
                    "status": verification_status(root, data["id"]),
                    "id": data["id"],
                    "submitter": data["submitter"],
                }
            )
    return rank(rows)


def _suite_key(suite: str) -> tuple[int, str]:
    return (SUITE_ORDER.index(suite) if suite in SUITE_ORDER else len(SUITE_ORDER), suite)


def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows sorted by track, suite and success, with ``rank`` (1 = best) within each suite."""

    def key(row: dict[str, Any]) -> tuple:
        rate, low = row["success"]["rate"], row["success"]["ci"][0]
        return (
            row["track"] != "heldout",
            row["track"],
            _suite_key(row["suite"]),
            -(rate or 0.0),
            -(low or 0.0),
            row["name"],
            row["id"],
        )

    rows = sorted(rows, key=key)
    # Competition ranking: equal success and interval share a rank (1, 1, 3).
    count: dict[tuple[str, str], int] = {}
    last: dict[tuple[str, str], tuple] = {}
    for row in rows:
        group = (row["track"], row["suite"])
        count[group] = count.get(group, 0) + 1
        score = (row["success"]["rate"], row["success"]["ci"][0])
        if group in last and last[group][0] == score:
            row["rank"] = last[group][1]
        else:
            row["rank"] = count[group]
        last[group] = (score, row["rank"])
    return rows


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _cells(row: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """Each column's text and sort value."""
    s, rec, t = row["success"], row["recovery"], row["completion"]
    lo, hi = s["ci"]
    success = f"{_pct(s['rate'])} [{_pct(lo)}, {_pct(hi)}] ({s['k']}/{s['n']})"
    recovery = "-" if not rec["n"] else f"{_pct(rec['rate'])} ({rec['k']}/{rec['n']})"
    return {
        "suite": (row["suite"], row["suite"]),
        "rank": (str(row["rank"]), row["rank"]),
        "name": (row["name"], row["name"]),
        "base": (row["base"], row["base"]),
        "residual": (row["residual"] or "none", row["residual"] or "none"),
        "success": (success, s["rate"]),
        "recovery": (recovery, rec["rate"]),
        "completion": ("-" if t is None else f"{t:.2f}", t),
        "status": (BADGES[row["status"]], row["status"]),
        "id": (row["id"], row["id"]),
    }


def render_markdown(rows: list[dict[str, Any]]) -> str:
    """The text of ``leaderboards/README.md``."""
    lines = [
        "# Leaderboard",
        "",
        "<!-- Generated by `bench leaderboard build`; do not edit by hand. -->",
        "",
        "Success rate with its 95% Wilson interval, recovery rate (successes among perturbed",
        "episodes) and mean completion time in simulated seconds, ranked by success within each",
        "suite. *verified*: episodes re-run by `bench verify` matched the records exactly;",
        "*self-reported*: not re-run yet. How to submit: `docs/leaderboard.md`. The same tables,",
        "sortable and filterable, with plots: `index.html`.",
        "",
    ]
    if not rows:
        lines += ["No submissions yet.", ""]
    for track, title in TRACKS.items():
        track_rows = [r for r in rows if r["track"] == track]
        if not track_rows:
            continue
        lines += [f"## {title}", ""]
        lines.append("| " + " | ".join(label for _, label, _ in COLUMNS) + " |")
        lines.append("|" + "---|" * len(COLUMNS))
        for row in track_rows:
            texts = [text.replace("|", "\\|") for text, _ in _cells(row).values()]
            lines.append("| " + " | ".join(texts) + " |")
        lines.append("")
    return "\n".join(lines)


def _svg_plot(rows: list[dict[str, Any]]) -> str:
    """Success rate with its 95% interval, one horizontal bar per row, grouped by suite."""
    bar, gap, left, width = 14, 8, 260, 360
    height = len(rows) * (bar + 4) + gap * len({r["suite"] for r in rows}) + 30
    parts = [
        f'<svg class="plot" role="img" viewBox="0 0 {left + width + 20} {height}" '
        f'width="{left + width + 20}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    y, previous = 10, None
    for row in rows:
        if row["suite"] != previous and previous is not None:
            y += gap
        previous = row["suite"]
        s = row["success"]
        rate, (lo, hi) = s["rate"] or 0.0, (c or 0.0 for c in s["ci"])
        label = html.escape(f"{row['suite']}: {row['name']}")
        parts.append(f'<text x="{left - 6}" y="{y + bar - 3}" text-anchor="end">{label}</text>')
        parts.append(
            f'<rect x="{left}" y="{y}" width="{width * rate:.1f}" height="{bar}" '
            f'class="bar-{html.escape(row["status"])}"><title>{label}: {_pct(rate)}</title></rect>'
        )
        mid = y + bar / 2
        parts.append(
            f'<line x1="{left + width * lo:.1f}" x2="{left + width * hi:.1f}" y1="{mid}" '
            f'y2="{mid}" class="ci"/>'
        )
        y += bar + 4
    parts.append(f'<line x1="{left}" x2="{left}" y1="0" y2="{y}" class="axis"/>')
    for tick in (0, 50, 100):
        x = left + width * tick / 100
        parts.append(f'<text x="{x:.0f}" y="{y + 14}" text-anchor="middle">{tick}%</text>')
    return "".join(parts) + "</svg>"


def _table(track: str, rows: list[dict[str, Any]]) -> str:
    head = "".join(
        f'<th data-key="{key}" data-type="{kind}">{html.escape(label)}</th>'
        for key, label, kind in COLUMNS
    )
    body = []
    for row in rows:
        cells = []
        for key, (text, value) in _cells(row).items():
            value = "" if value is None else value
            css = f' class="badge-{row["status"]}"' if key == "status" else ""
            cells.append(
                f'<td data-value="{html.escape(str(value))}"{css}>{html.escape(text)}</td>'
            )
        body.append(f'<tr data-suite="{html.escape(row["suite"])}">{"".join(cells)}</tr>')
    return (
        f'<table class="leaderboard" id="table-{track}"><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{chr(10).join(body)}\n</tbody></table>"
    )


def render_html(rows: list[dict[str, Any]]) -> str:
    """The text of ``leaderboards/index.html``."""
    suites = sorted({r["suite"] for r in rows}, key=_suite_key)
    options = "".join(f'<option value="{html.escape(s)}">{html.escape(s)}</option>' for s in suites)
    sections = []
    for track, title in TRACKS.items():
        track_rows = [r for r in rows if r["track"] == track]
        if track_rows:
            sections.append(
                f"<h2>{html.escape(title)}</h2>\n{_table(track, track_rows)}\n"
                f"<h3>Success rate, 95% interval</h3>\n{_svg_plot(track_rows)}"
            )
    content = "\n".join(sections) or '<p id="empty">No submissions yet.</p>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>residual-bench leaderboard</title>
<style>{CSS}</style></head>
<body>
<h1>residual-bench leaderboard</h1>
<p>Generated by <code>bench leaderboard build</code>. Ranked by success within each suite;
<b>verified</b> entries were re-run by <code>bench verify</code>, the others are self-reported.
Click a column to sort.</p>
<div class="controls">
<label>Filter <input id="filter" type="search" placeholder="method, base, status"></label>
<label>Suite <select id="suite-filter"><option value="">all</option>{options}</select></label>
</div>
{content}
<script>{JS}</script>
</body></html>
"""


def build(root: str | Path, out: str | Path | None = None) -> list[Path]:
    """Write ``README.md`` and ``index.html`` for the submissions under ``root`` into ``out``."""
    rows = leaderboard_rows(root)
    out = Path(out if out is not None else root)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "README.md", out / "index.html"]
    written[0].write_text(render_markdown(rows))
    written[1].write_text(render_html(rows))
    return written
