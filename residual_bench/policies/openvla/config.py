"""OpenVLA's ``config.json``, read without ``trust_remote_code``.

The fields are those the upstream ``OpenVLAConfig`` writes (``timm_model_ids``,
``image_sizes``, ``use_fused_vision_backbone``, ``image_resize_strategy``, ``text_config``,
``n_action_bins``, ``norm_stats``, ``pad_to_multiple_of``). ``text_config`` holds only what
differs from transformers' ``LlamaConfig`` defaults (for the 7B model: the 32064-entry padded
vocabulary), exactly as upstream fills it in.

One field is ours: ``vision_backbone_overrides``, a list (one dict per timm id) of
:class:`~residual_bench.policies.openvla.vision.ViTArch` fields that replace the named
architecture's. Released checkpoints do not have it; the tiny test checkpoints use it to
shrink the ViTs while going through the same constructor.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from residual_bench.policies.openvla.vision import TIMM_ARCHS, ViTArch

RESIZE_STRATEGIES = ("resize-naive", "letterbox")


def _timm_arch(model_id: str) -> ViTArch:
    name = model_id.split(".")[0]  # "vit_large_patch14_reg4_dinov2.lvd142m" -> architecture
    if name not in TIMM_ARCHS:
        raise ValueError(
            f"timm_model_ids: unsupported vision backbone {model_id!r}; "
            f"supported: {', '.join(sorted(TIMM_ARCHS))}"
        )
    return TIMM_ARCHS[name]


@dataclass(frozen=True)
class OpenVLAConfig:
    """The parts of an OpenVLA ``config.json`` that inference depends on.

    Args:
        timm_model_ids: one timm id per featurizer (two when fused: DINOv2, then SigLIP).
        image_sizes: input size of each featurizer in pixels.
        use_fused_vision_backbone: whether a second featurizer's patches are concatenated.
        image_resize_strategy: ``"resize-naive"`` (the released models) or ``"letterbox"``.
        text_config: keyword arguments of transformers' ``LlamaConfig``.
        n_action_bins: number of bin *edges* over [-1, 1] (256 upstream).
        norm_stats: dataset name -> ``{"action": {"q01", "q99", "mask", ...}, ...}``.
        pad_to_multiple_of: padding of the LM vocabulary; the tokenizer's vocabulary is
            ``text_config["vocab_size"] - pad_to_multiple_of`` (32064 - 64 = 32000).
        vision_backbone_overrides: per featurizer, fields replacing the architecture's.
    """

    timm_model_ids: list[str]
    image_sizes: list[int]
    use_fused_vision_backbone: bool
    image_resize_strategy: str = "resize-naive"
    text_config: dict[str, Any] = field(default_factory=dict)
    n_action_bins: int = 256
    norm_stats: dict[str, Any] = field(default_factory=dict)
    pad_to_multiple_of: int = 64
    vision_backbone_overrides: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        n = 2 if self.use_fused_vision_backbone else 1
        if len(self.timm_model_ids) != n:
            raise ValueError(
                f"timm_model_ids: expected {n} ids (use_fused_vision_backbone="
                f"{self.use_fused_vision_backbone}), got {self.timm_model_ids!r}"
            )
        if len(self.image_sizes) < n or len(set(self.image_sizes[:n])) != 1:
            raise ValueError(f"image_sizes: expected {n} equal sizes, got {self.image_sizes!r}")
        if self.image_resize_strategy not in RESIZE_STRATEGIES:
            raise ValueError(
                f"image_resize_strategy: {self.image_resize_strategy!r} is not supported; "
                f"valid choices: {', '.join(RESIZE_STRATEGIES)}"
            )
        if not isinstance(self.n_action_bins, int) or self.n_action_bins < 2:
            raise ValueError(f"n_action_bins: must be an integer >= 2, got {self.n_action_bins!r}")
        overrides = self.vision_backbone_overrides
        if overrides is not None and len(overrides) != n:
            raise ValueError(f"vision_backbone_overrides: expected {n} dicts, got {overrides!r}")
        for model_id in self.timm_model_ids:
            _timm_arch(model_id)

    @property
    def image_size(self) -> int:
        """Square input size of the featurizers (224 for the released models)."""
        return int(self.image_sizes[0])

    @property
    def lm_vocab_size(self) -> int:
        """Rows of the LM's embedding and output matrices (padded)."""
        return int(self.text_config.get("vocab_size", 32000))

    @property
    def tokenizer_vocab_size(self) -> int:
        """Vocabulary the action tokens count back from (upstream's ``vocab_size``)."""
        return self.lm_vocab_size - int(self.pad_to_multiple_of)

    def vision_archs(self) -> list[ViTArch]:
        """The architecture of each featurizer, overrides applied.

        Raises:
            ValueError: an override names a field :class:`ViTArch` does not have.
        """
        archs = []
        for i, model_id in enumerate(self.timm_model_ids):
            arch = _timm_arch(model_id)
            if self.vision_backbone_overrides is not None:
                try:
                    arch = dataclasses.replace(arch, **self.vision_backbone_overrides[i])
                except TypeError as exc:
                    raise ValueError(f"vision_backbone_overrides[{i}]: {exc}") from None
            archs.append(arch)
        return archs

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> OpenVLAConfig:
        """Build from a parsed ``config.json``; unknown upstream fields are ignored.

        Raises:
            ValueError: a required field is missing or invalid.
        """
        if "timm_model_ids" not in raw:
            raise ValueError("config.json has no 'timm_model_ids': not an OpenVLA checkpoint")
        ids = list(raw["timm_model_ids"])
        fused = raw.get("use_fused_vision_backbone")
        if fused is None:  # upstream infers it from the backbone name
            fused = str(raw.get("vision_backbone_id", "")).startswith(("dinoclip", "dinosiglip"))
        return cls(
            timm_model_ids=ids,
            image_sizes=[int(s) for s in raw.get("image_sizes", [224] * len(ids))],
            use_fused_vision_backbone=bool(fused),
            image_resize_strategy=raw.get("image_resize_strategy", "resize-naive"),
            text_config=dict(raw.get("text_config") or {}),
            n_action_bins=int(raw.get("n_action_bins", 256)),
            norm_stats=dict(raw.get("norm_stats") or {}),
            pad_to_multiple_of=int(raw.get("pad_to_multiple_of", 64)),
            vision_backbone_overrides=raw.get("vision_backbone_overrides"),
        )

    @classmethod
    def from_dir(cls, directory: str | Path) -> OpenVLAConfig:
        """Read ``config.json`` of a checkpoint directory.

        A ``dataset_statistics.json`` next to it replaces ``norm_stats``, as upstream's
        deployment code does for fine-tuned checkpoints.

        Raises:
            FileNotFoundError: no ``config.json``.
            ValueError: unreadable or invalid contents.
        """
        directory = Path(directory)
        path = directory / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"OpenVLA checkpoint {str(directory)!r} has no config.json")
        try:
            raw = json.loads(path.read_text())
            stats_path = directory / "dataset_statistics.json"
            if stats_path.is_file():
                raw["norm_stats"] = json.loads(stats_path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path.parent}: invalid JSON ({exc})") from None
        return cls.from_dict(raw)
