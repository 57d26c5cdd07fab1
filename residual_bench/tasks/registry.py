"""Tasks by gymnasium id: the one place a task declares its id.

Registration flows one way: a task module decorates its class with :func:`register_task`;
this module never imports a task. :mod:`residual_bench.registration` reads the table to
register every id with gymnasium.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from residual_bench.tasks.task import Task


@dataclass(frozen=True)
class TaskEntry:
    """A registered id: its task class and the env keyword arguments the id fixes (earlier
    versions of a task stay registered with the arguments that reproduce them)."""

    env_id: str
    task: type[Task]
    env_kwargs: dict[str, Any] = field(default_factory=dict)


_TASKS: dict[str, TaskEntry] = {}


def register_task(
    env_id: str, previous: dict[str, dict[str, Any]] | None = None
) -> Callable[[type[Task]], type[Task]]:
    """Class decorator: make ``env_id`` build the generic env over the decorated task.

    Args:
        env_id: the current gymnasium id, e.g. ``"ResidualPickPlace-v1"``.
        previous: earlier ids of the same task -> the env keyword arguments that make the
            current code behave as that version did.
    """

    def decorate(task: type[Task]) -> type[Task]:
        scale = task.base_error_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < 10:
            raise ValueError(
                f"{task.__name__}.base_error_scale must be a number in (0, 10), got {scale!r}"
            )
        if task.goal_class is not None and task.goal_class not in task.segmentation_classes:
            raise ValueError(
                f"{task.__name__}.goal_class {task.goal_class!r} is none of its "
                f"segmentation_classes {task.segmentation_classes}"
            )
        for name, kwargs in ((env_id, {}), *(previous or {}).items()):
            if name in _TASKS:
                raise ValueError(f"task id {name!r} is already registered")
            _TASKS[name] = TaskEntry(name, task, dict(kwargs))
        task.env_id = env_id
        return task

    return decorate


def task_ids() -> list[str]:
    """Every registered task id (current and earlier versions), in registration order."""
    return list(_TASKS)


def current_task_ids() -> list[str]:
    """One id per task, its current version, in registration order: the tasks a run over
    every task covers (an earlier id re-runs old records; it is not another task)."""
    return [env_id for env_id, entry in _TASKS.items() if entry.task.env_id == env_id]


def task_entry(env_id: str) -> TaskEntry:
    """The entry of ``env_id``; the error lists the registered ids."""
    if env_id not in _TASKS:
        raise ValueError(f"unknown task {env_id!r}; registered: {', '.join(_TASKS)}")
    return _TASKS[env_id]
