"""OpenVLA in-process: action tokens, statistics, the checkpoint layout and the base.

A tiny random-weight checkpoint in the official layout (``tests/tiny_openvla.py``) is loaded
through the same code path as the 7B model; only its sizes differ.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("transformers", minversion="5")
pytest.importorskip("safetensors")
pytest.importorskip("tokenizers")

from tiny_openvla import NORM_STATS, write_tiny_openvla  # noqa: E402

from residual_bench.policies.base import check_chunk  # noqa: E402
from residual_bench.policies.openvla import (  # noqa: E402
    ActionStats,
    ActionTokenizer,
    OpenVLABase,
    resolve_unnorm_key,
)
from residual_bench.policies.openvla.processing import SPACE_TOKEN_ID, build_prompt  # noqa: E402
from residual_bench.policies.openvla.vision import TIMM_ARCHS, VisionTransformer  # noqa: E402

BRIDGE = NORM_STATS["bridge_orig"]["action"]


def reference_encode(x: np.ndarray) -> np.ndarray:
    """Independent encoder: the bin a value falls in, counted from the vocabulary's end."""
    edges = np.linspace(-1.0, 1.0, 256)
    x = np.clip(x, -1.0, 1.0)
    bins = np.array([np.sum(edges <= v) for v in x.ravel()]).reshape(x.shape)  # 1..256
    return 32000 - bins


def reference_decode(tokens: np.ndarray) -> np.ndarray:
    edges = np.linspace(-1.0, 1.0, 256)
    d = np.clip(32000 - np.asarray(tokens), 1, 255)  # ids past either end -> extreme bins
    return (edges[d - 1] + edges[d]) / 2.0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tiny_openvla(tmp_path_factory.mktemp("openvla") / "tiny-openvla", sharded=True)


@pytest.fixture(scope="module")
def base(checkpoint):
    return OpenVLABase(checkpoint, "bridge_orig", device="cpu")


def test_bin_edges_centres_and_token_range():
    tok = ActionTokenizer(32000, 256)
    assert tok.bins.shape == (256,) and tok.bin_centers.shape == (255,)
    np.testing.assert_allclose(np.diff(tok.bins), 2.0 / 255.0)
    assert tok.token_range == (31744, 31999)
    np.testing.assert_allclose(tok.decode([31999, 31744]), tok.bin_centers[[0, 254]])
    # The LM's argmax can land anywhere in its 32064 rows: clipped to the extreme bins.
    np.testing.assert_allclose(tok.decode([0, 32063]), tok.bin_centers[[254, 0]])


def test_token_action_round_trip_against_independent_encoder():
    tok = ActionTokenizer(32000, 256)
    x = np.concatenate([np.random.default_rng(0).uniform(-1.5, 1.5, 500), tok.bins, [0.0]])
    tokens = tok.encode(x)
    np.testing.assert_array_equal(tokens, reference_encode(x))
    assert tokens.min() >= 31744 and tokens.max() <= 31999
    decoded = tok.decode(tokens)
    np.testing.assert_allclose(decoded, reference_decode(tokens))
    # Decoding lands within half a bin of the clipped value (at +1, the top centre).
    assert np.all(np.abs(decoded - np.clip(x, -1, 1)) <= 1.0 / 255.0 + 1e-12)
    every = np.arange(31744, 32000)
    # Token -> centre -> token is the identity, except 31744 (d = 256, clipped to the last
    # centre, which encodes as 31745).
    expected = np.where(every == 31744, 31745, every)
    np.testing.assert_array_equal(tok.encode(tok.decode(every)), expected)


def test_unnormalised_actions_stay_within_q01_q99():
    stats = ActionStats.from_norm_stats(NORM_STATS, "bridge_orig")
    tok = ActionTokenizer()
    normalized = np.repeat(tok.decode(np.arange(31700, 32064))[:, None], 7, axis=1)
    actions = stats.unnormalize(normalized)
    mask = np.array(BRIDGE["mask"])
    assert np.all(actions[:, mask] > np.array(BRIDGE["q01"])[mask])
    assert np.all(actions[:, mask] < np.array(BRIDGE["q99"])[mask])
    np.testing.assert_array_equal(actions[:, ~mask], normalized[:, ~mask])  # gripper as decoded
    mid = stats.unnormalize(np.zeros(7))[:6]
    np.testing.assert_allclose(mid, (np.array(BRIDGE["q01"]) + BRIDGE["q99"])[:6] / 2)


def test_unnorm_key_errors(checkpoint):
    with pytest.raises(ValueError, match="more than one dataset.*bridge_orig.*fractal"):
        resolve_unnorm_key(NORM_STATS, None)
    with pytest.raises(ValueError, match="'nope' is not among.*bridge_orig, fractal"):
        resolve_unnorm_key(NORM_STATS, "nope")
    assert resolve_unnorm_key({"only": {}}, None) == "only"
    with pytest.raises(ValueError, match="available: bridge_orig"):
        OpenVLABase(checkpoint, "libero_spatial", device="cpu")
    with pytest.raises(ValueError, match="more than one dataset"):
        OpenVLABase(checkpoint, None, device="cpu")


def test_checkpoint_has_official_weight_names(checkpoint):
    index = json.loads((checkpoint / "model.safetensors.index.json").read_text())["weight_map"]
    for name in (
        "vision_backbone.featurizer.blocks.0.ls1.scale_factor",
        "vision_backbone.featurizer.reg_token",
        "vision_backbone.fused_featurizer.blocks.1.attn.qkv.weight",
        "vision_backbone.fused_featurizer.attn_pool.latent",
        "projector.fc3.weight",
        "language_model.model.embed_tokens.weight",
        "language_model.model.layers.1.self_attn.q_proj.weight",
        "language_model.lm_head.weight",
    ):
        assert name in index, name


def test_full_size_featurizers_match_timm_layout():
    with torch.device("meta"):
        dino = VisionTransformer(TIMM_ARCHS["vit_large_patch14_reg4_dinov2"], 224).state_dict()
        siglip = VisionTransformer(TIMM_ARCHS["vit_so400m_patch14_siglip_224"], 224).state_dict()
    assert dino["pos_embed"].shape == (1, 256, 1024) and dino["reg_token"].shape == (1, 4, 1024)
    assert "blocks.23.ls2.scale_factor" in dino and "blocks.24.norm1.weight" not in dino
    assert siglip["pos_embed"].shape == (1, 256, 1152) and "cls_token" not in siglip
    assert siglip["blocks.26.mlp.fc1.weight"].shape == (4304, 1152)


def test_base_loads_directory_and_honours_spec(base):
    spec = base.spec
    assert (spec.chunk_len, spec.action_dim, spec.control_hz) == (1, 7, 5.0)
    assert (spec.action_repr, spec.gripper, spec.normalization_key) == (
        "delta_ee_euler", "absolute_01", "bridge_orig",
    )  # fmt: skip
    assert spec.cameras == {"rgb": (224, 224)} and spec.needs_instruction
    image = np.random.default_rng(1).integers(0, 256, (84, 84, 3), dtype=np.uint8)
    chunk = base.act({"rgb": image}, "put the carrot on the plate")
    check_chunk(spec, chunk)
    tokens = np.array(chunk.info["tokens"])
    assert tokens.shape == (7,) and np.all((tokens >= 31744) & (tokens <= 31999))
    # The action is the independent decoding of the generated tokens, un-normalised.
    expected = ActionStats(BRIDGE, "bridge_orig").unnormalize(reference_decode(tokens))
    np.testing.assert_allclose(chunk.info["raw_action"], expected)
    action = chunk.actions[0]
    mask = np.array(BRIDGE["mask"])
    assert np.all(action[mask] >= np.array(BRIDGE["q01"])[mask])
    assert np.all(action[mask] <= np.array(BRIDGE["q99"])[mask])
    assert 0.0 <= action[6] <= 1.0


def test_action_depends_on_the_image(base):
    black = np.zeros((224, 224, 3), dtype=np.uint8)
    white = np.full((224, 224, 3), 255, dtype=np.uint8)
    first = base.act({"rgb": black}, "pick up the cube").info["tokens"]
    assert base.act({"rgb": black}, "pick up the cube").info["tokens"] == first  # greedy
    assert base.act({"rgb": white}, "pick up the cube").info["tokens"] != first


def test_prompt_and_input_ids(base):
    assert (
        build_prompt("Put The Cube")
        == "In: What action should the robot take to put the cube?\nOut:"
    )
    ids = base.input_ids("pick up the cube")
    assert ids[0] == 1 and ids[-1] == SPACE_TOKEN_ID and ids[-2] != SPACE_TOKEN_ID


def test_image_preprocessing_resizes_and_normalises_per_backbone(base):
    pixels = base.preprocessor(np.full((84, 100, 3), 51, dtype=np.uint8))
    assert pixels.shape == (1, 6, 224, 224)
    np.testing.assert_allclose(pixels[0, 0].mean(), (0.2 - 0.485) / 0.229, atol=1e-5)
    np.testing.assert_allclose(pixels[0, 3].mean(), (0.2 - 0.5) / 0.5, atol=1e-5)
    with pytest.raises(ValueError, match="observation key 'rgb'"):
        base.act({"state": np.zeros(3)}, "pick")


def test_missing_files_give_clear_errors(checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OpenVLABase(tmp_path / "nowhere", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        OpenVLABase(tmp_path / "empty", device="cpu")
    copy = shutil.copytree(checkpoint, tmp_path / "copy")
    (copy / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="shards listed .* missing"):
        OpenVLABase(copy, device="cpu")
    (copy / "model.safetensors.index.json").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        OpenVLABase(copy, device="cpu")
    (copy / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        OpenVLABase(copy, device="cpu")


def test_weights_that_do_not_fit(checkpoint, tmp_path):
    copy = shutil.copytree(checkpoint, tmp_path / "copy")
    config = json.loads((copy / "config.json").read_text())
    config["text_config"]["num_hidden_layers"] = 3
    config["vision_backbone_overrides"][0]["embed_dim"] = 20
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="do not fit.*missing.*layers.2.*shape"):
        OpenVLABase(copy, device="cpu")


def test_single_file_checkpoint_and_controller(tmp_path, make_env, monkeypatch):
    from residual_bench.policies.openvla import openvla_base_factory

    directory = write_tiny_openvla(tmp_path / "single", seed=1)
    monkeypatch.setenv("RESIDUAL_BENCH_OPENVLA", str(directory))
    monkeypatch.setenv("RESIDUAL_BENCH_OPENVLA_UNNORM_KEY", "fractal20220817_data")
    env = make_env(obs_mode="rgb", image_size=64)
    controller = openvla_base_factory(env)
    assert controller.policy.spec.normalization_key == "fractal20220817_data"
    obs, info = env.reset(seed=0)
    controller.reset(info)
    action, _ = controller.act(obs, info)
    assert action.shape == (7,) and np.all(np.abs(action) <= 1.0)


def test_import_and_registration_are_lazy():
    code = (
        "import sys\n"
        "import residual_bench.policies.registry as r\n"
        "from residual_bench.policies.openvla import register_vla_bases\n"
        "if 'openvla' not in r.base_names():\n"
        "    register_vla_bases()\n"
        "names = sorted({'openvla', 'pi0'} & set(r.base_names()))\n"
        "print(names, r.get_base('openvla').env_kwargs)\n"
        "print('transformers' in sys.modules, 'safetensors' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "['openvla', 'pi0'] {'obs_mode': 'rgb', 'image_size': 224}",
        "False False",
    ]
