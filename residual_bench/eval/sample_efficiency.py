"""How many environment steps a method needs: steps to a target success, read off curves.

The learning curves are the ``progress.csv`` files that training writes: success on a few
fixed evaluation episodes (20 by default) every so many environment steps. One such point is
noisy (the Wilson interval of 9/20 spans 23-66%), so both quantities below smooth over
``window`` consecutive evaluations:

- a method's *final* success is the mean of each seed's last ``window`` evaluations within
  the budget, averaged over seeds;
- the *steps to reach* a target are, per seed, the first evaluation at which the mean of that
  evaluation and the ``window - 1`` before it reaches the target (trailing, so it never looks
  ahead). A seed that never does has not reached it within the steps it covers.

The reference article's claim "70% fewer interactions" is then
``1 - steps(residual) / steps(other)`` at the target ``fraction`` x the residual's final
success.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class StepsToTarget:
    """Per-seed steps to a target success and what they add up to.

    Attributes:
        per_seed: Steps at which each seed reached the target, ``None`` where it did not.
        covered: The last evaluated step of each seed (within the budget).
        steps: Mean over seeds when every seed reached the target, else ``None``.
        at_least: When some seed did not reach it: the fewest steps the method can need
            (the steps that seed covered without reaching it, or more), else ``None``.
    """

    per_seed: tuple[int | None, ...]
    covered: tuple[int, ...]
    steps: float | None
    at_least: float | None


def _curve(frame: pd.DataFrame, budget: int | None) -> tuple[np.ndarray, np.ndarray]:
    if not {"timesteps", "success_rate"} <= set(frame.columns):
        raise ValueError("a learning curve needs columns 'timesteps' and 'success_rate'")
    frame = frame.sort_values("timesteps")
    if budget is not None:
        frame = frame[frame["timesteps"] <= budget]
    if frame.empty:
        raise ValueError(f"a learning curve has no evaluation within {budget} steps")
    return frame["timesteps"].to_numpy(int), frame["success_rate"].to_numpy(float)


def final_success(
    frames: Sequence[pd.DataFrame], window: int = 3, budget: int | None = None
) -> float:
    """Mean over seeds of each seed's mean success over its last ``window`` evaluations."""
    if not frames:
        raise ValueError("final_success needs at least one learning curve")
    return float(np.mean([_curve(f, budget)[1][-window:].mean() for f in frames]))


def steps_to_reach(
    frames: Sequence[pd.DataFrame], target: float, window: int = 3, budget: int | None = None
) -> StepsToTarget:
    """The first step at which each seed's trailing ``window``-mean success reaches ``target``."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    per_seed: list[int | None] = []
    covered: list[int] = []
    for frame in frames:
        steps, success = _curve(frame, budget)
        # The first evaluations have fewer than `window` before them: average what there is.
        trailing = pd.Series(success).rolling(window, min_periods=1).mean().to_numpy()
        hits = np.flatnonzero(trailing >= target - 1e-12)
        per_seed.append(int(steps[hits[0]]) if hits.size else None)
        covered.append(int(steps[-1]))
    missed = [c for s, c in zip(per_seed, covered, strict=True) if s is None]
    if missed:
        reached = [s for s in per_seed if s is not None]
        # The mean over seeds is at least what it would be if each missing seed reached the
        # target just after the steps it covered.
        at_least = float(np.mean(reached + missed))
        return StepsToTarget(tuple(per_seed), tuple(covered), None, at_least)
    return StepsToTarget(tuple(per_seed), tuple(covered), float(np.mean(per_seed)), None)


def compare_to_reference(
    curves: Mapping[str, Sequence[pd.DataFrame]],
    reference: str,
    fraction: float = 0.8,
    window: int = 3,
    budget: int | None = None,
) -> dict[str, dict]:
    """Steps each method needs to reach ``fraction`` of the reference's final success.

    Returns:
        Per method: ``seeds``, ``final`` (its own final success), ``steps`` / ``at_least``
        and ``per_seed`` (see :class:`StepsToTarget`), and ``fewer_steps``: the reference's
        saving, ``1 - steps(reference) / steps(method)``, or ``fewer_at_least`` when the
        method's steps are only a lower bound (``None`` while the method has not run as
        far as the reference needed). The reference's entry also holds ``target``.

    Raises:
        ValueError: The reference has no curves, ends at 0% success, or has a seed that
            never reaches the target (then the reference's own steps are unknown).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if not curves.get(reference):
        raise ValueError(f"no learning curves for the reference {reference!r}")
    target = fraction * final_success(curves[reference], window, budget)
    if target <= 0:
        raise ValueError(f"the reference {reference!r} ends at 0% success: nothing to reach")
    results: dict[str, dict] = {}
    for method, frames in curves.items():
        if not frames:
            continue
        reach = steps_to_reach(frames, target, window, budget)
        results[method] = {
            "seeds": len(frames),
            "final": final_success(frames, window, budget),
            "steps": reach.steps,
            "at_least": reach.at_least,
            "per_seed": list(reach.per_seed),
            "covered": list(reach.covered),
        }
    own = results[reference]["steps"]
    if own is None:
        raise ValueError(
            f"a seed of the reference {reference!r} never reaches its target {target:.2f}"
        )
    results[reference]["target"] = target
    for entry in results.values():
        if entry["steps"] is not None:
            entry["fewer_steps"] = 1 - own / entry["steps"]
        else:
            bound = 1 - own / entry["at_least"]
            entry["fewer_at_least"] = bound if bound > 0 else None
    return results
