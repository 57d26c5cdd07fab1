"""The ``bc`` base's own MDP, for fine-tuning it with RL: one decision is one action chunk.

The chunk is executed open-loop over ``chunk_len`` control steps (5 Hz for the shipped base),
so a network fine-tuned on this env is deployed exactly as the base is; the decision's reward
is the sum of the env's rewards over its control steps, and while the env reports the base
stalled (the ``latency`` suite) the last action is held, as the executor does.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from residual_bench.language import word_counts
from residual_bench.policies.bc.model import BCNet


class ChunkedBCEnv(gym.Wrapper):
    """The env as the bc network sees it, one action chunk per step.

    Observations are ``{"rgb": (84, 84, 3) uint8, "proprio": normalised with the checkpoint's
    statistics, "words": the instruction as the network reads it}``; the action is the chunk's
    predicted dimensions, flattened, in [-1, 1] (the others are 0, as in
    :meth:`BCNet.chunk_from_head`). ``info["control_steps"]`` counts the env's own steps.
    """

    def __init__(self, env: gym.Env, checkpoint: dict[str, Any]) -> None:
        super().__init__(env)
        rgb = getattr(env.observation_space, "spaces", {}).get("rgb")
        if rgb is None or rgb.shape != (84, 84, 3):
            raise ValueError("finetune-rl needs the env's 84 x 84 camera (obs_mode='rgb')")
        net = BCNet(**checkpoint["config"])
        self.vocabulary = net.vocabulary
        self.chunk_len = net.chunk_len
        self.dims = net.predicted_dims
        self.proprio_mean = np.asarray(checkpoint["proprio_mean"], dtype=np.float32)
        self.proprio_std = np.asarray(checkpoint["proprio_std"], dtype=np.float32)
        hashed = env.observation_space["instruction"].shape[0]
        n_words = len(self.vocabulary) if self.vocabulary is not None else hashed
        self.observation_space = spaces.Dict(
            {
                "rgb": spaces.Box(0, 255, (84, 84, 3), np.uint8),
                "proprio": spaces.Box(-np.inf, np.inf, self.proprio_mean.shape, np.float32),
                "words": spaces.Box(0.0, np.inf, (n_words,), np.float32),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (self.chunk_len * len(self.dims),), np.float32)
        self.control_steps = 0
        self._instruction = ""
        self._stalled = False
        self._last_action: np.ndarray | None = None

    def _observe(self, obs: dict[str, Any]) -> dict[str, np.ndarray]:
        if self.vocabulary is not None:
            words = word_counts(self._instruction, self.vocabulary)
        else:
            words = obs["instruction"]
        proprio = (np.asarray(obs["proprio"], np.float32) - self.proprio_mean) / self.proprio_std
        return {
            "rgb": np.asarray(obs["rgb"], np.uint8),
            "proprio": proprio.astype(np.float32),
            "words": np.asarray(words, np.float32),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._instruction, self._stalled, self._last_action = info["instruction"], False, None
        return self._observe(obs), info

    def chunk(self, action: np.ndarray) -> np.ndarray:
        """The (chunk_len, 7) env actions of a flattened chunk."""
        flat = np.asarray(action, np.float32).reshape(self.chunk_len, len(self.dims))
        if not np.all(np.isfinite(flat)):
            raise ValueError("finetune-rl action chunk contains NaN or inf")
        actions = np.zeros((self.chunk_len, 7), np.float32)
        actions[:, self.dims] = np.clip(flat, -1.0, 1.0)
        return actions

    def step(self, action: np.ndarray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        total = 0.0
        for row in self.chunk(action):
            # A stalled base delivers nothing new: the last action goes on, as in the executor,
            # also into the next decision.
            stalled = self._stalled and self._last_action is not None
            executed = self._last_action if stalled else row
            obs, reward, terminated, truncated, info = self.env.step(executed)
            self._last_action = executed
            self.control_steps += 1
            total += float(reward)
            self._stalled = bool(info.get("base_stalled", False))
            if terminated or truncated:
                break
        info["control_steps"] = self.control_steps
        return self._observe(obs), total, terminated, truncated, info
