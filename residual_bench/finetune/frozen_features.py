"""The ``bc`` network's frozen encoder in front of RL fine-tuning: the head alone learns.

End-to-end SAC fine-tuning runs the bc image encoder on every sampled batch for the actor,
the critic and the target critic: about a quarter of a second per update on one core
(results/finetune/sac_update_cost.md), so a 300k-step run takes hours. With the encoder
frozen, its output (keypoints, their confidences and the proprioception: the action head's
input) is a function of the observation alone, so it is computed once per decision, here,
and the replay buffer holds those few dozen numbers instead of images. Actor and critic are
then small MLPs on them: the actor is the bc action head, the critic fresh heads.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from residual_bench.finetune.chunked_env import ChunkedBCEnv
from residual_bench.policies.bc.model import BCNet, build_model


class FrozenEncoderFeatures(gym.ObservationWrapper):
    """A :class:`ChunkedBCEnv` whose observations are the frozen bc encoder's output.

    The encoder runs in evaluation mode, as the deployed network does, so the features are
    exactly what the bc action head reads at deployment.
    """

    def __init__(self, env: ChunkedBCEnv, checkpoint: dict[str, Any]) -> None:
        if not isinstance(env, ChunkedBCEnv):
            raise TypeError(f"FrozenEncoderFeatures wraps a ChunkedBCEnv, got {type(env).__name__}")
        super().__init__(env)
        self.net: BCNet = build_model(checkpoint).eval().requires_grad_(False)
        width = self.net.head[0].in_features
        self.observation_space = spaces.Box(-np.inf, np.inf, (width,), np.float32)

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        rgb = torch.as_tensor(observation["rgb"]).permute(2, 0, 1)[None].float() / 255.0
        proprio = torch.as_tensor(observation["proprio"])[None]
        words = torch.as_tensor(observation["words"])[None]
        with torch.no_grad():
            fused, _, _ = self.net.encode(rgb, proprio, words)
        return fused[0].numpy().astype(np.float32)
