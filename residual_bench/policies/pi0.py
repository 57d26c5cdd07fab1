"""``pi0``: PI0 through transformers' native ``PI0ForConditionalGeneration``.

PI0 is a PaliGemma VLM with a flow-matching action expert: one call denoises a whole chunk
(``config.chunk_size`` x ``config.max_action_dim``) from Gaussian noise. The inputs are built
here the way transformers' ``PI0Processor`` builds them, without its torchvision image
processor: ``<image>`` tokens (``vlm_config.image_token_id``, one per patch and camera), then
BOS, the instruction and a newline; pixels resized to the SigLIP size and scaled to [-1, 1]
(mean = std = 0.5); the state zero-padded to ``max_state_dim``. The checkpoint's own action
convention is not stored in its config, so the spec's fields are arguments; the first 7 action
dimensions are used, un-normalised with the dataset mean / std when given.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from residual_bench.policies.base import ActionChunk, PolicySpec
from residual_bench.policies.controller import BaseController
from residual_bench.policies.executor import ChunkExecutor, LatencyModel

PI0_ENV_VAR = "RESIDUAL_BENCH_PI0"
DEFAULT_PI0_CHECKPOINT = "lerobot/pi0_base"


class PI0Base:
    """A PI0 checkpoint answering a chunk of actions per call.

    Args:
        checkpoint: directory written by ``save_pretrained`` with a ``tokenizer.json``, or a
            hub id on machines with hub access.
        control_hz: rate of the native actions.
        chunk_len: rows of each answer (at most ``config.chunk_size``); default all.
        action_repr: native action representation (see ``PolicySpec``).
        gripper: native gripper convention.
        position_unit_m: metres per unit of native translation.
        rotation_unit_rad: radians per unit of native rotation.
        actions_mean: per-dimension mean to un-normalise the 7 used action dims; None: none.
        actions_std: per-dimension standard deviation, with ``actions_mean``.
        state_key: observation key of the proprioceptive state, None to feed zeros.
        camera: observation key of the RGB image.
        num_steps: denoising steps; default the config's.
        device: torch device; default CUDA when available.

    Raises:
        FileNotFoundError: the checkpoint or its tokenizer is missing.
        ValueError: invalid chunk length or statistics.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        control_hz: float = 20.0,
        chunk_len: int | None = None,
        action_repr: str = "delta_ee_euler",
        gripper: str = "absolute_pm1",
        position_unit_m: float = 1.0,
        rotation_unit_rad: float = 1.0,
        actions_mean: list[float] | None = None,
        actions_std: list[float] | None = None,
        state_key: str | None = "proprio",
        camera: str = "rgb",
        num_steps: int | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        # optional dependencies (the vla extra): imported only when a checkpoint is loaded
        from tokenizers import Tokenizer
        from transformers import PI0ForConditionalGeneration

        directory = _resolve(checkpoint)
        if not (directory / "config.json").is_file():
            raise FileNotFoundError(f"PI0 checkpoint {str(directory)!r} has no config.json")
        if not (directory / "tokenizer.json").is_file():
            raise FileNotFoundError(f"PI0 checkpoint {str(directory)!r} has no tokenizer.json")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = PI0ForConditionalGeneration.from_pretrained(str(directory)).to(self.device)
        self.model.eval()
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        config = self.model.config
        vision = config.vlm_config.vision_config
        self.image_size = int(vision.image_size)
        self.tokens_per_image = (vision.image_size // vision.patch_size) ** 2
        self.image_token_id = int(config.vlm_config.image_token_id)
        self.bos_id = self.tokenizer.token_to_id("<bos>")
        if self.bos_id is None:
            self.bos_id = int(config.vlm_config.text_config.bos_token_id)
        chunk_len = config.chunk_size if chunk_len is None else chunk_len
        if not 1 <= chunk_len <= config.chunk_size:
            raise ValueError(f"chunk_len: must be in [1, {config.chunk_size}], got {chunk_len}")
        if (actions_mean is None) != (actions_std is None):
            raise ValueError("actions_mean and actions_std: give both or neither")
        self.mean = None if actions_mean is None else np.asarray(actions_mean, np.float64)
        self.std = None if actions_std is None else np.asarray(actions_std, np.float64)
        if self.mean is not None and not self.mean.shape == self.std.shape == (7,):
            raise ValueError("actions_mean and actions_std: need 7 entries each")
        self.state_key, self.camera, self.num_steps = state_key, camera, num_steps
        self._generator = torch.Generator().manual_seed(0)
        self.spec = PolicySpec(
            name="pi0",
            control_hz=control_hz,
            chunk_len=chunk_len,
            action_dim=7,
            action_repr=action_repr,
            gripper=gripper,
            position_unit_m=position_unit_m,
            rotation_unit_rad=rotation_unit_rad,
            cameras={camera: (self.image_size, self.image_size)},
            needs_instruction=True,
            needs_state=state_key is not None,
            normalization_key=None,
            description=f"PI0 (transformers), {chunk_len}-step flow-matching chunks",
        )

    def reset(self, instruction: str, seed: int | None) -> None:
        """Re-seed the denoising noise so episodes are reproducible."""
        self._generator.manual_seed(0 if seed is None else int(seed))

    def _pixels(self, rgb: np.ndarray) -> torch.Tensor:
        image = Image.fromarray(np.asarray(rgb, dtype=np.uint8))
        image = image.resize((self.image_size, self.image_size), Image.Resampling.BICUBIC)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return ((x - 0.5) / 0.5)[None, None]  # (batch, camera, 3, S, S)

    def _input_ids(self, instruction: str) -> torch.Tensor:
        text = self.tokenizer.encode(f"{instruction}\n", add_special_tokens=False).ids
        ids = [self.image_token_id] * self.tokens_per_image + [self.bos_id] + text
        return torch.tensor([ids], dtype=torch.long)

    def _state(self, obs: dict[str, Any]) -> torch.Tensor:
        size = self.model.config.max_state_dim
        state = torch.zeros(1, size)
        if self.state_key is not None:
            if self.state_key not in obs:
                raise ValueError(f"the pi0 base needs observation key {self.state_key!r}")
            values = torch.as_tensor(np.asarray(obs[self.state_key], np.float32)).flatten()
            state[0, : min(size, values.numel())] = values[:size]
        return state

    def act(self, obs: dict[str, Any], instruction: str) -> ActionChunk:
        """A chunk of ``spec.chunk_len`` actions for the image, state and instruction.

        Raises:
            ValueError: the observation lacks the camera or state key.
        """
        if self.camera not in obs:
            raise ValueError(f"the pi0 base needs observation key {self.camera!r}")
        start = time.perf_counter()
        config = self.model.config
        ids = self._input_ids(instruction).to(self.device)
        shape = (1, config.chunk_size, config.max_action_dim)
        noise = torch.randn(shape, generator=self._generator).to(self.device)
        out = self.model.sample_actions(
            state=self._state(obs).to(self.device),
            input_ids=ids,
            pixel_values=self._pixels(obs[self.camera]).to(self.device),
            noise=noise,
            attention_mask=torch.ones_like(ids),
            pixel_attention_mask=torch.ones(1, 1, dtype=torch.bool, device=self.device),
            num_steps=self.num_steps,
        )
        actions = out[0, : self.spec.chunk_len, :7].float().cpu().numpy().astype(np.float64)
        if self.mean is not None:
            actions = actions * (self.std + 1e-8) + self.mean  # inverse of PI0Processor's
        info = {"infer_time_s": time.perf_counter() - start}
        return ActionChunk(actions.astype(np.float32), info)


def _resolve(checkpoint: str | Path) -> Path:
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        return path
    text = str(checkpoint)
    if path.exists() or text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise FileNotFoundError(f"PI0 checkpoint directory {text!r} does not exist")
    try:
        # optional dependency: huggingface_hub (with transformers), only to fetch a hub id
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=text))
    except Exception as exc:  # offline, unknown repo, network: all mean "not available"
        raise FileNotFoundError(f"PI0 checkpoint {text!r} could not be fetched: {exc}") from None


def pi0_base_factory(env: Any) -> Any:
    """The ``pi0`` controller; checkpoint from ``RESIDUAL_BENCH_PI0``."""
    sim = env.unwrapped
    if getattr(sim, "obs_mode", "rgb") == "state":
        raise ValueError("the pi0 base needs camera images: make the env with obs_mode='rgb'")
    policy = PI0Base(os.environ.get(PI0_ENV_VAR, DEFAULT_PI0_CHECKPOINT), control_hz=sim.control_hz)
    # About 150 ms per chunk on a desktop GPU; replan every 10 actions.
    executor = ChunkExecutor(
        policy, sim.dt, replan_every=min(10, policy.spec.chunk_len),
        latency=LatencyModel(fixed_s=0.13, jitter_s=0.04),
    )  # fmt: skip
    return BaseController(policy, executor)
