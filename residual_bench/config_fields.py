"""Config sections as typed dataclasses, built from the mappings of a YAML file.

Every section of a residual or fine-tuning config (``baselines/*.yaml``) is a dataclass whose
fields are the section's keys: each field's annotation is its type, its default is the one
declaration of that default, and the string literal under it documents it. The YAML file
stays the user's interface; :func:`build_section` turns one of its mappings into the
dataclass:

- a key that is not a field is refused, naming it and listing the valid ones;
- a key left out takes the field's default;
- every value is checked against the field's type (``bool``, ``int``, ``float``, ``str``,
  ``list[...]``, ``dict``, a nested section, each optionally ``| None``), numbers are
  finite (``inf`` and ``nan`` are refused, also inside free-form mappings such as SB3's
  hyperparams) and within the field's bound (:func:`positive`, :func:`non_negative`).

Values are kept as the file gives them (an ``int`` for a ``float`` field stays an ``int``),
so :func:`dataclasses.asdict` of a section is the mapping the file describes, defaults filled
in, in the order the fields are declared.

This module is the bottom layer of the configs: it imports nothing from ``residual`` or
``finetune``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from residual_bench.env_spec import SpecError

S = TypeVar("S")

_BOUND = "bound"
#: A string where a number was meant is most often YAML 1.1 reading an exponent without a
#: decimal point (``1e-5``) as text.
EXPONENT_HINT = " (YAML reads 1e-5 as text: write 1.0e-5)"


def positive(default: Any) -> Any:
    """A field whose numbers must be > 0 (None passes where the type allows it)."""
    return dataclasses.field(default=default, metadata={_BOUND: "positive"})


def non_negative(default: Any) -> Any:
    """A field whose numbers must be >= 0 (None passes where the type allows it)."""
    return dataclasses.field(default=default, metadata={_BOUND: "non-negative"})


class Section:
    """Base of the config sections: typed dataclasses read by attribute
    (``config.train.steps``), built from YAML by :func:`build_section`."""


def field_names(cls: type) -> list[str]:
    """The fields of a section dataclass, in declaration order."""
    return [f.name for f in dataclasses.fields(cls)]


def field_default(cls: type, name: str) -> Any:
    """The default of the field ``name`` of a section dataclass (a fresh one if mutable)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            if f.default is not dataclasses.MISSING:
                return f.default
            raise KeyError(f"{cls.__name__}.{name} has no default")
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def check_field(
    value: Any, annotation: Any, name: str, where: str, bound: str | None = None
) -> Any:
    """``value`` of the field ``name`` checked as :func:`build_section` checks a section's
    fields (``annotation``: a type such as ``dict[str, Any]`` or ``float | None``).

    Raises:
        SpecError: a value of the wrong type, not finite, or out of ``bound`` (``positive``
            or ``non-negative``); the message names ``where`` and ``name``.
    """
    return _check(value, annotation, bound, name, where)


def build_section(cls: type[S], given: Any, section: str, where: str) -> S:
    """The section ``cls`` from the mapping ``given`` of a YAML file (None: nothing given).

    ``section`` is the section's dotted name in the file and ``where`` the file, both named
    by every error.

    Raises:
        SpecError: ``given`` is not a mapping, has a key that is not a field of ``cls``, or a
            value of the wrong type, not finite, or out of its field's bound.
    """
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise SpecError(f"{where}: {section} must be a mapping, got {given!r}")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = [f.name for f in fields]
    unknown = sorted((str(k) for k in given if k not in names), key=str)
    if unknown:
        raise SpecError(
            f"{where}: unknown field(s) {', '.join(f'{section}.{k}' for k in unknown)}; "
            f"valid: {', '.join(names)}"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields:
        if f.name not in given:
            continue
        name = f"{section}.{f.name}"
        values[f.name] = _check(given[f.name], hints[f.name], f.metadata.get(_BOUND), name, where)
    return cls(**values)


def _check(value: Any, annotation: Any, bound: str | None, name: str, where: str) -> Any:
    """``value`` checked against ``annotation``: the value to store (a nested section is built)."""
    options = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    optional = type(None) in options
    kinds = [o for o in options if o is not type(None)]
    if value is None:
        if optional:
            return None
        _refuse(value, kinds[0], bound, optional, name, where)
    kind = kinds[0]  # sections have at most one type besides None
    if dataclasses.is_dataclass(kind):
        return build_section(kind, value, name, where)
    if not _matches(value, kind):
        _refuse(value, kind, bound, optional, name, where)
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{where}: {name} must be a finite number, got {value!r}")
    if isinstance(value, dict | list):
        _check_finite(value, name, where)
    if bound is not None and (
        (bound == "positive" and not value > 0) or (bound == "non-negative" and not value >= 0)
    ):
        _refuse(value, kind, bound, optional, name, where)
    return value


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _matches(value: Any, kind: Any) -> bool:
    origin = typing.get_origin(kind) or kind
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if origin is list:
        (item,) = typing.get_args(kind) or (Any,)
        return isinstance(value, list) and all(item is Any or _matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    raise TypeError(f"config fields of type {kind!r} are not supported")


def _describe(kind: Any, bound: str | None) -> str:
    prefix = f"{bound} " if bound else ""
    if kind is bool:
        return "true or false"
    if kind is int:
        return f"a {prefix}integer"
    if kind is float:
        return f"a {prefix}number"
    if kind is str:
        return "text"
    if (typing.get_origin(kind) or kind) is list:
        (item,) = typing.get_args(kind) or (Any,)
        return "a list" if item is Any else f"a list of {_describe(item, None).split(' ', 1)[-1]}"
    return "a mapping"


def _refuse(value: Any, kind: Any, bound: str | None, optional: bool, name: str, where: str):
    what = _describe(kind, bound) + (" or null" if optional else "")
    hint = EXPONENT_HINT if kind in (int, float) and isinstance(value, str) else ""
    raise SpecError(f"{where}: {name} must be {what}, got {value!r}{hint}")


def _check_finite(value: Any, name: str, where: str) -> None:
    """Refuse ``inf`` and ``nan`` anywhere inside a list or mapping."""
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{where}: {name} must hold finite numbers, got {value!r}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{name}.{key}", where)
    elif isinstance(value, list):
        for item in value:
            _check_finite(item, name, where)


@dataclasses.dataclass
class TrainingConfig(Section):
    """``train``: the training protocol of a residual or an RL fine-tuning run."""

    steps: int = non_negative(300_000)
    """Environment (control) steps to train for."""
    suite: str = "mixed"
    """The perturbation suite trained under (``envs/suites/``)."""
    eval_every: int = non_negative(10_000)
    """Steps between learning-curve evaluations on held-out objects (0: none)."""
    eval_episodes: int = non_negative(20)
    """Fixed held-out episodes per learning-curve evaluation."""
    checkpoint_every: int = non_negative(10_000)
    """Steps between checkpoints a stopped run resumes from."""
