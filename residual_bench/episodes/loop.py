"""The one episode loop.

``bench demo``, ``bench eval``, training's periodic evaluation, DAgger's collection and the
demonstrations all run :func:`run_episode`, so they agree on what an episode is: reset with
the episode's seed, act until the env terminates or truncates (or the caller's ``stop``),
and - when a record is asked for - record the action the robot executed: the wrapper's
``info["executed_action"]`` (base + correction) when the env has one, else the action given
to ``env.step``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from residual_bench.episodes.recorder import EpisodeRecorder
from residual_bench.episodes.records import EpisodeRecord

Act = Callable[[Any, dict[str, Any]], np.ndarray]
"""``act(obs, info) -> action`` for the env the episode runs in."""


@dataclass
class Episode:
    """What one episode ended with.

    Attributes:
        info: the last step's ``info``.
        steps: control steps taken.
        record: the episode's record, when one was asked for.
    """

    info: dict[str, Any]
    steps: int
    record: EpisodeRecord | None = None

    @property
    def success(self) -> bool:
        """Whether the task condition holds at the end (the benchmark's success)."""
        return bool(self.info["success"])


def run_episode(
    env: Any,
    act: Act,
    seed: int,
    *,
    options: dict[str, Any] | None = None,
    reset: Callable[[dict[str, Any]], None] | None = None,
    on_step: Callable[[Any, dict[str, Any]], None] | None = None,
    stop: Callable[[dict[str, Any]], bool] | None = None,
    record: dict[str, Any] | None = None,
    record_extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Episode:
    """Run one episode of ``env`` from ``seed``.

    Args:
        env: a gymnasium env of a task (raw, or wrapped with a base and a correction).
        act: the policy, ``act(obs, info) -> action``.
        seed: the reset seed (the episode is a function of it).
        options: the reset's options (the real robot's start joints), if any.
        reset: called with the reset ``info`` before the first action (a policy's own
            per-episode state, e.g. a controller's chunk queue).
        on_step: ``on_step(env, info)`` after the reset and after every step, before the
            step is recorded: it may add to ``info`` (events an operator reports).
        stop: ``stop(info) -> True`` ends the episode early (after that step).
        record: the record's identity (``env_id``, ``env_spec_hash``, ``suite``,
            ``objects``, ``base``, ``residual``): with it, the episode is recorded.
        record_extra: ``record_extra(last_info) -> dict`` of the record's ``extra``.
    """
    obs, info = env.reset(seed=seed, options=options) if options else env.reset(seed=seed)
    if reset is not None:
        reset(info)
    if on_step is not None:
        on_step(env, info)
    recorder = None
    if record is not None:
        recorder = EpisodeRecorder()
        recorder.start(info, **record)
    steps, done = 0, False
    while not done:
        action = act(obs, info)
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        if on_step is not None:
            on_step(env, info)
        if recorder is not None:
            recorder.step(info.get("executed_action", action), info)
        done = terminated or truncated or (stop is not None and stop(info))
    episode = Episode(info, steps)
    if recorder is not None:
        extra = record_extra(info) if record_extra is not None else None
        # A real robot has no state to hash; a simulated episode's hash proves its replay.
        state_hash = getattr(env.unwrapped, "state_hash", None)
        final_hash = state_hash() if state_hash is not None else None
        episode.record = recorder.finish(final_state_hash=final_hash, extra=extra)
    return episode
