"""Figures of evaluation results: success, recovery, completion time and learning curves.

Every function draws one figure, saves it (PNG, or SVG when the path ends in ``.svg``),
closes it and returns the path. The report (:mod:`residual_bench.eval.report`) embeds them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless machines: never try to open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from residual_bench.episodes.metrics import recovery_curve  # noqa: E402
from residual_bench.episodes.records import EpisodeRecord  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = "svg" if path.suffix.lower() == ".svg" else "png"
        fig.tight_layout()
        fig.savefig(path, format=fmt, dpi=100)
    finally:
        plt.close(fig)
    return path


def _note(ax: plt.Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def plot_success(table: pd.DataFrame, path: str | Path) -> Path:
    """Grouped bars of the success rate per suite and method, with Wilson 95% error bars.

    Args:
        table: Method table from :func:`residual_bench.eval.report.method_table` (columns
            ``objects, suite, method, success, success_lo, success_hi``), in display order.
        path: Output file.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    groups = list(dict.fromkeys(zip(table["objects"], table["suite"], strict=True)))
    methods = list(dict.fromkeys(table["method"]))
    # The object split only needs to be named when there is more than one.
    several_splits = len({objects for objects, _ in groups}) > 1
    labels = [f"{suite}\n({objects})" if several_splits else suite for objects, suite in groups]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups) * max(1, len(methods)) ** 0.5), 4))
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(groups))
    for i, method in enumerate(methods):
        rows = table[table["method"] == method].set_index(["objects", "suite"])
        values, lower, upper = [], [], []
        for key in groups:
            if key in rows.index:
                row = rows.loc[key]
                values.append(row["success"])
                lower.append(row["success"] - row["success_lo"])
                upper.append(row["success_hi"] - row["success"])
            else:
                values.append(np.nan)
                lower.append(0.0)
                upper.append(0.0)
        offset = (i - (len(methods) - 1) / 2) * width
        ax.bar(x + offset, values, width, yerr=[lower, upper], capsize=3, label=method)
    ax.set_xticks(x, labels)
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("success rate")
    ax.set_title("success rate (95% Wilson interval)")
    if methods:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        _note(ax, "no episodes")
    return _save(fig, path)


def paired_by_suite(
    records_by_method: Mapping[str, Sequence[EpisodeRecord]],
) -> dict[str, dict[str, list[EpisodeRecord]]]:
    """Per suite, each method's records on the episodes every method of that suite ran
    (matched by object split and episode seed): their events are then comparable."""
    suites: dict[str, dict[str, dict[tuple, EpisodeRecord]]] = {}
    for method, records in records_by_method.items():
        for r in records:
            suites.setdefault(r.suite, {}).setdefault(method, {})[(r.objects, r.seed)] = r
    paired = {}
    for suite, methods in sorted(suites.items()):
        shared = set.intersection(*(set(m) for m in methods.values()))
        paired[suite] = {
            m: [recs[k] for k in sorted(shared, key=str)] for m, recs in methods.items()
        }
    return paired


def plot_recovery_curves(
    records_by_method: Mapping[str, Sequence[EpisodeRecord]], path: str | Path
) -> Path:
    """Recovery rate against time since the perturbation: one panel per suite, one line per
    method, over the episodes all methods ran (:func:`paired_by_suite`).

    Uses :func:`residual_bench.episodes.metrics.recovery_curve`; events that never recover count
    as not recovered at every horizon. The time axis runs to the longest recovery seen (at
    least 3 s), so no curve is cut while it still rises.

    Args:
        records_by_method: Episode records keyed by method label.
        path: Output file.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    panels = {
        suite: methods
        for suite, methods in paired_by_suite(records_by_method).items()
        if any(r.events for recs in methods.values() for r in recs)
    }
    times = [
        e.recovery_time
        for methods in panels.values()
        for recs in methods.values()
        for r in recs
        for e in r.events
        if e.recovery_time is not None
    ]
    end = max(3.0, math.ceil(max(times, default=0.0) * 2) / 2)
    horizons = np.round(np.arange(0.0, end + 1e-9, 0.05), 10)
    cols = max(1, min(3, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(len(panels) == 0)
    if not panels:
        _note(axes[0, 0], "no perturbation events")
    for ax, (suite, methods) in zip(axes.flat, panels.items(), strict=False):
        for method, records in methods.items():
            events = [e for r in records for e in r.events]
            if events:  # steps: rates only change at grid points
                rates = recovery_curve(events, horizons)
                ax.plot(
                    horizons,
                    rates,
                    drawstyle="steps-post",
                    label=f"{method} ({len(events)} events)",
                )
        episodes = len(next(iter(methods.values())))
        ax.set_title(f"{suite} ({episodes} paired episodes)", fontsize=9)
        ax.set_xlim(0.0, end)
        ax.set_ylim(0.0, 1.05)
        ax.set_xlabel("time since the perturbation [s]")
        ax.set_ylabel("share of events recovered")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_completion_times(
    records_by_method: Mapping[str, Sequence[EpisodeRecord]], path: str | Path
) -> Path:
    """Box plots of the completion time (first success time of successful episodes), one
    group per suite and one box per method in it: suites are never pooled.

    Args:
        records_by_method: Episode records keyed by method label.
        path: Output file.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    methods = list(records_by_method)
    suites = sorted({r.suite for recs in records_by_method.values() for r in recs})
    width = len(methods) + 1
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * width * len(suites) + 2), 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = 0
    for i, suite in enumerate(suites):
        for j, method in enumerate(methods):
            times = [
                r.first_success_time
                for r in records_by_method[method]
                if r.suite == suite and r.success and r.first_success_time is not None
            ]
            if not times:
                continue
            box = ax.boxplot(
                [times], positions=[i * width + j], widths=0.7, showmeans=True, patch_artist=True
            )
            box["boxes"][0].set_facecolor(colors[j % len(colors)])
            drawn += 1
    if not drawn:
        _note(ax, "no successful episodes")
    centres = [i * width + (len(methods) - 1) / 2 for i in range(len(suites))]
    ax.set_xticks(centres, suites)
    ax.set_xlim(-1, max(1, len(suites) * width - 1))
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=colors[j % len(colors)]) for j in range(len(methods))
    ]
    ax.legend(handles, methods, fontsize=8)
    ax.set_ylabel("completion time [s]")
    ax.set_title("completion time of successful episodes, per suite")
    return _save(fig, path)


def _seed_curves(frames: Sequence[pd.DataFrame]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max of several seeds' curves on a shared step grid.

    Seeds may log at different steps, so they are interpolated onto the union of their steps
    within the range all of them cover (no extrapolation).
    """
    curves = []
    for f in frames:
        # np.interp needs strictly increasing steps; a repeated step keeps its first value.
        steps, first = np.unique(f["timesteps"].to_numpy(float), return_index=True)
        curves.append((steps, f["success_rate"].to_numpy(float)[first]))
    start = max(t[0] for t, _ in curves)
    stop = min(t[-1] for t, _ in curves)
    grid = np.unique(np.concatenate([t for t, _ in curves]))
    grid = grid[(grid >= start) & (grid <= stop)]
    values = np.stack([np.interp(grid, t, y) for t, y in curves])
    return grid, values.mean(axis=0), np.stack([values.min(axis=0), values.max(axis=0)])


def plot_learning_curves(
    curves: Mapping[str, Sequence[pd.DataFrame]],
    path: str | Path,
    target: tuple[str, float] | None = None,
    dashed: Collection[str] = (),
) -> Path:
    """Success rate against environment steps per method, averaged over training seeds.

    With several seeds the band spans their minimum to maximum; with one seed it is the
    ``success_ci_low`` / ``success_ci_high`` interval when those columns exist.

    Args:
        curves: Per method, one ``progress.csv`` frame (columns ``timesteps``,
            ``success_rate``, optionally ``success_ci_low``, ``success_ci_high``) per seed.
        path: Output file.
        target: A label and success rate drawn as a dashed horizontal line (e.g. 80% of a
            method's final success).
        dashed: Methods drawn dashed, e.g. runs still training.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = 0
    for method, frames in curves.items():
        frames = [f.sort_values("timesteps") for f in frames if len(f)]
        if not frames:
            continue
        style = "--" if method in dashed else "-"
        if len(frames) == 1:
            f = frames[0]
            steps = f["timesteps"].to_numpy(float)
            (line,) = ax.plot(steps, f["success_rate"], label=method, ls=style)
            if {"success_ci_low", "success_ci_high"} <= set(f.columns):
                ax.fill_between(
                    steps,
                    f["success_ci_low"],
                    f["success_ci_high"],
                    color=line.get_color(),
                    alpha=0.2,
                )
        else:
            steps, mean, band = _seed_curves(frames)
            (line,) = ax.plot(steps, mean, label=f"{method} ({len(frames)} seeds)", ls=style)
            ax.fill_between(steps, band[0], band[1], color=line.get_color(), alpha=0.2)
        drawn += 1
    if target is not None:
        ax.axhline(target[1], color="0.3", ls="--", lw=1, label=target[0])
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("success rate")
    ax.set_title("learning curves")
    if drawn:
        ax.legend(fontsize=8)
    else:
        _note(ax, "no learning curves")
    return _save(fig, path)
