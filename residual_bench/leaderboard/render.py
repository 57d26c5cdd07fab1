"""``leaderboards/README.md`` and ``leaderboards/index.html`` from the submissions.

First the all-task summary (:mod:`residual_bench.leaderboard.summary`: one row per method, one
column per task, each cell the method's verified number on that task's main board, ranked
only against methods on the same tasks), then one section per board
(:mod:`residual_bench.leaderboard.boards`: task, suite, object split, episodes, master seed):
its ranked entries by the stated rule, each residual beside its own base alone on the same
episodes, then the entries that ran another protocol (unranked, with the field that
differs), and at the end the history of superseded submissions. The output
depends on the submissions only - no timestamps, no random ids - so a test can rebuild it and
compare it with the committed files. The page is self-contained: inline CSS, inline JS for
sorting and filtering, inline SVG plots, nothing fetched from a CDN.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from residual_bench.eval.report_render import format_p_value
from residual_bench.leaderboard.assets import CSS, JS
from residual_bench.leaderboard.boards import RANK_RULE, Board, build_boards
from residual_bench.leaderboard.plots import svg_gains, svg_intervals
from residual_bench.leaderboard.summary import SUMMARY_RULE, build_summary

BADGES = {
    "verified": "verified",
    "failed": "verification failed",
    "not-verifiable": "self-reported (needs a GPU, not verifiable here)",
    "self-reported": "self-reported",
}
COLUMNS = (
    ("rank", "Rank", "num"),
    ("name", "Method", "text"),
    ("base", "Base", "text"),
    ("residual", "Residual", "text"),
    ("seeds", "Seeds", "num"),
    ("success", "Success (95% CI)", "num"),
    ("iqm", "IQM of seeds [95% CI] (lowest-highest)", "num"),
    ("gain", "Gain over its base alone (McNemar p per seed)", "num"),
    ("harm", "Harm rate", "num"),
    ("recovery", "Recovery", "num"),
    ("recovery_150ms", "Recovered within 150 ms", "num"),
    ("reaction_150ms", "Reacts within 150 ms", "num"),
    ("completion", "Completion (s)", "num"),
    ("status", "Status", "text"),
    ("id", "Submission", "text"),
)
UNRANKED = (("reason", "Why unranked", "text"),)
HISTORY = (("board", "Board", "text"), ("superseded_by", "Superseded by", "text"))
INTRO = (
    "A board is one protocol: task, suite, object split, episodes per cell and master seed; "
    "only entries that ran exactly its episodes are ranked, by success pooled over training "
    "seeds with its 95% Wilson interval. " + RANK_RULE + " A residual is shown against its "
    "own base alone on the same episodes: the gain in success (McNemar p per training seed) "
    "and the harm rate (episodes the base alone solved and the residual lost). *verified*: "
    "episodes re-run by `bench verify` matched the records exactly; *self-reported*: not "
    "re-run yet. How to submit: `docs/leaderboard.md`."
)

SUMMARY_TITLE = "All tasks: one row per method"
SUMMARY_INTRO = (
    "Each cell is a method's number on the task's main board (the suite named in its column, "
    "held-out objects, the boards' protocol): success pooled over training seeds with its 95% "
    'Wilson interval, the statistic the boards rank by. Only *verified* entries count; "-": '
    "the method has no verified ranked entry there (self-reported entries stay on their "
    "boards). A method is the name, base, residual and submitter its submissions state: "
    "submit each task's episodes under the same four to share a row. " + SUMMARY_RULE
)
SUMMARY_EMPTY = "No method has a verified entry on a task's main board yet."


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _rate(r: dict[str, Any] | None) -> tuple[str, Any]:
    if not r or not r.get("n"):
        return "-", None
    return f"{_pct(r['rate'])} ({r['k']}/{r['n']})", r["rate"]


def _success(s: dict[str, Any]) -> str:
    """A pooled success rate as the tables show it: rate [95% interval] (k/n)."""
    lo, hi = s["ci"]
    return f"{_pct(s['rate'])} [{_pct(lo)}, {_pct(hi)}] ({s['k']}/{s['n']})"


def _cells(entry: dict[str, Any], columns: tuple) -> list[tuple[str, str, Any]]:
    """(key, text, sort value) of each column of an entry."""
    s, iqm, gain = entry["success"], entry["iqm"], entry["gain"]
    rates = entry["seed_rates"]
    values: dict[str, tuple[str, Any]] = {
        "rank": (str(entry.get("rank", "-")), entry.get("rank")),
        "name": (entry["name"], entry["name"]),
        "base": (entry["base"], entry["base"]),
        "residual": (entry["residual"] or "none", entry["residual"] or "none"),
        "seeds": (
            str(len(entry["train_seeds"])) if entry["train_seeds"] else "-",
            len(entry["train_seeds"]),
        ),  # fmt: skip
        "success": (_success(s), s["rate"]),
        "iqm": ("-", None),
        "gain": ("-", None),
        "harm": ("-", None),
        "recovery": _rate(entry["recovery"]),
        "recovery_150ms": _rate(entry["recovery_150ms"]),
        "reaction_150ms": _rate(entry.get("reaction_150ms")),
        "completion": (
            "-" if entry["completion"] is None else f"{entry['completion']:.2f}",
            entry["completion"],
        ),
        "status": (BADGES[entry["status"]], entry["status"]),
        "id": (entry["id"], entry["id"]),
        "reason": (entry.get("reason") or "", entry.get("reason") or ""),
        "board": (entry["board"].title, entry["board"].title) if "board" in entry else ("", ""),
        "superseded_by": (entry.get("superseded_by", ""), entry.get("superseded_by", "")),
    }
    if iqm is not None:
        spread = f"{_pct(min(rates))}-{_pct(max(rates))}"
        text = f"{_pct(iqm['rate'])} [{_pct(iqm['ci'][0])}, {_pct(iqm['ci'][1])}] ({spread})"
        values["iqm"] = (text, iqm["rate"])
    if gain is not None:
        ps = ", ".join(format_p_value(x["p_value"]) for x in gain["per_seed"])
        values["gain"] = (f"{100 * gain['difference']:+.1f} pts ({ps})", gain["difference"])
        values["harm"] = _rate(gain["harm"])
    return [(key, *values[key]) for key, _, _ in columns]


def summary_columns(summary: dict[str, Any]) -> tuple:
    """The summary's (key, label, type) columns: one per task, named with its main suite."""
    tasks = tuple((t, f"{t} ({summary['suites'][t]})", "num") for t in summary["tasks"])
    return (
        ("rank", "Rank among methods on the same tasks", "num"),
        ("name", "Method", "text"),
        ("base", "Base", "text"),
        ("residual", "Residual", "text"),
        ("submitter", "Submitter", "text"),
        *tasks,
        ("covered", "Tasks covered", "num"),
        ("mean", "Mean over its tasks [95% CI]", "num"),
    )


def _summary_cells(row: dict[str, Any], tasks: list[str]) -> list[tuple[str, str, Any]]:
    """(key, text, sort value) of each column of a summary row."""
    method, mean = row["method"], row["mean"]
    residual = method.residual or "none"
    cells = [
        ("rank", str(row["rank"]), row["rank"]),
        ("name", method.name, method.name),
        ("base", method.base, method.base),
        ("residual", residual, residual),
        ("submitter", method.submitter, method.submitter),
    ]
    for env_id in tasks:
        cell = row["cells"][env_id]
        if cell is None:
            cells.append((env_id, "-", None))
            continue
        more = f", best of {cell['entries']} entries" if cell["entries"] > 1 else ""
        cells.append((env_id, _success(cell["success"]) + more, cell["success"]["rate"]))
    lo, hi = mean["ci"]
    return [
        *cells,
        ("covered", f"{row['covered']} of {len(tasks)}", row["covered"]),
        ("mean", f"{_pct(mean['rate'])} [{_pct(lo)}, {_pct(hi)}]", mean["rate"]),
    ]


def render_markdown(boards: dict[str, Any]) -> str:
    """The text of ``leaderboards/README.md``."""
    lines = ["# Leaderboard", "", "<!-- Generated by `bench leaderboard build`; do not edit "
             "by hand. -->", "", INTRO, "", "The same tables, sortable and filterable, with "
             "plots: `index.html`.", ""]  # fmt: skip
    if not boards["boards"] and not boards["history"]:
        lines += ["No submissions yet.", ""]
    else:
        lines += _md_summary(build_summary(boards))
    for board, lists in boards["boards"]:
        lines += [f"## {board.title}", ""]
        if lists["ranked"]:
            lines += _md_table(lists["ranked"], COLUMNS)
        else:
            lines += ["No entry ran this board's protocol yet.", ""]
        if lists["unranked"]:
            lines += ["Unranked (another protocol):", ""]
            lines += _md_table(lists["unranked"], COLUMNS[1:] + UNRANKED)
    if boards["history"]:
        lines += ["## History (superseded submissions)", ""]
        lines += _md_table(boards["history"], HISTORY + COLUMNS[1:])
    return "\n".join(lines)


def _md_table(entries: list[dict[str, Any]], columns: tuple) -> list[str]:
    return _md_rows(columns, [_cells(entry, columns) for entry in entries])


def _md_rows(columns: tuple, rows: list[list[tuple[str, str, Any]]]) -> list[str]:
    lines = ["| " + " | ".join(label for _, label, _ in columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    for cells in rows:
        texts = [text.replace("|", "\\|") for _, text, _ in cells]
        lines.append("| " + " | ".join(texts) + " |")
    return [*lines, ""]


def _md_summary(summary: dict[str, Any]) -> list[str]:
    lines = [f"## {SUMMARY_TITLE}", "", SUMMARY_INTRO, ""]
    if not summary["rows"]:
        return [*lines, SUMMARY_EMPTY, ""]
    rows = [_summary_cells(row, summary["tasks"]) for row in summary["rows"]]
    return lines + _md_rows(summary_columns(summary), rows)


def _table(table_id: str, entries: list[dict[str, Any]], columns: tuple, suite: str) -> str:
    head = "".join(
        f'<th data-key="{key}" data-type="{kind}">{html.escape(label)}</th>'
        for key, label, kind in columns
    )
    body = []
    for entry in entries:
        cells = []
        for key, text, value in _cells(entry, columns):
            value = "" if value is None else value
            css = f' class="badge-{entry["status"]}"' if key == "status" else ""
            cells.append(
                f'<td data-value="{html.escape(str(value))}"{css}>{html.escape(text)}</td>'
            )
        row_suite = entry["board"].suite if "board" in entry else suite
        body.append(f'<tr data-suite="{html.escape(row_suite)}">{"".join(cells)}</tr>')
    return (
        f'<table class="leaderboard" id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{chr(10).join(body)}\n</tbody></table>"
    )


def _summary_section(summary: dict[str, Any]) -> str:
    parts = [
        f'<h2 id="all-tasks">{html.escape(SUMMARY_TITLE)}</h2>',
        f'<p class="caption">{_inline_markup(SUMMARY_INTRO)}</p>',
    ]
    if not summary["rows"]:
        return "\n".join([*parts, f"<p>{html.escape(SUMMARY_EMPTY)}</p>"])
    columns = summary_columns(summary)
    head = "".join(
        f'<th data-key="{html.escape(key)}" data-type="{kind}">{html.escape(label)}</th>'
        for key, label, kind in columns
    )
    body = []
    for row in summary["rows"]:
        cells = "".join(
            f'<td data-value="{html.escape("" if value is None else str(value))}">'
            f"{html.escape(text)}</td>"
            for _, text, value in _summary_cells(row, summary["tasks"])
        )
        body.append(f"<tr>{cells}</tr>")
    parts.append(
        f'<table class="summary" id="table-summary"><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{chr(10).join(body)}\n</tbody></table>"
    )
    return "\n".join(parts)


def _board_section(board: Board, lists: dict[str, list]) -> str:
    ranked, unranked = lists["ranked"], lists["unranked"]
    parts = [f"<h2>{html.escape(board.title)}</h2>"]
    if ranked:
        parts.append(_table(f"table-{board.key}", ranked, COLUMNS, board.suite))
    else:
        parts.append("<p>No entry ran this board's protocol yet.</p>")
    if unranked:
        parts.append("<h3>Unranked (another protocol)</h3>")
        parts.append(_table(f"unranked-{board.key}", unranked, COLUMNS[1:] + UNRANKED, board.suite))
    shown = ranked or unranked
    parts.append("<h3>Success, 95% interval</h3>")
    parts.append(svg_intervals([(e["name"], e["success"], e["status"]) for e in shown]))
    recovered = [(e["name"], e["recovery"], e["status"]) for e in shown if e["recovery"]["n"]]
    if recovered:
        parts.append("<h3>Recovery (perturbed episodes recovered), 95% interval</h3>")
        parts.append(svg_intervals(recovered))
    gains = [(e["name"], e["gain"]) for e in shown if e["gain"] is not None]
    if gains:
        parts.append("<h3>Gain over its base alone, per training seed (paired episodes)</h3>")
        parts.append(svg_gains(gains))
    return "\n".join(parts)


def render_html(boards: dict[str, Any]) -> str:
    """The text of ``leaderboards/index.html``."""
    suites = sorted({board.suite for board, _ in boards["boards"]})
    options = "".join(f'<option value="{html.escape(s)}">{html.escape(s)}</option>' for s in suites)
    sections = [_board_section(board, lists) for board, lists in boards["boards"]]
    if boards["boards"] or boards["history"]:
        sections.insert(0, _summary_section(build_summary(boards)))
    if boards["history"]:
        sections.append("<h2>History (superseded submissions)</h2>")
        sections.append(_table("history", boards["history"], HISTORY + COLUMNS[1:], ""))
    content = "\n".join(sections) or '<p id="empty">No submissions yet.</p>'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>residual-bench leaderboard</title>
<style>{CSS}</style></head>
<body>
<h1>residual-bench leaderboard</h1>
<p>Generated by <code>bench leaderboard build</code>. {_inline_markup(INTRO)} Click a column
to sort.</p>
<div class="controls">
<label>Filter <input id="filter" type="search" placeholder="method, base, status"></label>
<label>Suite <select id="suite-filter"><option value="">all</option>{options}</select></label>
</div>
{content}
<script>{JS}</script>
</body></html>
"""


def _inline_markup(text: str) -> str:
    """The page's version of a README sentence: ``*x*`` in bold, backticks as code."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*([^*]+)\*", r"<b>\1</b>", escaped)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def build(root: str | Path, out: str | Path | None = None) -> list[Path]:
    """Write ``README.md`` and ``index.html`` for the submissions under ``root`` into ``out``."""
    boards = build_boards(root)
    out = Path(out if out is not None else root)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "README.md", out / "index.html"]
    written[0].write_text(render_markdown(boards))
    written[1].write_text(render_html(boards))
    return written
