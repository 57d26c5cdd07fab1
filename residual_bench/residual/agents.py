"""Stable-baselines3 agents with the residual safeguards built in.

:func:`build_agent` turns a :class:`~residual_bench.residual.config.ResidualConfig` into an SB3
model on a residual env, of the algorithm the config names (see
:data:`~residual_bench.residual.algorithms.ALGORITHMS`). The off-policy agents (SAC, TD3, and
sb3-contrib's TQC and CrossQ) are their library's own classes with the residual safeguards
mixed in: :meth:`ResidualOffPolicyMixin._sample_action` makes warm-up transitions the base
alone (r = 0) instead of uniform noise, and gates the residual on with probability
min(t / H, 1) (progressive exploration); critic-only updates keep the actor's weights
unchanged through the first updates; the actor penalty and the output decay pull the
residual back to zero.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np
import torch
from sb3_contrib import TQC, CrossQ
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.buffers import NStepReplayBuffer
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.noise import NormalActionNoise

from residual_bench.residual.algorithms import ALGORITHMS
from residual_bench.residual.config import GatedConfig, ResidualConfig
from residual_bench.residual.critic_values import critic_gate, first_critic_value, gate_action
from residual_bench.residual.env import alpha_vector
from residual_bench.training.safeguards import (
    CriticWarmupMixin,
    add_penalty_to_actor_step,
    critic_scaled_penalty,
)


class ResidualOffPolicyMixin(CriticWarmupMixin):
    """Base-only warm-up, progressive exploration, critic-only updates, the actor penalty and
    the output decay, for any SB3 off-policy agent (SAC, TD3, TQC, CrossQ)."""

    warmup_steps: int = 0
    exploration_ramp_steps: int = 0
    output_decay: float = 0.0
    actor_penalty: float = 0.0
    oracle_bc_weight: float = 0.0
    critic_continuation: str = "residual"
    oracle_demonstrations: tuple[torch.Tensor, torch.Tensor] | None = None

    def _sample_action(self, learning_starts: int, action_noise=None, n_envs: int = 1):
        action, buffer_action = super()._sample_action(learning_starts, action_noise, n_envs)
        t = self.num_timesteps
        if t < self.warmup_steps:
            keep = np.zeros(n_envs, dtype=bool)
        elif self.exploration_ramp_steps > 0:
            p = min((t - self.warmup_steps) / self.exploration_ramp_steps, 1.0)
            keep = self._gate_rng.random(n_envs) < p
        else:
            keep = np.ones(n_envs, dtype=bool)
        # The buffer must hold what was executed, so a switched-off residual is stored as 0.
        action = np.where(keep[:, None], action, 0.0)
        buffer_action = np.where(keep[:, None], buffer_action, 0.0)
        return action, buffer_action

    @property
    def _gate_rng(self) -> np.random.Generator:
        if getattr(self, "_gate_generator", None) is None:
            self._gate_generator = np.random.default_rng(self.seed)
        return self._gate_generator

    def _install_actor_penalty(self, batch_size: int) -> None:
        """Add ``actor_penalty * mean|Q| * mean(r^2)`` to every actor update's gradient.

        As in TD3+BC, the weight is relative to the critic's scale, so the trade-off does not
        depend on the reward's units. The residual's mean output then leaves zero only where
        the critic's action gradient is consistently stronger than the pull back to the base;
        without it the actor follows the critic's extrapolation outside the data (r near 0)
        and settles on large constant corrections. The term is added to the gradients SB3 has
        just computed, right before the optimizer's step, so one Adam step sees both.
        """

        def penalty() -> torch.Tensor | None:
            terms = []
            if self.actor_penalty > 0:
                observations = self.replay_buffer.sample(batch_size).observations
                terms.append(self._scaled_distance(self.actor_penalty, observations, None))
            if self.oracle_bc_weight > 0 and self.oracle_demonstrations is not None:
                observations, corrections = self.oracle_demonstrations
                index = torch.randint(len(observations), (batch_size,))
                distance = self._scaled_distance(
                    self.oracle_bc_weight, observations[index], corrections[index]
                )
                terms.append(distance)
            return sum(terms) if terms else None

        add_penalty_to_actor_step(self.actor.optimizer, penalty)

    def _scaled_distance(
        self, weight: float, observations: torch.Tensor, reference: torch.Tensor | None
    ) -> torch.Tensor:
        """``weight * mean|Q| * mean((r - reference)^2)`` for the actor's mean residual r."""
        residual = self.mean_residual(observations)
        with torch.no_grad():
            q_values = first_critic_value(self.critic, observations, residual)
        return critic_scaled_penalty(weight, q_values, residual, reference)

    @contextlib.contextmanager
    def _continuation_in_targets(self) -> Iterator[None]:
        """With ``critic_continuation`` ``base``, the TD target of the updates run inside
        values the next state with r = 0 and no entropy term: Q becomes the value of acting
        once and then leaving the base alone, a fixed policy, so the critic cannot learn the
        values of a residual that has gone wrong and the actor is a one-step improvement on
        the base.

        SAC and TQC draw the target's next action from ``actor.action_log_prob`` with
        gradients off, and the actor's own action for its loss with gradients on; only the
        former is replaced, for the duration of the update.
        """
        if self.critic_continuation != "base":
            yield
            return
        actor = self.actor
        own = actor.action_log_prob

        def continuation(observations: Any) -> tuple[torch.Tensor, torch.Tensor]:
            if torch.is_grad_enabled():
                return own(observations)
            batch = len(
                next(iter(observations.values()))
                if isinstance(observations, dict)
                else observations
            )
            zeros = torch.zeros(batch, *self.action_space.shape, device=self.device)
            return zeros, torch.zeros(batch, device=self.device)

        actor.action_log_prob = continuation
        try:
            yield
        finally:
            del actor.action_log_prob  # the class's own method again

    def _excluded_save_params(self) -> list[str]:
        # Collected again on resume (train_residual): kept out of the checkpoint's pickle.
        return [*super()._excluded_save_params(), "oracle_demonstrations"]

    def hold_oracle_demonstrations(self, observations: np.ndarray, corrections: np.ndarray) -> None:
        """Keep the oracle episodes' observations and residuals for ``oracle_bc_weight``.

        Held beside the model, not saved with it: a resumed run collects them again."""
        as_tensor = partial(torch.as_tensor, dtype=torch.float32, device=self.device)
        self.oracle_demonstrations = (as_tensor(observations), as_tensor(corrections))

    def mean_residual(self, observations: Any) -> torch.Tensor:
        """The deterministic residual output (in [-1, 1]) for a batch of observations.

        CrossQ's actor is called in whatever mode its batch renormalisation is in; inside
        SB3's update that is evaluation mode (running statistics, left unchanged): the
        penalty then applies to the residual as it acts.
        """
        if has_gaussian_actor(self):
            mean_actions, _, _ = self.actor.get_action_dist_params(observations)
            return torch.tanh(mean_actions)
        return self.actor(observations)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self._install_actor_penalty(batch_size)
        with self._continuation_in_targets():
            super().train(gradient_steps, batch_size)  # critic-only at first (CriticWarmupMixin)
        if self.num_timesteps >= self.critic_only_steps and self.output_decay > 0:
            # Decoupled weight decay on the residual's output layer: a correction survives
            # only where the critic keeps asking for it; elsewhere it fades back to the base.
            keep = (1.0 - self.output_decay) ** gradient_steps
            with torch.no_grad():
                for layer in actor_output_layers(self):
                    layer.weight.mul_(keep)
                    layer.bias.mul_(keep)


class ResidualSAC(ResidualOffPolicyMixin, SAC):
    """SAC with the residual safeguards."""


class ResidualTD3(ResidualOffPolicyMixin, TD3):
    """TD3 with the residual safeguards."""


class ResidualTQC(ResidualOffPolicyMixin, TQC):
    """sb3-contrib's TQC (truncated quantile critics) with the residual safeguards.

    Its actor is SAC's (a squashed Gaussian), so zero init, the actor penalty and the output
    decay act on the same layers; the penalty's critic scale is the first critic's mean
    quantile. Critic-only updates restore the actor and the entropy coefficient, as for SAC.
    """


class ResidualCrossQ(ResidualOffPolicyMixin, CrossQ):
    """sb3-contrib's CrossQ (batch-renormalised critics, no target network) with the residual
    safeguards.

    Its actor is a squashed Gaussian with batch renormalisation before each linear layer:
    zeroing the output layer still makes the first correction exactly 0. The critic-only
    phase also puts back the actor's batch-renorm running statistics (CrossQ's actor update
    moves them); the actor penalty reads the critic in the evaluation mode CrossQ leaves it in
    for the actor's loss, so no statistics move. With no target network, there is no target
    actor to freeze or zero.
    """


RESIDUAL_CLASSES: dict[type, type] = {
    SAC: ResidualSAC,
    TD3: ResidualTD3,
    TQC: ResidualTQC,
    CrossQ: ResidualCrossQ,
}
"""The residual class of each off-policy SB3 class in ``ALGORITHMS``; an on-policy agent is
its library's class as it is (no safeguard of this module applies to it)."""


def agent_class(algo: str, gated: GatedConfig | None = None) -> type:
    """The class :func:`build_agent` builds and :func:`load_agent` loads for ``algo``."""
    if gated is not None:
        return GatedResidualSAC
    sb3_class = ALGORITHMS[algo].sb3_class
    return RESIDUAL_CLASSES.get(sb3_class, sb3_class)


class GatedResidualSAC(ResidualSAC):
    """SAC whose residual is scaled down where its critic ensemble disagrees.

    The residual's correction is multiplied by ``gate = exp(-std_k Q_k(s, r) / temperature)``,
    the spread of ``n_critics`` independently initialised critics at the proposed action:
    where they agree the residual acts fully; in states unlike its training data, where the
    base may already be right and a correction is a guess, it fades out. The gate applies in
    :meth:`predict`, which SB3 also uses to collect experience, so training sees it too.
    """

    gate_temperature: float = 1.0

    def gate(self, observation: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Per-sample gate in (0, 1] for ``action`` (batched, in [-1, 1]) at ``observation``."""
        return critic_gate(self.policy, observation, action, self.gate_temperature)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        action, state = super().predict(observation, state, episode_start, deterministic)
        return gate_action(self.policy, observation, action, self.gate_temperature), state


SAC_INITIAL_LOG_STD = -1.0
#: Width of the CNN's output for ``global`` features (SB3's default is 256).
GLOBAL_CNN_FEATURES = 64


def has_gaussian_actor(model: Any) -> bool:
    """SAC, TQC and CrossQ: an actor whose ``mu`` layer is the mean before tanh and whose
    ``log_std`` layer its exploration noise (without gSDE)."""
    actor = getattr(model, "actor", None)
    return isinstance(getattr(actor, "action_dist", None), SquashedDiagGaussianDistribution)


def actor_output_layers(model: Any) -> list:
    """The layers whose weights make the residual's mean action (zeroed, decayed)."""
    if has_gaussian_actor(model):
        return [model.actor.mu]
    if isinstance(model, TD3):
        return [model.actor.mu[-2]]
    return [model.policy.action_net]


def zero_init_output(model: Any) -> None:
    """Zero the actor's output layer so the deterministic residual is exactly 0.

    The exploration noise of SAC, TQC and CrossQ starts small too (log-std bias
    ``SAC_INITIAL_LOG_STD``, unless :func:`set_exploration_std` sets it per dimension):
    their ``log_std_init`` only applies with gSDE, and a unit std would make the first
    residual actions as large as alpha allows.
    """
    layers = actor_output_layers(model)
    if isinstance(model, TD3):
        layers.append(model.actor_target.mu[-2])
    with torch.no_grad():
        for layer in layers:
            layer.weight.zero_()
            layer.bias.zero_()
        if has_gaussian_actor(model):
            model.actor.log_std.weight.zero_()
            model.actor.log_std.bias.fill_(SAC_INITIAL_LOG_STD)


def exploration_log_std(exploration_std: float, alpha: Any) -> np.ndarray:
    """Per-dimension log-std of the residual r whose executed noise (alpha * r) has std
    ``exploration_std`` in every dimension."""
    return np.log(exploration_std / alpha_vector(alpha))


def gaussian_entropy(log_std: np.ndarray) -> float:
    """Entropy (nats) of a diagonal Gaussian with these log-stds: SAC's target entropy that
    keeps its noise about this size."""
    return float(np.sum(log_std) + 0.5 * len(log_std) * np.log(2 * np.pi * np.e))


def set_exploration_std(model: Any, log_std: np.ndarray) -> None:
    """Start a Gaussian actor's noise at ``log_std`` (state-independent: the output layer's
    weights zeroed, its bias set)."""
    with torch.no_grad():
        model.actor.log_std.weight.zero_()
        model.actor.log_std.bias.copy_(torch.as_tensor(log_std, dtype=torch.float32))


def build_agent(config: ResidualConfig, env: Any, seed: int, tensorboard_log: str | None = None):
    """The SB3 model of ``config`` on ``env`` (a residual env or a VecEnv of them)."""
    hp = copy.deepcopy(dict(config.hyperparams))  # policy_kwargs are filled in below
    safeguards = config.safeguards
    policy = ALGORITHMS[config.algo].policy_class("MlpPolicy")
    if config.features == "global":
        policy = ALGORITHMS[config.algo].policy_class("MultiInputPolicy")
        # SB3's CNN with a 64-wide output, not 256: the image joins a 27-number vector.
        kwargs = hp.setdefault("policy_kwargs", {})
        kwargs.setdefault("features_extractor_kwargs", {}).setdefault(
            "cnn_output_dim", GLOBAL_CNN_FEATURES
        )
    common = {"seed": seed, "verbose": 0, "tensorboard_log": tensorboard_log, "device": "cpu"}
    cls = agent_class(config.algo, config.gated)
    log_std = None  # the exploration noise per dimension, where the config sets it
    if not ALGORITHMS[config.algo].off_policy:
        model = cls(policy, env, **hp, **common)
    else:
        if config.gated is not None:
            hp.setdefault("policy_kwargs", {})["n_critics"] = int(config.gated.n_critics)
        hp.pop("actor_learning_rate", None)  # not an SB3 argument: set on the model below
        n_step = int(hp.pop("n_step_returns", 1))
        if n_step > 1:  # SB3's own n-step buffer, discounting with the agent's gamma
            hp["replay_buffer_class"] = NStepReplayBuffer
            hp["replay_buffer_kwargs"] = {"n_steps": n_step, "gamma": float(hp.get("gamma", 0.99))}
        log_std = None
        if safeguards.exploration_std is not None:
            log_std = exploration_log_std(safeguards.exploration_std, config.alpha)
            if not issubclass(cls, TD3):
                hp.setdefault("target_entropy", gaussian_entropy(log_std))
        if issubclass(cls, TD3):  # its Gaussian exploration noise, given as one number
            std = float(hp.pop("action_noise_std", 0.1))
            stds = np.full(7, std) if log_std is None else np.exp(log_std)
            hp["action_noise"] = NormalActionNoise(np.zeros(7), stds)
        model = cls(policy, env, **hp, **common)
        model.warmup_steps = int(safeguards.warmup_steps)
        model.exploration_ramp_steps = int(safeguards.exploration_ramp_steps)
        model.critic_only_steps = int(safeguards.critic_only_steps)
        model.output_decay = float(safeguards.output_decay)
        model.actor_penalty = float(safeguards.actor_penalty)
        model.oracle_bc_weight = float(safeguards.oracle_bc_weight)
        model.critic_continuation = safeguards.critic_continuation
        model.actor_learning_rate = configured_actor_learning_rate(config)
        if config.gated is not None:
            model.gate_temperature = float(config.gated.temperature)
    if safeguards.zero_init:
        zero_init_output(model)
    if log_std is not None and has_gaussian_actor(model):
        set_exploration_std(model, log_std)
    return model


def configured_actor_learning_rate(config: ResidualConfig) -> float | None:
    """The actor's own learning rate (``hyperparams.actor_learning_rate``), or None for
    SB3's one rate; set again on a resumed model, which SB3 does not save it with."""
    rate = config.hyperparams.get("actor_learning_rate")
    return None if rate is None else float(rate)


def load_agent(algo: str, path: str, env: Any = None, gated: GatedConfig | None = None):
    """Load a saved SB3 model of ``algo`` (a name in ``ALGORITHMS``); ``gated`` for sac-gated.

    This unpickles: only for a run's own checkpoint (see ``run_directory``), never a
    received file."""
    model = agent_class(algo, gated).load(path, env=env, device="cpu")
    if gated is not None:
        model.gate_temperature = float(gated.temperature)
    return model
