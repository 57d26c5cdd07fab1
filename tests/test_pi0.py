"""PI0 through transformers' native ``PI0ForConditionalGeneration``, on a tiny offline config."""

import string

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", minversion="5")
if not hasattr(transformers, "PI0ForConditionalGeneration"):
    pytest.skip("this transformers release has no PI0", allow_module_level=True)

from residual_bench.policies.base import check_chunk  # noqa: E402
from residual_bench.policies.pi0 import PI0Base  # noqa: E402

TEXT_VOCAB = 300
IMAGE_TOKEN_ID = 299


def write_tiny_pi0(directory):
    """``save_pretrained`` of a tiny random PI0 plus a character-level ``tokenizer.json``."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    gemma = {"model_type": "gemma", "hidden_size": 32, "num_hidden_layers": 1,
             "intermediate_size": 64, "num_attention_heads": 2, "num_key_value_heads": 1,
             "head_dim": 16}  # fmt: skip
    config = transformers.PI0Config(
        vlm_config={
            "model_type": "paligemma",
            "text_config": {**gemma, "vocab_size": TEXT_VOCAB},
            "vision_config": {
                "model_type": "siglip_vision_model",
                "hidden_size": 16,
                "intermediate_size": 32,
                "patch_size": 14,
                "image_size": 56,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "vision_use_head": False,
            },  # fmt: skip
            "projection_dim": 32,
            "image_token_id": IMAGE_TOKEN_ID,
        },
        dit_config=gemma,
        chunk_size=8,
        max_state_dim=24,
        max_action_dim=16,
        num_inference_steps=2,
    )
    torch.manual_seed(0)
    transformers.PI0ForConditionalGeneration(config).save_pretrained(str(directory))
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}
    for ch in string.printable:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.save(str(directory / "tokenizer.json"))
    return directory


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tiny_pi0(tmp_path_factory.mktemp("pi0") / "tiny-pi0")


def observation(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "rgb": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
        "proprio": rng.normal(size=20).astype(np.float32),
    }


def test_pi0_chunk_honours_spec_and_is_seeded(checkpoint):
    base = PI0Base(checkpoint, chunk_len=4, device="cpu")
    spec = base.spec
    assert (spec.chunk_len, spec.action_dim, spec.cameras) == (4, 7, {"rgb": (56, 56)})
    assert spec.needs_instruction and spec.needs_state
    base.reset("pick up the cube", seed=3)
    chunk = base.act(observation(), "pick up the cube")
    check_chunk(spec, chunk)
    assert chunk.actions.shape == (4, 7)
    base.reset("pick up the cube", seed=3)
    np.testing.assert_array_equal(
        base.act(observation(), "pick up the cube").actions, chunk.actions
    )
    base.reset("pick up the cube", seed=4)
    assert not np.array_equal(base.act(observation(), "pick up the cube").actions, chunk.actions)


def test_pi0_unnormalises_and_reports_errors(checkpoint, tmp_path):
    mean, std = [0.1] * 7, [2.0] * 7
    plain = PI0Base(checkpoint, chunk_len=2, device="cpu")
    scaled = PI0Base(checkpoint, chunk_len=2, actions_mean=mean, actions_std=std, device="cpu")
    raw = plain.act(observation(), "stack").actions
    np.testing.assert_allclose(
        scaled.act(observation(), "stack").actions, raw * 2.0 + 0.1, rtol=1e-5
    )
    with pytest.raises(ValueError, match="observation key 'proprio'"):
        plain.act({"rgb": observation()["rgb"]}, "stack")
    with pytest.raises(ValueError, match="chunk_len"):
        PI0Base(checkpoint, chunk_len=9, device="cpu")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PI0Base(tmp_path / "nowhere", device="cpu")
    (tmp_path / "no-tokenizer").mkdir()
    (tmp_path / "no-tokenizer" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        PI0Base(tmp_path / "no-tokenizer", device="cpu")
