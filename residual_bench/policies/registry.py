"""Base policies by name, as the command line and configs refer to them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BaseEntry:
    """A registered base policy: a one-line description and a factory."""

    name: str
    description: str
    factory: Callable[..., Any]


_REGISTRY: dict[str, BaseEntry] = {}


def register_base(name: str, description: str, factory: Callable[..., Any]) -> None:
    """Make a base policy available under ``name``."""
    if name in _REGISTRY:
        raise ValueError(f"base policy {name!r} is already registered")
    _REGISTRY[name] = BaseEntry(name, description, factory)


def base_names() -> list[str]:
    """Names of all registered base policies, sorted."""
    return sorted(_REGISTRY)


def get_base(name: str) -> BaseEntry:
    """Look a base policy up by name; the error lists the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown base policy {name!r}; valid choices: {', '.join(base_names())}"
        ) from None


def _register_scripted() -> None:
    from residual_bench.policies.scripted import SCRIPTED_POLICIES

    for preset in SCRIPTED_POLICIES.values():
        register_base(
            preset.name, f"{preset.description} (privileged state, sim only)", preset.make
        )


_register_scripted()
