"""Does a residual's critic prefer the oracle's correction to the base alone?

    python benchmarks/residual_critic_probe.py RUN [RUN ...] --episodes 10

For each training run folder (``bench train --out RUN``: its ``checkpoint/model.zip`` and
``residual/residual.json``) the ``scripted`` base runs alone on the held-out ``mixed``
episodes of ``bench eval`` (seeds ``episode_seed(seed, suite, objects, i)``). At every step the
run's critic (the minimum over its Q-networks) scores three residual actions in the state the
base is in: none (r = 0), the oracle's (``residual_bench.residual.oracle``: r = clip((a_expert
- a_base) / alpha, -1, 1), with the run's alpha) and the run's own deterministic
actor's. A = Q(s, r) - Q(s, 0) is the critic's advantage of a correction over the base alone.

The states are the base's own, where the critic has most data; an actor climbs the critic's
advantage, so a critic that scores the oracle's correction below zero cannot lead the actor
to it, however the actor is optimised. Writes a markdown table (``--out``).

The checkpoint is the run's own SB3 save, read with SB3's loader (which unpickles): point it
only at run folders this machine wrote, never at a received file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import residual_bench.registration  # noqa: F401  (registers every task id)
from residual_bench.episodes import run_episode
from residual_bench.provenance import shown_path
from residual_bench.residual.agents import load_agent
from residual_bench.residual.checkpoint import run_agent_settings
from residual_bench.residual.critic_values import pessimistic_critic_value
from residual_bench.residual.factory import make_residual_env
from residual_bench.residual.oracle import OracleResidual
from residual_bench.run_directory import own_checkpoint_model, training_run_argument
from residual_bench.seeding import episode_seed

RESULTS = Path(__file__).resolve().parent.parent / "results"
DEFAULT_OUT = RESULTS / "residual" / "critic-probe.md"
CORRECTING = 0.3
"""An oracle step corrects the base where some |r| exceeds this."""


def run_settings(run: Path, config: Path | None) -> dict:
    """Algorithm, features and alpha of a scripted-base run (see ``run_agent_settings``)."""
    try:
        settings = run_agent_settings(run, config)
    except ValueError as err:
        raise SystemExit(f"{err} (--config)") from None
    if settings["base"] not in (None, "scripted"):
        raise SystemExit(f"{run}: the probe runs the scripted base, not {settings['base']!r}")
    return settings


def probe_run(
    run: Path, settings: dict, episodes: int, suite: str, objects: str, seed: int
) -> dict:
    """Per-step Q(s, 0), Q(s, r_oracle), Q(s, r_actor) along base-alone episodes."""
    meta = settings
    model = load_agent(meta["algo"], str(own_checkpoint_model(run)))
    if not hasattr(model, "critic"):
        raise SystemExit(f"{run}: {meta['algo']} has no Q-critic to probe")
    env = make_residual_env(
        "scripted",
        meta["features"],
        tuple(meta["alpha"]),
        meta["residual_options"],
        suite=suite,
        objects=objects,
    )
    oracle_residual = OracleResidual(env)
    steps, wins = [], []
    for i in range(episodes):

        def score(obs: np.ndarray, info: dict) -> np.ndarray:
            oracle = oracle_residual()
            actor, _ = model.predict(obs, deterministic=True)
            zero = pessimistic_critic_value(model, obs, np.zeros(7))
            steps.append(
                (
                    pessimistic_critic_value(model, obs, oracle) - zero,
                    pessimistic_critic_value(model, obs, actor) - zero,
                    float(np.abs(oracle).max() > CORRECTING),
                    float(len(wins)),
                )
            )
            return np.zeros(7)

        seed_i = episode_seed(seed, suite, objects, i)
        episode = run_episode(env, score, seed_i, reset=oracle_residual.reset)
        wins.append(bool(episode.info["success"]))
    env.close()
    table = np.array(steps)
    return {"run": run, "wins": wins, "steps": table}


def summary_row(result: dict, wall_s: float) -> str:
    """One markdown row: mean advantages and how often they are positive."""
    table = result["steps"]
    oracle, actor, correcting = table[:, 0], table[:, 1], table[:, 2] > 0
    lost = np.isin(table[:, 3], [i for i, won in enumerate(result["wins"]) if not won])
    cells = [
        str(result["run"].name),
        f"{sum(result['wins'])}/{len(result['wins'])}",
        str(len(table)),
        f"{correcting.mean():.0%}",
        f"{oracle.mean():+.3f}",
        f"{(oracle > 0).mean():.0%}",
        f"{oracle[lost].mean():+.3f}" if lost.any() else "-",
        f"{actor.mean():+.3f}",
        f"{(actor > 0).mean():.0%}",
        f"{wall_s:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "runs", nargs="+", type=training_run_argument, help="training run folders (your own)"
    )
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--suite", default="mixed")
    parser.add_argument("--objects", choices=("train", "heldout"), default="heldout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--config", type=Path, help="the config of runs stopped before the end")
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    header = (
        "| run | base alone | steps | oracle corrects | A oracle | A oracle > 0 "
        "| A oracle, lost episodes | A actor | A actor > 0 | s |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = []
    for run in args.runs:
        start = time.perf_counter()
        settings = run_settings(run, args.config)
        result = probe_run(run, settings, args.episodes, args.suite, args.objects, args.seed)
        rows.append(summary_row(result, time.perf_counter() - start))
        print(rows[-1], flush=True)
    command = "python benchmarks/residual_critic_probe.py " + " ".join(
        [*(f"RUN/{r.name}" for r in args.runs), f"--episodes {args.episodes}"]
    )
    if args.config is not None:
        command += f" --config {shown_path(args.config)}"
    text = (
        "# Does the critic prefer the oracle's correction to the base alone?\n\n"
        f"Produced by `{command}` ({args.suite}, {args.objects} objects, master seed "
        f"{args.seed}; RUN is the folder the runs were trained into). Along the base-alone "
        "episodes, at every step, A = Q(s, r) - Q(s, 0) under the run's critic (minimum over "
        "its Q-networks) for the oracle's correction and for the run's own actor; 'oracle "
        f"corrects' is the share of steps where some |r_oracle| > {CORRECTING}; 'lost "
        "episodes' are those the base alone failed, where a correction is needed.\n\n"
        f"{header}\n" + "\n".join(rows) + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
