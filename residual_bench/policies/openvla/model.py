"""OpenVLA's network on the current transformers: ViT featurizers, projector, Llama-2.

Module names reproduce the official checkpoint's weight names: ``vision_backbone.featurizer``
and ``vision_backbone.fused_featurizer`` (timm ViTs), ``projector.fc1/fc2/fc3`` and
``language_model`` (a ``LlamaForCausalLM``: ``language_model.model.*``,
``language_model.lm_head.*``). The image's projected patch tokens go right after BOS, and seven
tokens are decoded greedily over the whole vocabulary, as upstream's ``predict_action`` does.
Importing this module imports transformers.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from residual_bench.policies.openvla.action_tokenizer import ActionStats, ActionTokenizer
from residual_bench.policies.openvla.config import OpenVLAConfig
from residual_bench.policies.openvla.vision import VisionTransformer


class VisionBackbone(nn.Module):
    """One featurizer, or two whose patch features are concatenated (DINOv2 + SigLIP)."""

    def __init__(self, config: OpenVLAConfig) -> None:
        super().__init__()
        archs = config.vision_archs()
        self.featurizer = VisionTransformer(archs[0], config.image_size)
        self.fused_featurizer = (
            VisionTransformer(archs[1], config.image_size)
            if config.use_fused_vision_backbone
            else None
        )
        if self.fused_featurizer is not None:
            if self.fused_featurizer.num_patches != self.featurizer.num_patches:
                raise ValueError("the fused featurizers must yield the same number of patches")

    @property
    def embed_dim(self) -> int:
        """Width of the (concatenated) patch features."""
        dim = self.featurizer.embed_dim
        return dim + (self.fused_featurizer.embed_dim if self.fused_featurizer else 0)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3 or 6, S, S) -> (B, patches, embed_dim)."""
        if self.fused_featurizer is None:
            return self.featurizer(pixel_values)
        first, second = torch.split(pixel_values, [3, 3], dim=1)
        return torch.cat([self.featurizer(first), self.fused_featurizer(second)], dim=2)


class Projector(nn.Module):
    """Patch features -> LM embeddings: a 3-layer GELU MLP for the fused backbone (widening to
    4x the vision width first), a 2-layer one otherwise, as upstream."""

    def __init__(self, fused: bool, vision_dim: int, llm_dim: int) -> None:
        super().__init__()
        self.fused = fused
        if fused:
            self.fc1 = nn.Linear(vision_dim, 4 * vision_dim)
            self.fc2 = nn.Linear(4 * vision_dim, llm_dim)
            self.fc3 = nn.Linear(llm_dim, llm_dim)
        else:
            self.fc1 = nn.Linear(vision_dim, llm_dim)
            self.fc2 = nn.Linear(llm_dim, llm_dim)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.fc2(F.gelu(self.fc1(patches)))
        return self.fc3(F.gelu(x)) if self.fused else x


class OpenVLAModel(nn.Module):
    """The OpenVLA network.

    Args:
        config: the checkpoint's configuration.
    """

    def __init__(self, config: OpenVLAConfig) -> None:
        super().__init__()
        self.config = config
        text_config = LlamaConfig(**config.text_config)
        self.vision_backbone = VisionBackbone(config)
        self.projector = Projector(
            config.use_fused_vision_backbone,
            self.vision_backbone.embed_dim,
            text_config.hidden_size,
        )
        self.language_model = LlamaForCausalLM(text_config)
        self.action_tokenizer = ActionTokenizer(config.tokenizer_vocab_size, config.n_action_bins)
        # transformers renamed the KV-cache argument and output during 5.x.
        forward_args = inspect.signature(self.language_model.forward).parameters
        self._cache_name = "cache" if "cache" in forward_args else "past_key_values"

    def reset_rotary(self, device: torch.device | str) -> None:
        """Recompute the rotary frequencies (a non-persistent buffer, absent from checkpoints
        and left empty when the model is built on the meta device)."""
        inner = self.language_model.model
        inner.rotary_emb = type(inner.rotary_emb)(config=inner.config).to(device)
        on_meta = [n for n, t in [*self.named_parameters(), *self.named_buffers()] if t.is_meta]
        if on_meta:
            raise ValueError(f"tensors left uninitialised after loading: {', '.join(on_meta[:5])}")

    def multimodal_embeddings(
        self, input_ids: torch.Tensor, pixel_values: torch.Tensor
    ) -> torch.Tensor:
        """Token embeddings with the projected patches inserted after BOS."""
        embed = self.language_model.get_input_embeddings()(input_ids)
        patches = self.projector(self.vision_backbone(pixel_values.to(embed.dtype)))
        return torch.cat([embed[:, :1], patches, embed[:, 1:]], dim=1)

    @torch.inference_mode()
    def generate_action_tokens(
        self, input_ids: torch.Tensor, pixel_values: torch.Tensor, n_tokens: int
    ) -> torch.Tensor:
        """Greedy decoding of ``n_tokens`` tokens with a KV cache; returns (B, n_tokens)."""
        out = self.language_model(
            inputs_embeds=self.multimodal_embeddings(input_ids, pixel_values), use_cache=True
        )
        tokens = [out.logits[:, -1].argmax(dim=-1)]
        for _ in range(n_tokens - 1):
            cache = {self._cache_name: getattr(out, self._cache_name)}
            out = self.language_model(input_ids=tokens[-1][:, None], use_cache=True, **cache)
            tokens.append(out.logits[:, -1].argmax(dim=-1))
        return torch.stack(tokens, dim=1)

    def predict_action(
        self, input_ids: list[int], pixel_values: torch.Tensor, stats: ActionStats
    ) -> tuple[np.ndarray, np.ndarray]:
        """One action for one prompt and image.

        Args:
            input_ids: prompt ids (BOS first, 29871 last; see ``PromptTokenizer``).
            pixel_values: (1, C, S, S) from the image preprocessor.
            stats: the un-normalisation statistics of the chosen dataset.

        Returns:
            ``(action, token_ids)``: (action_dim,) float64 in dataset units (gripper as
            decoded), and the generated ids.
        """
        device = self.language_model.lm_head.weight.device
        ids = torch.tensor([input_ids], dtype=torch.long, device=device)
        tokens = self.generate_action_tokens(ids, pixel_values.to(device), stats.action_dim)
        token_ids = tokens[0].cpu().numpy()
        return stats.unnormalize(self.action_tokenizer.decode(token_ids)), token_ids
