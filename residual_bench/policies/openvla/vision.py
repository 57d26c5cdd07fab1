"""The ViT featurizers of OpenVLA, written in plain torch with timm's parameter names.

OpenVLA builds its vision backbone with ``timm.create_model(id, num_classes=0, img_size=224)``
and reads the patch tokens of the *second-to-last* block (``get_intermediate_layers`` with
``n={depth - 2}``, no final norm, prefix tokens dropped). timm cannot be imported everywhere
(it needs a torchvision build matching torch), and only that one forward path is needed, so
this module re-implements it. Parameter names follow timm's ``VisionTransformer`` exactly, with
OpenVLA's one patch: LayerScale's ``gamma`` is stored as ``scale_factor`` (transformers renames
parameters called ``gamma``), so the official safetensors load without any renaming.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

UNUSED_PREFIXES = ("attn_pool.", "head.", "fc_norm.")
"""Sub-modules present in a timm checkpoint (SigLIP's attention-pool head) that OpenVLA
never runs; their weights are accepted and skipped."""


@dataclass(frozen=True)
class ViTArch:
    """The hyper-parameters of one timm ViT, as far as OpenVLA's forward path needs them.

    Args:
        embed_dim: token width.
        depth: number of blocks (all are loaded; the last one is not run, as upstream).
        num_heads: attention heads.
        mlp_hidden: hidden width of the MLPs (timm: ``int(embed_dim * mlp_ratio)``).
        patch_size: square patch size in pixels.
        class_token: whether a CLS token is prepended.
        reg_tokens: number of register tokens (DINOv2 "reg4": 4).
        no_embed_class: position embeddings cover the patches only (DINOv2 in timm).
        layer_scale: whether the blocks have LayerScale (DINOv2).
    """

    embed_dim: int
    depth: int
    num_heads: int
    mlp_hidden: int
    patch_size: int = 14
    class_token: bool = True
    reg_tokens: int = 0
    no_embed_class: bool = False
    layer_scale: bool = False


# The timm architectures OpenVLA's released checkpoints use, by timm model name (the pretrained
# tag after a dot, e.g. ".lvd142m", does not change the architecture).
TIMM_ARCHS: dict[str, ViTArch] = {
    "vit_large_patch14_reg4_dinov2": ViTArch(
        1024, 24, 16, 4096, reg_tokens=4, no_embed_class=True, layer_scale=True
    ),
    "vit_so400m_patch14_siglip_224": ViTArch(1152, 27, 16, int(1152 * 3.7362), class_token=False),
}


class LayerScale(nn.Module):
    """Per-channel scale; the parameter is ``scale_factor`` as in OpenVLA's checkpoints."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale_factor = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale_factor


class Attention(nn.Module):
    """timm's multi-head self-attention (fused ``qkv`` then ``proj``)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """timm's two-layer MLP with exact GELU (OpenVLA overrides no activation for its ViTs)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block, LayerScale optional (identity without parameters)."""

    def __init__(self, arch: ViTArch) -> None:
        super().__init__()
        dim = arch.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, arch.num_heads)
        self.ls1 = LayerScale(dim) if arch.layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, arch.mlp_hidden)
        self.ls2 = LayerScale(dim) if arch.layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided convolution (``patch_embed.proj``)."""

    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """A timm-compatible ViT whose forward returns OpenVLA's features.

    Args:
        arch: the architecture.
        img_size: square input size in pixels (224 for OpenVLA).

    Raises:
        ValueError: the image size is not a multiple of the patch size, or depth < 2.
    """

    def __init__(self, arch: ViTArch, img_size: int) -> None:
        super().__init__()
        if img_size % arch.patch_size:
            raise ValueError(f"image size {img_size} is not a multiple of {arch.patch_size}")
        if arch.depth < 2:
            raise ValueError(f"depth must be >= 2 (features are block depth - 2), got {arch.depth}")
        self.arch = arch
        self.img_size = img_size
        dim = arch.embed_dim
        self.num_patches = (img_size // arch.patch_size) ** 2
        self.num_prefix_tokens = int(arch.class_token) + arch.reg_tokens
        self.patch_embed = PatchEmbed(arch.patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if arch.class_token else None
        self.reg_token = (
            nn.Parameter(torch.zeros(1, arch.reg_tokens, dim)) if arch.reg_tokens else None
        )
        n_pos = self.num_patches if arch.no_embed_class else self.num_patches + arch.class_token
        self.pos_embed = nn.Parameter(torch.zeros(1, n_pos, dim))
        self.blocks = nn.ModuleList(Block(arch) for _ in range(arch.depth))
        # Loaded (it is in the checkpoint) but not applied: OpenVLA asks for un-normed features.
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    @property
    def embed_dim(self) -> int:
        """Width of the returned patch features."""
        return self.arch.embed_dim

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        prefix = []
        if self.cls_token is not None:
            prefix.append(self.cls_token.expand(x.shape[0], -1, -1))
        if self.reg_token is not None:
            prefix.append(self.reg_token.expand(x.shape[0], -1, -1))
        if self.arch.no_embed_class:
            # DINOv2 in timm: positions for the patches only, prefix tokens unpositioned.
            return torch.cat([*prefix, x + self.pos_embed], dim=1)
        return torch.cat([*prefix, x], dim=1) + self.pos_embed

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised pixels -> (B, num_patches, embed_dim) patch features."""
        x = self._pos_embed(self.patch_embed(pixels))
        # Upstream takes the output of block depth - 2, so the last block never runs.
        for block in self.blocks[: self.arch.depth - 1]:
            x = block(x)
        return x[:, self.num_prefix_tokens :]
