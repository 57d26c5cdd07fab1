"""Turn the per-step ``info`` stream of an episode into an :class:`EpisodeRecord`.

Typical use::

    recorder = EpisodeRecorder()
    obs, info = env.reset(seed=seed)
    recorder.start(info, env_id=..., env_spec_hash=..., suite=..., objects=..., base=...)
    while not done:
        obs, reward, terminated, truncated, info = env.step(action)
        recorder.step(action, info)
        done = terminated or truncated
    append_jsonl(path, recorder.finish(final_state_hash=...))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from residual_bench.episodes import metrics, reaction
from residual_bench.episodes.records import EpisodeRecord, PerturbationEvent, to_jsonable

#: ``info`` keys every step must carry.
REQUIRED_STEP_KEYS = ("time", "success", "is_grasped", "tcp_to_object_xy")
#: ``info`` keys that, all present at reset, give the state before the first step.
STATE_KEYS = ("success", "is_grasped", "tcp_to_object_xy")
_RESIDUAL_KEYS = ("residual_action", "alpha")


class EpisodeRecorder:
    """Accumulates one episode at a time; reusable after :meth:`finish`.

    :param align_tol_m: alignment tolerance for recovery of events before the grasp.
    :param stable_s: how long a restored state must persist to count as recovered.
    """

    def __init__(
        self, align_tol_m: float = metrics.ALIGN_TOL_M, stable_s: float = metrics.STABLE_S
    ) -> None:
        self.align_tol_m = align_tol_m
        self.stable_s = stable_s
        self._meta: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        """Whether an episode has been started and not yet finished."""
        return self._meta is not None

    def start(
        self,
        reset_info: Mapping[str, Any],
        *,
        env_id: str,
        env_spec_hash: str,
        suite: str,
        objects: str,
        base: str,
        residual: str | None = None,
        target_object: str | None = None,
    ) -> None:
        """Begin a new episode, discarding any unfinished one.

        :param reset_info: the ``info`` returned by ``env.reset`` (``seed``, ``instruction``,
            optionally ``target_object`` and the state keys).
        :param target_object: overrides ``reset_info["target_object"]``.
        """
        seed = reset_info.get("seed")
        self._meta = {
            "env_id": env_id,
            "env_spec_hash": env_spec_hash,
            "seed": None if seed is None else int(seed),
            "suite": suite,
            "objects": objects,
            "base": base,
            "residual": residual,
            "instruction": reset_info.get("instruction"),
            "target_object": target_object or str(reset_info.get("target_object", "")),
        }
        self._start_time = float(reset_info.get("time", 0.0))
        self._times: list[float] = []
        self._success: list[bool] = []
        self._grasped: list[bool] = []
        self._xy: list[float] = []
        self._actions: list[np.ndarray] = []
        self._residuals: list[np.ndarray] = []
        self._alphas: list[np.ndarray] = []
        self._n_steps = 0
        self._object_to_goal: float | None = None
        self._termination: str | None = None
        self._events = [PerturbationEvent.from_info(e) for e in reset_info.get("new_events", [])]
        # The reset state, when reported, decides the grasp state of first-step events.
        if all(k in reset_info for k in STATE_KEYS):
            self._add_sample(self._start_time, reset_info)

    def _add_sample(self, time: float, info: Mapping[str, Any]) -> None:
        if self._times and time <= self._times[-1]:
            raise ValueError(f"info['time'] must increase, got {time} after {self._times[-1]}")
        self._times.append(time)
        self._success.append(bool(info["success"]))
        self._grasped.append(bool(info["is_grasped"]))
        self._xy.append(float(info["tcp_to_object_xy"]))

    def step(self, action: Any, info: Mapping[str, Any]) -> None:
        """Record one control step.

        :param action: the action passed to ``env.step``, shape (D,).
        :param info: the ``info`` returned by that step.
        """
        if self._meta is None:
            raise RuntimeError("EpisodeRecorder.step called before start")
        missing = [k for k in REQUIRED_STEP_KEYS if k not in info]
        if missing:
            raise ValueError(f"step info lacks required key(s) {missing}")
        a = np.asarray(action, dtype=float)
        if a.ndim != 1 or (self._actions and a.shape != self._actions[0].shape):
            raise ValueError(f"action must be 1-D with a fixed shape, got {a.shape}")
        # Parse everything before storing anything, so a rejected step leaves no trace.
        events = [PerturbationEvent.from_info(e) for e in info.get("new_events", [])]
        if info.get("termination") is not None:
            self._termination = str(info["termination"])
        prev, now = (self._times[-1] if self._times else self._start_time), float(info["time"])
        for e in events:
            # Recovery is dated against the samples, so a mis-stamped event would silently
            # shift every recovery time.
            if not prev - metrics.TIME_EPS <= e.time <= now + metrics.TIME_EPS:
                raise ValueError(
                    f"{e.type} event at t={e.time} reported in the step from {prev} to {now}"
                )
        residual = None
        if all(k in info for k in _RESIDUAL_KEYS):
            residual = (
                np.asarray(info["residual_action"], dtype=float).copy(),
                np.asarray(info["alpha"], dtype=float).copy(),
            )
        self._add_sample(now, info)
        self._actions.append(a.copy())
        if residual is not None:
            self._residuals.append(residual[0])
            self._alphas.append(residual[1])
        if self._meta["instruction"] is None and "instruction" in info:
            self._meta["instruction"] = info["instruction"]
        if "object_to_goal" in info:
            self._object_to_goal = float(info["object_to_goal"])
        self._events.extend(events)
        self._n_steps += 1

    def finish(
        self, final_state_hash: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> EpisodeRecord:
        """Compute the episode's metrics and return its record; the recorder becomes idle.

        :param final_state_hash: hash of the final simulator state, if available.
        :param extra: JSON-serialisable metadata stored in ``record.extra``.
        :raises ValueError: if no step was recorded, or residual data came on only some steps.
        """
        if self._meta is None:
            raise RuntimeError("EpisodeRecorder.finish called before start")
        if self._n_steps == 0:
            raise ValueError("cannot finish an episode with no recorded steps")
        if self._residuals and len(self._residuals) != self._n_steps:
            raise ValueError(
                f"residual_action/alpha present on {len(self._residuals)} of "
                f"{self._n_steps} steps; they must be on all steps or none"
            )
        times = np.array(self._times)
        success = np.array(self._success)
        grasped = np.array(self._grasped)
        xy = np.array(self._xy)
        actions = np.stack(self._actions)
        events = []
        for e in self._events:
            held = reaction.held_through(e.time, times, grasped)
            e = dataclasses.replace(
                e,
                grasped_at_event=metrics.grasped_at(e.time, times, grasped),
                recovery_time=metrics.recovery_time(
                    e,
                    times,
                    grasped,
                    xy,
                    success,
                    align_tol_m=self.align_tol_m,
                    stable_s=self.stable_s,
                ),
                reaction_time=reaction.reaction_time(
                    e, times[-self._n_steps :], actions, start_time=self._start_time, held=held
                ),
            )
            rule = reaction.reaction_rule(e, held, actions.shape[1])
            events.append(dataclasses.replace(e, reaction_rule=rule))
        episode_time = float(times[-1])
        dt = (episode_time - self._start_time) / self._n_steps
        smooth = metrics.smoothness(
            actions,
            dt,
            np.stack(self._residuals) if self._residuals else None,
            np.stack(self._alphas) if self._alphas else None,
        )
        record_extra: dict[str, Any] = {"control_dt": dt}
        if self._object_to_goal is not None and math.isfinite(self._object_to_goal):
            record_extra["final_object_to_goal"] = self._object_to_goal
        if self._termination is not None:  # why the episode ended before its time limit
            record_extra["termination"] = self._termination
        record_extra.update(to_jsonable(dict(extra or {})))
        meta, self._meta = self._meta, None
        return EpisodeRecord(
            **(meta | {"instruction": meta["instruction"] or ""}),
            success=bool(success[-1]),
            first_success_time=metrics.first_success_time(times, success),
            episode_time=episode_time,
            n_steps=self._n_steps,
            events=events,
            final_state_hash=final_state_hash,
            extra=record_extra,
            **smooth,
        )
