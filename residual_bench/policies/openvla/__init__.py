"""OpenVLA in-process on the current transformers, and the registration of the VLA bases.

Importing this package is cheap: transformers, safetensors and tokenizers are imported only
when a checkpoint is loaded (install them with the ``vla`` extra).
"""

from __future__ import annotations

from typing import Any

from residual_bench.policies.openvla.action_tokenizer import (
    ActionStats,
    ActionTokenizer,
    resolve_unnorm_key,
)
from residual_bench.policies.openvla.base import OpenVLABase, openvla_base_factory
from residual_bench.policies.openvla.config import OpenVLAConfig

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


def pi0_base_factory(env: Any) -> Any:
    """The ``pi0`` controller (see :func:`residual_bench.policies.pi0.pi0_base_factory`)."""
    from residual_bench.policies.pi0 import pi0_base_factory as factory

    return factory(env)


def register_vla_bases() -> None:
    """Register ``openvla`` and ``pi0`` with the base-policy registry.

    The checkpoints come from environment variables read when a controller is made:
    ``RESIDUAL_BENCH_OPENVLA`` (directory or hub id, default ``openvla/openvla-7b``),
    ``RESIDUAL_BENCH_OPENVLA_UNNORM_KEY`` (default ``bridge_orig``) and ``RESIDUAL_BENCH_PI0``.
    """
    from residual_bench.policies.registry import register_base

    register_base(
        "openvla",
        "base: OpenVLA in-process (checkpoint from $RESIDUAL_BENCH_OPENVLA), 5 Hz, needs a GPU",
        openvla_base_factory,
        env_kwargs=dict(VLA_ENV_KWARGS),
    )
    register_base(
        "pi0",
        "base: PI0 via transformers (checkpoint from $RESIDUAL_BENCH_PI0), chunks, needs a GPU",
        pi0_base_factory,
        env_kwargs=dict(VLA_ENV_KWARGS),
    )
