"""Policies by name, as the command line and configs refer to them.

Each entry's factory takes the environment and returns a
:class:`~residual_bench.policies.controller.Controller` ready to drive it.

This module only keeps the table: it imports none of the policies. Each plug-in registers its
own names where it is defined, when it is imported, and :mod:`residual_bench.policies` (the
package, imported before this module is) imports every shipped plug-in, so the table is full
by the time anyone reads it.

Besides the registered names, a plug-in may claim a *family* of names, resolved into an entry
on lookup (see :func:`register_base_family` and ``docs/remote_policies.md``):
``remote:ws://host:port`` (a policy server speaking openpi's websocket protocol, e.g.
``bench serve``), ``openvla-rest:http://host:port`` (OpenVLA's own REST server), ``octo``
(the Octo server script, at ``$RESIDUAL_BENCH_OCTO_URL``) and ``bc:PATH`` (the bc network
from another checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REMOTE_PREFIX = "remote:"
OPENVLA_REST_PREFIX = "openvla-rest:"
OCTO_NAME = "octo"
BC_PREFIX = "bc:"
"""The name forms of the shipped families, kept here so that a name's form can be told
without importing the plug-in that resolves it."""


@dataclass(frozen=True)
class BaseEntry:
    """A registered policy: a one-line description, ``factory(env) -> Controller``, the
    environment keyword arguments it needs (e.g. a camera for a visuomotor base), whether
    it runs from this package alone (``self_contained``; False for bases whose weights come
    from elsewhere, e.g. a VLA checkpoint on a GPU machine) and, for a base with weights in a
    file, where that file is (``weights``), so results can name the exact weights."""

    name: str
    description: str
    factory: Callable[..., Any]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    self_contained: bool = True
    weights: Callable[[], Any] | None = None


@dataclass(frozen=True)
class BaseFamily:
    """Names resolved on lookup: every name starting with ``pattern`` when it ends with
    ``:`` (``remote:``), else exactly ``pattern`` (``octo``). ``resolve(name)`` builds the
    entry (and may raise ``ValueError``); ``usage`` is how the error for an unknown name lists
    the family; ``server``: listed among the servers one may name."""

    pattern: str
    resolve: Callable[[str], BaseEntry]
    usage: str
    server: bool = False

    def matches(self, name: str) -> bool:
        if self.pattern.endswith(":"):
            return name.startswith(self.pattern)
        return name == self.pattern


_REGISTRY: dict[str, BaseEntry] = {}
_FAMILIES: dict[str, BaseFamily] = {}


def register_base(
    name: str,
    description: str,
    factory: Callable[..., Any],
    env_kwargs: dict[str, Any] | None = None,
    self_contained: bool = True,
    weights: Callable[[], Any] | None = None,
) -> None:
    """Make a base policy available under ``name`` (see :class:`BaseEntry`)."""
    if name in _REGISTRY or name in _FAMILIES:
        raise ValueError(f"base policy {name!r} is already registered")
    _REGISTRY[name] = BaseEntry(
        name, description, factory, dict(env_kwargs or {}), self_contained, weights
    )


def register_base_family(
    pattern: str, resolve: Callable[[str], BaseEntry], usage: str, server: bool = False
) -> None:
    """Resolve the names matching ``pattern`` with ``resolve`` (see :class:`BaseFamily`)."""
    if pattern in _FAMILIES or pattern in _REGISTRY:
        raise ValueError(f"base policy family {pattern!r} is already registered")
    _FAMILIES[pattern] = BaseFamily(pattern, resolve, usage, server)


def base_names() -> list[str]:
    """Names of all registered base policies, sorted (families not included)."""
    return sorted(_REGISTRY)


def get_base(name: str) -> BaseEntry:
    """Look a base policy up by name; the error lists the valid names.

    A family's name is resolved by its plug-in now: remote names (``remote:URL``,
    ``openvla-rest:URL``, ``octo``) contact their server to read its spec, so an unreachable
    server is reported here, before any episode runs.

    Raises:
        ValueError: an unknown name, or a family name its plug-in refuses (e.g. a remote
            server that cannot be reached).
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    if isinstance(name, str):
        for family in _FAMILIES.values():
            if family.matches(name):
                return family.resolve(name)
    raise ValueError(f"unknown base policy {name!r}; valid choices: {_choices()}")


def _choices() -> str:
    families = list(_FAMILIES.values())
    names = [*base_names()]
    names += [f.usage for f in families if not f.server and not f.pattern.endswith(":")]
    names += [f.usage for f in families if not f.server and f.pattern.endswith(":")]
    servers = [f.usage for f in families if f.server]
    if not servers:
        return ", ".join(names)
    return f"{', '.join(names)}, or a server as {' or '.join(servers)}"


def make_controller(name: str, env: Any) -> Any:
    """The controller of policy ``name`` for ``env``."""
    return get_base(name).factory(env)
