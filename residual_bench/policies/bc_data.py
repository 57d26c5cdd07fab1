"""Demonstrations for the ``bc`` base: the scripted expert, seen through the camera.

``bench base collect`` runs :func:`collect_demonstrations`: the privileged expert on the
nominal suite with training objects, recording what a visuomotor policy sees (the 84 px camera
image, proprioception, instruction features) and the expert's action. Episodes stop one second
after the first success, so the data is mostly the task and not idling.

The executed action is the expert's plus Gaussian noise while the recorded label is the clean
expert action (DART): the data then covers the states just off the expert's path, and the
cloned policy learns to come back from its own small mistakes instead of compounding them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from residual_bench.policies.expert import ScriptedExpert
from residual_bench.seeding import episode_seed

IMAGE_SIZE = 84
AFTER_SUCCESS_S = 1.0
ARRAYS = ("rgb", "proprio", "instruction", "action", "episode")


def collect_demonstrations(
    episodes: int,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
    noise: float = 0.3,
) -> dict[str, np.ndarray]:
    """Record ``episodes`` expert episodes; save them as a compressed ``.npz`` if ``out``.

    ``noise`` is the std of the Gaussian noise added to the executed motion (not the gripper,
    not the recorded label), in normalised action units.

    Returns:
        Arrays ``rgb`` (N, 84, 84, 3) uint8, ``proprio`` (N, 20), ``instruction`` (N, 32),
        ``action`` (N, 7) float32 and ``episode`` (N,) int32, one row per control step.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    out_path = Path(out) if out is not None else None
    if out_path is not None and out_path.exists():
        raise FileExistsError(f"{out_path} already exists; choose another --out")
    env = gym.make("ResidualPickPlace-v0", obs_mode="rgb", image_size=IMAGE_SIZE, objects="train")
    expert = ScriptedExpert()
    rows: dict[str, list[Any]] = {k: [] for k in ARRAYS}
    try:
        for index in tqdm(range(episodes), desc="collect", disable=not progress):
            ep_seed = episode_seed(seed, "bc-demos", "train", index)
            obs, info = env.reset(seed=ep_seed)
            noise_rng = np.random.default_rng(ep_seed)
            expert.reset()
            done = False
            while not done:
                action = expert.act(env)
                rows["rgb"].append(obs["rgb"])
                rows["proprio"].append(obs["proprio"])
                rows["instruction"].append(obs["instruction"])
                rows["action"].append(action)
                rows["episode"].append(index)
                executed = action.copy()
                executed[:6] += noise_rng.normal(0.0, noise, 6)
                obs, _, terminated, truncated, info = env.step(np.clip(executed, -1.0, 1.0))
                solved_for = (
                    info["time"] - info["first_success_time"]
                    if info["first_success_time"] is not None
                    else -1.0
                )
                done = terminated or truncated or solved_for >= AFTER_SUCCESS_S
    finally:
        env.close()
    data = {
        "rgb": np.stack(rows["rgb"]).astype(np.uint8),
        "proprio": np.stack(rows["proprio"]).astype(np.float32),
        "instruction": np.stack(rows["instruction"]).astype(np.float32),
        "action": np.stack(rows["action"]).astype(np.float32),
        "episode": np.asarray(rows["episode"], dtype=np.int32),
    }
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out_path, seed=np.int64(seed), noise=np.float64(noise), **data)
    return data


def load_demonstrations(path: str | Path) -> dict[str, np.ndarray]:
    """Read a file written by :func:`collect_demonstrations`, checking what it holds."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"demonstrations file {str(path)!r} does not exist")
    try:
        with np.load(path) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{path}: not a demonstrations file written by `bench base collect`: {exc}"
        ) from None
    missing = [k for k in ARRAYS if k not in data]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing}; expected {list(ARRAYS)}")
    n = len(data["action"])
    if any(len(data[k]) != n for k in ARRAYS) or data["rgb"].shape[1:] != (84, 84, 3):
        raise ValueError(f"{path}: arrays of inconsistent length or image size")
    return data
