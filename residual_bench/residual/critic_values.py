"""What a residual agent's critics say about an action: the values the safeguards, the gated
residual and the benchmarks that probe a run's critic read.

SAC and TD3 give one value per Q-network (a tuple of tensors), TQC quantiles per network (one
tensor, batch x network x quantile; a network's Q is its quantiles' mean).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def first_critic_value(critic: Any, observations: Any, actions: torch.Tensor) -> torch.Tensor:
    """One critic's value of ``actions``, per sample: the first critic of SAC, TD3 and
    CrossQ (a tuple, one tensor per critic); the first critic's mean quantile for TQC (one
    tensor of shape batch x critic x quantile)."""
    if hasattr(critic, "q1_forward"):  # SB3's critics: only the first network runs
        return critic.q1_forward(observations, actions)
    values = critic(observations, actions)
    if isinstance(values, tuple):
        return values[0]
    return values[:, 0].mean(dim=-1, keepdim=True)


def pessimistic_critic_value(model: Any, observation: np.ndarray, action: np.ndarray) -> float:
    """The minimum over a model's Q-networks of Q(observation, action), for one observation:
    SAC's and TD3's critics give one value per network, TQC's quantiles per network (their
    mean is that network's Q)."""
    obs = torch.as_tensor(observation[None], dtype=torch.float32)
    act = torch.as_tensor(action[None], dtype=torch.float32)
    with torch.no_grad():
        values = model.critic(obs, act)
    per_network = torch.cat(values, dim=1) if isinstance(values, tuple) else values.mean(dim=-1)
    return float(per_network.min())


def critic_gate(
    policy: Any, observation: Any, action: np.ndarray, temperature: float
) -> np.ndarray:
    """``exp(-std_k Q_k(s, r) / temperature)`` of a SAC policy's critic ensemble, per sample."""
    with torch.no_grad():
        obs_tensor, _ = policy.obs_to_tensor(observation)
        act_tensor = torch.as_tensor(action, dtype=torch.float32).reshape(len(obs_tensor), -1)
        values = torch.cat(policy.critic(obs_tensor, act_tensor), dim=1)
        spread = values.std(dim=1).numpy()
    return np.exp(-spread / temperature)


def gate_action(policy: Any, observation: Any, action: Any, temperature: float) -> np.ndarray:
    """``action`` scaled by the :func:`critic_gate` at ``observation`` (any batch shape)."""
    batched = np.asarray(action).reshape(-1, policy.action_space.shape[0])
    gated = batched * critic_gate(policy, observation, batched, temperature)[:, None]
    return gated.reshape(np.shape(action)).astype(np.float32)
