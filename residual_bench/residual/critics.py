"""Policies whose critics may normalise their hidden layers (``critic_layer_norm``).

LayerNorm after every hidden layer of the critics is what lets RLPD and REDQ take many
gradient steps per environment step without the Q-values running away, and what ResFiT's
residual critics use. Stable-baselines3 and sb3-contrib build their critics without it, so
each policy here is the library's own class plus one plain-data keyword,
``critic_layer_norm`` (default false: then the network, its parameters and the random draws
that initialise them are exactly the library's). Because the keyword is data, a residual's
JSON description can ask for it and :mod:`~residual_bench.residual.weights` rebuilds the
same network without any code from the file.
"""

from __future__ import annotations

from typing import Any

from sb3_contrib.tqc.policies import MultiInputPolicy as TQCMultiInputPolicy
from sb3_contrib.tqc.policies import TQCPolicy
from stable_baselines3.common.torch_layers import create_mlp
from stable_baselines3.sac.policies import MultiInputPolicy as SACMultiInputPolicy
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import MultiInputPolicy as TD3MultiInputPolicy
from stable_baselines3.td3.policies import TD3Policy
from torch import nn


class LayerNormCriticMixin:
    """Rebuilds each critic network of an SB3 actor-critic policy with a LayerNorm after
    every hidden linear layer (before the activation), when ``critic_layer_norm`` is set."""

    critic_layer_norm: bool = False

    def __init__(self, *args: Any, critic_layer_norm: bool = False, **kwargs: Any) -> None:
        # Set before the library's constructor, which builds the critics through make_critic.
        self.critic_layer_norm = bool(critic_layer_norm)
        super().__init__(*args, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["critic_layer_norm"] = self.critic_layer_norm
        return data

    def make_critic(self, features_extractor=None):
        critic = super().make_critic(features_extractor)
        if not self.critic_layer_norm:
            return critic
        kwargs = self.critic_kwargs
        for index, old in enumerate(critic.q_networks):
            layers = create_mlp(
                old[0].in_features,
                old[-1].out_features,
                kwargs["net_arch"],
                kwargs["activation_fn"],
                post_linear_modules=[nn.LayerNorm],
            )
            network = nn.Sequential(*layers).to(self.device)
            critic.add_module(f"qf{index}", network)
            critic.q_networks[index] = network
        return critic


class ResidualSACPolicy(LayerNormCriticMixin, SACPolicy):
    """SB3's ``SACPolicy`` with optional LayerNorm critics."""


class ResidualSACMultiInputPolicy(LayerNormCriticMixin, SACMultiInputPolicy):
    """SB3's SAC ``MultiInputPolicy`` (image features) with optional LayerNorm critics."""


class ResidualTD3Policy(LayerNormCriticMixin, TD3Policy):
    """SB3's ``TD3Policy`` with optional LayerNorm critics."""


class ResidualTD3MultiInputPolicy(LayerNormCriticMixin, TD3MultiInputPolicy):
    """SB3's TD3 ``MultiInputPolicy`` with optional LayerNorm critics."""


class ResidualTQCPolicy(LayerNormCriticMixin, TQCPolicy):
    """sb3-contrib's ``TQCPolicy`` with optional LayerNorm critics."""


class ResidualTQCMultiInputPolicy(LayerNormCriticMixin, TQCMultiInputPolicy):
    """sb3-contrib's TQC ``MultiInputPolicy`` with optional LayerNorm critics."""


POLICIES: dict[str, dict[str, type]] = {
    "sac": {"MlpPolicy": ResidualSACPolicy, "MultiInputPolicy": ResidualSACMultiInputPolicy},
    "td3": {"MlpPolicy": ResidualTD3Policy, "MultiInputPolicy": ResidualTD3MultiInputPolicy},
    "tqc": {"MlpPolicy": ResidualTQCPolicy, "MultiInputPolicy": ResidualTQCMultiInputPolicy},
}
"""The policy classes built instead of the library's, by algorithm and SB3 policy name."""
