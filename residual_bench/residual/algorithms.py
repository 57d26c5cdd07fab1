"""The residual agents' algorithms, declared once: name -> stable-baselines3 class.

The config loader (which ``algo`` a YAML file may name), the agents (which class to build and
to resume) and the weights (which policy class rebuilds a residual's network from its JSON
description) all read :data:`ALGORITHMS`; adding an algorithm is one line here, its residual
class in ``agents`` when it is off-policy, and a YAML file in ``baselines/``. This module
imports only stable-baselines3, sb3-contrib and ``critics``, so every residual module may import it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from sb3_contrib import TQC, CrossQ
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy

from residual_bench.residual.critics import POLICIES


@dataclass(frozen=True)
class Algorithm:
    """One residual algorithm: its SB3 class and what follows from it."""

    sb3_class: type[BaseAlgorithm]
    """The SB3 (or sb3-contrib) class; its ``policy_aliases`` name the policy classes."""
    policies: dict[str, type[BasePolicy]] | None = None
    """Classes built instead of the library's, by policy name: the same networks with
    plain-data options added (:mod:`~residual_bench.residual.critics`' ``critic_layer_norm``)."""

    @property
    def off_policy(self) -> bool:
        """Learns from a replay buffer: warm-up, progressive exploration, critic-only updates,
        the actor penalty and the output decay apply (an on-policy agent has none of them)."""
        return issubclass(self.sb3_class, OffPolicyAlgorithm)

    def policy_class(self, name: str) -> type[BasePolicy] | None:
        """The policy class SB3 builds for ``MlpPolicy`` / ``MultiInputPolicy``, or None
        where the algorithm has no such policy (CrossQ has no ``MultiInputPolicy``)."""
        if self.policies and name in self.policies:
            return self.policies[name]
        return self.sb3_class.policy_aliases.get(name)

    @property
    def policy_takes_use_sde(self) -> bool:
        """Whether the policy's constructor takes ``use_sde`` (TD3's does not)."""
        policy = self.policy_class("MlpPolicy")
        return "use_sde" in inspect.signature(policy).parameters


ALGORITHMS: dict[str, Algorithm] = {
    "sac": Algorithm(SAC, POLICIES["sac"]),
    "td3": Algorithm(TD3, POLICIES["td3"]),
    "ppo": Algorithm(PPO),
    "tqc": Algorithm(TQC, POLICIES["tqc"]),
    "crossq": Algorithm(CrossQ),
}
"""Every algorithm a residual config may name, by the name it uses."""

ALGORITHM_NAMES: tuple[str, ...] = tuple(ALGORITHMS)
OFF_POLICY_NAMES: tuple[str, ...] = tuple(n for n, a in ALGORITHMS.items() if a.off_policy)
