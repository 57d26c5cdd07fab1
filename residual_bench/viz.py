"""Figures of the simulated scene: what the policy's camera sees, and its segmentation."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless machines: never try to open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

SEGMENTATION_COLORS = (
    (0.10, 0.10, 0.10),  # background
    (0.60, 0.50, 0.38),  # table
    (0.55, 0.55, 0.75),  # robot
    (0.95, 0.95, 0.95),  # plate
    (0.90, 0.20, 0.15),  # target
    (0.25, 0.65, 0.30),  # distractor 1
    (0.20, 0.45, 0.90),  # distractor 2
)


def camera_views(env, size: int | None = None) -> dict[str, np.ndarray]:
    """RGB and segmentation from the env's task camera (its own resolution by default)."""
    camera = env.unwrapped.camera
    if size is not None and size != camera.width:
        camera = camera.resized(size, size)
    frame = camera.render(rgb=True, segmentation=True)
    return {"rgb": frame.rgb, "segmentation": frame.segmentation[..., 0]}


def save_scene_figure(env, path: str | Path, title: str | None = None) -> Path:
    """Write a PNG with a high-resolution view, the policy's camera view and segmentation."""
    sim = env.unwrapped
    big = camera_views(env, 256)
    small = camera_views(env)
    names = sim.segmentation_names
    cmap = ListedColormap(SEGMENTATION_COLORS[: len(names)])
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    axes[0].imshow(big["rgb"])
    axes[0].set_title("scene, 256 px")
    axes[1].imshow(small["rgb"], interpolation="nearest")
    axes[1].set_title(f"policy camera, {sim.camera.width} px")
    axes[2].imshow(
        big["segmentation"], cmap=cmap, vmin=0, vmax=len(names) - 1, interpolation="nearest"
    )
    axes[2].set_title("segmentation")
    handles = [Patch(color=SEGMENTATION_COLORS[i], label=f"{i} {n}") for i, n in names.items()]
    axes[2].legend(handles=handles, loc="lower left", fontsize=7, framealpha=0.8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title or f'"{sim.instruction}"')
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
