"""RL fine-tuning of the bc head on the frozen encoder's output (``rl.frozen_features``).

The encoder runs once per decision in the env wrapper; the actor is the bc action head on its
output, so before any update it is the bc base, and training changes the head alone: the
exported checkpoint carries the initial encoder bit for bit.
"""

import csv

import gymnasium as gym
import numpy as np
import pytest
import torch

from residual_bench.config_fields import TrainingConfig
from residual_bench.env_spec import SpecError
from residual_bench.finetune.chunked_env import ChunkedBCEnv
from residual_bench.finetune.config import FinetuneRLConfig, load_finetune_config
from residual_bench.finetune.frozen_features import FrozenEncoderFeatures
from residual_bench.finetune.rl import build_finetune_agent, export_checkpoint, finetune_rl
from residual_bench.policies.bc.model import BCBase, load_checkpoint, shipped_checkpoint

SHORT = {"scene_overrides": {"task": {"episode_seconds": 1.0}}}
TINY = {"buffer_size": 64, "batch_size": 4, "learning_starts": 0, "train_freq": 1}


def feature_env() -> tuple[FrozenEncoderFeatures, ChunkedBCEnv]:
    env = gym.make("ResidualPickPlace-v1", obs_mode="rgb", image_size=84, suite="nominal", **SHORT)
    checkpoint = load_checkpoint(shipped_checkpoint())
    chunked = ChunkedBCEnv(env, checkpoint)
    return FrozenEncoderFeatures(chunked, checkpoint), chunked


def agent(env: gym.Env, **kwargs):
    return build_finetune_agent("sac", env, shipped_checkpoint(), TINY, -2.0, seed=0,
                                frozen_features=True, **kwargs)  # fmt: skip


def test_the_features_are_the_bc_heads_input_and_the_actor_starts_as_the_bc_base():
    env, chunked = feature_env()
    model = agent(env)
    images, info = chunked.reset(seed=3)
    features = env.observation(images)
    assert features.shape == env.observation_space.shape and features.dtype == np.float32
    action, _ = model.predict(features, deterministic=True)
    raw = dict(chunked.unwrapped._observation())
    raw["rgb"] = images["rgb"]  # the camera image is rendered with fresh noise each time
    expected = BCBase().act(raw, info["instruction"]).actions
    np.testing.assert_allclose(chunked.chunk(action), expected, atol=1e-5)
    env.close()


def test_updates_change_the_head_and_the_exported_checkpoint_keeps_the_encoder(tmp_path):
    env, _ = feature_env()
    model = agent(env)
    model.learn(12)
    path = export_checkpoint(model, shipped_checkpoint(), tmp_path / "tuned.pt")
    start, tuned = load_checkpoint(shipped_checkpoint())["model"], load_checkpoint(path)["model"]
    assert set(tuned) == set(start)
    encoder = [k for k in start if not k.startswith("head.")]
    assert encoder and all(torch.equal(start[k], tuned[k]) for k in encoder)
    assert not all(torch.equal(start[k], tuned[k]) for k in start if k.startswith("head."))
    env.close()


def test_the_encoder_is_not_run_on_replayed_batches():
    env, _ = feature_env()
    model = agent(env)
    assert model.replay_buffer.observations.shape[-1] == env.observation_space.shape[0] < 100
    assert not any(isinstance(m, torch.nn.Conv2d) for m in model.policy.modules())
    env.close()


@pytest.mark.parametrize(
    ("algo", "extra", "message"),
    [("ppo", {}, "SAC fine-tuning only"), ("sac", {"freeze_encoder": True}, "already keeps")],
)
def test_frozen_features_are_for_sac_and_make_freeze_encoder_redundant(algo, extra, message):
    env, _ = feature_env()
    with pytest.raises(ValueError, match=message):
        build_finetune_agent(algo, env, shipped_checkpoint(), {}, -2.0, seed=0,
                             frozen_features=True, **extra)  # fmt: skip
    env.close()


def test_the_wrapper_wants_the_chunked_env():
    env = gym.make("ResidualPickPlace-v1", obs_mode="rgb", image_size=84)
    with pytest.raises(TypeError, match="wraps a ChunkedBCEnv"):
        FrozenEncoderFeatures(env, load_checkpoint(shipped_checkpoint()))
    env.close()


def test_a_run_on_frozen_features_writes_its_curve_and_a_bc_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr("residual_bench.finetune.rl.evaluate_bc", lambda *_: 0.25)
    rl = FinetuneRLConfig(algo="sac", hyperparams=TINY, frozen_features=True, bc_weight=0.4)
    train = TrainingConfig(steps=16, suite="nominal", eval_every=8, eval_episodes=2,
                           checkpoint_every=8)  # fmt: skip
    final = finetune_rl(tmp_path, rl=rl, train=train, progress=False)
    start = load_checkpoint(shipped_checkpoint())
    assert load_checkpoint(final)["config"] == start["config"]
    with open(tmp_path / "progress.csv") as f:
        assert [int(r["timesteps"]) for r in csv.DictReader(f)] == [8, 16]


def test_the_option_is_checked_and_off_in_the_full_network_configs(tmp_path):
    path = tmp_path / "ft.yaml"
    path.write_text("method: rl\nrl: {frozen_features: 1}\n")
    with pytest.raises(SpecError, match="true or false"):
        load_finetune_config(path)
    for name in ("finetune-rl", "finetune-rl-bc"):
        assert load_finetune_config(name).rl.frozen_features is False
