"""The base's failure next to the residual's recovery, on the same episode.

:func:`save_comparison_filmstrip` picks, from a results directory, a perturbed episode that
the base alone failed and base + residual solved (same seed, so the same scene and the same
perturbation), re-runs both from their records, and films them from just before the first
perturbation to the moment that decided the episode (the residual's first success, or the
end): one row per method, the same times in both.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless machines: never try to open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from residual_bench.episodes.records import EpisodeRecord, read_jsonl  # noqa: E402
from residual_bench.eval.episode_tasks import task_of  # noqa: E402
from residual_bench.eval.runner import play  # noqa: E402

PANELS = 7
LEAD_S = 0.25  # the first panel shows the scene this long before the perturbation
FRAME_SIZE = 160


def pick_comparison(records: list[EpisodeRecord]) -> tuple[EpisodeRecord, EpisodeRecord] | None:
    """A (base failed, residual succeeded) pair on one perturbed seed, the hardest first.

    Falls back to a base failure the residual also failed; None without a perturbed base
    failure that has a residual counterpart.
    """
    residual = {(r.suite, r.objects, r.seed): r for r in records if r.residual is not None}
    candidates = []
    for r in records:
        other = residual.get((r.suite, r.objects, r.seed))
        if r.residual is None and r.events and not r.success and other is not None:
            magnitude = max(e.magnitude for e in r.events)
            candidates.append((other.success, magnitude, r, other))
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
    return candidates[0][2], candidates[0][3]


def filmstrip_times(event_time: float, decisive_time: float, dt: float = 0.05) -> list[float]:
    """``PANELS`` simulated times, on the control grid, from ``LEAD_S`` before the event (never
    before the episode began) to the decisive moment, evenly spread."""
    start = max(0.0, event_time - LEAD_S)
    end = max(decisive_time, start + (PANELS - 1) * dt)
    return [round(round(t / dt) * dt, 6) for t in np.linspace(start, end, PANELS)]


def _frames(record: EpisodeRecord, times: list[float]) -> dict[float, object]:
    frames: dict[float, object] = {}

    def on_step(env, info) -> None:
        for t in times:
            if t not in frames and abs(info["time"] - t) < 0.026:
                camera = env.unwrapped.camera.resized(FRAME_SIZE, FRAME_SIZE)
                frames[t] = camera.render(rgb=True).rgb

    play(task_of(record), on_step)
    return frames


def save_comparison_filmstrip(results_dir: str | Path, path: str | Path) -> Path | None:
    """Write the filmstrip PNG for a results directory; None when no episode qualifies."""
    records = read_jsonl(Path(results_dir) / "episodes.jsonl")
    pair = pick_comparison(records)
    if pair is None:
        return None
    event = pair[0].events[0]
    residual = pair[1]
    decisive = residual.first_success_time if residual.success else residual.episode_time - 0.05
    times = filmstrip_times(event.time, decisive)
    fig, axes = plt.subplots(2, PANELS, figsize=(2.0 * PANELS, 4.8))
    for row, record in enumerate(pair):
        frames = _frames(record, times)
        label = record.base if record.residual is None else f"{record.base}+{record.residual}"
        outcome = "success" if record.success else "failure"
        for col, t in enumerate(times):
            ax = axes[row, col]
            if t in frames:
                ax.imshow(frames[t])
            else:  # the base's episode may end before the residual's success
                ax.text(0.5, 0.5, "episode\nover", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"t = {t:.2f} s\n(event {t - event.time:+.2f} s)", fontsize=8)
            if col == 0:
                ax.set_ylabel(f"{label}\n{outcome}", fontsize=9)
    fig.suptitle(
        f"{event.type} ({event.trigger}) in suite {pair[0].suite}, {pair[0].objects} objects, "
        f"seed {pair[0].seed}: from the event to the residual's "
        f"{'success' if residual.success else 'last step'} at {decisive:.2f} s",
        fontsize=10,
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
