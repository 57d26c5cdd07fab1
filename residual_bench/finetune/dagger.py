"""DAgger for the ``bc`` base: the expert relabels the states the learned base visits.

Behaviour cloning only sees the expert's states; once the cloned policy drifts off them, it has
no data for where it is, and its errors compound. DAgger (Ross, Gordon and Bagnell, 2011) rolls
the *learned* policy out - here as deployed, at 5 Hz behind its latency, under the
perturbation suites - while the privileged expert runs in its shadow and labels every visited
state with the action it would take there. The labelled states join the data set and the
network is trained further on all of it; repeated for a few rounds.

The labels (the shadow expert, its phase synchronised with the state, and the chunk it would
record) are :mod:`residual_bench.finetune.dagger_labels`; this module aggregates the rounds,
validates them and trains the network.
"""

from __future__ import annotations

import csv
import io
import sys
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from residual_bench.finetune.config import DaggerConfig, DaggerTrainConfig
from residual_bench.finetune.dagger_labels import collect_corrections
from residual_bench.policies.bc.data import (
    ARRAYS,
    IMAGE_SIZE,
    UNREADABLE_NPZ,
    collect_demonstrations,
    load_demonstrations,
)
from residual_bench.policies.bc.model import (
    bc_controller,
    build_model,
    load_checkpoint,
    shipped_checkpoint,
)
from residual_bench.policies.bc.train import (
    chunk_targets,
    frame_targets,
    instruction_inputs,
    train_bc,
)
from residual_bench.registration import ENV_ID
from residual_bench.run_directory import write_file_atomically
from residual_bench.training.learning_curve import (
    append_progress,
    heldout_success,
    read_progress,
    training_clock,
)

#: A labelled frame's arrays: a demonstration frame's and its label chunk.
FRAME_ARRAYS = (*ARRAYS, "action_chunk")


def merge_frames(*datasets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Concatenate data sets, renumbering episodes so no two sets share an episode id."""
    # Only what every set holds (older demonstrations have no instruction text).
    keys = [k for k in FRAME_ARRAYS if all(k in data for data in datasets)]
    merged: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    offset = 0
    for data in datasets:
        for key in keys:
            merged[key].append(data["episode"] + offset if key == "episode" else data[key])
        offset += int(data["episode"].max()) + 1 if len(data["episode"]) else 0
    return {k: np.concatenate(v) for k, v in merged.items()}


def _episodes(path: Path, held_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A round file's episode ids, their frame counts, and which are held out for
    validation (the last ``held_out`` of the round)."""
    with np.load(path) as f:
        ids, counts = np.unique(f["episode"], return_counts=True)
    return ids, counts, np.arange(len(ids)) >= len(ids) - held_out


def _read_episodes(path: Path, wanted: list[int] | np.ndarray) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        mask = np.isin(f["episode"], wanted)
        return {k: f[k][mask] for k in FRAME_ARRAYS if k in f.files}


def sample_episodes(
    rounds: list[Path], max_frames: int, rng: np.random.Generator, held_out: int = 0
) -> dict[str, np.ndarray]:
    """Whole episodes drawn at random from the rounds' files until ``max_frames`` frames,
    never one of the last ``held_out`` episodes of a round (the validation episodes).

    Whole episodes, because the demonstrations' training target is the chunk of actions
    that follows a frame in its episode. Only the drawn episodes' frames are read into memory:
    a 300k-step run gathers 6 GB of camera images.
    """
    episodes = []  # (round, episode id, frames)
    for index, path in enumerate(rounds):
        ids, counts, validation = _episodes(path, held_out)
        episodes += [
            (index, int(i), int(c))
            for i, c, v in zip(ids, counts, validation, strict=True)
            if not v
        ]
    if not episodes:
        raise ValueError(f"no episode left to train on once {held_out} a round are held out")
    order = rng.permutation(len(episodes))
    total = np.cumsum([episodes[i][2] for i in order])
    # At least one episode, even one longer than the cap.
    chosen = order[: max(1, int(np.searchsorted(total, max_frames, "right")))]
    parts = []
    for index, path in enumerate(rounds):
        wanted = [episodes[i][1] for i in chosen if episodes[i][0] == index]
        if wanted:
            parts.append(_read_episodes(path, wanted))
    return merge_frames(*parts)


def validation_frames(rounds: list[Path], held_out: int) -> dict[str, np.ndarray] | None:
    """The labelled frames of every round's last ``held_out`` episodes (None for none)."""
    parts = []
    for path in rounds:
        ids, _, validation = _episodes(path, held_out)
        if validation.any():
            parts.append(_read_episodes(path, ids[validation]))
    return merge_frames(*parts) if parts else None


def action_loss(
    checkpoint: str | Path, frames: dict[str, np.ndarray], max_frames: int = 3000
) -> float:
    """Mean squared error of a bc checkpoint's chunks against the frames' training targets,
    on the dimensions the network predicts: the action part of its training loss, without
    augmentation. Evenly spaced frames, at most ``max_frames``, keep it cheap."""
    ckpt = load_checkpoint(checkpoint)
    model = build_model(ckpt)
    pick = np.unique(np.linspace(0, len(frames["action"]) - 1, max_frames).astype(int))
    targets = torch.as_tensor(frame_targets(frames, model.chunk_len)[pick])
    instructions = {k: frames[k][pick] for k in ("instruction", "text") if k in frames}
    words = instruction_inputs(instructions, model.vocabulary)
    mean = torch.as_tensor(np.asarray(ckpt["proprio_mean"]), dtype=torch.float32)
    std = torch.as_tensor(np.asarray(ckpt["proprio_std"]), dtype=torch.float32)
    proprio = (torch.as_tensor(frames["proprio"][pick]) - mean) / std
    rgb = torch.as_tensor(frames["rgb"][pick])
    dims, total = model.predicted_dims, 0.0
    with torch.no_grad():
        for i in range(0, len(pick), 256):
            part = slice(i, i + 256)
            predicted = model(rgb[part], proprio[part], words[part])
            total += float(((predicted[..., dims] - targets[part][..., dims]) ** 2).sum())
    return total / (len(pick) * model.chunk_len * len(dims))


def evaluate_bc(checkpoint: str | Path, suite: str, episodes: int) -> float:
    """Success rate of a bc checkpoint, deployed, on the learning curve's fixed held-out
    episodes of ``suite``."""
    env = gym.make(ENV_ID, obs_mode="rgb", image_size=IMAGE_SIZE, objects="heldout", suite=suite)
    controller = bc_controller(env, checkpoint)
    try:
        act = lambda obs, info: controller.act(obs, info)[0]  # noqa: E731
        return heldout_success(env, act, suite, episodes, reset=controller.reset)
    finally:
        env.close()


def _round_steps(corrections: Path) -> int | None:
    """Environment steps of a round's saved corrections; None if there are none to use.

    A file that cannot be read (cut short when an earlier run was killed while writing it)
    counts as not collected, so the round is collected again rather than failing the resume.
    """
    if not corrections.exists():
        return None
    try:
        with np.load(corrections) as f:
            steps, chunked = int(f["env_steps"]), "action_chunk" in f.files
    except (*UNREADABLE_NPZ, KeyError) as error:
        warnings.warn(
            f"{corrections} is unreadable ({error}); collecting round again", stacklevel=3
        )
        return None
    if not chunked:
        raise ValueError(
            f"{corrections} holds per-step labels (made before DAgger's labels became "
            "the expert's own chunks); train into a new --out"
        )
    return steps


ROUND_FIELDS = (
    "round", "env_steps", "train_frames", "validation_frames", "train_loss", "validation_loss",
    "validation_loss_before", "success_rate", "eval_episodes", "collected_successes",
)  # fmt: skip


def _read_rounds(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write_rounds(path: Path, rows: list[dict[str, Any]]) -> None:
    def write(f: Any) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=ROUND_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        f.write(text.getvalue().encode())

    write_file_atomically(path, write)


def kept_demonstrations(
    out: Path, dagger: DaggerConfig, chunk_len: int, progress: bool = True
) -> list[dict[str, np.ndarray]]:
    """The demonstrations every round trains on, each frame with its chunk target.

    ``dagger.demonstrations`` if it names a file; else ``dagger.demonstration_episodes``
    recorded once into ``out/demonstrations.npz`` (read back on a resumed run); none for 0.
    """
    if dagger.demonstrations:
        demos = load_demonstrations(dagger.demonstrations)
    elif dagger.demonstration_episodes:
        path = out / "demonstrations.npz"
        if path.exists():
            demos = load_demonstrations(path)
        else:
            demos = collect_demonstrations(
                dagger.demonstration_episodes, seed=0, out=path, progress=progress
            )
    else:
        return []
    demos["action_chunk"] = chunk_targets(demos["action"], demos["episode"], chunk_len)
    return [demos]


def finetune_dagger(
    out: str | Path,
    dagger: DaggerConfig | None = None,
    train: DaggerTrainConfig | None = None,
    *,
    init: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """DAgger rounds from a bc checkpoint; returns ``out/final.pt``, the best round's network.

    Round ``r`` rolls out the current network (the shipped one for ``init=None`` in round 0),
    saves the labelled frames as ``out/round-r.npz``, fine-tunes on the demonstrations
    (:func:`kept_demonstrations`) and every round's frames but each round's last
    ``validation_episodes`` episodes into ``out/round-r.pt``, appends its success on
    ``eval_episodes`` fixed held-out ``eval_suite`` episodes to ``out/progress.csv`` against
    the environment steps used so far, and its training and validation losses
    (:func:`action_loss` on its training frames and on the held-out episodes' frames) to
    ``out/rounds.csv``. ``final.pt`` is the round with the highest success (the earlier one of
    a tie). Re-running with the same ``out`` skips finished rounds. ``dagger`` and ``train``
    are the config's sections (None: their defaults).

    ``train.steps`` replaces the count of rounds by a budget of environment steps: rounds go
    on until that many have been taken (the last round may pass it by less than one round).
    ``dagger.train_frames`` caps the visited-state frames a round trains on to that many, whole
    episodes drawn at random from everything gathered so far; without it the aggregate grows
    every round, and so does the cost of training on it.

    Raises:
        ValueError: a round would hold out all of its episodes, or a step budget below 1.
    """
    dagger = dagger if dagger is not None else DaggerConfig()
    train = train if train is not None else DaggerTrainConfig()
    rounds, episodes_per_round, suites = dagger.rounds, dagger.episodes_per_round, dagger.suites
    held_out, steps = dagger.validation_episodes, train.steps
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if held_out >= episodes_per_round:
        raise ValueError(
            f"dagger.validation_episodes ({held_out}) must be below dagger.episodes_per_round "
            f"({episodes_per_round}): a round needs episodes to train on"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = Path(init) if init is not None else shipped_checkpoint()
    kept = kept_demonstrations(
        out, dagger, int(load_checkpoint(start)["config"]["chunk_len"]), progress
    )
    current, env_steps, files, began = start, 0, [], training_clock(out / "progress.csv")
    logged = _read_rounds(out / "rounds.csv")
    r = 0
    while (env_steps < steps) if steps is not None else (r < rounds):
        corrections, model = out / f"round-{r}.npz", out / f"round-{r}.pt"
        round_steps = _round_steps(corrections)
        if round_steps is None:
            data, summary = collect_corrections(
                episodes_per_round, current, tuple(suites), seed, r, progress
            )
            save = partial(
                np.savez_compressed,
                env_steps=summary["env_steps"], successes=summary["successes"], **data,
            )  # fmt: skip
            write_file_atomically(corrections, save)
            round_steps = int(summary["env_steps"])
        files.append(corrections)
        env_steps += round_steps
        gathered = None
        if not model.exists() or len(logged) <= r:
            rng = np.random.default_rng([seed, r])
            cap = dagger.train_frames if dagger.train_frames is not None else sys.maxsize
            gathered = merge_frames(*kept, sample_episodes(files, cap, rng, held_out))
        if not model.exists():
            train_bc(
                gathered, model, epochs=dagger.epochs_per_round, seed=seed + r,
                lr=float(dagger.lr), keypoint_weight=float(dagger.keypoint_weight),
                progress=progress, init=current,
            )  # fmt: skip
        curve = read_progress(out / "progress.csv")
        if env_steps not in {int(t) for t in curve["timesteps"]}:
            rate = evaluate_bc(model, train.eval_suite, train.eval_episodes)
            append_progress(out / "progress.csv", env_steps, rate, train.eval_episodes, began)
        else:
            rate = float(curve["success_rate"][curve["timesteps"] == env_steps].iloc[0])
        if len(logged) <= r:
            validation = validation_frames(files, held_out)
            with np.load(corrections) as f:
                collected = int(f["successes"])
            logged.append({
                "round": r, "env_steps": env_steps, "train_frames": len(gathered["action"]),
                "validation_frames": 0 if validation is None else len(validation["action"]),
                "train_loss": action_loss(model, gathered),
                "validation_loss": "" if validation is None else action_loss(model, validation),
                "validation_loss_before": (
                    "" if validation is None else action_loss(current, validation)
                ),
                "success_rate": rate, "eval_episodes": train.eval_episodes,
                "collected_successes": collected,
            })  # fmt: skip
            _write_rounds(out / "rounds.csv", logged)
        current = model
        r += 1
    best = max(range(r), key=lambda i: (float(logged[i]["success_rate"]), -i))
    final = out / "final.pt"  # the best round's network (again after a run with more rounds)
    chosen = out / f"round-{best}.pt"
    write_file_atomically(final, lambda f: f.write(chosen.read_bytes()))
    return final
