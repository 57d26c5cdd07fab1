"""``bc``: a small learned visuomotor base, frozen once trained.

Our stand-in for a VLA that runs on two CPU cores: a CNN on the 84 px camera image, conditioned
on the instruction features and fused with proprioception, predicting a chunk of the next 4
actions. It is
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

from residual_bench.language import word_counts
from residual_bench.policies.base import ActionChunk, PolicySpec
from residual_bench.policies.controller import BaseController
from residual_bench.policies.executor import ChunkExecutor, LatencyModel
from residual_bench.sim.panda import POSITION_SCALE, ROTATION_SCALE

CHECKPOINT_FORMAT = "residual-bench-bc"
CHECKPOINT_VERSION = 2
SHIPPED_CHECKPOINT = "data/bc_base.pt"


def coordinate_grid(height: int, width: int) -> torch.Tensor:
    """(2, H, W) x and y pixel-centre coordinates in [-1, 1] (x left to right, y top to bottom)."""
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y])


def spatial_softmax(heatmaps: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) logits -> (B, K, 2) expected x, y under each map's softmax."""
    b, k, h, w = heatmaps.shape
    weights = torch.softmax(heatmaps.reshape(b, k, h * w), dim=-1)
    grid = coordinate_grid(h, w).to(heatmaps.device).reshape(2, h * w)
    return torch.einsum("bkn,cn->bkc", weights, grid)


class BCNet(nn.Module):
    """Image + proprioception + instruction -> a chunk of ``chunk_len`` 7-D actions in [-1, 1].

    A small CNN keeps a 21 x 21 feature map; the instruction modulates it (FiLM) so heatmaps
    can light up on the instructed object, the plate and the gripper. A spatial softmax turns
    the heatmaps into image keypoints. Training supervises the keypoints with the masks'
    centroids (see ``residual_bench.policies.bc.train``). Two layouts:

    - default (the shipped base): coordinate channels in the CNN, a linear FiLM, and an action
      head that sees the keypoints, pooled image features, proprioception and the instruction;
    - ``object_centric``: no coordinate channels (a heatmap can only light up on what the
      pixels show, not where training scenes tended to put things), FiLM through a small MLP
      (which can undo the hashed instruction features' word collisions), and an action head
      that sees the image only through the keypoints and how peaked each heatmap is, plus
      proprioception - so what it learns about one scene carries over to the next
      (results/bc/README.md measures both).

    With a ``vocabulary`` the network reads the instruction as counts of those words
    (:func:`~residual_bench.language.word_counts`, computed from the instruction string by
    :class:`BCBase`) instead of the env's hashed features, whose slots some colour words
    share with template words.

    ``position_only`` networks predict the translation and the gripper and leave the rotation
    at zero: the arm's controller then holds the hand pointing down, as top-down
    pick-and-place policies do. A camera network that must also predict the expert's small
    tilt corrections gets them slightly wrong every step, and the hand tilts further and
    further over an episode (results/bc/README.md).
    """

    def __init__(
        self,
        chunk_len: int = 4,
        proprio_dim: int = 20,
        instruction_dim: int = 32,
        channels: int = 32,
        keypoints: int = 3,
        object_centric: bool = False,
        position_only: bool = False,
        vocabulary: list[str] | None = None,
    ):
        super().__init__()
        self.vocabulary = list(vocabulary) if vocabulary is not None else None
        if self.vocabulary is not None:
            instruction_dim = len(self.vocabulary)
        self.chunk_len = chunk_len
        self.position_only = position_only
        self.keypoints = keypoints
        self.object_centric = object_centric
        self.register_buffer("coords", coordinate_grid(84, 84), persistent=False)
        self.trunk = nn.Sequential(
            nn.Conv2d(3 if object_centric else 5, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        # Modules are created in the same order in both layouts (it fixes the initial
        # weights drawn for a seed), so the shipped base's training run is reproducible.
        if object_centric:
            self.film = nn.Sequential(
                nn.Linear(instruction_dim, 64), nn.ReLU(), nn.Linear(64, 2 * channels)
            )
        else:
            self.film = nn.Linear(instruction_dim, 2 * channels)
        self.refine = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
        self.heatmaps = nn.Conv2d(channels, keypoints, 1)
        if object_centric:
            head_in = keypoints * 3 + proprio_dim
        else:
            self.pooled = nn.Sequential(
                nn.Conv2d(channels, 16, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten()
            )
            head_in = keypoints * 2 + 16 * 16 + proprio_dim + instruction_dim
        self.head = nn.Sequential(
            nn.Linear(head_in, 256), nn.ReLU(),
            nn.Linear(256, 256), nn.ReLU(),
            nn.Linear(256, chunk_len * len(self.predicted_dims)),
        )  # fmt: skip

    @property
    def predicted_dims(self) -> list[int]:
        """The action dimensions the network predicts (the others stay zero)."""
        return [0, 1, 2, 6] if self.position_only else list(range(7))

    def forward_with_heatmaps(
        self, rgb: torch.Tensor, proprio: torch.Tensor, instruction: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Actions (B, chunk_len, 7), keypoints (B, K, 2) and heatmap logits (B, K, 21, 21)."""
        image = rgb.permute(0, 3, 1, 2).float() / 255.0
        fused, points, logits = self.encode(image, proprio, instruction)
        return self.chunk_from_head(self.head(fused)), points, logits

    def encode(
        self, image: torch.Tensor, proprio: torch.Tensor, instruction: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The action head's input (B, head_in), keypoints and heatmap logits.

        ``image`` is (B, 3, 84, 84) in [0, 1]. RL fine-tuning (``residual_bench.finetune.rl``)
        trains this encoder under its own action head.
        """
        if not self.object_centric:
            image = torch.cat([image, self.coords.expand(image.shape[0], -1, -1, -1)], dim=1)
        features = self.trunk(image)
        scale, shift = self.film(instruction).chunk(2, dim=1)
        features = features * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
        features = self.refine(features)
        logits = self.heatmaps(features)
        points = spatial_softmax(logits)
        if self.object_centric:
            peak = torch.log_softmax(logits.flatten(2), dim=-1).max(dim=-1).values
            fused = torch.cat([points.flatten(1), peak, proprio], dim=1)
        else:
            pooled = self.pooled(features)
            fused = torch.cat([points.flatten(1), pooled, proprio, instruction], dim=1)
        return fused, points, logits

    def chunk_from_head(self, head_output: torch.Tensor) -> torch.Tensor:
        """(B, chunk_len * predicted dims) head output before tanh -> (B, chunk_len, 7)."""
        dims = self.predicted_dims
        predicted = torch.tanh(head_output).view(-1, self.chunk_len, len(dims))
        if self.position_only:
            actions = predicted.new_zeros(predicted.shape[0], self.chunk_len, 7)
            actions[..., dims] = predicted
        else:
            actions = predicted
        return actions

    def forward_with_keypoints(
        self, rgb: torch.Tensor, proprio: torch.Tensor, instruction: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions (B, chunk_len, 7) and image keypoints (B, keypoints, 2)."""
        actions, points, _ = self.forward_with_heatmaps(rgb, proprio, instruction)
        return actions, points

    def forward(self, rgb: torch.Tensor, proprio: torch.Tensor, instruction: torch.Tensor):
        """``rgb`` (B, 84, 84, 3) uint8; ``proprio`` normalised; returns (B, chunk_len, 7)."""
        return self.forward_with_keypoints(rgb, proprio, instruction)[0]


def shipped_checkpoint() -> Path:
    """Where the checkpoint shipped with the package is."""
    return Path(str(resources.files("residual_bench").joinpath(SHIPPED_CHECKPOINT)))


def load_checkpoint(path: str | Path | None = None) -> dict[str, Any]:
    """Read and check a bc checkpoint (the shipped one when ``path`` is None).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a bc checkpoint of a known version, or is corrupt.
    """
    path = shipped_checkpoint() if path is None else Path(path)
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
            holds_rotation=self.model.position_only,
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
        if self.model.vocabulary is not None:
            words = torch.as_tensor(word_counts(instruction, self.model.vocabulary)[None])
        else:
            words = torch.as_tensor(obs["instruction"][None])
        chunk = self.model(rgb, proprio, words)[0].numpy().astype(np.float32)
        return ActionChunk(chunk, {"infer_time_s": time.perf_counter() - start})


def bc_controller(env: Any, checkpoint: str | Path | None = None) -> Any:
    """The bc base as deployed, behind ``env``: one 4-step chunk every 4 control steps (5 Hz),
    answered 50-100 ms late (``checkpoint``: None for the shipped one).

    Raises:
        ValueError: ``env`` has no 84 x 84 camera image.
    """
    spaces = getattr(env.observation_space, "spaces", {})
    rgb = spaces.get("rgb")
    if rgb is None or rgb.shape != (84, 84, 3):
        raise ValueError(
            "the bc base needs camera images: make the env with obs_mode='rgb' and image_size=84"
        )
    policy = BCBase(checkpoint)
    executor = ChunkExecutor(
        policy,
        env.unwrapped.dt,
        replan_every=4,
        latency=LatencyModel(fixed_s=0.05, jitter_s=0.05),
    )
    return BaseController(policy, executor)
