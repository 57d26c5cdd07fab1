"""The demo job: run the scripted expert for a batch of episodes, record and summarise them.

``bench demo`` calls :func:`run_demo`; ``benchmarks/expert_success.py`` uses it for the
committed expert table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
from tqdm import tqdm

from residual_bench.eval import EpisodeRecorder, append_jsonl, read_jsonl, summarize
from residual_bench.policies.expert import ScriptedExpert
from residual_bench.seeding import episode_seed
from residual_bench.viz import save_scene_figure

ENV_ID = "ResidualPickPlace-v0"


def run_demo(
    episodes: int = 20,
    objects: str = "train",
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the expert for ``episodes`` seeded episodes and summarise them.

    Writes ``episodes.jsonl`` (one record per episode, flushed as it goes), ``summary.json``
    and ``scene.png`` (the first episode's start) into ``out`` when given. Refuses to write
    into a directory that already holds results, so nothing earlier is overwritten.

    Returns:
        The summary dict (:func:`residual_bench.eval.summarize` plus run metadata).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        existing = [n for n in ("episodes.jsonl", "summary.json") if (out_dir / n).exists()]
        if existing:
            raise FileExistsError(
                f"{out_dir} already holds {', '.join(existing)}; choose another --out "
                "or move the old results away"
            )
    env = gym.make(ENV_ID, objects=objects, **(env_kwargs or {}))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    sim = env.unwrapped
    expert = ScriptedExpert()
    recorder = EpisodeRecorder()
    records = []
    try:
        for index in tqdm(range(episodes), desc=f"expert/{objects}", disable=not progress):
            ep_seed = episode_seed(seed, "demo", objects, index)
            _, info = env.reset(seed=ep_seed)
            if index == 0 and out_dir is not None:
                save_scene_figure(env, out_dir / "scene.png")
            expert.reset()
            recorder.start(
                info,
                env_id=ENV_ID,
                env_spec_hash=sim.scene_spec_hash,
                suite="nominal",
                objects=objects,
                base="expert",
            )
            done = False
            while not done:
                action = expert.act(env)
                _, _, terminated, truncated, info = env.step(action)
                recorder.step(action, info)
                done = terminated or truncated
            record = recorder.finish(final_state_hash=sim.state_hash())
            records.append(record)
            if out_dir is not None:
                append_jsonl(out_dir / "episodes.jsonl", record)
    finally:
        env.close()
    summary = summarize(records)
    summary["run"] = {
        "env_id": ENV_ID,
        "base": "expert",
        "objects": objects,
        "master_seed": seed,
        "episodes": episodes,
    }
    if out_dir is not None:
        # Summarise what is on disk, so the summary always matches the records file.
        summary = {**summarize(read_jsonl(out_dir / "episodes.jsonl")), "run": summary["run"]}
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
