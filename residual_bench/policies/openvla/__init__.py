"""OpenVLA in-process on the current transformers, and the registration of the VLA bases.

``openvla`` and ``pi0`` are registered here, as not self-contained: their checkpoints come
from elsewhere, named by environment variables read when a controller is made:
``RESIDUAL_BENCH_OPENVLA`` (directory or hub id, default ``openvla/openvla-7b``),
``RESIDUAL_BENCH_OPENVLA_UNNORM_KEY`` (default ``bridge_orig``) and ``RESIDUAL_BENCH_PI0``.

Importing this package is cheap, as the catalog (:mod:`residual_bench.policies`) and
``bench --help`` need: torch is imported when a VLA base is built or one of its classes is
first used (:class:`OpenVLABase`, :class:`OpenVLAConfig`), and transformers, safetensors and
tokenizers only when a checkpoint is loaded (install them with the ``vla`` extra).
"""

from __future__ import annotations

import importlib
from typing import Any

from residual_bench.policies.openvla.action_tokenizer import (
    ActionStats,
    ActionTokenizer,
    resolve_unnorm_key,
)
from residual_bench.policies.registry import register_base

__all__ = [
    "ActionStats",
    "ActionTokenizer",
    "OpenVLABase",
    "OpenVLAConfig",
    "openvla_base_factory",
    "pi0_base_factory",
    "register_vla_bases",
    "resolve_unnorm_key",
]

VLA_ENV_KWARGS = {"obs_mode": "rgb", "image_size": 224}
"""OpenVLA and PI0 read a 224 px camera image (larger images would only be resized down)."""

_HEAVY = {
    "OpenVLABase": "residual_bench.policies.openvla.base",
    "openvla_base_factory": "residual_bench.policies.openvla.base",
    "OpenVLAConfig": "residual_bench.policies.openvla.config",
}
"""Names exported from modules that import torch, resolved on first use."""


def __getattr__(name: str) -> Any:
    if name in _HEAVY:
        # heavy dependency: torch, imported on first use so that the package stays light
        return getattr(importlib.import_module(_HEAVY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _openvla_base_factory(env: Any) -> Any:
    """The ``openvla`` controller (see :func:`.base.openvla_base_factory`)."""
    # heavy dependency: torch
    from residual_bench.policies.openvla.base import openvla_base_factory as factory

    return factory(env)


def pi0_base_factory(env: Any) -> Any:
    """The ``pi0`` controller (see :func:`residual_bench.policies.pi0.pi0_base_factory`)."""
    # heavy dependency: torch
    from residual_bench.policies.pi0 import pi0_base_factory as factory

    return factory(env)


def register_vla_bases() -> None:
    """Nothing left to do: ``openvla`` and ``pi0`` are registered when this package is
    imported. Kept for callers written when registration was a separate step."""


register_base(
    "openvla",
    "base: OpenVLA in-process (checkpoint from $RESIDUAL_BENCH_OPENVLA), 5 Hz, needs a GPU",
    _openvla_base_factory,
    env_kwargs=dict(VLA_ENV_KWARGS),
    self_contained=False,
)
register_base(
    "pi0",
    "base: PI0 via transformers (checkpoint from $RESIDUAL_BENCH_PI0), chunks, needs a GPU",
    pi0_base_factory,
    env_kwargs=dict(VLA_ENV_KWARGS),
    self_contained=False,
)
