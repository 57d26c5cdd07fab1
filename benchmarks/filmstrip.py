"""A filmstrip per task of one perturbation and the privileged expert's recovery.

    python benchmarks/filmstrip.py                        # results/filmstrip.png, ~5 s
    python benchmarks/filmstrip.py --env ResidualPush-v0  # results/filmstrip-push.png
    python benchmarks/filmstrip.py --all-tasks            # filmstrip-<task>.png each, ~15 s

Each row is the first seeded episode of a suite in which its event fires, run with the task's
own closed-loop privileged expert; columns are simulated times relative to the event, seen
from over the spot where it happens, then the episode's end from the task's camera. A task
gets a row per perturbation kind a camera can show (poke, slide, drop) for which one of the
shipped suites applies to it; a kind every suite of which the task refuses (a drop on push,
where nothing is held) gets none. With no flags the reference task (pick-and-place) is filmed
into ``results/filmstrip.png``, the same rows and seeds as before there were other tasks.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import residual_bench  # noqa: E402, F401
from residual_bench.perturb import load_suite, suite_applies, suite_names  # noqa: E402
from residual_bench.policies.task_experts import expert_for  # noqa: E402
from residual_bench.registration import ENV_ID  # noqa: E402
from residual_bench.seeding import episode_seed  # noqa: E402
from residual_bench.sim.camera import CameraPose  # noqa: E402
from residual_bench.tasks import Task, current_task_ids, task_entry  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results"
OFFSETS = (-0.1, 0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
FILMED_KINDS = ("poke", "slide", "drop")
"""The perturbation kinds a frame shows: a latency stall moves nothing the camera sees."""
EPISODES_TRIED = 20
"""Seeded episodes searched for the event (suites whose event may not fire, or not in time)."""


def filmed_suites(task: type[Task]) -> list[tuple[str, str]]:
    """The ``(suite, kind)`` rows of ``task``'s filmstrip, in :data:`FILMED_KINDS` order.

    For each kind, the first suite made of that kind alone that applies to the task: the
    task's own evaluation suites (``Task.suites``) first, then every shipped training suite.
    A kind that no such suite applies to (the task refuses it) gets no row.
    """
    candidates = list(dict.fromkeys([*task.suites, *suite_names("train")]))
    rows = []
    for kind in FILMED_KINDS:
        for name in candidates:
            suite = load_suite(name)
            only_kind = bool(suite.entries) and all(e.type == kind for e in suite.entries)
            if only_kind and suite_applies(suite, task.phases, task.perturbation_kinds):
                rows.append((name, kind))
                break
    return rows


def filmstrip_path(env_id: str) -> Path:
    """``results/filmstrip-<task>.png``, the task named by its scene (``pick_place`` ->
    ``pick-place``); an earlier version of a task by its full id, so it overwrites nothing."""
    task = task_entry(env_id).task
    name = task.scene.replace("_", "-") if env_id == task.env_id else env_id
    return RESULTS / f"filmstrip-{name}.png"


def _film_episode(
    env, seed: int, render_at: dict[float, None], camera, overview
) -> tuple[dict, Any, dict]:
    """One expert episode: frames (and the phase) at the given times from ``camera``, the
    last step from ``overview``, and the last info."""
    expert = expert_for(env)
    _, info = env.reset(seed=seed)
    expert.reset()
    frames = {}
    done = False
    while not done:
        for t in render_at:
            if t not in frames and abs(info["time"] - t) < 0.026:
                frames[t] = (camera.render(rgb=True).rgb, info["phase"])
        _, _, terminated, truncated, info = env.step(expert.act(env))
        done = terminated or truncated
    return frames, overview.render(rgb=True).rgb, info


def frames_around_event(
    env_id: str, suite: str, kind: str, seed: int, size: int
) -> tuple[dict, list[tuple[Any, str]], Any, dict]:
    """Frames at :data:`OFFSETS` around the first ``kind`` event of a ``suite`` episode.

    The episode is run twice with the same seed (it replays exactly): once to find the
    event, once to film it from a camera placed over the spot where it happens and to see
    whether the expert still succeeds.

    Returns:
        The event; ``(frame or None, phase)`` per offset; the last step from the task's
        camera; the last info.
    """
    env = gym.make(env_id, suite=suite)
    sim = env.unwrapped
    try:
        for index in range(EPISODES_TRIED):
            ep_seed = episode_seed(seed, "filmstrip", suite, index)
            # First pass: when and where is the event?
            expert = expert_for(env)
            _, info = env.reset(seed=ep_seed)
            expert.reset()
            event, where, done = None, None, False
            while event is None and not done:
                _, _, terminated, truncated, info = env.step(expert.act(env))
                for e in info["new_events"]:
                    if e["type"] == kind:
                        event, where = e, sim.object_states[0].center.copy()
                done = terminated or truncated
            if event is None:
                continue
            # A close-up over the event's spot shows the event; the task's own camera (its
            # pose jittered per episode, as the policy sees it) shows the whole workspace at
            # the end, where the arm has mostly moved off what it placed.
            overview = sim.camera.resized(size, size)
            camera = sim.camera.resized(size, size)
            look_at = (float(where[0]), float(where[1]), 0.02)
            eye = (look_at[0] + 0.32, look_at[1], 0.42)
            camera.set_pose(CameraPose(eye, look_at, fov_deg=45.0))
            times = {round(event["time"] + o, 6): None for o in OFFSETS}
            frames, end, last = _film_episode(env, ep_seed, times, camera, overview)
            return event, [frames.get(t, (None, "-")) for t in times], end, last
    finally:
        env.close()
    raise RuntimeError(f"no {kind} event in {EPISODES_TRIED} episodes of suite {suite!r}")


def outcome(info: dict) -> str:
    """How the episode ended, for a row's label."""
    if info["success"]:
        return f"success at {info['first_success_time']:.1f} s"
    if info["first_success_time"] is not None:
        return f"succeeded at {info['first_success_time']:.1f} s, then lost it"
    return f"failed ({info['time']:.1f} s)"


def save_filmstrip(env_id: str, seed: int, size: int, out: Path) -> Path:
    """Film ``env_id``'s :func:`filmed_suites` rows into ``out``."""
    rows = filmed_suites(task_entry(env_id).task)
    if not rows:
        raise ValueError(f"no shipped {'/'.join(FILMED_KINDS)} suite applies to {env_id}")
    columns = len(OFFSETS) + 1  # the offsets, then the episode's end
    # 0.4 in for the two-line title, so that it never crowds a two-row figure's frames.
    fig, axes = plt.subplots(
        len(rows), columns, figsize=(2.2 * columns, 2.5 * len(rows) + 0.4), squeeze=False
    )
    instructions = []
    for row, (suite, kind) in enumerate(rows):
        event, picked, end, last = frames_around_event(env_id, suite, kind, seed, size)
        instructions.append(f"{suite}: \u201c{last['instruction']}\u201d")
        for col, (offset, (frame, phase)) in enumerate(zip(OFFSETS, picked, strict=True)):
            ax = axes[row, col]
            if frame is not None:
                ax.imshow(frame)
            else:
                missing = "before the\nepisode began" if offset < 0 else "after the\nepisode ended"
                ax.text(
                    0.5, 0.5, missing, ha="center", va="center", fontsize=8, transform=ax.transAxes
                )
            label = f"{offset:+.2f} s" if offset else "event (before it acts)"
            ax.set_title(f"{label}  [{phase}]", fontsize=8)
            if col == 0:
                mode = event["params"].get("mode", "")
                ax.set_ylabel(
                    f"suite {suite}: {kind} {mode}\n{event['trigger']}, magnitude "
                    f"{event['magnitude']:.2f}\ntarget: {last['target_object']}\n{outcome(last)}",
                    fontsize=8,
                )
        ax = axes[row, -1]
        ax.imshow(end)
        ax.set_title(f"episode end, {last['time']:.1f} s  [{last['phase']}]", fontsize=8)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
        print(f"{env_id} {suite}: {kind} at {event['time']:.2f} s, {outcome(last)}", flush=True)
    fig.suptitle(
        f"{env_id}: a perturbation and the privileged expert's recovery (frames at simulated "
        "times around the event; last column: the task's camera "
        "at the episode's end)\n" + "   ".join(instructions),
        fontsize=10,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--env", metavar="ID", help="task id; writes results/filmstrip-<task>.png")
    which.add_argument("--all-tasks", action="store_true", help="one filmstrip per task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=160, help="frame size in pixels")
    parser.add_argument("--out", type=Path, help="output file (one task only)")
    args = parser.parse_args()
    if args.all_tasks and args.out is not None:
        parser.error("--out: one file per task with --all-tasks; leave --out out")
    if args.all_tasks:
        jobs = [(env_id, filmstrip_path(env_id)) for env_id in current_task_ids()]
    elif args.env is not None:
        try:
            jobs = [(args.env, args.out or filmstrip_path(args.env))]
        except ValueError as exc:
            parser.error(f"--env: {exc}")
    else:
        jobs = [(ENV_ID, args.out or RESULTS / "filmstrip.png")]
    for env_id, out in jobs:
        task = task_entry(env_id).task
        filmed = {kind for _, kind in filmed_suites(task)}
        for kind in FILMED_KINDS:
            if kind not in filmed:
                print(f"{env_id}: no {kind} row (no shipped {kind} suite applies to it)")
        print(f"wrote {save_filmstrip(env_id, args.seed, args.size, out)}", flush=True)


if __name__ == "__main__":
    main()
