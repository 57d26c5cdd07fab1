"""What the rollout loop drives: anything that turns an observation into the env's action.

Two kinds:

- :class:`ScriptedController`: a privileged scripted controller acting directly on the
  simulator at a fixed decision rate (the reference rows of the perturbation table; defined
  beside its presets in :mod:`~residual_bench.policies.scripted`);
- :class:`BaseController`: a frozen base policy behind a :class:`ChunkExecutor`, which
  runs it at its own rate, with its latency, converting its native actions.

While the environment reports the base stalled (a ``latency`` perturbation), both hold the
last action, as a deployment holds the last known good command when the policy is late.

Each also says what it has already decided for the next steps (``planned_actions``): a
chunked base has the rest of its chunks, a controller that decides every step (or holds its
action between decisions) only its current action.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from residual_bench.policies.base import BasePolicy, repeated_plan
from residual_bench.policies.executor import ChunkExecutor
from residual_bench.policies.registry import register_base
from residual_bench.policies.scripted import ScriptedController

__all__ = ["BaseController", "Controller", "ScriptedController", "ZeroController"]


class Controller(Protocol):
    """Produces one env action per control step."""

    name: str

    def reset(self, info: dict[str, Any]) -> None:
        """Start an episode; ``info`` is what ``env.reset`` returned."""

    def act(self, obs: dict, info: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        """The action for this step, from the latest observation and info."""

    def planned_actions(self, n_steps: int) -> np.ndarray:
        """The actions of the next ``n_steps`` steps after the last ``act``, as far as they
        are decided already, shape ``(n_steps, 7)``; reads, never changes, the controller."""


class BaseController:
    """A base policy run by a :class:`ChunkExecutor`."""

    def __init__(self, policy: BasePolicy, executor: ChunkExecutor) -> None:
        self.policy = policy
        self.executor = executor
        self.name = policy.spec.name

    def reset(self, info: dict[str, Any]) -> None:
        self.executor.reset(info["instruction"], info.get("seed"))

    def act(self, obs: dict, info: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        return self.executor.step(obs, info["time"], stalled=bool(info.get("base_stalled")))

    def planned_actions(self, n_steps: int) -> np.ndarray:
        """The rest of the chunks playing (:meth:`ChunkExecutor.planned_actions`)."""
        return self.executor.planned_actions(n_steps)


class ZeroController:
    """No base at all: the zero action every step (arm still, gripper half open).

    What the ``scratch`` baseline trains on: with alpha 1 the "residual" is then the whole
    policy, so the same agent and training loop learn the task from nothing.
    """

    name = "zero"

    def reset(self, info: dict[str, Any]) -> None:
        """Nothing to reset."""

    def act(self, obs: dict, info: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        stalled = bool(info.get("base_stalled"))
        return np.zeros(7), {"base_fresh": not stalled, "base_held": stalled}

    def planned_actions(self, n_steps: int) -> np.ndarray:
        """The zero action, every step."""
        return repeated_plan(np.zeros(7), n_steps)


def zero_base_factory(env: Any) -> ZeroController:
    """The ``zero`` base: no base at all, whatever ``env``."""
    return ZeroController()


register_base(
    "zero",
    "no base: the zero action every step (the scratch baseline trains on it)",
    zero_base_factory,
)
