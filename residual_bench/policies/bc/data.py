"""Demonstrations for the ``bc`` base: the scripted expert, seen through the camera.

``bench base collect`` runs :func:`collect_demonstrations`: the privileged expert on the
nominal suite with training objects, recording what a visuomotor policy sees (the 84 px camera
image, proprioception, instruction features) and the expert's action. Episodes stop one second
after the first success, so the data is mostly the task and not idling.

The executed action is the expert's plus Gaussian noise while the recorded label is the clean
expert action (DART): the data then covers the states just off the expert's path, and the
cloned policy learns to come back from its own small mistakes instead of compounding them.

Each frame also records where the target object, the plate and the gripper are in the image
(``keypoints`` in [-1, 1]: the centroids of the two segmentation masks, and the grasp point
projected through the camera). Training uses them as an auxiliary target so the small network
learns to find the instructed object relative to its own gripper, whatever the camera's
per-episode jitter; the policy itself never sees a mask or the camera pose.
"""

from __future__ import annotations

import zipfile
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from residual_bench.episodes.loop import run_episode
from residual_bench.policies.expert import ScriptedExpert
from residual_bench.registration import ENV_ID
from residual_bench.run_directory import write_file_atomically
from residual_bench.seeding import episode_seed
from residual_bench.sim.camera import project_to_image

IMAGE_SIZE = 84
AFTER_SUCCESS_S = 1.0
ARRAYS = (
    "rgb", "proprio", "instruction", "text", "action", "episode", "keypoints", "keypoint_visible"
)  # fmt: skip
# Files recorded before instructions were kept as text lack only these.
OPTIONAL_ARRAYS = ("text",)
#: What ``np.load`` raises for a file that is not an ``.npz`` or was cut short while written.
UNREADABLE_NPZ = (OSError, ValueError, EOFError, zipfile.BadZipFile)
# Segmentation ids of what the keypoints mark, in order (see SEGMENTATION_CLASSES).
KEYPOINT_CLASSES = (4, 3)  # target object, plate


def demonstration_expert() -> ScriptedExpert:
    """The expert the ``bc`` base learns from (and that labels its states in DAgger).

    It approaches along a funnel and does not turn to the object's grasp direction (see
    :class:`ScriptedExpert`): its action is then a smooth function of what an 84 px camera
    shows - where the object is relative to the hand - with no hidden "aligned within 1 cm
    and 0.1 rad yet?" switch. Cloned from the default expert, a network hovers above the
    object for the whole episode (results/bc/README.md). Like the default expert it solves
    the seeded test episodes of both object splits (tests/test_expert.py).
    """
    return ScriptedExpert(funnel=True, align_yaw=False)


def mask_keypoints(segmentation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroids of the :data:`KEYPOINT_CLASSES` masks in normalised image coordinates.

    ``x`` runs left to right and ``y`` top to bottom, both from -1 to 1 across pixel centres'
    extent (the convention of a spatial softmax). A class with no visible pixel gets (0, 0) and
    visibility False.

    Returns:
        ``(keypoints (K, 2) float32, visible (K,) bool)``.
    """
    seg = segmentation[..., 0] if segmentation.ndim == 3 else segmentation
    h, w = seg.shape
    points = np.zeros((len(KEYPOINT_CLASSES), 2), dtype=np.float32)
    visible = np.zeros(len(KEYPOINT_CLASSES), dtype=bool)
    for k, class_id in enumerate(KEYPOINT_CLASSES):
        rows, cols = np.nonzero(seg == class_id)
        if len(rows):
            points[k] = ((cols.mean() + 0.5) / w * 2 - 1, (rows.mean() + 0.5) / h * 2 - 1)
            visible[k] = True
    return points, visible


def record_frame(
    rows: dict[str, list[Any]], obs: dict, action: np.ndarray, episode: int, sim: Any
) -> None:
    """Append one control step (what the camera policy sees, the label, the keypoints)."""
    rows["rgb"].append(obs["rgb"])
    rows["proprio"].append(obs["proprio"])
    rows["instruction"].append(obs["instruction"])
    rows["text"].append(sim.task.instruction)
    rows["action"].append(action)
    rows["episode"].append(episode)
    points, visible = mask_keypoints(obs["segmentation"])
    gripper = project_to_image(sim.camera.pose, IMAGE_SIZE, IMAGE_SIZE, obs["proprio"][9:12])
    rows["keypoints"].append(np.vstack([points, gripper]).astype(np.float32))
    rows["keypoint_visible"].append(np.append(visible, True))


def stack_frames(rows: dict[str, list[Any]]) -> dict[str, np.ndarray]:
    """The recorded rows as the arrays of a demonstrations file."""
    return {
        "rgb": np.stack(rows["rgb"]).astype(np.uint8),
        "proprio": np.stack(rows["proprio"]).astype(np.float32),
        "instruction": np.stack(rows["instruction"]).astype(np.float32),
        "text": np.asarray(rows["text"], dtype=str),
        "action": np.stack(rows["action"]).astype(np.float32),
        "episode": np.asarray(rows["episode"], dtype=np.int32),
        "keypoints": np.stack(rows["keypoints"]).astype(np.float32),
        "keypoint_visible": np.stack(rows["keypoint_visible"]),
    }


def solved_for(info: dict[str, Any]) -> float:
    """Seconds since the episode's first success (-1 before it)."""
    first = info["first_success_time"]
    return info["time"] - first if first is not None else -1.0


def collection_done(info: dict[str, Any]) -> bool:
    """An episode of collected data ends once the task has held for ``AFTER_SUCCESS_S``."""
    return solved_for(info) >= AFTER_SUCCESS_S


def collect_demonstrations(
    episodes: int,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
    noise: float = 0.3,
) -> dict[str, np.ndarray]:
    """Record ``episodes`` expert episodes; save them as a compressed ``.npz`` if ``out``.

    ``noise`` is the std of the Gaussian noise added to the executed translation (not the rotation,
    not the recorded label), in normalised action units.

    Returns:
        Arrays ``rgb`` (N, 84, 84, 3) uint8, ``proprio`` (N, 20), ``instruction`` (N, 32),
        ``text`` (N,) the instruction itself, ``action`` (N, 7) float32, ``episode`` (N,)
        int32, ``keypoints`` (N, 3, 2) float32 and ``keypoint_visible`` (N, 3) bool (target,
        plate, gripper), one row per control step.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    out_path = Path(out) if out is not None else None
    if out_path is not None and out_path.exists():
        raise FileExistsError(f"{out_path} already exists; choose another --out")
    env = gym.make(ENV_ID, obs_mode="rgb+seg", image_size=IMAGE_SIZE, objects="train")
    sim = env.unwrapped
    expert = demonstration_expert()
    rows: dict[str, list[Any]] = {k: [] for k in ARRAYS}
    try:
        for index in tqdm(range(episodes), desc="collect", disable=not progress):
            ep_seed = episode_seed(seed, "bc-demos", "train", index)
            noise_rng = np.random.default_rng(ep_seed)

            def act(obs: dict, info: dict, index: int = index, rng: Any = noise_rng) -> Any:
                action = expert.act(env)
                record_frame(rows, obs, action, index, sim)  # the label: the clean action
                executed = action.copy()
                executed[:3] += rng.normal(0.0, noise, 3)
                return np.clip(executed, -1.0, 1.0)

            run_episode(env, act, ep_seed, reset=lambda info: expert.reset(), stop=collection_done)
    finally:
        env.close()
    data = stack_frames(rows)
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        save = partial(np.savez_compressed, seed=np.int64(seed), noise=np.float64(noise), **data)
        write_file_atomically(out_path, save)
    return data


def load_demonstrations(path: str | Path) -> dict[str, np.ndarray]:
    """Read a file written by :func:`collect_demonstrations`, checking what it holds."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"demonstrations file {str(path)!r} does not exist")
    try:
        with np.load(path) as f:
            data = {k: f[k] for k in f.files}
    except UNREADABLE_NPZ as exc:
        raise ValueError(
            f"{path}: not a demonstrations file written by `bench base collect`: {exc}"
        ) from None
    missing = [k for k in ARRAYS if k not in data and k not in OPTIONAL_ARRAYS]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing}; expected {list(ARRAYS)}")
    n = len(data["action"])
    if any(len(data[k]) != n for k in ARRAYS if k in data) or data["rgb"].shape[1:] != (84, 84, 3):
        raise ValueError(f"{path}: arrays of inconsistent length or image size")
    return data
