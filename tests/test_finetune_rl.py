"""The ``finetune-rl`` baseline: SAC or PPO trains the bc network itself, starting from it.

Before any update the fine-tuning actor is the bc base (same chunk for the same observation),
one decision is one action chunk played over the base's control steps, the fine-tuned weights
are an ordinary bc checkpoint, and a run writes a learning curve and resumes.
"""

import copy
import csv
import dataclasses
import json
import re
import zipfile
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.logger import configure

from residual_bench.cli import main
from residual_bench.config_fields import TrainingConfig
from residual_bench.env_spec import SpecError
from residual_bench.finetune.chunked_env import ChunkedBCEnv
from residual_bench.finetune.config import (
    FinetuneRLConfig,
    finetune_names,
    load_finetune_config,
)
from residual_bench.finetune.rl import (
    actor_layers,
    build_finetune_agent,
    export_checkpoint,
    finetune_rl,
)
from residual_bench.policies.bc.model import BCBase, load_checkpoint, shipped_checkpoint
from residual_bench.residual.config import load_config as load_residual_config
from residual_bench.run_directory import run_lock

SHORT = {"scene_overrides": {"task": {"episode_seconds": 1.0}}}
TINY = {
    "sac": {"buffer_size": 64, "batch_size": 4, "learning_starts": 2, "train_freq": 1},
    "ppo": {"n_steps": 4, "batch_size": 4, "n_epochs": 1},
}


def chunked_env(suite: str = "nominal", **kwargs) -> ChunkedBCEnv:
    env = gym.make(
        "ResidualPickPlace-v1", obs_mode="rgb", image_size=84, suite=suite, **SHORT, **kwargs
    )
    return ChunkedBCEnv(env, load_checkpoint(shipped_checkpoint()))


def raw_observation(env: ChunkedBCEnv, obs: dict) -> dict:
    """What the bc base is given for the observation ``obs`` of the chunked env."""
    raw = dict(env.unwrapped._observation())
    raw["rgb"] = obs["rgb"]  # the camera image is rendered with fresh noise each time
    return raw


@pytest.mark.parametrize("algo", ["sac", "ppo"])
def test_before_any_update_the_fine_tuning_actor_is_the_bc_base(algo):
    torch.manual_seed(0)
    env = chunked_env()
    model = build_finetune_agent(algo, env, shipped_checkpoint(), TINY[algo], -2.0, seed=0)
    obs, info = env.reset(seed=3)
    action, _ = model.predict(obs, deterministic=True)
    expected = BCBase().act(raw_observation(env, obs), info["instruction"]).actions
    np.testing.assert_allclose(env.chunk(action), expected, atol=1e-5)
    env.close()


def parameters_of(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_critic_only_updates_keep_the_bc_actor_and_then_let_it_learn():
    env = chunked_env()
    hp = {**TINY["sac"], "learning_starts": 0}
    model = build_finetune_agent("sac", env, shipped_checkpoint(), hp, -2.0, seed=0,
                                 critic_only_steps=8)  # fmt: skip
    actor, critic = parameters_of(model.actor), parameters_of(model.critic)
    ent_coef = model.log_ent_coef.detach().clone()
    model.learn(6)  # decisions, all inside the critic-only phase
    assert all(torch.equal(a, b) for a, b in zip(actor, parameters_of(model.actor), strict=True))
    assert torch.equal(ent_coef, model.log_ent_coef)
    assert not all(
        torch.equal(a, b) for a, b in zip(critic, parameters_of(model.critic), strict=True)
    )
    model.learn(6, reset_num_timesteps=False)  # past 8 decisions: the actor moves
    assert not all(
        torch.equal(a, b) for a, b in zip(actor, parameters_of(model.actor), strict=True)
    )
    env.close()


def test_the_actor_step_skips_the_critics_weight_gradients_and_learns_the_same():
    env = chunked_env()
    hp = {**TINY["sac"], "learning_starts": 1000}  # learn() below only fills the buffer
    fast = build_finetune_agent("sac", env, shipped_checkpoint(), hp, -2.0, seed=0)
    fast.learn(6)
    plain = build_finetune_agent("sac", env, shipped_checkpoint(), hp, -2.0, seed=0)
    plain.replay_buffer = copy.deepcopy(fast.replay_buffer)
    plain.skip_critic_gradients = False  # SB3's own update, for reference
    plain.set_logger(configure(None, []))
    for model in (fast, plain):
        np.random.seed(1)  # noqa: NPY002 - SB3's replay buffer draws from the legacy global RNG
        torch.manual_seed(1)  # SAC's action noise
        model.train(gradient_steps=3, batch_size=4)
    for name in ("actor", "critic", "critic_target"):
        got, want = parameters_of(getattr(fast, name)), parameters_of(getattr(plain, name))
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True)), name
    assert torch.equal(fast.log_ent_coef, plain.log_ent_coef)
    # What is left in the critic's gradients shows the actor's backward pass: SB3's adds to
    # them, ours never reaches the critic's weights.
    pairs = zip(fast.critic.parameters(), plain.critic.parameters(), strict=True)
    assert not all(torch.equal(a.grad, b.grad) for a, b in pairs if a.grad is not None)
    assert all(p.requires_grad for p in fast.critic.parameters())
    env.close()


def test_critic_only_updates_are_for_sac_and_counted_in_control_steps(tmp_path):
    env = chunked_env()
    with pytest.raises(ValueError, match="SAC fine-tuning only"):
        build_finetune_agent("ppo", env, shipped_checkpoint(), TINY["ppo"], -2.0, seed=0,
                             critic_only_steps=4)  # fmt: skip
    env.close()
    shipped = load_finetune_config("finetune-rl").rl
    residual = load_residual_config("sac").safeguards.critic_only_steps
    assert shipped.critic_only_steps == residual  # the same safeguard as the residuals'
    path = tmp_path / "ft.yaml"
    for bad, message in (
        ("{critic_only_steps: -1}", "non-negative integer"),
        ("{critic_only_steps: 1.5}", "non-negative integer"),
        ("{algo: ppo, critic_only_steps: 100}", "SAC only"),
    ):
        path.write_text(f"method: rl\nrl: {bad}\n")
        with pytest.raises(SpecError, match=message):
            load_finetune_config(path)


def test_the_actor_can_learn_at_its_own_rate_while_the_critic_keeps_sb3s():
    env = chunked_env()
    hp = {**TINY["sac"], "learning_starts": 0, "learning_rate": 1e-3}
    model = build_finetune_agent("sac", env, shipped_checkpoint(), hp, -2.0, seed=0,
                                 actor_learning_rate=1e-5)  # fmt: skip
    model.learn(4)
    assert [g["lr"] for g in model.actor.optimizer.param_groups] == [1e-5]
    assert [g["lr"] for g in model.critic.optimizer.param_groups] == [1e-3]
    with pytest.raises(ValueError, match="SAC fine-tuning only"):
        build_finetune_agent("ppo", env, shipped_checkpoint(), TINY["ppo"], -2.0, seed=0,
                             actor_learning_rate=1e-5)  # fmt: skip
    env.close()


@pytest.mark.parametrize("algo", ["sac", "ppo"])
def test_a_frozen_encoder_keeps_the_bc_weights_while_the_head_learns(algo):
    env = chunked_env()
    hp = {**TINY[algo], "learning_starts": 0} if algo == "sac" else TINY[algo]
    model = build_finetune_agent(algo, env, shipped_checkpoint(), hp, -2.0, seed=0,
                                 freeze_encoder=True)  # fmt: skip
    encoder, hidden, _ = actor_layers(model)
    encoder_before, hidden_before = parameters_of(encoder), parameters_of(hidden)
    model.learn(12)
    unchanged = zip(encoder_before, parameters_of(encoder), strict=True)
    assert all(torch.equal(a, b) for a, b in unchanged)
    changed = zip(hidden_before, parameters_of(hidden), strict=True)
    assert not all(torch.equal(a, b) for a, b in changed)
    env.close()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{freeze_encoder: 1}", "true or false"),
        ("{actor_learning_rate: 0}", "actor_learning_rate must be a positive number"),
        ("{actor_learning_rate: fast}", "actor_learning_rate must be a positive number"),
        ("{actor_learning_rate: 1e-5}", "write 1.0e-5"),
        ("{algo: ppo, actor_learning_rate: 1.0e-5}", "SAC only"),
    ],
)
def test_the_actors_learning_rate_and_freezing_are_checked(tmp_path, bad, message):
    path = tmp_path / "ft.yaml"
    path.write_text(f"method: rl\nrl: {bad}\n")
    with pytest.raises(SpecError, match=message):
        load_finetune_config(path)
    shipped = load_finetune_config("finetune-rl").rl
    assert shipped.actor_learning_rate is None and shipped.freeze_encoder is False


def test_the_critic_has_its_own_copy_of_the_bc_encoder():
    env = chunked_env()
    model = build_finetune_agent("sac", env, shipped_checkpoint(), TINY["sac"], -2.0, seed=0)
    actor, critic = model.actor.features_extractor, model.critic.features_extractor
    assert actor is not critic
    for a, c in zip(actor.parameters(), critic.parameters(), strict=True):
        assert torch.equal(a, c) and a.data_ptr() != c.data_ptr()
    env.close()


@pytest.mark.parametrize("algo", ["sac", "ppo"])
def test_fine_tuned_weights_are_a_bc_checkpoint_that_runs_as_the_base(algo, tmp_path):
    env = chunked_env()
    model = build_finetune_agent(algo, env, shipped_checkpoint(), TINY[algo], -2.0, seed=0)
    path = export_checkpoint(model, shipped_checkpoint(), tmp_path / "tuned.pt")
    start, tuned = load_checkpoint(shipped_checkpoint()), load_checkpoint(path)
    assert tuned["config"] == start["config"]
    assert set(tuned["model"]) == set(start["model"])
    assert all(torch.equal(start["model"][k], tuned["model"][k]) for k in start["model"])
    assert tuned["provenance"]["finetuned_from"] == str(shipped_checkpoint())
    env.close()


def test_one_decision_plays_a_whole_chunk_and_sums_its_rewards():
    env = chunked_env()
    env.reset(seed=0)
    assert env.action_space.shape == (4 * 4,)  # 4 steps x (x, y, z, gripper)
    _, reward, _, _, info = env.step(np.zeros(16, np.float32))
    assert info["control_steps"] == 4 == env.control_steps
    assert 0.0 <= reward <= 4.0  # four dense rewards in [0, 1]
    chunk = env.chunk(np.arange(16, dtype=np.float32) / 16)
    assert chunk.shape == (4, 7)
    np.testing.assert_array_equal(chunk[:, 3:6], 0.0)  # the rotation stays 0
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(16, np.nan, np.float32))
    env.close()


def test_a_stalled_base_holds_its_last_action_through_the_chunk():
    stall = {
        "name": "stall",
        "perturbations": [
            {"type": "latency", "trigger": {"time": [0.0, 0.0]}, "duration": [0.5, 0.5]}
        ],
    }
    env = chunked_env(suite=stall)
    executed = []
    step = env.env.step

    def logged(action):
        executed.append(np.array(action, copy=True))
        return step(action)

    env.env.step = logged
    env.reset(seed=0)
    env.step(np.zeros(16, np.float32))  # the stall starts during the first decision
    env.step(np.linspace(-1, 1, 16, dtype=np.float32))
    assert all(np.array_equal(a, executed[3]) for a in executed[4:])
    env.close()


def test_a_run_writes_a_learning_curve_a_bc_checkpoint_and_resumes(tmp_path, monkeypatch):
    evaluated = []

    def evaluate(checkpoint, suite, episodes):
        if not evaluated:
            evaluated.append("interrupted")
            raise KeyboardInterrupt  # after the first chunk of steps is checkpointed
        evaluated.append((load_checkpoint(checkpoint)["provenance"]["finetuned_from"], suite))
        return 0.5

    monkeypatch.setattr("residual_bench.finetune.rl.evaluate_bc", evaluate)
    rl = FinetuneRLConfig(algo="sac", hyperparams=TINY["sac"])
    train = TrainingConfig(steps=16, suite="nominal", eval_every=8, eval_episodes=2,
                           checkpoint_every=8)  # fmt: skip
    options = dict(rl=rl, train=train, progress=False)
    with pytest.raises(KeyboardInterrupt):
        finetune_rl(tmp_path, **options)
    state = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
    assert state == {"decisions": 2, "control_steps": 8}
    with pytest.raises(FileExistsError, match="--resume"):
        finetune_rl(tmp_path, **options)  # its pickles are opened only when asked
    final = finetune_rl(tmp_path, resume=True, **options)  # goes on from step 8
    state = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
    assert state == {"decisions": 4, "control_steps": 16}
    assert load_checkpoint(final)["config"] == load_checkpoint(shipped_checkpoint())["config"]
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["timesteps"]) for r in rows] == [16]
    assert float(rows[0]["success_rate"]) == 0.5
    assert evaluated[1:] == [(str(shipped_checkpoint()), "nominal")]
    with pytest.raises(FileExistsError, match="final.pt"):
        finetune_rl(tmp_path, **options)


def test_the_shipped_rl_configs_and_their_errors(tmp_path, capsys):
    assert load_finetune_config("finetune-rl").rl.algo == "sac"
    assert load_finetune_config("finetune-rl-ppo").rl.algo == "ppo"
    path = tmp_path / "ft.yaml"
    path.write_text("method: rl\nrl: {algo: ddpg}\n")
    with pytest.raises(SpecError, match="rl.algo"):
        load_finetune_config(path)
    path.write_text("method: rl\ndagger: {rounds: 2}\n")
    with pytest.raises(SpecError, match="unknown field"):
        load_finetune_config(path)
    argv = ["train", "--base", "bc", "--residual", "finetune-rl", "--out", str(tmp_path / "x")]
    assert main([*argv, "--features", "global"]) != 0
    assert "--features applies to residuals only" in capsys.readouterr().err
    assert main(["train", "--base", "scripted", "--residual", "finetune-rl", "--out", "x"]) != 0
    assert "does not apply to 'scripted'" in capsys.readouterr().err


@pytest.mark.parametrize("config", ["finetune-rl", "finetune-dagger"])
def test_bench_train_refuses_a_fine_tuning_run_another_process_is_writing(tmp_path, capsys, config):
    out = tmp_path / "run"
    with run_lock(out):
        argv = ["train", "--base", "bc", "--residual", config, "--out", str(out)]
        assert main([*argv, "--quiet"]) == 2
    assert "being written by another process" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def filled_sac(bc_weight: float = 0.0, **hp) -> tuple[ChunkedBCEnv, Any]:
    """A SAC fine-tuning model with 6 decisions in its buffer and (by default) no update."""
    env = chunked_env()
    hp = {**TINY["sac"], "learning_starts": 1000, **hp}  # learn() below only fills the buffer
    model = build_finetune_agent("sac", env, shipped_checkpoint(), hp, -2.0, seed=0,
                                 bc_weight=bc_weight)  # fmt: skip
    model.learn(6)
    model.set_logger(configure(None, []))
    return env, model


def test_a_zero_bc_weight_leaves_sb3s_update_as_it_is_bit_for_bit():
    env, ours = filled_sac(bc_weight=0.0)
    sb3 = build_finetune_agent("sac", env, shipped_checkpoint(), TINY["sac"], -2.0, seed=0)
    sb3.replay_buffer = copy.deepcopy(ours.replay_buffer)
    sb3.set_logger(configure(None, []))
    draws = []
    for train in (ours.train, partial(SAC.train, sb3)):  # SB3's update, no hook of ours
        np.random.seed(1)  # noqa: NPY002 - SB3's replay buffer draws from the legacy global RNG
        torch.manual_seed(1)  # SAC's action noise
        train(gradient_steps=3, batch_size=4)
        draws.append(np.random.random())  # noqa: NPY002 - no extra batch was drawn
    assert ours.bc_reference is None
    for name in ("actor", "critic", "critic_target"):
        got, want = parameters_of(getattr(ours, name)), parameters_of(getattr(sb3, name))
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True)), name
    assert draws[0] == draws[1]
    env.close()


def deterministic_chunks(actor: torch.nn.Module, observations) -> torch.Tensor:
    with torch.no_grad():
        return actor(observations, deterministic=True)


def test_the_bc_term_holds_the_actor_near_the_base_against_a_critic_that_pushes_it_away():
    # A critic that never learns (learning rate 0) keeps pulling the actor the same way, up
    # its random slope, and no entropy bonus pulls elsewhere; the actor alone learns, fast.
    hp = {**TINY["sac"], "learning_starts": 1000, "learning_rate": 0.0, "ent_coef": 0.0}
    env, filled = filled_sac(**hp)
    observations = filled.replay_buffer.sample(4).observations
    distances = {}
    for weight in (0.0, 10.0):
        model = build_finetune_agent("sac", env, shipped_checkpoint(), hp, -2.0, seed=0,
                                     bc_weight=weight, actor_learning_rate=3e-4)  # fmt: skip
        model.replay_buffer = copy.deepcopy(filled.replay_buffer)
        model.set_logger(configure(None, []))
        base = deterministic_chunks(model.actor, observations)
        np.random.seed(1)  # noqa: NPY002 - SB3's replay buffer draws from the legacy global RNG
        torch.manual_seed(1)
        model.train(gradient_steps=20, batch_size=4)
        tuned = deterministic_chunks(model.actor, observations)
        distances[weight] = (tuned - base).pow(2).mean().item()
    env.close()
    assert distances[0.0] > 0.01  # the critic does push the unregularised actor away
    assert distances[10.0] < 0.1 * distances[0.0]


def test_the_frozen_base_the_bc_term_pulls_to_never_changes_and_is_not_saved(tmp_path):
    env, model = filled_sac(bc_weight=0.4)
    model.learning_starts = 0
    initial = parameters_of(model.actor)
    reference = parameters_of(model.bc_reference)
    assert all(torch.equal(a, b) for a, b in zip(initial, reference, strict=True))
    assert not any(p.requires_grad for p in model.bc_reference.parameters())
    model.learn(8, reset_num_timesteps=False)
    after = zip(reference, parameters_of(model.bc_reference), strict=True)
    assert all(torch.equal(a, b) for a, b in after)
    moved = zip(initial, parameters_of(model.actor), strict=True)
    assert not all(torch.equal(a, b) for a, b in moved)
    model.save(tmp_path / "model.zip")
    with zipfile.ZipFile(tmp_path / "model.zip") as saved:
        assert "bc_reference" not in saved.read("data").decode()
    env.close()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{bc_weight: -0.4}", "rl.bc_weight must be a non-negative number"),
        ("{bc_weight: .nan}", "rl.bc_weight must be a finite number"),
        ("{bc_weight: .inf}", "rl.bc_weight must be a finite number"),
        ("{bc_weight: strong}", "rl.bc_weight must be a non-negative number"),
        ("{bc_weight: true}", "rl.bc_weight must be a non-negative number"),
        ("{algo: ppo, bc_weight: 0.4}", "rl.bc_weight applies to SAC only"),
    ],
)
def test_the_bc_weight_is_checked(tmp_path, bad, message):
    path = tmp_path / "ft.yaml"
    path.write_text(f"method: rl\nrl: {bad}\n")
    with pytest.raises(SpecError, match=re.escape(message)):
        load_finetune_config(path)


def test_the_shipped_regularised_fine_tuning_is_finetune_rl_plus_the_bc_term():
    plain, regularised = load_finetune_config("finetune-rl"), load_finetune_config("finetune-rl-bc")
    assert "finetune-rl-bc" in finetune_names()
    assert plain.rl.bc_weight == 0.0 and regularised.rl.bc_weight == 0.4
    assert dataclasses.replace(regularised.rl, bc_weight=0.0) == plain.rl
    assert regularised.train == plain.train
    env = chunked_env()
    with pytest.raises(ValueError, match="SAC fine-tuning only"):
        build_finetune_agent("ppo", env, shipped_checkpoint(), TINY["ppo"], -2.0, seed=0,
                             bc_weight=0.4)  # fmt: skip
    env.close()
