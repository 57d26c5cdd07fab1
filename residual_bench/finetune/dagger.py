"""DAgger for the ``bc`` base: the expert relabels the states the learned base visits.

Behaviour cloning only sees the expert's states; once the cloned policy drifts off them, it has
no data for where it is, and its errors compound. DAgger (Ross, Gordon and Bagnell, 2011) rolls
the *learned* policy out - here as deployed, at 5 Hz behind its latency, under the
perturbation suites - while the privileged expert runs in its shadow and labels every visited
state with the action it would take there. The labelled states join the data set and the
network is trained further on all of it; repeated for a few rounds.

The expert is a phase machine, so in the shadow its phase is first brought in line with the
state the learned policy produced (:func:`sync_phase`): an object the learned policy grasped
on its own is carried to the plate, not released and approached again.
"""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from residual_bench.config_fields import field_default
from residual_bench.episodes.loop import run_episode
from residual_bench.finetune.config import DaggerConfig, DaggerTrainConfig
from residual_bench.policies.bc.data import (
    ARRAYS,
    IMAGE_SIZE,
    UNREADABLE_NPZ,
    collection_done,
    demonstration_expert,
    load_demonstrations,
    record_frame,
    stack_frames,
)
from residual_bench.policies.bc.model import bc_controller, shipped_checkpoint
from residual_bench.policies.bc.train import train_bc
from residual_bench.policies.expert import CARRY_HEIGHT, Phase, ScriptedExpert
from residual_bench.registration import ENV_ID
from residual_bench.run_directory import write_file_atomically
from residual_bench.seeding import episode_seed
from residual_bench.training.learning_curve import (
    append_progress,
    heldout_success,
    read_progress,
    training_clock,
)

#: Phases in which the expert believes it holds nothing yet.
_EMPTY_HANDED = (Phase.APPROACH, Phase.DESCEND)


def sync_phase(expert: ScriptedExpert, env: Any) -> None:
    """Move a shadow expert's phase to where the learned policy has brought the task.

    The expert re-approaches on its own when it loses the object; the other direction -
    the learned policy grasped the object while the expert still thought it was approaching -
    needs this: the expert then lifts (below carrying height) or carries it.
    """
    sim = env.unwrapped
    tcp = sim.robot.tcp_pose()[0]
    progress = sim.task.progress(sim.object_states, tcp)
    if progress["is_grasped"] and expert.phase in _EMPTY_HANDED:
        below = tcp[2] < CARRY_HEIGHT - 0.02
        expert.take_over(Phase.LIFT if below else Phase.TRANSPORT, sim.time)


def collect_corrections(
    episodes: int,
    checkpoint: str | Path | None = None,
    suites: tuple[str, ...] | list[str] | None = None,
    seed: int = 0,
    round_index: int = 0,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Roll out a bc checkpoint and label every visited state with the expert's action.

    Episodes cycle through ``suites`` (None: the default ``dagger.suites``) on training
    objects; each has its own seed from
    ``seed``, ``round_index`` and its index, so rounds never repeat an episode.

    Returns:
        The labelled frames (the arrays of a demonstrations file, ``episode`` numbered from 0)
        and a summary: ``env_steps`` (control steps taken), ``episodes``, ``successes``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    suites = tuple(suites if suites is not None else field_default(DaggerConfig, "suites"))
    rows: dict[str, list[Any]] = {k: [] for k in ARRAYS}
    env_steps = successes = 0
    expert = demonstration_expert()
    envs = {
        suite: gym.make(
            ENV_ID,
            obs_mode="rgb+seg",
            image_size=IMAGE_SIZE,
            objects="train",
            suite=suite,
        )
        for suite in dict.fromkeys(suites)
    }
    controllers = {suite: bc_controller(env, checkpoint) for suite, env in envs.items()}
    try:
        bar = tqdm(range(episodes), desc=f"dagger round {round_index}", disable=not progress)
        for index in bar:
            suite = suites[index % len(suites)]
            env, controller = envs[suite], controllers[suite]

            def act(
                obs: dict,
                info: dict,
                env: Any = env,
                controller: Any = controller,
                index: int = index,
            ) -> Any:
                sync_phase(expert, env)
                record_frame(rows, obs, expert.act(env), index, env.unwrapped)  # the label
                return controller.act(obs, info)[0]

            def reset(info: dict, controller: Any = controller) -> None:
                controller.reset(info)
                expert.reset()

            seed_ = episode_seed(seed, "dagger", round_index, index)
            episode = run_episode(env, act, seed_, reset=reset, stop=collection_done)
            env_steps += episode.steps
            successes += int(episode.info["first_success_time"] is not None)
    finally:
        for env in envs.values():
            env.close()
    summary = {"env_steps": env_steps, "episodes": episodes, "successes": successes}
    return stack_frames(rows), summary


def merge_frames(*datasets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Concatenate data sets, renumbering episodes so no two sets share an episode id."""
    # Only what every set holds (older demonstrations have no instruction text).
    keys = [k for k in ARRAYS if all(k in data for data in datasets)]
    merged: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    offset = 0
    for data in datasets:
        for key in keys:
            merged[key].append(data["episode"] + offset if key == "episode" else data[key])
        offset += int(data["episode"].max()) + 1 if len(data["episode"]) else 0
    return {k: np.concatenate(v) for k, v in merged.items()}


def sample_episodes(
    rounds: list[Path], max_frames: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Whole episodes drawn at random from the rounds' files until ``max_frames`` frames.

    Whole episodes, because a frame's training target is the chunk of actions that follows it
    in its episode. Only the drawn episodes' frames are read into memory: a 300k-step run
    gathers 6 GB of camera images.
    """
    episodes = []  # (round, episode id, frames)
    for index, path in enumerate(rounds):
        with np.load(path) as f:
            ids, counts = np.unique(f["episode"], return_counts=True)
        episodes += [(index, int(i), int(c)) for i, c in zip(ids, counts, strict=True)]
    order = rng.permutation(len(episodes))
    total = np.cumsum([episodes[i][2] for i in order])
    # At least one episode, even one longer than the cap.
    chosen = order[: max(1, int(np.searchsorted(total, max_frames, "right")))]
    parts = []
    for index, path in enumerate(rounds):
        wanted = [episodes[i][1] for i in chosen if episodes[i][0] == index]
        if wanted:
            with np.load(path) as f:
                mask = np.isin(f["episode"], wanted)
                parts.append({k: f[k][mask] for k in ARRAYS})
    return merge_frames(*parts)


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
            return int(f["env_steps"])
    except (*UNREADABLE_NPZ, KeyError) as error:
        warnings.warn(
            f"{corrections} is unreadable ({error}); collecting round again", stacklevel=3
        )
        return None


def _curve_steps(progress_csv: Path) -> set[int]:
    """Environment steps at which the learning curve already has a row."""
    return {int(t) for t in read_progress(progress_csv)["timesteps"]}


def finetune_dagger(
    out: str | Path,
    dagger: DaggerConfig | None = None,
    train: DaggerTrainConfig | None = None,
    *,
    init: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """DAgger rounds from a bc checkpoint; returns the final checkpoint ``out/final.pt``.

    Round ``r`` rolls out the current network (the shipped one for ``init=None`` in round 0),
    saves the labelled frames as ``out/round-r.npz``, fine-tunes on every round's frames (and
    ``demonstrations``, a file of ``bench base collect``, if given) into ``out/round-r.pt``
    and appends its success on ``eval_episodes`` fixed held-out ``eval_suite`` episodes to
    ``out/progress.csv`` against the environment steps used so far. Re-running with the
    same ``out`` skips finished rounds. ``dagger`` and ``train`` are the config's sections
    (None: their defaults); ``rounds``, ``episodes_per_round``, ``epochs_per_round``,
    ``suites``, ``lr``, ``keypoint_weight``, ``demonstrations`` and ``train_frames`` are
    ``dagger``'s fields, ``eval_suite``, ``eval_episodes`` and ``steps`` are ``train``'s.

    ``steps`` replaces the count of rounds by a budget of environment steps: rounds go on
    until that many have been taken (the last round may pass it by less than one round).
    ``train_frames`` caps what a round trains on to that many frames, whole episodes drawn at
    random from everything gathered so far; without it the aggregate grows every round, and
    so does the cost of training on it.
    """
    dagger = dagger if dagger is not None else DaggerConfig()
    train = train if train is not None else DaggerTrainConfig()
    rounds, episodes_per_round, suites = dagger.rounds, dagger.episodes_per_round, dagger.suites
    lr, keypoint_weight, train_frames = dagger.lr, dagger.keypoint_weight, dagger.train_frames
    demonstrations, steps = dagger.demonstrations, train.steps
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kept = [load_demonstrations(demonstrations)] if demonstrations else []
    current = None if init is None else Path(init)
    env_steps, files, began = 0, [], training_clock(out / "progress.csv")
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
        if not model.exists():
            if train_frames is None:
                gathered = []
                for path in files:
                    with np.load(path) as f:
                        gathered.append({k: f[k] for k in ARRAYS})
            else:
                rng = np.random.default_rng([seed, r])
                gathered = [sample_episodes(files, train_frames, rng)]
            data = merge_frames(*kept, *gathered)
            train_bc(
                data, model, epochs=dagger.epochs_per_round, seed=seed + r,
                lr=float(lr), keypoint_weight=float(keypoint_weight), progress=progress,
                init=current or shipped_checkpoint(),
            )  # fmt: skip
        if env_steps not in _curve_steps(out / "progress.csv"):
            rate = evaluate_bc(model, train.eval_suite, train.eval_episodes)
            append_progress(out / "progress.csv", env_steps, rate, train.eval_episodes, began)
        current = model
        r += 1
    final = out / "final.pt"  # the last round's network (again after a run with more rounds)
    write_file_atomically(final, lambda f: f.write(current.read_bytes()))
    return final
