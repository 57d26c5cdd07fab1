"""Safeguards of off-policy training that residuals and RL fine-tuning share.

Both start from a policy worth keeping (the zero residual; the behaviour-cloned network) and
both lose it if the actor follows a fresh critic: the critic-only warm-up and the pull back
towards the starting policy (TD3+BC's critic-scaled penalty) are written once, here, below
both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from sb3_contrib import TQC
from stable_baselines3 import SAC

CRITIC_THEN_ACTOR_EVERY_UPDATE = (SAC, TQC)
"""Agents whose every gradient step is a critic step and then an actor step, so the critic's
weights can skip the actor's backward pass in between. Not CrossQ or TD3: their actor steps
every ``policy_delay`` updates only, and a critic left without gradients until then could
not learn."""


class ActorLearningRateMixin:
    """An actor learning rate of its own for an SB3 off-policy agent.

    SB3 gives the actor and the critic one learning rate. A policy worth keeping (the zero
    residual, a pretrained network) is lost if the actor follows a critic that is still
    learning; a smaller rate for the actor alone lets it move only as fast as the critic
    becomes trustworthy (ResFiT's residual actor learns 100x slower than its critic).
    ``actor_learning_rate`` None leaves SB3's update as it is.
    """

    actor_learning_rate: float | None = None

    def _update_learning_rate(self, optimizers: Any) -> None:
        super()._update_learning_rate(optimizers)
        if self.actor_learning_rate is not None:
            for group in self.actor.optimizer.param_groups:
                group["lr"] = self.actor_learning_rate


class CriticWarmupMixin(ActorLearningRateMixin):
    """Critic-only updates for an SB3 off-policy agent's first ``critic_only_steps`` timesteps.

    A fresh critic's action gradients are noise; an actor that follows them from its first
    update walks away from a good initial policy (the zero residual, or a pretrained network
    being fine-tuned) before the critic knows anything. Until ``num_timesteps`` reaches
    ``critic_only_steps`` SB3's update runs as usual and the actor (TD3's target actor, the
    entropy coefficient of SAC, TQC and CrossQ) is then put back, so the policy is exactly the
    one before the update. The actor's buffers are put back too: CrossQ's actor runs its
    batch-renormalisation layers in training mode in its own update, which moves their
    running statistics, and those statistics are part of the policy that acts.

    For SAC and TQC, the actor's step also skips the gradients of the critic's own weights
    (:func:`skip_critic_weight_gradients_in_actor_step`): the same update, cheaper for agents
    whose critic has an image encoder.
    """

    critic_only_steps: int = 0

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if isinstance(self, CRITIC_THEN_ACTOR_EVERY_UPDATE):
            skip_critic_weight_gradients_in_actor_step(self)
        if self.num_timesteps >= self.critic_only_steps:
            return super().train(gradient_steps, batch_size)
        frozen = list(self.actor.parameters()) + list(self.actor.buffers())
        if getattr(self, "actor_target", None) is not None:
            frozen += list(self.actor_target.parameters())
        if getattr(self, "log_ent_coef", None) is not None:
            frozen.append(self.log_ent_coef)
        saved = [p.detach().clone() for p in frozen]
        super().train(gradient_steps, batch_size)
        with torch.no_grad():
            for param, value in zip(frozen, saved, strict=True):
                param.copy_(value)
        return None


def skip_critic_weight_gradients_in_actor_step(model: SAC | TQC) -> None:
    """Make SAC's (or TQC's) actor loss leave the critic's weights out of its backward pass.

    SB3 and sb3-contrib backpropagate the actor loss through the whole critic, image encoder
    included, and the critic's next update throws those weight gradients away (it zeroes them
    before its own backward pass). Here the critic's weights stop requiring gradients from the
    critic's optimizer step until the actor's optimizer step, so the actor loss records only
    the critic's action path: the actor's gradients are the same, the critic's were never used,
    and the backward pass through the critic's encoder is saved. Installed once per model; a
    model whose ``skip_critic_gradients`` is False runs SB3's update unchanged.
    """
    shared = {id(p) for p in model.actor.parameters()}  # a shared encoder is the actor's too
    critic_params = [p for p in model.critic.parameters() if id(p) not in shared]
    for param in critic_params:  # an update that raised midway may have left them off
        param.requires_grad_(True)
    critic_optimizer, actor_optimizer = model.critic.optimizer, model.actor.optimizer
    if getattr(critic_optimizer, "_skips_actor_gradients", False):
        return
    critic_step, actor_step = critic_optimizer.step, actor_optimizer.step

    def after_critic_step(*args: Any, **kwargs: Any) -> Any:
        result = critic_step(*args, **kwargs)
        if getattr(model, "skip_critic_gradients", True):
            for param in critic_params:
                param.requires_grad_(False)
        return result

    def after_actor_step(*args: Any, **kwargs: Any) -> Any:
        result = actor_step(*args, **kwargs)
        for param in critic_params:
            param.requires_grad_(True)
        return result

    critic_optimizer.step = after_critic_step
    actor_optimizer.step = after_actor_step
    critic_optimizer._skips_actor_gradients = True


def critic_scaled_penalty(
    weight: float,
    q_values: torch.Tensor,
    actions: torch.Tensor,
    reference: torch.Tensor | None = None,
) -> torch.Tensor:
    """``weight * mean|Q| * mean((actions - reference)^2)``, TD3+BC's pull towards a policy.

    The weight is relative to the critic's scale (``q_values``, computed without gradients),
    so the trade-off between following the critic and staying near ``reference`` (None: the
    zero action, the residual's base alone) does not depend on the reward's units.
    """
    distance = actions if reference is None else actions - reference
    return weight * q_values.abs().mean() * distance.pow(2).mean()


def add_penalty_to_actor_step(
    optimizer: torch.optim.Optimizer, penalty: Callable[[], torch.Tensor | None]
) -> None:
    """Backpropagate ``penalty()`` right before every step of the actor's ``optimizer``.

    SB3's update has no place for an extra actor loss; adding its gradients to the ones SB3
    has just computed makes one Adam step see both, as if it were part of SB3's loss. A
    ``penalty`` returning None adds nothing. Installed once per optimizer.
    """
    if getattr(optimizer, "_actor_penalty_installed", False):
        return
    sb3_step = optimizer.step

    def step(*args: Any, **kwargs: Any) -> Any:
        loss = penalty()
        if loss is not None:
            loss.backward()
        return sb3_step(*args, **kwargs)

    optimizer.step = step
    optimizer._actor_penalty_installed = True
