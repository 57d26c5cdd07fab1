"""``finetune-rl``: end-to-end RL fine-tuning of the ``bc`` base's own weights (SAC or PPO).

The baseline the residual is compared against in sample efficiency and forgetting: instead of
adding a small correction on top of the frozen network, RL changes the network itself.

- The MDP is the base's own: one decision is one action chunk, executed open-loop over
  ``chunk_len`` control steps (5 Hz for the shipped base), so the fine-tuned network is
  deployed exactly as the base is (:func:`~residual_bench.policies.bc.model.bc_controller`) and its
  curve starts where the base stands. The reward of a decision is the sum of the env's dense
  rewards over its control steps; while the env reports the base stalled (the ``latency``
  suite) the last action is held, as the executor does.
- The actor is the bc network: its image encoder as SB3's features extractor and its action
  head as the actor's hidden layers and mean output, all initialised from the checkpoint, so
  the deterministic actor reproduces the base's chunk (tested). Exploration noise is a fresh,
  state-independent log-std (``initial_log_std``).
- The critic (SAC's Q-networks, PPO's value function) has fresh heads on its own copy of the
  bc image encoder, initialised from the checkpoint too: a fresh CNN on 84 px images learns
  nothing useful within the budget.
- SAC's first updates can be critic-only (``critic_only_steps`` control steps), the safeguard
  the residuals have too: the actor starts as a working policy, and a fresh critic's action
  gradients would lead it away before the critic has learnt anything.
- SAC's actor loss can be regularised towards the base (``bc_weight``, TD3+BC's form): every
  actor update adds ``bc_weight * mean|Q(s, mu(s))| * mean((mu(s) - a_base(s))^2)``, mu(s) the
  chunk the actor would execute and a_base(s) the one a frozen copy of the initial network
  gives. Unregularised, the fine-tuned network unlearns the base (Policy Decorator; the
  collapse measured in results/finetune); regularised, it leaves the base only where the
  critic's action gradient is stronger than the pull back.

Fine-tuned weights are written as an ordinary bc checkpoint, evaluated with ``--base bc:PATH``
like every other bc network, so forgetting is measured the same way for every method.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from gymnasium import spaces
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from tqdm import tqdm

from residual_bench.config_fields import TrainingConfig
from residual_bench.finetune.chunked_env import ChunkedBCEnv
from residual_bench.finetune.config import FinetuneRLConfig
from residual_bench.finetune.dagger import evaluate_bc
from residual_bench.finetune.frozen_features import FrozenEncoderFeatures
from residual_bench.policies.bc.model import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    build_model,
    shipped_checkpoint,
)
from residual_bench.policies.bc.model import load_checkpoint as load_bc_checkpoint
from residual_bench.registration import ENV_ID
from residual_bench.run_directory import (
    checkpoint_to_resume,
    finish_interrupted_write,
    save_checkpoint,
    write_file_atomically,
)
from residual_bench.training.learning_curve import (
    append_progress,
    last_evaluated,
    training_clock,
)
from residual_bench.training.safeguards import (
    CriticWarmupMixin,
    add_penalty_to_actor_step,
    critic_scaled_penalty,
)


class BCEncoder(BaseFeaturesExtractor):
    """The bc network's image encoder (everything before its action head) for SB3 policies."""

    def __init__(self, observation_space: spaces.Dict, checkpoint: str) -> None:
        net = build_model(load_bc_checkpoint(checkpoint)).train()
        features_dim = net.head[0].in_features
        super().__init__(observation_space, features_dim)
        del net.head  # the policy's own layers take its place (see copy_head)
        self.net = net

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        rgb = observations["rgb"].float() / 255.0
        if rgb.shape[-1] == 3:  # SB3 transposes images to channels-first; accept both
            rgb = rgb.permute(0, 3, 1, 2)
        fused, _, _ = self.net.encode(rgb, observations["proprio"], observations["words"])
        return fused


def policy_kwargs(
    checkpoint: str | Path, head_width: int, frozen_features: bool = False
) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` giving actor and critic the bc encoder and the head's layout;
    with ``frozen_features`` the observations are already the encoder's output
    (:class:`~residual_bench.finetune.frozen_features.FrozenEncoderFeatures`)."""
    layout = {
        "net_arch": {"pi": [head_width, head_width], "qf": [256, 256], "vf": [256, 256]},
        "activation_fn": nn.ReLU,
    }
    if frozen_features:
        return layout
    return {
        "features_extractor_class": BCEncoder,
        "features_extractor_kwargs": {"checkpoint": str(checkpoint)},
        "normalize_images": False,  # BCEncoder scales the uint8 image itself
        "share_features_extractor": False,
        **layout,
    }


def actor_layers(model: Any) -> tuple[nn.Module, nn.Sequential, nn.Linear]:
    """The actor's (encoder, hidden layers, mean output layer) of a SAC or PPO model."""
    if isinstance(model, SAC):
        actor = model.actor
        return actor.features_extractor, actor.latent_pi, actor.mu
    policy = model.policy
    return policy.pi_features_extractor, policy.mlp_extractor.policy_net, policy.action_net[0]


def copy_head(model: Any, head: nn.Sequential, initial_log_std: float) -> None:
    """Put the bc action ``head`` into the actor, so its deterministic output is the bc chunk."""
    _, hidden, output = actor_layers(model)
    with torch.no_grad():
        for target, source in ((hidden[0], head[0]), (hidden[2], head[2]), (output, head[4])):
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)
        if isinstance(model, SAC):
            model.actor.log_std.weight.zero_()
            model.actor.log_std.bias.fill_(initial_log_std)
        else:
            model.policy.log_std.fill_(initial_log_std)


class FinetuneSAC(CriticWarmupMixin, SAC):
    """SAC whose first updates (``critic_only_steps`` decisions) train the critic only.

    ``actor_learning_rate``, when set, replaces SB3's one learning rate for the actor's
    optimizer alone: a pretrained actor can then move more slowly than the fresh critic learns.
    """

    bc_weight: float = 0.0
    bc_reference: nn.Module | None = None
    """A frozen copy of the initial actor (set by :meth:`hold_bc_reference`)."""

    def hold_bc_reference(self) -> None:
        """Keep a frozen copy of the actor as it is now: the base ``bc_weight`` pulls back to.

        A copy, not the bc checkpoint re-read, so its deterministic output is exactly the
        actor's initial one; it lives outside the policy, so it is neither trained nor saved
        and a resumed run rebuilds it from the init checkpoint, not from the tuned actor.
        """
        reference = copy.deepcopy(self.actor)
        reference.optimizer = None  # the copy of the actor's Adam state would never be used
        self.bc_reference = reference.eval().requires_grad_(False)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "bc_reference"]

    def bc_penalty(self, batch_size: int) -> torch.Tensor | None:
        """``bc_weight * mean|Q(s, mu(s))| * mean((mu(s) - a_base(s))^2)`` on a fresh batch,
        or None with ``bc_weight`` 0 (then nothing is sampled: SB3's update is untouched).

        None in the critic-only phase too: the actor is put back after every update there, so
        mu = a_base and the term's gradient would be exactly zero, at the price of a pass
        through the actor's encoder.
        """
        if self.bc_weight <= 0 or self.num_timesteps < self.critic_only_steps:
            return None
        if self.bc_reference is None:
            raise RuntimeError("bc_weight > 0 needs hold_bc_reference() before training")
        observations = self.replay_buffer.sample(batch_size).observations
        mean_actions, _, _ = self.actor.get_action_dist_params(observations)
        actions = torch.tanh(mean_actions)  # the chunk the actor executes
        with torch.no_grad():
            q_values = self.critic.q1_forward(observations, actions)
            base = self.bc_reference(observations, deterministic=True)
        return critic_scaled_penalty(self.bc_weight, q_values, actions, base)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        add_penalty_to_actor_step(self.actor.optimizer, lambda: self.bc_penalty(batch_size))
        super().train(gradient_steps, batch_size)


def build_finetune_agent(
    algo: str,
    env: gym.Env,
    checkpoint: str | Path,
    hyperparams: dict[str, Any],
    initial_log_std: float,
    seed: int,
    tensorboard_log: str | None = None,
    critic_only_steps: int = 0,
    actor_learning_rate: float | None = None,
    freeze_encoder: bool = False,
    bc_weight: float = 0.0,
    frozen_features: bool = False,
) -> Any:
    """A SAC or PPO model whose actor is the bc network of ``checkpoint``.

    ``critic_only_steps`` (SAC only) is in the model's own timesteps, that is decisions;
    ``actor_learning_rate`` (SAC only; None: the hyperparams' ``learning_rate``) is the
    actor's own; ``bc_weight`` (SAC only) pulls the actor towards its initial self (see
    :meth:`FinetuneSAC.bc_penalty`). With ``freeze_encoder`` the actor's copy of the bc
    encoder keeps its weights and RL trains the action head (and the exploration noise) alone.
    With ``frozen_features`` (SAC only) ``env`` gives the frozen encoder's output
    (:class:`~residual_bench.finetune.frozen_features.FrozenEncoderFeatures`): actor and
    critic are heads on it and the encoder is the checkpoint's, unchanged.
    """
    head = build_model(load_bc_checkpoint(checkpoint)).head
    width = head[0].out_features
    common = {"seed": seed, "verbose": 0, "tensorboard_log": tensorboard_log, "device": "cpu"}
    layout = policy_kwargs(checkpoint, width, frozen_features)
    kwargs = {"policy_kwargs": layout, **hyperparams, **common}
    if critic_only_steps and algo != "sac":
        raise ValueError("critic_only_steps applies to SAC fine-tuning only, not to PPO")
    if actor_learning_rate is not None and algo != "sac":
        raise ValueError("actor_learning_rate applies to SAC fine-tuning only, not to PPO")
    if bc_weight and algo != "sac":
        raise ValueError("bc_weight applies to SAC fine-tuning only, not to PPO")
    if frozen_features and algo != "sac":
        raise ValueError("frozen_features applies to SAC fine-tuning only, not to PPO")
    if frozen_features and freeze_encoder:
        raise ValueError("frozen_features already keeps the encoder: drop freeze_encoder")
    if algo == "sac":
        policy = "MlpPolicy" if frozen_features else "MultiInputPolicy"
        model = FinetuneSAC(policy, env, **kwargs)
        model.critic_only_steps = int(critic_only_steps)
        model.actor_learning_rate = actor_learning_rate
        model.bc_weight = float(bc_weight)
    elif algo == "ppo":
        # Orthogonal initialisation would overwrite the bc encoder's weights.
        kwargs["policy_kwargs"]["ortho_init"] = False
        model = PPO("MultiInputPolicy", env, **kwargs)
        # PPO's Gaussian is not squashed: its mean passes the head's tanh, as in the bc network.
        model.policy.action_net = nn.Sequential(model.policy.action_net, nn.Tanh())
        model.policy.optimizer = model.policy.optimizer_class(
            model.policy.parameters(),
            lr=model.lr_schedule(1),
            **model.policy.optimizer_kwargs,
        )
    else:
        raise ValueError(f"finetune-rl algo must be 'sac' or 'ppo', got {algo!r}")
    copy_head(model, head, initial_log_std)
    if freeze_encoder:
        # The optimizers skip parameters that get no gradient.
        actor_layers(model)[0].requires_grad_(False)
    if bc_weight:
        model.hold_bc_reference()
    return model


def export_checkpoint(model: Any, init: str | Path, path: str | Path) -> Path:
    """Write the actor's weights as a bc checkpoint (the init's config and statistics)."""
    ckpt = load_bc_checkpoint(init)
    encoder, hidden, output = actor_layers(model)
    if isinstance(encoder, BCEncoder):
        state = {k: v.detach().clone() for k, v in encoder.net.state_dict().items()}
    else:  # frozen features: the encoder is the checkpoint's
        state = {k: v.clone() for k, v in ckpt["model"].items() if not k.startswith("head.")}
    for index, layer in ((0, hidden[0]), (2, hidden[2]), (4, output)):
        state[f"head.{index}.weight"] = layer.weight.detach().clone()
        state[f"head.{index}.bias"] = layer.bias.detach().clone()
    provenance = dict(ckpt.get("provenance", {}))
    provenance["finetuned_from"] = str(init)
    out = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": ckpt["config"],
        "model": state,
        "proprio_mean": ckpt["proprio_mean"],
        "proprio_std": ckpt["proprio_std"],
        "provenance": provenance,
    }
    return write_file_atomically(path, lambda f: torch.save(out, f))


def _make_env(init: str | Path, suite: str, objects: str) -> ChunkedBCEnv:
    env = gym.make(ENV_ID, obs_mode="rgb", image_size=84, suite=suite, objects=objects)
    return ChunkedBCEnv(env, load_bc_checkpoint(init))


def finetune_rl(
    out: str | Path,
    rl: FinetuneRLConfig | None = None,
    train: TrainingConfig | None = None,
    *,
    init: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    resume: bool = False,
) -> Path:
    """RL fine-tuning of a bc network for ``steps`` control steps; returns ``out/final.pt``.

    ``rl`` and ``train`` are the config's sections (None: their defaults): ``algo``,
    ``hyperparams``, ``initial_log_std``, ``critic_only_steps``, ``actor_learning_rate``,
    ``freeze_encoder`` and ``bc_weight`` are ``rl``'s fields, ``steps``, ``suite``, ``eval_every``,
    ``eval_episodes`` and ``checkpoint_every`` are ``train``'s.

    Trains on training objects under ``suite``; every ``eval_every`` control steps the actor is
    written as a bc checkpoint and evaluated as deployed on the fixed held-out episodes of the
    residuals' learning curves (a row of ``out/progress.csv`` against control steps). The
    model, its replay buffer and the step count are written atomically to ``out/checkpoint``
    every ``checkpoint_every`` steps; re-running with the same ``out`` and ``resume`` continues
    from there (see :func:`~residual_bench.run_directory.checkpoint_to_resume`).
    SAC's updates through the first ``critic_only_steps`` control steps train the critic only;
    ``actor_learning_rate`` (SAC) gives the actor a learning rate of its own,
    ``freeze_encoder`` leaves the actor's encoder as the bc network's, and ``bc_weight`` (SAC)
    pulls the actor towards the initial network's chunks.
    """
    rl = rl if rl is not None else FinetuneRLConfig()
    train = train if train is not None else TrainingConfig()
    algo, critic_only_steps = rl.algo, rl.critic_only_steps
    steps, suite, eval_every = train.steps, train.suite, train.eval_every
    eval_episodes, checkpoint_every = train.eval_episodes, train.checkpoint_every
    init = Path(init) if init is not None else shipped_checkpoint()
    out = Path(out)
    final = out / "final.pt"
    if final.exists():
        raise FileExistsError(f"{final} already exists: that fine-tuning run is finished")
    out.mkdir(parents=True, exist_ok=True)
    env = _make_env(init, suite, "train")
    # The model sees the encoder's output with frozen_features; env counts the control steps.
    seen = FrozenEncoderFeatures(env, load_bc_checkpoint(init)) if rl.frozen_features else env
    model = build_finetune_agent(
        algo, Monitor(seen), init, dict(rl.hyperparams), float(rl.initial_log_std), seed,
        tensorboard_log=str(out / "tensorboard"),
        critic_only_steps=-(-critic_only_steps // env.chunk_len),  # decisions
        actor_learning_rate=rl.actor_learning_rate,
        freeze_encoder=rl.freeze_encoder,
        bc_weight=rl.bc_weight,
        frozen_features=rl.frozen_features,
    )  # fmt: skip
    saved = out / "checkpoint"
    finish_interrupted_write(saved)
    if checkpoint_to_resume(saved, resume):
        state = json.loads((saved / "state.json").read_text())
        model.set_parameters(str(saved / "model.zip"), exact_match=True)
        model.num_timesteps = int(state["decisions"])
        env.control_steps = int(state["control_steps"])
        if (saved / "replay_buffer.pkl").exists():
            model.load_replay_buffer(saved / "replay_buffer.pkl")
    progress_csv = out / "progress.csv"
    next_eval = (last_evaluated(progress_csv) // eval_every + 1) * eval_every
    bar = tqdm(total=steps, initial=env.control_steps, unit="step", desc=f"bc finetune-{algo}",
               disable=not progress)  # fmt: skip
    began = training_clock(progress_csv)
    try:
        while env.control_steps < steps:
            before = env.control_steps
            todo = min(checkpoint_every, steps - env.control_steps)
            decisions = max(1, -(-todo // env.chunk_len))
            model.learn(decisions, reset_num_timesteps=False, tb_log_name="finetune")
            counts = {"decisions": int(model.num_timesteps), "control_steps": env.control_steps}
            save_checkpoint(model, saved, counts)
            bar.update(env.control_steps - before)
            t = env.control_steps
            if t >= next_eval or t >= steps:
                next_eval = (t // eval_every + 1) * eval_every
                probe = export_checkpoint(model, init, out / "eval.pt")
                rate = evaluate_bc(probe, suite, eval_episodes)
                append_progress(progress_csv, t, rate, eval_episodes, began)
                bar.set_postfix(success=f"{rate:.0%}")
    finally:
        bar.close()
        seen.close()
    return export_checkpoint(model, init, final)
