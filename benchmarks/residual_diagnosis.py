"""Where a learned residual loses the base's episodes: by action dimension, by task phase.

    python benchmarks/residual_diagnosis.py RUN [RUN ...] --episodes 30 [--config CONFIG]

For each ``bench train`` run folder (its ``checkpoint/model.zip``: a run stopped early is
diagnosed as it stood at its last checkpoint) the ``scripted`` base runs on the held-out
``mixed`` episodes of ``bench eval`` (seeds ``episode_seed(seed, suite, objects, i)``):

- alone, with the run's deterministic residual, and with the residual acting in some of its
  dimensions only (translation, rotation or gripper; the others zeroed), each paired with
  the base alone (gain, exact McNemar p);
- the residual's mean output per task phase (``info["phase"]``) along the base-alone
  episodes, where the critic has most data;
- per run, the task's dense reward summed over each episode and the share of steps the
  target is held within 5 cm of the goal: the dense reward pays up to 0.8 per step for
  holding the object over the plate and 1 for a finished place, so a residual that keeps
  holding earns nearly as much as one that lets go.

Writes a markdown report (``--out``). The checkpoint is the run's own SB3 save, read with
SB3's loader (which unpickles): point it only at run folders this machine wrote.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import residual_bench.registration  # noqa: F401  (registers every task id)
from residual_bench.episodes import run_episode
from residual_bench.episodes.statistics import mcnemar_exact
from residual_bench.provenance import shown_path
from residual_bench.residual.agents import load_agent
from residual_bench.residual.checkpoint import run_agent_settings
from residual_bench.residual.factory import make_residual_env
from residual_bench.run_directory import own_checkpoint_model, training_run_argument
from residual_bench.seeding import episode_seed
from residual_bench.tasks.pick_place import PickPlaceTask

RESULTS = Path(__file__).resolve().parent.parent / "results"
DEFAULT_OUT = RESULTS / "residual" / "diagnosis.md"
MASKS = {
    "residual": np.ones(7),
    "translation only": np.r_[np.ones(3), np.zeros(4)],
    "rotation only": np.r_[np.zeros(3), np.ones(3), 0.0],
    "gripper only": np.r_[np.zeros(6), 1.0],
}
HOLD_RADIUS_M = 0.05
"""The target counts as held over the goal within this distance of it."""


def episode_outcome(env, act, seed: int) -> dict:
    """Success, dense return and held-over-goal steps of one episode under ``act``."""
    infos: list[dict] = []
    episode = run_episode(env, act, seed, on_step=lambda _env, info: infos.append(info))
    steps = infos[1:]
    held = [s["is_grasped"] and s["object_to_goal"] < HOLD_RADIUS_M for s in steps]
    return {
        "success": bool(episode.info["success"]),
        "dense_return": sum(PickPlaceTask.reward(s, "dense") for s in steps),
        "held_over_goal": float(np.mean(held)),
    }


def diagnose(run: Path, config: Path | None, episodes: int, seed: int) -> dict:
    """Every variant's per-episode outcomes, and the mean output per phase."""
    settings = run_agent_settings(run, config)
    if settings["base"] not in (None, "scripted"):
        raise SystemExit(f"{run}: the diagnosis runs the scripted base, not {settings['base']!r}")
    model = load_agent(settings["algo"], str(own_checkpoint_model(run)))
    env = make_residual_env(
        "scripted",
        settings["features"],
        tuple(settings["alpha"]),
        settings["residual_options"],
        suite="mixed",
        objects="heldout",
    )
    seeds = [episode_seed(seed, "mixed", "heldout", i) for i in range(episodes)]
    by_phase: dict[str, list[np.ndarray]] = defaultdict(list)

    def base_alone(obs: np.ndarray, info: dict) -> np.ndarray:
        by_phase[info["phase"]].append(model.predict(obs, deterministic=True)[0])
        return np.zeros(7)

    outcomes = {"base alone": [episode_outcome(env, base_alone, s) for s in seeds]}
    for name, mask in MASKS.items():

        def masked(obs: np.ndarray, info: dict, mask: np.ndarray = mask) -> np.ndarray:
            return mask * model.predict(obs, deterministic=True)[0]

        outcomes[name] = [episode_outcome(env, masked, s) for s in seeds]
    env.close()
    phases = {phase: np.mean(r, axis=0) for phase, r in by_phase.items()}
    return {
        "outcomes": outcomes,
        "phases": phases,
        "counts": {p: len(r) for p, r in by_phase.items()},
    }


def report(run: Path, result: dict, wall_s: float) -> str:
    """The run's two tables: variants paired with the base alone, and output per phase."""
    outcomes = result["outcomes"]
    base = np.array([o["success"] for o in outcomes["base alone"]])
    rows = [
        "| acting | success | gain | exact McNemar | lost / won | dense return | held over goal |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, episodes in outcomes.items():
        won = np.array([o["success"] for o in episodes])
        returns = np.mean([o["dense_return"] for o in episodes])
        held = np.mean([o["held_over_goal"] for o in episodes])
        paired = ["", "", ""]
        if name != "base alone":
            test = mcnemar_exact(base, won)
            paired = [
                f"{won.mean() - base.mean():+.0%}",
                f"p = {test['p_value']:.3f}",
                f"{int(np.sum(base & ~won))} / {int(np.sum(~base & won))}",
            ]
        cells = [name, f"{won.mean():.0%}", *paired, f"{returns:.1f}", f"{held:.0%}"]
        rows.append("| " + " | ".join(cells) + " |")
    dims = "x y z rx ry rz grip".split()
    phase_rows = [
        "| phase | steps | " + " | ".join(f"r {d}" for d in dims) + " |",
        "|---|---:|" + "---:|" * len(dims),
    ]
    for phase, mean in result["phases"].items():
        cells = " | ".join(f"{v:+.3f}" for v in mean)
        phase_rows.append(f"| {phase} | {result['counts'][phase]} | {cells} |")
    return (
        f"## {run.name}\n\n{len(base)} episodes, {wall_s:.0f} s.\n\n"
        + "\n".join(rows)
        + "\n\nThe residual's mean output r (in units of alpha) per task phase, along the "
        "base-alone episodes:\n\n" + "\n".join(phase_rows) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "runs", nargs="+", type=training_run_argument, help="training run folders (your own)"
    )
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", type=Path, help="the config of runs stopped before the end")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    sections = []
    for run in args.runs:
        start = time.perf_counter()
        try:
            result = diagnose(run, args.config, args.episodes, args.seed)
        except ValueError as err:
            parser.error(f"{err} (--config)")
        sections.append(report(run, result, time.perf_counter() - start))
        print(sections[-1], flush=True)
    command = "python benchmarks/residual_diagnosis.py " + " ".join(
        [*(f"RUN/{r.name}" for r in args.runs), f"--episodes {args.episodes}"]
    )
    if args.config is not None:
        command += f" --config {shown_path(args.config)}"
    text = (
        "# Where a learned residual loses the base's episodes\n\n"
        f"Produced by `{command}` (held-out `mixed`, master seed {args.seed}; RUN is the "
        "folder the runs were trained into, each at its last checkpoint). Each variant runs "
        "the same episodes as the base alone; 'lost / won' counts the episodes the base alone "
        "solved and the variant failed, and the reverse. 'dense return' is the task's dense "
        "reward summed over the episode; 'held over goal' the share of steps the target was "
        f"grasped within {HOLD_RADIUS_M * 100:.0f} cm of the goal.\n\n" + "\n".join(sections)
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
