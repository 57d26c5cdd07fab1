"""Privileged scripted experts by task family: the one place a task's expert is found.

The scripted bases (``scripted``, ``scripted-expert``) wrap whichever expert the env's task
has, so the same generic error model (:class:`~residual_bench.policies.scripted_vla.
VLAErrorModel`) runs on every task family. Registration flows one way, as for tasks and
bases: an expert module calls :func:`register_expert` where the expert is defined; this
module imports no expert.

An expert is built as ``factory(**options)`` and has the interface of
:class:`~residual_bench.policies.expert.ScriptedExpert` (see :class:`TaskExpert`). Every
factory accepts the options the scripted bases pass: ``hold_steps`` (control steps each
action is held for), ``settle_seconds`` (extra time for late gripper commands),
``descend_tolerance`` (m) and ``errors`` (a ``PerceptionErrors``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import numpy as np


class TaskExpert(Protocol):
    """What a scripted base needs from an expert."""

    errors: Any
    """Its systematic errors (a ``PerceptionErrors``); the scripted base sets them per episode."""
    last_plan: dict | None
    """What the last :meth:`act` wanted before any step limit: ``translation`` (m, world),
    ``rotation`` (rad, world axes), ``gripper`` in [-1, 1] and ``speed`` (fraction of the
    largest step). Chunked bases plan several steps from it."""
    phase: Any
    """The expert's current phase (an ``Enum`` whose ``value`` names it)."""

    def reset(self) -> None:
        """Forget the previous episode."""

    def act(self, env: Any) -> np.ndarray:
        """The next 7-D action for ``env`` (wrapped or not)."""


ExpertFactory = Callable[..., TaskExpert]
F = TypeVar("F", bound=ExpertFactory)

_EXPERTS: dict[str, ExpertFactory] = {}
_VERSION = re.compile(r"-v\d+$")


def task_family(env_id: str) -> str:
    """A gymnasium id without its version: ``ResidualPickPlace-v1`` -> ``ResidualPickPlace``.

    Experts are keyed by family so that a new version of a task keeps its expert."""
    return _VERSION.sub("", env_id)


def register_expert(env_id_family: str, factory: F | None = None) -> Any:
    """Make ``factory`` the expert of a task family; a decorator when ``factory`` is omitted.

    Args:
        env_id_family: the task's gymnasium id with or without its version
            (``"ResidualPickPlace"`` or ``"ResidualPickPlace-v1"``).
        factory: a class or function ``(**options) -> expert``.
    """
    family = task_family(env_id_family)

    def decorate(fn: F) -> F:
        if family in _EXPERTS:
            raise ValueError(f"an expert for task family {family!r} is already registered")
        _EXPERTS[family] = fn
        return fn

    return decorate(factory) if factory is not None else decorate


def expert_families() -> list[str]:
    """Task families that have an expert, in registration order."""
    return list(_EXPERTS)


def expert_for(env: Any, **options: Any) -> TaskExpert:
    """A new expert for the task of ``env`` (a task env, wrapped or not).

    Raises:
        ValueError: the task has no registered expert; the message names the task and the
            families that have one.
    """
    task_class = env.unwrapped.task_class
    env_id = task_class.env_id or task_class.__name__
    family = task_family(env_id)
    if family not in _EXPERTS:
        known = ", ".join(_EXPERTS) or "none"
        raise ValueError(
            f"task {env_id!r} has no scripted expert (register one with "
            f"residual_bench.policies.task_experts.register_expert); tasks with one: {known}"
        )
    return _EXPERTS[family](**options)
