"""Running a policy for a batch of seeded episodes and recording them.

:func:`run_episodes` is the loop behind ``bench demo`` and the reference-result scripts in
``benchmarks/``; the policy is any registered name (``bench list``), driven through its
:class:`~residual_bench.policies.controller.Controller`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
from tqdm import tqdm

from residual_bench.eval import EpisodeRecord, EpisodeRecorder, append_jsonl, read_jsonl, summarize
from residual_bench.policies.registry import get_base, make_controller
from residual_bench.seeding import episode_seed
from residual_bench.viz import save_scene_figure

ENV_ID = "ResidualPickPlace-v0"


def _check_out_dir(out_dir: Path) -> None:
    existing = [n for n in ("episodes.jsonl", "summary.json") if (out_dir / n).exists()]
    if existing:
        raise FileExistsError(
            f"{out_dir} already holds {', '.join(existing)}; choose another output directory "
            "or move the old results away"
        )


def run_episodes(
    episodes: int,
    *,
    policy: str = "expert",
    suite: str = "nominal",
    objects: str = "train",
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
    scene_figure: bool = False,
    env_kwargs: dict[str, Any] | None = None,
) -> tuple[list[EpisodeRecord], dict[str, Any]]:
    """Run ``policy`` for ``episodes`` seeded episodes of one suite and object split.

    Episode ``i`` uses ``episode_seed(seed, suite, objects, i)``, so two policies run with the
    same arguments meet the same scenes and the same perturbations (paired comparisons).
    With ``out``, writes ``episodes.jsonl`` (appended and flushed per episode),
    ``summary.json`` and, with ``scene_figure``, ``scene.png``; it refuses a directory that
    already holds results.

    Returns:
        The records and the summary (:func:`residual_bench.eval.summarize` plus run metadata).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    entry = get_base(policy)  # an unknown name fails here, before anything is made or written
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        _check_out_dir(out_dir)
    env = gym.make(
        ENV_ID, objects=objects, suite=suite, **{**entry.env_kwargs, **(env_kwargs or {})}
    )
    records = []
    try:
        sim = env.unwrapped
        suite_name = sim.suite.name
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        controller = make_controller(policy, env)
        recorder = EpisodeRecorder()
        for index in tqdm(
            range(episodes), desc=f"{policy}/{suite_name}/{objects}", disable=not progress
        ):
            obs, info = env.reset(seed=episode_seed(seed, suite_name, objects, index))
            if index == 0 and out_dir is not None and scene_figure:
                save_scene_figure(env, out_dir / "scene.png")
            controller.reset(info)
            recorder.start(
                info,
                env_id=ENV_ID,
                env_spec_hash=sim.env_spec_hash,
                suite=suite_name,
                objects=objects,
                base=policy,
            )
            done = False
            while not done:
                action, _ = controller.act(obs, info)
                obs, _, terminated, truncated, info = env.step(action)
                recorder.step(action, info)
                done = terminated or truncated
            record = recorder.finish(final_state_hash=sim.state_hash())
            records.append(record)
            if out_dir is not None:
                append_jsonl(out_dir / "episodes.jsonl", record)
    finally:
        env.close()
    run = {
        "env_id": ENV_ID,
        "policy": policy,
        "suite": suite_name,
        "objects": objects,
        "master_seed": seed,
        "episodes": episodes,
    }
    summary = {**summarize(records), "run": run}
    if out_dir is not None:
        # Summarise what is on disk, so the summary always matches the records file.
        summary = {**summarize(read_jsonl(out_dir / "episodes.jsonl")), "run": run}
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return records, summary


def run_or_reuse(out: str | Path, episodes: int, **kwargs: Any) -> dict[str, Any]:
    """The summary of ``run_episodes(episodes, out=out, **kwargs)``, reusing a finished run.

    A directory whose summary covers ``episodes`` episodes is read back instead of re-run; an
    unfinished one (an interrupted run) is removed and run again, so long result scripts
    resume cell by cell.
    """
    out = Path(out)
    summary_path = out / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        if summary["n_episodes"] == episodes:
            return summary
    if out.exists():
        shutil.rmtree(out)
    _, summary = run_episodes(episodes, out=out, progress=False, **kwargs)
    return summary


def format_rate(rate: dict[str, Any]) -> str:
    """ "90% [70%, 97%]" for a summary rate, "-" when undefined."""
    if rate["rate"] is None:
        return "-"
    lo, hi = rate["ci"]
    return f"{rate['rate']:.0%} [{lo:.0%}, {hi:.0%}]"


def success_line(summary: dict[str, Any]) -> str:
    """ "success 18/20 = 90.0% (95% CI 69.9%-97.2%)" for a summary."""
    rate = summary["success_rate"]
    lo, hi = rate["ci"]
    return f"success {rate['k']}/{rate['n']} = {rate['rate']:.1%} (95% CI {lo:.1%}-{hi:.1%})"
