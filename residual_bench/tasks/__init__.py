"""The shipped tasks. Importing this package registers each one's gymnasium ids (see
:mod:`residual_bench.tasks.registry`); a new task is one module here, imported below, plus
its scene YAML under ``envs/``."""

from residual_bench.tasks import (
    insert,  # noqa: F401  (registers ResidualInsert-v0)
    pick_place,  # noqa: F401  (registers ResidualPickPlace-v1)
    push,  # noqa: F401  (registers ResidualPush-v0)
    stack,  # noqa: F401  (registers ResidualStack-v0)
)
from residual_bench.tasks.registry import (
    TaskEntry,
    current_task_ids,
    register_task,
    task_entry,
    task_ids,
)
from residual_bench.tasks.task import ObjectState, SceneObject, Task

__all__ = [
    "ObjectState",
    "SceneObject",
    "Task",
    "TaskEntry",
    "current_task_ids",
    "register_task",
    "task_entry",
    "task_ids",
]
