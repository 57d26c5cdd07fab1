"""Training the ``bc`` base by behaviour cloning (``bench base train bc``).

A readable loop: random-shift image augmentation, mean-squared error on the next
``chunk_len`` expert actions (the chunk is padded with the episode's last action) plus two
auxiliary losses on the network's image keypoints of the target object, the plate and the
gripper (where visible): the squared error of each keypoint and the cross-entropy of each
heatmap against the cell its keypoint falls in. Adam with the learning rate decaying by
``LR_DECAY`` per epoch. After every epoch the full training state (network, optimiser,
generator, epoch) is written to ``<out>.train.pt``, so an interrupted run resumes where it
stopped; the final file ``<out>`` holds only what the base needs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from residual_bench.language import instruction_words, word_counts
from residual_bench.policies.bc.data import load_demonstrations
from residual_bench.policies.bc.model import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    BCNet,
    build_model,
    load_checkpoint,
)
from residual_bench.run_directory import write_file_atomically

LR_DECAY = 0.85
HEATMAP_WEIGHT = 0.1


def heatmap_cross_entropy(logits: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, K) cross-entropy of each heatmap's softmax against the cell its keypoint falls in.

    The loss on the expected position alone is satisfied by a heatmap spread over the right
    object and a distractor alike; this one asks for a peak on the right object.
    """
    b, k, h, w = logits.shape
    col = ((points[..., 0] + 1) / 2 * w).long().clamp(0, w - 1)
    row = ((points[..., 1] + 1) / 2 * h).long().clamp(0, h - 1)
    log_probs = torch.log_softmax(logits.reshape(b, k, h * w), dim=-1)
    return -log_probs.gather(-1, (row * w + col)[..., None])[..., 0]


def texts(data: dict[str, np.ndarray]) -> np.ndarray:
    """The instruction of every frame; a clear error for data recorded without them."""
    if "text" not in data:
        raise ValueError(
            "this network reads instruction words, but the demonstrations hold no instruction "
            "text; collect them again with `bench base collect`"
        )
    return data["text"]


def instruction_inputs(data: dict[str, np.ndarray], vocabulary: list[str] | None) -> torch.Tensor:
    """What the network reads of each frame's instruction: the env's features, or the word
    counts of ``vocabulary`` (which needs the demonstrations' ``text``)."""
    if vocabulary is None:
        return torch.as_tensor(data["instruction"])
    unique, inverse = np.unique(texts(data), return_inverse=True)
    counts = np.stack([word_counts(str(t), vocabulary) for t in unique])
    return torch.as_tensor(counts[inverse.reshape(-1)])


def chunk_targets(actions: np.ndarray, episodes: np.ndarray, chunk_len: int) -> np.ndarray:
    """For every step, its next ``chunk_len`` actions within the same episode (N, H, 7)."""
    n = len(actions)
    index = np.arange(n)[:, None] + np.arange(chunk_len)[None, :]
    index = np.minimum(index, n - 1)
    # Past the end of its episode a row repeats the episode's last action.
    last = np.array([np.flatnonzero(episodes == e)[-1] for e in episodes])
    index = np.minimum(index, last[:, None])
    return actions[index]


def frame_targets(data: dict[str, np.ndarray], chunk_len: int) -> np.ndarray:
    """Every frame's training target (N, ``chunk_len``, 7): its own labelled chunk where the
    data has one (``action_chunk``: DAgger's labels, planned from the frame's state), else its
    episode's next actions (:func:`chunk_targets`, the demonstrations).

    Raises:
        ValueError: ``action_chunk`` holds chunks of another length or shape.
    """
    if "action_chunk" not in data:
        return chunk_targets(data["action"], data["episode"], chunk_len)
    chunks = np.asarray(data["action_chunk"], dtype=np.float32)
    if chunks.shape != (len(data["action"]), chunk_len, 7):
        raise ValueError(
            f"action_chunk: expected shape {(len(data['action']), chunk_len, 7)} "
            f"(a chunk per frame, the network's chunk length), got {chunks.shape}"
        )
    return chunks


def random_shift(
    rgb: torch.Tensor, generator: torch.Generator, pad: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift each image by up to ``pad`` pixels (replicate padding): cheap camera jitter.

    Returns the shifted images and each image's content shift (B, 2) in normalised x, y units,
    to move keypoint labels with the image.
    """
    b, h, w, _ = rgb.shape
    padded = torch.nn.functional.pad(rgb.permute(0, 3, 1, 2).float(), [pad] * 4, mode="replicate")
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
    # A crop starting dx pixels into the padded image moves content by (pad - dx) pixels.
    shift = torch.stack([(pad - dx) * 2.0 / w, (pad - dy) * 2.0 / h], dim=1)
    return out.permute(0, 2, 3, 1).to(torch.uint8), shift


def train_bc(
    data_path: str | Path | dict[str, np.ndarray],
    out: str | Path,
    epochs: int = 20,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 1e-3,
    chunk_len: int = 4,
    keypoint_weight: float = 1.0,
    heatmap_weight: float | None = None,
    resume: bool = True,
    progress: bool = True,
    init: str | Path | None = None,
    object_centric: bool = False,
    position_only: bool = False,
    own_vocabulary: bool = False,
) -> dict[str, Any]:
    """Train a bc network on demonstrations; returns a summary (final loss, epochs, time).

    ``data_path`` is a demonstrations file or its arrays already loaded. ``object_centric``
    and ``position_only`` pick those options of :class:`BCNet` (the loss then leaves out the
    rotation it does not predict); ``own_vocabulary`` gives the network the vocabulary of
    the demonstrations' instructions (see :class:`BCNet`). ``heatmap_weight`` defaults to
    ``HEATMAP_WEIGHT`` for the object-centric layout and to 0 for the default one. ``init``
    fine-tunes the network of that checkpoint (its layout, weights and proprioception
    normalisation) instead of starting from random weights; the DAgger baseline does this.

    Raises:
        FileExistsError: ``out`` already exists (a finished model is never overwritten).
    """
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose another --out")
    state_path = out.with_name(out.name + ".train.pt")
    data = data_path if isinstance(data_path, dict) else load_demonstrations(data_path)
    rgb = torch.as_tensor(data["rgb"])
    proprio = torch.as_tensor(data["proprio"])
    keypoints = torch.as_tensor(data["keypoints"])
    visible = torch.as_tensor(data["keypoint_visible"]).float()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    config = {"chunk_len": chunk_len, "channels": 32, "keypoints": keypoints.shape[1]}
    if object_centric:
        config["object_centric"] = True
    if position_only:
        config["position_only"] = True
    if own_vocabulary:
        config["vocabulary"] = sorted({w for t in set(texts(data)) for w in instruction_words(t)})
    if init is not None:
        start = load_checkpoint(init)
        config = dict(start["config"])
        model = build_model(start).train()
        mean = torch.as_tensor(np.asarray(start["proprio_mean"]), dtype=torch.float32)
        std = torch.as_tensor(np.asarray(start["proprio_std"]), dtype=torch.float32)
    else:
        model = BCNet(**config)
        mean, std = proprio.mean(0), proprio.std(0) + 1e-3
    words = instruction_inputs(data, config.get("vocabulary"))
    targets = torch.as_tensor(frame_targets(data, int(config["chunk_len"])))
    if heatmap_weight is None:
        heatmap_weight = HEATMAP_WEIGHT if config.get("object_centric") else 0.0
    proprio = (proprio - mean) / std
    dims = model.predicted_dims
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(targets)
    start_epoch, history = 0, []
    if resume and state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        generator.set_state(state["generator"])
        start_epoch, history = int(state["epoch"]), list(state["history"])
    began = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        model.train()
        # Decay by epoch number alone, so a resumed run follows the uninterrupted schedule.
        for group in optimiser.param_groups:
            group["lr"] = lr * LR_DECAY**epoch
        order = torch.randperm(n, generator=generator)
        total, batches = 0.0, 0
        bar = tqdm(
            range(0, n, batch_size),
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=not progress,
            leave=False,
        )
        for i in bar:
            idx = order[i : i + batch_size]
            images, shift = random_shift(rgb[idx], generator)
            predicted, points, logits = model.forward_with_heatmaps(
                images, proprio[idx], words[idx]
            )
            labels = keypoints[idx] + shift[:, None, :]
            seen = visible[idx]
            point_error = ((points - labels) ** 2).sum(-1)
            point_loss = (point_error * seen).sum() / seen.sum().clamp(min=1.0)
            cells = heatmap_cross_entropy(logits, labels)
            cell_loss = (cells * seen).sum() / seen.sum().clamp(min=1.0)
            loss = (
                nn.functional.mse_loss(predicted[..., dims], targets[idx][..., dims])
                + keypoint_weight * point_loss
                + heatmap_weight * cell_loss
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total, batches = total + loss.item(), batches + 1
            bar.set_postfix(loss=f"{total / batches:.4f}")
        history.append(total / batches)
        state = {
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "generator": generator.get_state(),
            "epoch": epoch + 1,
            "history": history,
        }
        write_file_atomically(state_path, lambda f, state=state: torch.save(state, f))
    summary = {
        "epochs": epochs,
        "samples": n,
        "final_loss": history[-1] if history else None,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "train_seconds_this_run": time.perf_counter() - began,
    }
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": config,
        "model": model.state_dict(),
        "proprio_mean": mean,
        "proprio_std": std,
        "provenance": {
            "data": "in memory" if isinstance(data_path, dict) else Path(data_path).name,
            "init": None if init is None else Path(init).name,
            "loss_history": history,
            "epochs": epochs,
            "seed": seed,
        },
    }
    write_file_atomically(out, lambda f: torch.save(checkpoint, f))
    return summary
