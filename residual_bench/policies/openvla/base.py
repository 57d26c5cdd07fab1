"""``openvla``: OpenVLA run in-process behind the base-policy interface.

Native actions follow OpenVLA's BridgeData convention: end-effector delta xyz in metres, delta
roll / pitch / yaw in radians (per 5 Hz step), gripper in [0, 1] with 1 = open. The network,
tokenizer and statistics come from a checkpoint directory in the official layout (see
:mod:`~residual_bench.policies.openvla.loading`). transformers is imported only when a model is
loaded, so this module and the factories are cheap to import.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from residual_bench.policies.base import ActionChunk
from residual_bench.policies.controller import BaseController
from residual_bench.policies.executor import ChunkExecutor, LatencyModel
from residual_bench.policies.openvla.action_tokenizer import ActionStats, resolve_unnorm_key
from residual_bench.policies.openvla.config import OpenVLAConfig
from residual_bench.policies.openvla.loading import load_model, resolve_checkpoint
from residual_bench.policies.openvla.processing import ImagePreprocessor, PromptTokenizer
from residual_bench.policies.openvla.spec import CONTROL_HZ, openvla_spec

__all__ = ["CONTROL_HZ", "OpenVLABase", "default_device", "openvla_base_factory", "openvla_spec"]

OPENVLA_ENV_VAR = "RESIDUAL_BENCH_OPENVLA"
UNNORM_KEY_ENV_VAR = "RESIDUAL_BENCH_OPENVLA_UNNORM_KEY"
DEFAULT_CHECKPOINT = "openvla/openvla-7b"
DEFAULT_UNNORM_KEY = "bridge_orig"


def default_device() -> str:
    """CUDA when available, else the CPU (usable only for tiny checkpoints)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


class OpenVLABase:
    """An OpenVLA checkpoint answering one action per call.

    Args:
        checkpoint: checkpoint directory, or a hub id on machines with hub access.
        unnorm_key: dataset whose statistics un-normalise actions; None only for a model
            trained on a single dataset.
        device: torch device; default CUDA when available.
        dtype: weights' dtype; default bfloat16 on CUDA (as released), float32 on the CPU.
        camera: observation key of the RGB image.
        name: the spec's name.

    Raises:
        FileNotFoundError: the directory or one of its required files is missing.
        ValueError: unknown ``unnorm_key`` (the message lists the available ones), statistics
            that are not 7-D, a tokenizer that does not match the config, or weights that do not
            fit the network described by ``config.json``.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        unnorm_key: str | None = DEFAULT_UNNORM_KEY,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        camera: str = "rgb",
        name: str = "openvla",
    ) -> None:
        directory = resolve_checkpoint(checkpoint)
        self.config = OpenVLAConfig.from_dir(directory)
        # Statistics and tokenizer are checked before the (possibly 7B) weights are read.
        key = resolve_unnorm_key(self.config.norm_stats, unnorm_key)
        self.stats = ActionStats.from_norm_stats(self.config.norm_stats, key)
        if self.stats.action_dim != 7:
            raise ValueError(
                f"norm_stats[{key!r}]: {self.stats.action_dim}-D actions, the env needs 7-D"
            )
        self.tokenizer = PromptTokenizer(directory)
        if self.tokenizer.vocab_size != self.config.tokenizer_vocab_size:
            raise ValueError(
                f"{directory}: tokenizer.json has {self.tokenizer.vocab_size} tokens but "
                f"config.json implies {self.config.tokenizer_vocab_size} (text_config vocab_size "
                "minus pad_to_multiple_of); the action tokens would be misread"
            )
        self.preprocessor = ImagePreprocessor.from_dir(
            directory,
            self.config.timm_model_ids,
            self.config.image_size,
            self.config.image_resize_strategy,
        )
        device = torch.device(device if device is not None else default_device())
        if dtype is None:
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        self.model = load_model(directory, self.config, device, dtype)
        self.directory = directory
        self.camera = camera
        self._prompt_cache: dict[str, list[int]] = {}
        size = self.config.image_size
        self.spec = openvla_spec(
            name,
            camera,
            size,
            key,
            f"OpenVLA: 7 greedy action tokens per call, un-normalised with the {key!r} statistics",
        )

    def reset(self, instruction: str, seed: int | None) -> None:
        """Nothing to reset: decoding is greedy and the model keeps no history."""

    def input_ids(self, instruction: str) -> list[int]:
        """The prompt's token ids (cached: an episode repeats one instruction)."""
        if instruction not in self._prompt_cache:
            self._prompt_cache[instruction] = self.tokenizer.encode_prompt(instruction)
        return self._prompt_cache[instruction]

    def act(self, obs: dict[str, Any], instruction: str) -> ActionChunk:
        """One action from the camera image and the instruction.

        Returns:
            A (1, 7) chunk; ``info`` has the generated ``tokens``, the un-clipped
            ``raw_action`` and ``infer_time_s``.

        Raises:
            ValueError: the observation has no image under the camera key.
        """
        if self.camera not in obs:
            raise ValueError(
                f"the openvla base needs observation key {self.camera!r}; make the env with "
                "obs_mode='rgb'"
            )
        start = time.perf_counter()
        pixels = self.preprocessor(obs[self.camera])
        raw, tokens = self.model.predict_action(self.input_ids(instruction), pixels, self.stats)
        action = raw.copy()
        # The gripper is decoded from [-1, 1] bins; the model was trained on [0, 1] targets, so
        # anything outside is the same command said louder.
        action[6] = np.clip(action[6], 0.0, 1.0)
        info = {
            "tokens": tokens.tolist(),
            "raw_action": raw.tolist(),
            "infer_time_s": time.perf_counter() - start,
        }
        return ActionChunk(action[None].astype(np.float32), info)


def openvla_base_factory(env: Any) -> Any:
    """The ``openvla`` controller: checkpoint and ``unnorm_key`` from the environment
    variables ``RESIDUAL_BENCH_OPENVLA`` / ``RESIDUAL_BENCH_OPENVLA_UNNORM_KEY``."""
    sim = env.unwrapped
    if getattr(sim, "obs_mode", "rgb") == "state":
        raise ValueError("the openvla base needs camera images: make the env with obs_mode='rgb'")
    policy = OpenVLABase(
        os.environ.get(OPENVLA_ENV_VAR, DEFAULT_CHECKPOINT),
        os.environ.get(UNNORM_KEY_ENV_VAR, DEFAULT_UNNORM_KEY),
    )
    # About 4-6 actions per second on a desktop GPU: answers 170-250 ms late.
    executor = ChunkExecutor(policy, sim.dt, latency=LatencyModel(fixed_s=0.17, jitter_s=0.08))
    return BaseController(policy, executor)
