"""Inline SVG plots of the leaderboard page: rates with their intervals, paired gains.

SVG written as text, not matplotlib images: the page stays one self-contained file whose
content is a function of the submissions only (no renderer version in its bytes).
"""

from __future__ import annotations

import html
from typing import Any

LEFT, WIDTH, BAR = 260, 360, 14


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _svg(parts: list[str], height: float) -> str:
    head = (
        f'<svg class="plot" role="img" viewBox="0 0 {LEFT + WIDTH + 20} {height}" '
        f'width="{LEFT + WIDTH + 20}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
    )
    return head + "".join(parts) + "</svg>"


def svg_intervals(items: list[tuple[str, dict[str, Any], str]]) -> str:
    """One bar per ``(label, rate, status)`` (a rate: ``{"rate", "ci"}``), 0-100%, with its
    interval as a line."""
    parts, y = [], 10
    for label, rate, status in items:
        value = rate["rate"] or 0.0
        lo, hi = (c or 0.0 for c in rate["ci"])
        text = html.escape(label)
        parts.append(f'<text x="{LEFT - 6}" y="{y + BAR - 3}" text-anchor="end">{text}</text>')
        parts.append(
            f'<rect x="{LEFT}" y="{y}" width="{WIDTH * value:.1f}" height="{BAR}" '
            f'class="bar-{html.escape(status)}"><title>{text}: {_pct(value)}</title></rect>'
        )
        mid = y + BAR / 2
        parts.append(
            f'<line x1="{LEFT + WIDTH * lo:.1f}" x2="{LEFT + WIDTH * hi:.1f}" y1="{mid}" '
            f'y2="{mid}" class="ci"/>'
        )
        y += BAR + 4
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="0" y2="{y}" class="axis"/>')
    for tick in (0, 50, 100):
        x = LEFT + WIDTH * tick / 100
        parts.append(f'<text x="{x:.0f}" y="{y + 14}" text-anchor="middle">{tick}%</text>')
    return _svg(parts, y + 30)


def svg_gains(items: list[tuple[str, dict[str, Any]]]) -> str:
    """Per residual, its gain over its base alone: the mean over training seeds as a bar from
    zero, each seed as a dot, on a -50 to +50 point axis."""
    parts, y = [], 10
    zero = LEFT + WIDTH / 2

    def x_of(difference: float) -> float:
        return zero + WIDTH * max(-0.5, min(0.5, difference))

    for label, gain in items:
        text = html.escape(label)
        mean = gain["difference"]
        parts.append(f'<text x="{LEFT - 6}" y="{y + BAR - 3}" text-anchor="end">{text}</text>')
        start, end = sorted((zero, x_of(mean)))
        parts.append(
            f'<rect x="{start:.1f}" y="{y}" width="{end - start:.1f}" height="{BAR}" '
            f'class="gain"><title>{text}: {100 * mean:+.1f} points</title></rect>'
        )
        for seed in gain["per_seed"]:
            parts.append(
                f'<circle cx="{x_of(seed["difference"]):.1f}" cy="{y + BAR / 2}" r="3" '
                f'class="seed"><title>training seed {seed["train_seed"]}: '
                f"{100 * seed['difference']:+.1f} points</title></circle>"
            )
        y += BAR + 4
    parts.append(f'<line x1="{zero}" x2="{zero}" y1="0" y2="{y}" class="axis"/>')
    for tick in (-50, -25, 0, 25, 50):
        x = x_of(tick / 100)
        parts.append(f'<text x="{x:.0f}" y="{y + 14}" text-anchor="middle">{tick:+d}</text>')
    return _svg(parts, y + 30)
