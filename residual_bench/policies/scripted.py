"""Presets of the privileged scripted controller, as named policies.

They differ in how much they see and how often they decide, which is what perturbations
punish: ``expert`` reacts every step, ``expert-open-loop`` never looks at the object again
after the first frame, ``expert-4hz`` decides as slowly as a large VLA. Each preset is
registered as a base under its name, run by a :class:`ScriptedController`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from residual_bench.policies.base import repeated_plan
from residual_bench.policies.expert import ScriptedExpert
from residual_bench.policies.registry import register_base


@dataclass(frozen=True)
class ScriptedPolicy:
    """A privileged scripted controller and how often it gets to act."""

    name: str
    description: str
    make: Callable[[], ScriptedExpert]
    act_every: int = 1  # control steps per decision; the action is held in between


SCRIPTED_POLICIES = {
    p.name: p
    for p in (
        ScriptedPolicy(
            "expert", "closed-loop scripted expert at the control rate", lambda: ScriptedExpert()
        ),
        ScriptedPolicy(
            "expert-open-loop",
            "the expert planning once from the first frame",
            lambda: ScriptedExpert(open_loop=True),
        ),
        ScriptedPolicy(
            "expert-4hz",
            "the expert deciding at 4 Hz (at 20 Hz control), each action held 250 ms",
            lambda: ScriptedExpert(hold_steps=5),
            act_every=5,
        ),
    )
}


class ScriptedController:
    """A :class:`ScriptedPolicy` preset deciding every ``act_every`` steps on ``env``.

    While the environment reports the base stalled it holds the last action (see
    :mod:`residual_bench.policies.controller`).
    """

    def __init__(self, env, preset: ScriptedPolicy) -> None:
        self.env = env
        self.name = preset.name
        self.preset = preset
        self.expert = preset.make()
        self._action: np.ndarray | None = None
        self._step = 0

    def reset(self, info: dict[str, Any]) -> None:
        self.expert.reset()
        self._action, self._step = None, 0

    def act(self, obs: dict, info: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        due = self._step % self.preset.act_every == 0 and not info["base_stalled"]
        fresh = self._action is None or due
        if fresh:
            self._action = self.expert.act(self.env)
        self._step += 1
        return self._action.copy(), {"base_fresh": fresh, "base_held": not fresh}

    def planned_actions(self, n_steps: int) -> np.ndarray:
        """The current action, repeated: the expert decides again from the state it will
        see, so nothing beyond it is decided (before the first action: zeros)."""
        return repeated_plan(np.zeros(7) if self._action is None else self._action, n_steps)


def _scripted_controller(preset_name: str) -> Callable[[Any], ScriptedController]:
    def factory(env: Any) -> ScriptedController:
        return ScriptedController(env, SCRIPTED_POLICIES[preset_name])

    return factory


for _preset in SCRIPTED_POLICIES.values():
    register_base(
        _preset.name,
        f"{_preset.description} (privileged scripted controller, sim only)",
        _scripted_controller(_preset.name),
    )
del _preset
