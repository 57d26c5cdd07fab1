"""The learned ``bc`` base: its network and checkpoints (:mod:`.model`), its demonstrations
(:mod:`.data`) and its training (:mod:`.train`), together.

The base itself is registered here, as ``bc`` (the shipped weights) and ``bc:PATH`` (the
network from another checkpoint, e.g. fine-tuned); the baselines that change its weights
(DAgger and RL fine-tuning) live in :mod:`residual_bench.finetune`. The network needs torch,
so :mod:`.model` is imported only when a bc base is built or looked up: the catalog
(:mod:`residual_bench.policies`), and with it ``bench --help``, stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from residual_bench.policies.registry import (
    BC_PREFIX,
    BaseEntry,
    register_base,
    register_base_family,
)

BC_ENV_KWARGS = {"obs_mode": "rgb", "image_size": 84}
"""The bc network reads the 84 px camera image."""


def bc_base_factory(env: Any) -> Any:
    """The ``bc`` controller, with the shipped weights."""
    from residual_bench.policies.bc.model import bc_controller  # heavy dependency: torch

    return bc_controller(env)


def bc_weights() -> Path:
    """The shipped weights of ``bc``."""
    from residual_bench.policies.bc.model import shipped_checkpoint  # heavy dependency: torch

    return shipped_checkpoint()


def bc_checkpoint_entry(name: str) -> BaseEntry:
    """``bc:PATH``: the bc network from another checkpoint (e.g. fine-tuned), deployed alike."""
    # heavy dependency: torch
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
        env_kwargs=dict(BC_ENV_KWARGS),
        self_contained=False,
        weights=lambda: path,
    )


register_base(
    "bc",
    "base: behaviour-cloned CNN on the 84 px camera, 4-step chunks at 5 Hz (shipped weights)",
    bc_base_factory,
    env_kwargs=dict(BC_ENV_KWARGS),
    weights=bc_weights,
)
register_base_family(BC_PREFIX, bc_checkpoint_entry, f"{BC_PREFIX}PATH (a bc checkpoint)")
