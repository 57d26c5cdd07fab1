"""Rendering of the report: table cells, Markdown and a standalone HTML page.

A report is a list of blocks - ``("h1"|"h2"|"p", text)``, ``("table", head, rows)`` or
``("img", alt, relative path)`` - rendered once as Markdown and once as HTML, so both always
say the same thing. Text is HTML-escaped in both (Markdown passes raw HTML through).
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd


def _pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{100 * x:.0f}%"


def _rate_cell(x: float, lo: float, hi: float) -> str:
    return "–" if pd.isna(x) else f"{_pct(x)} [{_pct(lo)}, {_pct(hi)}]"


def _time_cell(x: float, lo: float, hi: float, sign: str = "") -> str:
    if pd.isna(x):
        return "–"
    ci = "" if pd.isna(lo) else f" [{lo:{sign}.2f}, {hi:{sign}.2f}]"
    return f"{x:{sign}.2f} s{ci}"


def _num(x: float) -> str:
    return "–" if pd.isna(x) else f"{x:.3g}"


def format_p_value(p: float) -> str:
    """ "p<0.001" below a thousandth, else "p=0.123"."""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


Block = tuple[str, ...] | tuple[str, list[str], list[list[str]]]
NOTES = {
    "methods": "Rates with Wilson 95% intervals; recovery over perturbed episodes; completion "
    "time over successful episodes, with bootstrap 95% intervals.",
    "paired": "Difference: with residual minus base alone, exact McNemar test; harm: the share "
    "of pairs where the base alone succeeded and the residual made it fail, Wilson 95% "
    "interval; completion time change over pairs where both succeeded, paired bootstrap 95% "
    "interval.",
    "unpaired": "No residual method shares episode seeds with its base alone.",
    "seeds": "IQM of per-suite success over training seeds x suites; probability of improvement "
    "over the base alone; stratified bootstrap 95% intervals. With one training seed there is "
    "no spread across seeds to show: the row says so instead of an interval.",
    "recovery": "Per perturbation event: the share of events whose disturbed quantity was back "
    "within tolerance (object in a stable grasp again, gripper re-aligned over it) or the task "
    "solved, within 150 ms, 500 ms and 1 s of the event, and by the episode's end (docs/"
    "metrics.md). A restored grasp physically takes longer than 150 ms at the action scale. "
    "Reaction: the share of pokes, slides and drops (those with a reaction rule) whose executed "
    "command turned towards undoing the disturbance within 150 ms; latency events have none.",
    "recovery_curves": "One panel per suite, on the episodes both methods ran (paired by episode "
    "seed). The value at 0 s is the share of events that needed no recovery (the disturbed "
    "quantity stayed within tolerance); curves run to the longest recovery seen.",
    "completion": "Completion time: simulated seconds from reset to the first success, over "
    "successful episodes only, one box per suite and method.",
}


def _ci(r: Any, value: str, prefix: str) -> tuple[float, float, float]:
    return getattr(r, value), getattr(r, f"{prefix}_lo"), getattr(r, f"{prefix}_hi")


def method_block(table: pd.DataFrame) -> Block:
    head = ["objects", "suite", "method", "episodes", "success", "recovery", "completion time"]
    rows = []
    for r in table.itertuples():
        rates = [_rate_cell(*_ci(r, k, k)) for k in ("success", "recovery")]
        time = _time_cell(*_ci(r, "completion_time", "completion"))
        rows.append([r.objects, r.suite, r.method, str(r.episodes), *rates, time])
        rows[-1] += [_num(r.residual_ratio), _num(r.action_jerk)]
    units = ["mean |residual| / alpha", "action jerk [action units / s²]"]
    return ("table", [*head, *units], rows)


def paired_block(table: pd.DataFrame) -> Block:
    seeded = bool(table["train_seed"].notna().any())
    head = ["objects", "suite", "method", *(["train seed"] if seeded else []), "pairs"]
    head += ["base alone", "with residual", "difference", "McNemar", "harm"]
    head.append("completion time change")
    rows = []
    for r in table.itertuples():
        seed = ["–" if pd.isna(r.train_seed) else str(r.train_seed)] if seeded else []
        rows.append([r.objects, r.suite, r.method, *seed, str(r.pairs), _pct(r.base_success)])
        difference = f"{100 * r.difference:+.0f} pp"
        rows[-1] += [_pct(r.method_success), difference, format_p_value(r.p_value)]
        rows[-1].append(_rate_cell(*_ci(r, "harm", "harm")))
        change = _ci(r, "completion_time_difference", "completion_difference")
        rows[-1].append(_time_cell(*change, sign="+"))
    return ("table", head, rows)


def seed_block(table: pd.DataFrame) -> Block:
    head = ["objects", "method", "train seeds", "suites", "IQM success", "base alone"]
    rows = []
    for r in table.itertuples():
        rows.append([r.objects, r.method, str(r.train_seeds), str(r.suites)])
        if r.train_seeds < 2:  # a bootstrap over one seed has zero width: it is no certainty
            rows[-1] += [f"{_pct(r.iqm)} (one seed)", _pct(r.base_iqm)]
            rows[-1].append(f"{_pct(r.improvement_probability)} (one seed)")
            continue
        rows[-1] += [_rate_cell(*_ci(r, "iqm", "iqm")), _pct(r.base_iqm)]
        if r.improvement_lo == r.improvement_hi:  # every resample agrees: say it in words
            rows[-1].append(f"{_pct(r.improvement_probability)} (every seed, every resample)")
        else:
            rows[-1].append(_rate_cell(*_ci(r, "improvement_probability", "improvement")))
    return ("table", [*head, "P(improvement)"], rows)


def recovery_block(table: pd.DataFrame) -> Block:
    head = ["objects", "suite", "method", "events", "within 150 ms", "within 500 ms"]
    head += ["within 1 s", "by the episode's end", "reacts within 150 ms"]
    rows = [
        [r.objects, r.suite, r.method, str(r.events)]
        + [_rate_cell(*_ci(r, k, k)) for k in ("at_150ms", "at_500ms", "at_1s", "eventual")]
        + [_rate_cell(*_ci(r, "react_150ms", "react_150ms"))]
        for r in table.itertuples()
    ]
    return ("table", head, rows)


def markdown_page(blocks: list[Block]) -> str:
    def esc(text: str) -> str:
        # Markdown passes raw HTML through, so names are escaped as in the HTML page.
        return html.escape(str(text), quote=False).replace("|", "\\|")

    parts = []
    for kind, *rest in blocks:
        if kind == "table":
            head, rows = rest
            lines = [head, ["---"] * len(head), *rows]
            parts.append("\n".join("| " + " | ".join(map(esc, c)) + " |" for c in lines))
        elif kind == "img":
            parts.append(f"![{esc(rest[0])}]({rest[1]})")
        else:
            prefix = {"h1": "# ", "h2": "## ", "p": ""}[kind]
            parts.append(prefix + esc(rest[0]))
    return "\n\n".join(parts) + "\n"


CSS = (
    "body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
    "th{background:#f0f0f0}img{max-width:100%}"
)


def html_page(blocks: list[Block], title: str) -> str:
    esc = html.escape
    parts = []
    for kind, *rest in blocks:
        if kind == "table":
            head, rows = rest
            th = "".join(f"<th>{esc(h)}</th>" for h in head)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows
            )
            parts.append(f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "img":
            parts.append(f'<p><img src="{esc(rest[1])}" alt="{esc(rest[0])}"></p>')
        else:
            parts.append(f"<{kind}>{esc(rest[0])}</{kind}>")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body>\n</html>\n"
    )
