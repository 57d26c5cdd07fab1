"""OpenVLA's inputs: the prompt, its token ids and the normalised pixels of each featurizer.

Mirrors upstream's processor: the prompt ``In: What action should the robot take to
{instruction.lower()}?\\nOut:`` (the lower-casing is upstream's deployment code), tokenised with
the checkpoint's ``tokenizer.json`` (BOS first), then token 29871 (SentencePiece's lone "▁")
appended when the prompt does not already end with it, as ``predict_action`` does to match
training. Images are resized to the featurizers' size with bicubic interpolation
("resize-naive"; "letterbox" pads to a square first), scaled to [0, 1] and normalised per
featurizer (DINOv2: ImageNet mean / std, SigLIP: 0.5 / 0.5); the two normalised copies are
stacked along the channels, (B, 6, 224, 224) for the fused backbone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

PROMPT_TEMPLATE = "In: What action should the robot take to {instruction}?\nOut:"
SPACE_TOKEN_ID = 29871
"""Llama-2's "▁" token, which upstream appends after "Out:" (a fixed id, not looked up)."""

IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
SIGLIP_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def default_mean_std(timm_model_id: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The normalisation timm's pretrained config gives a backbone (SigLIP or ImageNet)."""
    return SIGLIP_MEAN_STD if "siglip" in timm_model_id else IMAGENET_MEAN_STD


def build_prompt(instruction: str) -> str:
    """The prompt of the released OpenVLA models (not the "v01" chat format)."""
    return PROMPT_TEMPLATE.format(instruction=instruction.lower())


class PromptTokenizer:
    """The checkpoint's ``tokenizer.json`` run with the ``tokenizers`` library.

    The fast tokenizer file carries the whole pipeline (normaliser, model, BOS template), so
    no transformers tokenizer class, and no SentencePiece, is needed to reproduce upstream ids.

    Args:
        directory: checkpoint directory with ``tokenizer.json`` (and optionally
            ``tokenizer_config.json`` naming the BOS token).

    Raises:
        FileNotFoundError: no ``tokenizer.json``.
    """

    def __init__(self, directory: str | Path) -> None:
        # optional dependency: tokenizers (the vla extra), imported only when one is loaded
        from tokenizers import Tokenizer

        directory = Path(directory)
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"OpenVLA checkpoint {str(directory)!r} has no tokenizer.json")
        self.tokenizer = Tokenizer.from_file(str(path))
        bos = "<s>"
        config_path = directory / "tokenizer_config.json"
        if config_path.is_file():
            value = json.loads(config_path.read_text()).get("bos_token", bos)
            bos = value.get("content", bos) if isinstance(value, dict) else value
        self.bos_id = self.tokenizer.token_to_id(bos)
        if self.bos_id is None:
            raise ValueError(f"{path}: the BOS token {bos!r} is not in the vocabulary")

    @property
    def vocab_size(self) -> int:
        """Entries of the base vocabulary (32000 for Llama-2)."""
        return self.tokenizer.get_vocab_size(with_added_tokens=False)

    def encode_prompt(self, instruction: str) -> list[int]:
        """Token ids of the prompt for ``instruction``, BOS first, ending in 29871."""
        ids = list(self.tokenizer.encode(build_prompt(instruction)).ids)
        if not ids or ids[0] != self.bos_id:
            ids.insert(0, self.bos_id)  # a tokenizer.json without the BOS template
        if ids[-1] != SPACE_TOKEN_ID:
            ids.append(SPACE_TOKEN_ID)
        return ids


class ImagePreprocessor:
    """uint8 camera images -> the stacked, normalised pixel tensor of the featurizers.

    Args:
        image_size: square size of the featurizers' input.
        means: one RGB mean per featurizer.
        stds: one RGB standard deviation per featurizer.
        resize_strategy: ``"resize-naive"`` or ``"letterbox"``.
    """

    def __init__(
        self,
        image_size: int,
        means: list[tuple[float, ...]],
        stds: list[tuple[float, ...]],
        resize_strategy: str = "resize-naive",
    ) -> None:
        if len(means) != len(stds) or not means:
            raise ValueError("means and stds: need one entry per featurizer")
        self.image_size = int(image_size)
        self.means = [tuple(float(v) for v in m) for m in means]
        self.stds = [tuple(float(v) for v in s) for s in stds]
        self.resize_strategy = resize_strategy

    @classmethod
    def from_dir(
        cls, directory: str | Path, timm_model_ids: list[str], image_size: int, strategy: str
    ) -> ImagePreprocessor:
        """Read ``preprocessor_config.json`` ("means" / "stds") when present, else use the
        backbones' defaults."""
        means, stds = zip(*(default_mean_std(m) for m in timm_model_ids), strict=True)
        path = Path(directory) / "preprocessor_config.json"
        if path.is_file():
            raw = json.loads(path.read_text())
            means, stds = raw.get("means", means), raw.get("stds", stds)
        return cls(image_size, list(means), list(stds), strategy)

    def __call__(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3 * n_featurizers, S, S) float32."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
        image = Image.fromarray(rgb)
        if self.resize_strategy == "letterbox":
            # Upstream pads with the first featurizer's mean colour before resizing.
            side = max(image.size)
            fill = tuple(int(v * 255) for v in self.means[0])
            canvas = Image.new("RGB", (side, side), fill)
            canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
            image = canvas
        size = (self.image_size, self.image_size)
        image = image.resize(size, Image.Resampling.BICUBIC)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        parts = [
            (x - torch.tensor(m).view(3, 1, 1)) / torch.tensor(s).view(3, 1, 1)
            for m, s in zip(self.means, self.stds, strict=True)
        ]
        return torch.cat(parts, dim=0)[None]
