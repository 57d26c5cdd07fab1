"""Write a tiny random-weight OpenVLA checkpoint in the official on-disk layout.

Used by ``tests/test_openvla.py`` (this module has no tests). The checkpoint has what a released
one has: ``config.json`` with upstream's fields and the dataset statistics in ``norm_stats``,
safetensors weights with the official names (optionally sharded with an index), a Llama-style
``tokenizer.json`` of exactly 32000 base tokens (so action tokens are ids 31744-31999) plus
``<PAD>`` = 32000, and ``preprocessor_config.json``. Only the sizes are tiny: the ViTs shrink
through ``vision_backbone_overrides`` and the LM through ``text_config``; the vocabulary keeps
its real 32064 rows.
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path

import torch

VOCAB_SIZE = 32000
LM_VOCAB_SIZE = 32064
SPACE_ID = 29871

NORM_STATS = {
    "bridge_orig": {
        "action": {
            "mean": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5],
            "std": [0.01, 0.01, 0.01, 0.03, 0.03, 0.05, 0.5],
            "q01": [-0.03, -0.04, -0.03, -0.08, -0.09, -0.15, 0.0],
            "q99": [0.03, 0.04, 0.04, 0.08, 0.08, 0.14, 1.0],
            "mask": [True, True, True, True, True, True, False],
        }
    },
    "fractal20220817_data": {
        "action": {
            "q01": [-0.2, -0.3, -0.2, -0.35, -0.3, -0.4, 0.0],
            "q99": [0.18, 0.14, 0.2, 0.4, 0.25, 0.45, 1.0],
            "mask": [True, True, True, True, True, True, False],
        }
    },
}


def tiny_config(norm_stats: dict | None = None) -> dict:
    """config.json of the tiny fused (DINOv2 + SigLIP) model."""
    return {
        "architectures": ["OpenVLAForActionPrediction"],
        "model_type": "openvla",
        "arch_specifier": "no-align+fused-gelu-mlp",
        "vision_backbone_id": "dinosiglip-vit-so-224px",
        "llm_backbone_id": "llama2-7b-pure",
        "hf_llm_id": "meta-llama/Llama-2-7b-hf",
        "image_resize_strategy": "resize-naive",
        "image_sizes": [224, 224],
        "timm_model_ids": [
            "vit_large_patch14_reg4_dinov2.lvd142m",
            "vit_so400m_patch14_siglip_224",
        ],
        "timm_override_act_layers": [None, None],
        "use_fused_vision_backbone": True,
        "llm_max_length": 2048,
        "n_action_bins": 256,
        "norm_stats": NORM_STATS if norm_stats is None else norm_stats,
        "output_projector_states": False,
        "pad_to_multiple_of": 64,
        "pad_token_id": 32000,
        "text_config": {
            "model_type": "llama",
            "pad_token_id": 32000,
            "vocab_size": LM_VOCAB_SIZE,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
        },
        "torch_dtype": "float32",
        "vision_backbone_overrides": [
            {"embed_dim": 16, "depth": 2, "num_heads": 2, "mlp_hidden": 32},
            {"embed_dim": 24, "depth": 2, "num_heads": 2, "mlp_hidden": 48},
        ],
    }


def write_tokenizer(directory: Path) -> None:
    """A character-level Llama-style tokenizer: "▁" for spaces (id 29871), BOS template."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for ch in string.ascii_letters + string.digits + string.punctuation + "\n":
        vocab[ch] = len(vocab)
    vocab["▁"] = SPACE_ID
    used = set(vocab.values())
    free = (i for i in range(VOCAB_SIZE) if i not in used)
    for i in range(VOCAB_SIZE - len(vocab)):
        vocab[f"<extra_{i}>"] = next(free)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.add_special_tokens(["<PAD>"])
    tok.save(str(directory / "tokenizer.json"))
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<PAD>",
        "add_bos_token": True,
        "model_max_length": 2048,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def tiny_state_dict(config: dict, seed: int) -> dict[str, torch.Tensor]:
    """Seeded weights with the official names, scaled so the tiny model's outputs are lively
    (default inits would leave its logits nearly flat)."""
    from residual_bench.policies.openvla.config import OpenVLAConfig
    from residual_bench.policies.openvla.model import OpenVLAModel

    torch.manual_seed(seed)
    model = OpenVLAModel(OpenVLAConfig.from_dict(config))
    state = {}
    for name, p in model.state_dict().items():
        p = p.clone()
        if p.ndim >= 2:
            fan_in = math.prod(p.shape[1:]) if "embed_tokens" not in name else 1
            p.normal_(0.0, 1.0 / math.sqrt(fan_in))
        state[name] = p
    # Make the LM prefer action tokens, as a trained OpenVLA does after "Out:".
    head = state["language_model.lm_head.weight"]
    head[: VOCAB_SIZE - 256] *= 0.01
    head[VOCAB_SIZE:] *= 0.01
    # SigLIP's attention-pool head is in released checkpoints though OpenVLA never runs it.
    dim = config["vision_backbone_overrides"][1]["embed_dim"]
    prefix = "vision_backbone.fused_featurizer.attn_pool."
    state[prefix + "latent"] = torch.randn(1, 1, dim)
    state[prefix + "kv.weight"] = torch.randn(2 * dim, dim)
    return state


def write_tiny_openvla(
    directory: Path, *, seed: int = 0, sharded: bool = False, norm_stats: dict | None = None
) -> Path:
    """Write the checkpoint into ``directory`` (created) and return it."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = tiny_config(norm_stats)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    state = {k: v.contiguous() for k, v in tiny_state_dict(config, seed).items()}
    if sharded:
        shards = {
            "model-00001-of-00002.safetensors": {
                k: v for k, v in state.items() if not k.startswith("language_model.")
            },
            "model-00002-of-00002.safetensors": {
                k: v for k, v in state.items() if k.startswith("language_model.")
            },
        }
        weight_map = {}
        for fname, part in shards.items():
            save_file(part, str(directory / fname), metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(part, fname))
        index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
        (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    else:
        save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    write_tokenizer(directory)
    preprocessor = {
        "image_processor_type": "PrismaticImageProcessor",
        "image_resize_strategy": "resize-naive",
        "input_sizes": [[3, 224, 224], [3, 224, 224]],
        "interpolations": ["bicubic", "bicubic"],
        "means": [[0.485, 0.456, 0.406], [0.5, 0.5, 0.5]],
        "stds": [[0.229, 0.224, 0.225], [0.5, 0.5, 0.5]],
        "use_fused_vision_backbone": True,
    }
    (directory / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    return directory
