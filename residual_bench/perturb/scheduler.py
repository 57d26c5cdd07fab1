"""Turning a suite into the events of one episode, and firing them at the right moment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from residual_bench.perturb.events import PERTURBATIONS, Perturbation
from residual_bench.perturb.suite import Suite, SuiteEntry


@dataclass
class PlannedEvent:
    """One event of this episode: what, and when relative to its trigger."""

    perturbation: Perturbation
    phase: str | None  # trigger phase, or None for a time trigger
    offset: float  # seconds after the phase starts, or the absolute time
    start: float | None = None  # when the trigger phase was first seen
    fired: bool = False

    @property
    def trigger(self) -> str:
        return f"phase:{self.phase}" if self.phase is not None else "time"

    def due(self, time: float, phase: str) -> bool:
        if self.fired:
            return False
        if self.phase is None:
            return time >= self.offset - 1e-9
        if self.start is None and phase == self.phase:
            self.start = time
        return self.start is not None and time >= self.start + self.offset - 1e-9


class PerturbationScheduler:
    """Plans a suite's events for one episode (all randomness drawn here, at reset) and
    applies each when its trigger fires."""

    def __init__(self, suite: Suite, rng: np.random.Generator) -> None:
        self.suite = suite
        self.planned: list[PlannedEvent] = []
        for entry in suite.entries:
            self.planned.extend(self._plan(entry, rng))

    @staticmethod
    def _plan(entry: SuiteEntry, rng: np.random.Generator) -> list[PlannedEvent]:
        if rng.random() >= entry.probability:
            return []
        n = int(rng.integers(entry.count[0], entry.count[1] + 1))
        cls = PERTURBATIONS[entry.type]
        phase = None
        if entry.phases is not None:
            phase = entry.phases[int(rng.integers(len(entry.phases)))]
            base = 0.0
        else:
            base = float(rng.uniform(*entry.time))
        events = []
        for j in range(n):
            delay = float(rng.uniform(*entry.delay))
            perturbation = cls.sample(entry.params, rng)
            events.append(PlannedEvent(perturbation, phase, base + delay + j * entry.gap))
        return events

    def fire(self, sim: Any, time: float, phase: str) -> list[dict[str, Any]]:
        """Apply every event that is due at ``time`` in ``phase``; return their records."""
        records = []
        for planned in self.planned:
            if planned.due(time, phase):
                planned.fired = True
                records.append(planned.perturbation.apply(sim, time, planned.trigger))
        return records
