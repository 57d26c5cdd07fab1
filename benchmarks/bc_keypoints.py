"""How well a bc network finds the target object, the plate and its gripper in the image.

    python benchmarks/bc_keypoints.py --checkpoint runs/bc.pt --data runs/bc_demos.npz new.npz

For each demonstrations file (``bench base collect``; DAgger rounds' ``round-R.npz`` too) it
prints, per keypoint, the median and 90th percentile of the distance in pixels (of the 84 px
image) between the network's keypoint and the label, over up to ``--frames`` frames where the
thing is visible, and the mean squared error of the first action of each chunk. Frames from
scenes the network was trained on against frames from new scenes tell memorising from
generalising.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from residual_bench.policies.bc.data import IMAGE_SIZE, load_demonstrations
from residual_bench.policies.bc.model import build_model, load_checkpoint

KEYPOINT_NAMES = ("target", "plate", "gripper")


def keypoint_errors(checkpoint: Path | None, data_path: Path, frames: int, seed: int) -> dict:
    """Pixel errors of each keypoint and the first action's squared error on ``data_path``."""
    ckpt = load_checkpoint(checkpoint)
    model = build_model(ckpt)
    data = load_demonstrations(data_path)
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(data["action"]), min(frames, len(data["action"])), False))
    mean, std = (torch.as_tensor(np.asarray(ckpt[k])) for k in ("proprio_mean", "proprio_std"))
    with torch.no_grad():
        actions, points = model.forward_with_keypoints(
            torch.as_tensor(data["rgb"][index]),
            (torch.as_tensor(data["proprio"][index]) - mean) / std,
            torch.as_tensor(data["instruction"][index]),
        )
    pixels = np.linalg.norm(points.numpy() - data["keypoints"][index], axis=-1) * IMAGE_SIZE / 2
    visible = data["keypoint_visible"][index]
    result = {}
    for k, name in enumerate(KEYPOINT_NAMES):
        seen = pixels[visible[:, k], k]
        result[name] = (float(np.median(seen)), float(np.percentile(seen, 90)))
    first = actions.numpy()[:, 0]
    result["action_mse"] = float(np.mean((first - data["action"][index]) ** 2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="bc checkpoint (shipped)")
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--frames", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| data | target px (median / p90) | plate px | gripper px | action MSE |")
    print("|---|---:|---:|---:|---:|")
    for path in args.data:
        r = keypoint_errors(args.checkpoint, path, args.frames, args.seed)
        cells = [f"{r[n][0]:.1f} / {r[n][1]:.1f}" for n in KEYPOINT_NAMES]
        print(f"| {path.name} | {' | '.join(cells)} | {r['action_mse']:.3f} |")


if __name__ == "__main__":
    main()
