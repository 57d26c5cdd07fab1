"""Checks of a task's own scene fields, the ones the shared spec loader does not know.

The loader (:func:`residual_bench.env_spec.load_env_spec`) checks structure, ranges and the
fields every scene shares; a task with fields of its own declares their physical bounds in
``Task.scene_bounds`` and checks them when it is built, with errors in the loader's form
(the dotted field first).
"""

from __future__ import annotations

from typing import Any

from residual_bench.env_spec import SpecError, quote


def check_scene_bounds(spec: dict[str, Any], bounds: dict[str, tuple[float, float]]) -> None:
    """Every number of each dotted field (a number, a ``[low, high]`` range, a vector or a
    ``{low, high}`` box, or a mapping of those) within its ``(low, high)`` bounds.

    Raises:
        SpecError: naming the field, the value and the bounds.
    """
    for name, (low, high) in bounds.items():
        value: Any = spec
        for key in name.split("."):
            value = value[key]
        for number in _numbers(value):
            if not low <= number <= high:
                raise SpecError(f"{name}: {quote(value)} is outside [{low:g}, {high:g}]")


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for sub in value.values() for n in _numbers(sub)]
    if isinstance(value, list):
        return [n for sub in value for n in _numbers(sub)]
    return [value]
