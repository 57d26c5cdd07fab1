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

from residual_bench.episodes import EpisodeRecord, append_jsonl, read_jsonl, run_episode, summarize
from residual_bench.policies.registry import get_base, make_controller
from residual_bench.registration import ENV_ID
from residual_bench.seeding import episode_seed
from residual_bench.tasks import task_entry
from residual_bench.viz import save_scene_figure


def _check_out_dir(out_dir: Path) -> None:
    existing = [n for n in ("episodes.jsonl", "summary.json") if (out_dir / n).exists()]
    if existing:
        raise FileExistsError(
            f"{out_dir} already holds {', '.join(existing)}; choose another output directory "
            "or move the old results away"
        )


class StaleRecordsError(ValueError):
    """Records already on disk that a resumed run cannot continue."""


def _records_to_continue(
    path: Path,
    episodes: int,
    *,
    policy: str,
    suite: str,
    objects: str,
    seed: int,
    spec_hash: str,
    env_id: str,
) -> list[EpisodeRecord]:
    """The records in ``path`` when they are the first episodes of the run being asked for."""
    try:
        done = read_jsonl(path)
    except ValueError as err:
        raise StaleRecordsError(str(err)) from err
    if len(done) > episodes:
        raise StaleRecordsError(f"{path} holds {len(done)} episodes, more than {episodes}")
    for index, record in enumerate(done):
        expected = {
            "env_id": env_id,
            "base": policy,
            "suite": suite,
            "objects": objects,
            "env_spec_hash": spec_hash,
            "seed": episode_seed(seed, suite, objects, index),
        }
        for field, value in expected.items():
            if getattr(record, field) != value:
                raise StaleRecordsError(
                    f"{path}: episode {index} has {field} {getattr(record, field)!r}, "
                    f"this run needs {value!r}"
                )
    return done


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
    resume: bool = False,
    env_id: str = ENV_ID,
) -> tuple[list[EpisodeRecord], dict[str, Any]]:
    """Run ``policy`` for ``episodes`` seeded episodes of one suite and object split of
    task ``env_id``.

    Episode ``i`` uses ``episode_seed(seed, suite, objects, i)``, so two policies run with the
    same arguments meet the same scenes and the same perturbations (paired comparisons).
    With ``out``, writes ``episodes.jsonl`` (appended and flushed per episode),
    ``summary.json`` and, with ``scene_figure``, ``scene.png``; it refuses a directory that
    already holds results - unless ``resume`` is set: then the episodes already in
    ``episodes.jsonl`` are kept and only the rest are run, provided they are this run's first
    episodes (same task, policy, suite, objects, seeds and environment spec); otherwise
    :class:`StaleRecordsError` is raised before any episode is run. This extends a finished
    run to more episodes and continues an interrupted one.

    Returns:
        The records and the summary (:func:`residual_bench.eval.summarize` plus run metadata).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    task_entry(env_id)  # an unknown id is refused before anything is made
    entry = get_base(policy)  # an unknown name fails here, before anything is made or written
    out_dir = Path(out) if out is not None else None
    records_file = out_dir / "episodes.jsonl" if out_dir is not None else None
    resuming = resume and records_file is not None and records_file.exists()
    if out_dir is not None and not resuming:
        _check_out_dir(out_dir)
    env = gym.make(
        env_id, objects=objects, suite=suite, **{**entry.env_kwargs, **(env_kwargs or {})}
    )
    records: list[EpisodeRecord] = []
    try:
        sim = env.unwrapped
        suite_name = sim.suite.name
        if resuming:
            records = _records_to_continue(
                records_file,
                episodes,
                policy=policy,
                suite=suite_name,
                objects=objects,
                seed=seed,
                spec_hash=sim.env_spec_hash,
                env_id=env_id,
            )
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        controller = make_controller(policy, env)
        identity = {
            "env_id": env_id,
            "env_spec_hash": sim.env_spec_hash,
            "suite": suite_name,
            "objects": objects,
            "base": policy,
        }
        for index in tqdm(
            range(len(records), episodes),
            desc=f"{policy}/{suite_name}/{objects}",
            disable=not progress,
            initial=len(records),
            total=episodes,
        ):
            figure = None
            if index == 0 and out_dir is not None and scene_figure:

                def figure(env: Any, info: dict, path: Path = out_dir / "scene.png") -> None:
                    if info["time"] == 0:  # the scene as the first episode starts
                        save_scene_figure(env, path)

            # What makes the record re-runnable (``eval.runner.task_of``), as bench eval's.
            extra = {"master_seed": seed, "episode_index": index, "suite_source": suite}
            reset_seed = episode_seed(seed, suite_name, objects, index)
            record = _base_episode(env, controller, reset_seed, identity, figure, extra)
            records.append(record)
            if out_dir is not None:
                append_jsonl(records_file, record)
    finally:
        env.close()
    run = {
        "env_id": env_id,
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


def _base_episode(
    env: Any,
    controller: Any,
    seed: int,
    identity: dict[str, Any],
    on_step: Any = None,
    extra: dict[str, Any] | None = None,
) -> EpisodeRecord:
    """One recorded episode of a base's controller driving ``env`` directly."""
    return run_episode(
        env,
        lambda obs, info: controller.act(obs, info)[0],
        seed,
        reset=controller.reset,
        on_step=on_step,
        record=identity,
        record_extra=(lambda info: extra) if extra is not None else None,
    ).record


def replay_record(record: EpisodeRecord) -> EpisodeRecord:
    """Run the episode of a ``bench demo`` record again (its policy, suite, split and reset
    seed, in the env version it was made with): the same final state proves it replays."""
    entry = get_base(record.base)
    suite = record.extra.get("suite_source", record.suite)
    env = gym.make(record.env_id, objects=record.objects, suite=suite, **entry.env_kwargs)
    try:
        controller = make_controller(record.base, env)
        identity = {
            "env_id": record.env_id,
            "env_spec_hash": env.unwrapped.env_spec_hash,
            "suite": record.suite,
            "objects": record.objects,
            "base": record.base,
        }
        return _base_episode(env, controller, record.seed, identity)
    finally:
        env.close()


def run_or_reuse(out: str | Path, episodes: int, **kwargs: Any) -> dict[str, Any]:
    """The summary of ``run_episodes(episodes, out=out, **kwargs)``, reusing a finished run.

    A directory already holding this run's episodes is reused; one holding only its first
    episodes (an interrupted run, or a shorter one) is continued from its last episode; one
    holding anything else (another policy, seed or suite, or an environment that has changed
    since) is removed and run again. Long result scripts so resume episode by episode, grow
    from a quick look to the full count, and never mix in stale episodes.
    """
    out = Path(out)
    try:
        _, summary = run_episodes(episodes, out=out, progress=False, resume=True, **kwargs)
    except StaleRecordsError:
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
