"""Reaction time: how soon the executed action turns towards undoing a perturbation.

Recovery time (``metrics.recovery_time``) measures the whole recovery, until the disturbed
state is restored; reaction time is the reflex: the first command that answers the event.
The exact rules are in ``docs/metrics.md``; in short:

- Command ``j`` is the executed action of step ``j``. It is issued at the start of its step,
  ``times[j - 1]`` (the reset time for the first step), from what was known then. A command
  issued at or before the event time was chosen before the event (the env fires events
  inside ``step``, after the action is given) and the last such command is the *pre-event
  command*; zero when there is none.
- The reaction time is the issue time of the first later command that meets the event's rule,
  minus the event time: one control period (50 ms at 20 Hz) at the earliest.
- ``towards_displacement`` (``poke``, ``slide``): with ``u`` the horizontal direction the
  object was pushed (poke: ``params["direction"]``, slide: ``params["azimuth"]``), the
  commanded horizontal translation ``a[:2]`` has a component of at least
  :data:`REACTION_MIN_CHANGE` along ``u`` (it moves towards where the object went) and so has
  its change from the pre-event command (it turned that way): a command that keeps going the
  same way does not react, nor does one that only slows down.
- ``opens_gripper`` (``drop`` that opens the hand, ``mode`` ``release`` or none): the gripper
  command ``a[6]`` (+1 open) is at least :data:`REACTION_MIN_CHANGE` more open than the
  pre-event one. Downward motion is not counted: a carrying base's own vertical command
  changes (lift, then level) and would pass for a reaction.
- No rule, reaction time undefined (``None``): ``latency`` (the base's stall is nothing the
  action can undo; its recovery is measured from the stall's end), a ``drop`` ``from_height``
  (where the object landed is not in the record), a poke or slide without a recorded
  direction, one that left the object held (grasped just before and just after the event:
  nothing to undo), actions not in the 7-D layout, and every other event type.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from residual_bench.episodes.metrics import TIME_EPS, _as_1d, _validate_times, state_index
from residual_bench.episodes.records import PerturbationEvent

REACTION_MIN_CHANGE = 0.1
"""Action units a reacting command must reach: its component along the push and that of its
change since the pre-event command (2 mm per 50 ms step, 0.04 m/s), or the gripper's opening
since the pre-event command (5% of the gripper's range)."""
TOWARDS_DISPLACEMENT = "towards_displacement"
OPENS_GRIPPER = "opens_gripper"
ACTION_DIM = 7
"""(dx, dy, dz, droll, dpitch, dyaw, gripper): the layout the rules read."""
_ROUNDING = 1e-9  # so that a change of exactly ``min_change`` counts despite float rounding


def displacement_direction(event: PerturbationEvent) -> np.ndarray | None:
    """Unit horizontal direction the event pushed the object in, ``None`` if not recorded."""
    if event.type == "poke" and isinstance(event.params.get("direction"), list):
        try:
            direction = np.asarray(event.params["direction"], dtype=float)
        except (TypeError, ValueError):
            return None
        if direction.shape != (3,) or not np.all(np.isfinite(direction)):
            return None
        horizontal = direction[:2]
    elif event.type == "slide" and isinstance(event.params.get("azimuth"), int | float):
        azimuth = float(event.params["azimuth"])
        horizontal = np.array([math.cos(azimuth), math.sin(azimuth)])
    else:
        return None
    norm = float(np.linalg.norm(horizontal))
    return horizontal / norm if math.isfinite(norm) and norm > 1e-9 else None


def held_through(event_time: float, times: Any, is_grasped: Any) -> bool:
    """Whether the object was grasped at the last sample at or before the event and at the
    first sample after it (a push the grip absorbed)."""
    t = _validate_times(times)
    g = _as_1d("is_grasped", is_grasped, t.size, bool)
    pre = state_index(t, event_time)
    return 0 <= pre < t.size - 1 and bool(g[pre]) and bool(g[pre + 1])


def reaction_rule(
    event: PerturbationEvent, held: bool = False, action_dim: int = ACTION_DIM
) -> str | None:
    """The rule that dates this event's reaction, ``None`` where reaction time is undefined.

    :param event: the perturbation (its ``type`` and ``params`` are used).
    :param held: the object was held just before and just after the event
        (:func:`held_through`); a poke or slide the grip absorbed has nothing to undo.
    :param action_dim: length of the actions; the rules read the 7-D layout only.
    """
    if action_dim != ACTION_DIM:
        return None
    if event.type in ("poke", "slide"):
        return None if held or displacement_direction(event) is None else TOWARDS_DISPLACEMENT
    if event.type == "drop" and event.params.get("mode", "release") == "release":
        return OPENS_GRIPPER
    return None


def reaction_time(
    event: PerturbationEvent,
    times: Any,
    actions: Any,
    *,
    start_time: float = 0.0,
    held: bool = False,
    min_change: float = REACTION_MIN_CHANGE,
) -> float | None:
    """Simulated seconds from the event to the first command that reacts to it.

    :param event: the perturbation.
    :param times: end time of each control step, strictly increasing, shape (T,).
    :param actions: executed action of each step, shape (T, 7).
    :param start_time: time of the reset, when the first command is issued.
    :param held: see :func:`reaction_rule`.
    :param min_change: action units the command must move towards undoing the event.
    :return: the reaction time, ``None`` if no command reacted before the episode ended or the
        event has no rule (:func:`reaction_rule`).
    """
    t = _validate_times(times)
    a = np.asarray(actions, dtype=float)
    if a.ndim != 2 or a.shape[0] != t.size:
        raise ValueError(f"actions must have shape ({t.size}, D), got {a.shape}")
    rule = reaction_rule(event, held, a.shape[1])
    if rule is None:
        return None
    issued = np.concatenate([[start_time], t[:-1]])
    before = np.flatnonzero(issued <= event.time + TIME_EPS)
    reference = a[before[-1]] if before.size else np.zeros(ACTION_DIM)
    change = a - reference
    if rule == TOWARDS_DISPLACEMENT:
        direction = displacement_direction(event)
        along = np.minimum(a[:, :2] @ direction, change[:, :2] @ direction)
    else:
        along = change[:, 6]
    reacts = along >= min_change - _ROUNDING
    hits = np.flatnonzero(reacts & (issued > event.time + TIME_EPS))
    return float(issued[hits[0]] - event.time) if hits.size else None
