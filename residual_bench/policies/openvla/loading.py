"""Read an OpenVLA checkpoint in its official on-disk layout.

A checkpoint directory holds ``config.json``, the weights as ``model.safetensors`` or as shards
listed by ``model.safetensors.index.json``, ``tokenizer.json`` (+ ``tokenizer_config.json``)
and optionally ``preprocessor_config.json`` and ``dataset_statistics.json``. A name that is not
a directory is taken as a Hugging Face Hub id and fetched with ``huggingface_hub`` (only on
machines with hub access). The network is built on the meta device and the weights are assigned
into it, so a 7B model never exists twice in memory. Every tensor must be accounted for: a
missing, unexpected or mis-shaped weight is an error naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from residual_bench.policies.openvla.config import OpenVLAConfig
from residual_bench.policies.openvla.vision import UNUSED_PREFIXES

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
HUB_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model"]


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """The local directory of a checkpoint path or hub id.

    Raises:
        FileNotFoundError: a path that does not exist, or a hub id that cannot be fetched
            (no hub access, ``HF_HUB_OFFLINE`` set and not cached, or an unknown id).
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    text = str(name_or_path)
    looks_like_id = text.count("/") == 1 and not text.startswith((".", "/", "~"))
    if path.exists() or not looks_like_id:
        raise FileNotFoundError(f"OpenVLA checkpoint directory {text!r} does not exist")
    try:
        # optional dependency: huggingface_hub (with transformers), only to fetch a hub id
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=text, allow_patterns=HUB_PATTERNS))
    except Exception as exc:  # offline, unknown repo, network: all mean "not available"
        offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise FileNotFoundError(
            f"{text!r} is neither a checkpoint directory nor a hub id that could be fetched"
            f"{offline}: {type(exc).__name__}: {exc}"
        ) from None


def weight_files(directory: Path) -> list[Path]:
    """The safetensors files of a checkpoint, from the index when there is one.

    Raises:
        FileNotFoundError: no weights, or a shard the index names is missing.
    """
    index = directory / INDEX_FILE
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        files = [directory / n for n in names]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"{directory}: shards listed in {INDEX_FILE} are missing: "
                                    f"{', '.join(missing)}")  # fmt: skip
        return files
    if (directory / SINGLE_FILE).is_file():
        return [directory / SINGLE_FILE]
    raise FileNotFoundError(
        f"OpenVLA checkpoint {str(directory)!r} has no {SINGLE_FILE} or {INDEX_FILE} "
        "(only safetensors weights are read)"
    )


def read_state_dict(directory: Path, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """All weights of a checkpoint, cast to ``dtype``, unused vision heads dropped."""
    # optional dependency: safetensors (the vla extra), imported only when weights are read
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for path in weight_files(directory):
        for key, tensor in load_file(str(path)).items():
            if _is_unused(key):
                continue
            state[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    return state


def _is_unused(key: str) -> bool:
    for backbone in ("vision_backbone.featurizer.", "vision_backbone.fused_featurizer."):
        if key.startswith(backbone) and key[len(backbone) :].startswith(UNUSED_PREFIXES):
            return True
    return False


def load_model(
    directory: Path, config: OpenVLAConfig, device: torch.device | str, dtype: torch.dtype
):
    """Build the network from ``config`` and load the directory's weights into it.

    Returns:
        An ``OpenVLAModel`` in eval mode on ``device``.

    Raises:
        ValueError: the weights do not fit the network built from ``config.json``.
    """
    # optional dependency: the network is built on transformers (the vla extra)
    from residual_bench.policies.openvla.model import OpenVLAModel

    with torch.device("meta"):
        model = OpenVLAModel(config)
    state = read_state_dict(directory, dtype)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = [
            f"{label} ({len(keys)}): {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
            if keys
        ]
        raise ValueError(
            f"{directory}: the weights do not fit the network config.json describes; "
            + "; ".join(parts)
        )
    model.load_state_dict({k: v.to(device) for k, v in state.items()}, assign=True)
    model.reset_rotary(device)
    return model.to(device).eval()
