"""``bc``: a small learned visuomotor base, frozen once trained.

Our stand-in for a VLA that runs on two CPU cores: a CNN on the 84 px camera image, fused with
proprioception and the instruction features, predicting a chunk of the next 4 actions. It is
trained by behaviour cloning on the scripted expert (``bench base collect`` then
``bench base train bc``), runs at 5 Hz (one chunk every 4 control steps) behind the executor's
latency, and makes the genuine errors of a learned policy.

Checkpoints are ``torch.save`` dictionaries read back with ``weights_only=True`` (no pickle of
code): ``{"format": "residual-bench-bc", "version": 1, "config", "model", "proprio_mean",
"proprio_std", "provenance"}``.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from residual_bench.policies.base import ActionChunk, PolicySpec
from residual_bench.sim.panda import POSITION_SCALE, ROTATION_SCALE

CHECKPOINT_FORMAT = "residual-bench-bc"
CHECKPOINT_VERSION = 1
SHIPPED_CHECKPOINT = "data/bc_base.pt"


class BCNet(nn.Module):
    """Image + proprioception + instruction -> a chunk of ``chunk_len`` 7-D actions in [-1, 1]."""

    def __init__(self, chunk_len: int = 4, proprio_dim: int = 20, instruction_dim: int = 32):
        super().__init__()
        self.chunk_len = chunk_len
        self.vision = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=2), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Linear(32 * 16 + proprio_dim + instruction_dim, 256), nn.ReLU(),
            nn.Linear(256, 256), nn.ReLU(),
            nn.Linear(256, chunk_len * 7),
        )  # fmt: skip

    def forward(self, rgb: torch.Tensor, proprio: torch.Tensor, instruction: torch.Tensor):
        """``rgb`` (B, H, W, 3) uint8; ``proprio`` normalised; returns (B, chunk_len, 7)."""
        image = rgb.permute(0, 3, 1, 2).float() / 255.0
        features = torch.cat([self.vision(image), proprio, instruction], dim=1)
        return torch.tanh(self.head(features)).view(-1, self.chunk_len, 7)


def load_checkpoint(path: str | Path | None = None) -> dict[str, Any]:
    """Read and check a bc checkpoint (the shipped one when ``path`` is None).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a bc checkpoint of a known version, or is corrupt.
    """
    if path is None:
        path = Path(str(resources.files("residual_bench").joinpath(SHIPPED_CHECKPOINT)))
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"bc checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        raise ValueError(f"{path}: not a readable bc checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a bc checkpoint (no format {CHECKPOINT_FORMAT!r})")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path}: bc checkpoint version {ckpt.get('version')!r}, expected {CHECKPOINT_VERSION}"
        )
    for key in ("config", "model", "proprio_mean", "proprio_std"):
        if key not in ckpt:
            raise ValueError(f"{path}: bc checkpoint lacks {key!r}")
    return ckpt


def build_model(ckpt: dict[str, Any]) -> BCNet:
    """The network of a checkpoint, weights loaded, in eval mode."""
    model = BCNet(**ckpt["config"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise ValueError(f"bc checkpoint weights do not fit the network: {exc}") from None
    return model.eval()


class BCBase:
    """The learned base behind the :class:`~residual_bench.policies.base.BasePolicy` interface.

    Native actions are the env's normalised ones (units of ``POSITION_SCALE`` metres and
    ``ROTATION_SCALE`` radians per 20 Hz step, gripper absolute in [-1, 1]).

    Args:
        checkpoint: path of a checkpoint; None loads the one shipped with the package.
    """

    def __init__(self, checkpoint: str | Path | None = None) -> None:
        ckpt = load_checkpoint(checkpoint)
        self.model = build_model(ckpt)
        self.proprio_mean = torch.as_tensor(np.asarray(ckpt["proprio_mean"]), dtype=torch.float32)
        self.proprio_std = torch.as_tensor(np.asarray(ckpt["proprio_std"]), dtype=torch.float32)
        self.provenance = ckpt.get("provenance", {})
        self.spec = PolicySpec(
            name="bc",
            control_hz=20.0,
            chunk_len=self.model.chunk_len,
            action_dim=7,
            action_repr="delta_ee_euler",
            gripper="absolute_pm1",
            position_unit_m=POSITION_SCALE,
            rotation_unit_rad=ROTATION_SCALE,
            cameras={"rgb": (84, 84)},
            needs_instruction=True,
            needs_state=False,
            normalization_key=None,
            description="behaviour-cloned CNN on the 84 px camera, 4-step chunks",
        )

    def reset(self, instruction: str, seed: int | None) -> None:
        """Nothing to reset: the network is deterministic and stateless."""

    @torch.no_grad()
    def act(self, obs: dict, instruction: str) -> ActionChunk:
        """A chunk from the camera image, proprioception and instruction features."""
        for key in ("rgb", "proprio", "instruction"):
            if key not in obs:
                raise ValueError(
                    f"the bc base needs observation key {key!r}; make the env with "
                    "obs_mode='rgb' and image_size=84"
                )
        if obs["rgb"].shape != (84, 84, 3):
            raise ValueError(f"the bc base needs 84 x 84 images, got {obs['rgb'].shape}")
        start = time.perf_counter()
        rgb = torch.as_tensor(np.asarray(obs["rgb"])[None])
        proprio = (torch.as_tensor(obs["proprio"][None]) - self.proprio_mean) / self.proprio_std
        words = torch.as_tensor(obs["instruction"][None])
        chunk = self.model(rgb, proprio, words)[0].numpy().astype(np.float32)
        return ActionChunk(chunk, {"infer_time_s": time.perf_counter() - start})
