"""Policies by name, as the command line and configs refer to them.

Each entry's factory takes the environment and returns a
:class:`~residual_bench.policies.controller.Controller` ready to drive it.

Besides the registered names, three kinds of names build an entry on the fly (see
``docs/remote_policies.md``): ``remote:ws://host:port`` (a policy server speaking openpi's
websocket protocol, e.g. ``bench serve``), ``openvla-rest:http://host:port`` (OpenVLA's own
REST server) and ``octo`` (the Octo server script, at ``$RESIDUAL_BENCH_OCTO_URL``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REMOTE_PREFIX = "remote:"
OPENVLA_REST_PREFIX = "openvla-rest:"
OCTO_NAME = "octo"
BC_PREFIX = "bc:"
OCTO_URL_ENV = "RESIDUAL_BENCH_OCTO_URL"
OCTO_DEFAULT_URL = "ws://127.0.0.1:8000"


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


_REGISTRY: dict[str, BaseEntry] = {}


def register_base(
    name: str,
    description: str,
    factory: Callable[..., Any],
    env_kwargs: dict[str, Any] | None = None,
    self_contained: bool = True,
    weights: Callable[[], Any] | None = None,
) -> None:
    """Make a base policy available under ``name`` (see :class:`BaseEntry`)."""
    if name in _REGISTRY:
        raise ValueError(f"base policy {name!r} is already registered")
    _REGISTRY[name] = BaseEntry(
        name, description, factory, dict(env_kwargs or {}), self_contained, weights
    )


def base_names() -> list[str]:
    """Names of all registered base policies, sorted."""
    return sorted(_REGISTRY)


def get_base(name: str) -> BaseEntry:
    """Look a base policy up by name; the error lists the valid names.

    Remote names (``remote:URL``, ``openvla-rest:URL``, ``octo``) contact their server now to
    read its spec, so an unreachable server is reported here, before any episode runs.

    Raises:
        ValueError: an unknown name, or a remote server that cannot be reached.
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    if isinstance(name, str) and name.startswith(REMOTE_PREFIX):
        from residual_bench.policies.remote.client import remote_entry

        return remote_entry(name, _url(name, REMOTE_PREFIX, ("ws://", "wss://")))
    if isinstance(name, str) and name.startswith(OPENVLA_REST_PREFIX):
        from residual_bench.policies.remote.openvla_rest import openvla_rest_entry

        return openvla_rest_entry(name, _url(name, OPENVLA_REST_PREFIX, ("http://", "https://")))
    if isinstance(name, str) and name.startswith(BC_PREFIX):
        return _bc_checkpoint_entry(name)
    if name == OCTO_NAME:
        import os

        from residual_bench.policies.remote.client import remote_entry

        url = os.environ.get(OCTO_URL_ENV, OCTO_DEFAULT_URL)
        return remote_entry(name, url, f"base: Octo served by scripts/octo_server.py at {url}")
    raise ValueError(
        f"unknown base policy {name!r}; valid choices: {', '.join(base_names())}, "
        f"{OCTO_NAME}, {BC_PREFIX}PATH (a bc checkpoint), or a server as "
        f"{REMOTE_PREFIX}ws://HOST:PORT or {OPENVLA_REST_PREFIX}http://HOST:PORT"
    )


def _url(name: str, prefix: str, schemes: tuple[str, ...]) -> str:
    url = name[len(prefix) :]
    if not url.startswith(schemes) or len(url) <= len(url.split("//")[0]) + 2:
        raise ValueError(f"base {name!r}: expected {prefix}{schemes[0]}HOST:PORT, got URL {url!r}")
    return url


def _bc_checkpoint_entry(name: str) -> BaseEntry:
    """``bc:PATH``: the bc network from another checkpoint (e.g. fine-tuned), deployed alike."""
    from pathlib import Path

    from residual_bench.policies.bc.model import bc_controller, load_checkpoint

    path = Path(name[len(BC_PREFIX) :])
    try:
        load_checkpoint(path)  # a missing or foreign file is reported now, not in a worker
    except FileNotFoundError as exc:
        raise ValueError(f"base {name!r}: {exc}") from None
    return BaseEntry(
        name,
        f"base: the bc network from {path}",
        lambda env: bc_controller(env, path),
        env_kwargs=dict(_REGISTRY["bc"].env_kwargs),
        self_contained=False,
        weights=lambda: path,
    )


def make_controller(name: str, env: Any) -> Any:
    """The controller of policy ``name`` for ``env``."""
    return get_base(name).factory(env)


def _scripted_controller(preset_name: str) -> Callable[[Any], Any]:
    def factory(env: Any) -> Any:
        from residual_bench.policies.controller import ScriptedController
        from residual_bench.policies.scripted import SCRIPTED_POLICIES

        return ScriptedController(env, SCRIPTED_POLICIES[preset_name])

    return factory


def _scripted_base(vla_errors: bool) -> Callable[[Any], Any]:
    def factory(env: Any) -> Any:
        from residual_bench.policies.controller import BaseController
        from residual_bench.policies.executor import ChunkExecutor, LatencyModel
        from residual_bench.policies.scripted_vla import NO_ERRORS, ScriptedVLABase

        sim = env.unwrapped
        if vla_errors:
            policy = ScriptedVLABase(env, name="scripted")
            latency = LatencyModel(fixed_s=0.1, jitter_s=0.1)
        else:
            policy = ScriptedVLABase(
                env, NO_ERRORS, control_hz=sim.control_hz, chunk_len=1, name="scripted-expert"
            )
            latency = None
        return BaseController(policy, ChunkExecutor(policy, sim.dt, latency=latency))

    return factory


def _bc_base(env: Any) -> Any:
    from residual_bench.policies.bc.model import bc_controller

    return bc_controller(env)


def _zero_base(env: Any) -> Any:
    from residual_bench.policies.controller import ZeroController

    return ZeroController()


def _bc_weights() -> Any:
    from residual_bench.policies.bc.model import shipped_checkpoint

    return shipped_checkpoint()


def _register_builtin() -> None:
    from residual_bench.policies.scripted import SCRIPTED_POLICIES

    for preset in SCRIPTED_POLICIES.values():
        register_base(
            preset.name,
            f"{preset.description} (privileged scripted controller, sim only)",
            _scripted_controller(preset.name),
        )
    register_base(
        "scripted-expert",
        "base: the scripted expert behind the base-policy interface, no errors (upper bound)",
        _scripted_base(vla_errors=False),
    )
    register_base(
        "scripted",
        "base: VLA-like scripted policy, 5 Hz chunks, 100-200 ms latency, seeded errors",
        _scripted_base(vla_errors=True),
    )
    register_base(
        "zero",
        "no base: the zero action every step (the scratch baseline trains on it)",
        _zero_base,
    )
    register_base(
        "bc",
        "base: behaviour-cloned CNN on the 84 px camera, 4-step chunks at 5 Hz (shipped weights)",
        _bc_base,
        env_kwargs={"obs_mode": "rgb", "image_size": 84},
        weights=_bc_weights,
    )


_register_builtin()


def _register_vla() -> None:
    # After the built-ins: the VLA module registers through this (by now complete) module.
    from residual_bench.policies.openvla import register_vla_bases

    register_vla_bases()
    for name in ("openvla", "pi0"):  # their weights live outside the package
        _REGISTRY[name] = dataclasses.replace(_REGISTRY[name], self_contained=False)


_register_vla()
