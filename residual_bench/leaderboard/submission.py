"""Leaderboard submissions: the on-disk layout, content hashes and ``bench submit``.

A submission is an immutable directory ``leaderboards/submissions/<id>/``::

    submission.json      what was evaluated and the claimed summary (see :func:`build_submission`)
    episodes.jsonl       every episode record of the method, in canonical order
    checkpoints/seed<S>/ the residual of training seed S (residual.json + policy.safetensors:
                         data only, never unpickled), if any

``<id>`` is :func:`submission_id`: a content hash over ``submission.json`` (without its ``id``),
the episode file's bytes and - through the checkpoint hashes inside ``submission.json`` - the
checkpoints. Changing any of them makes another submission, never an edit of this one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from residual_bench import __version__
from residual_bench.env_spec import load_env_spec, spec_hash
from residual_bench.episodes.records import EpisodeRecord, read_jsonl
from residual_bench.eval.runner import cell_summaries
from residual_bench.leaderboard.files import excerpt, list_files, read_bounded, sha256_file
from residual_bench.leaderboard.layout import (
    BASE_WEIGHTS_BYTES,
    CHECKPOINTS_DIR,
    DEFAULT_ROOT,
    EPISODES_FILE,
    FORMAT,
    MAX_BYTES,
    SCHEMA_VERSION,
    SUBMISSION_FILE,
    SUBMISSIONS_DIR,
)
from residual_bench.perturb import load_suite, suite_names
from residual_bench.policies.registry import base_names, get_base
from residual_bench.registration import ENV_ID, same_task
from residual_bench.residual.checkpoint import (
    PICKLED_MODEL_FILE,
    RESIDUAL_FILES,
    convert_residual,
    read_metadata,
    residual_location,
)
from residual_bench.tasks import task_entry, task_ids

CONTROL_HZ = 20  # the rate `bench eval` runs every registered base at


def canonical_json(data: Any) -> bytes:
    """The bytes a JSON value is hashed as: sorted keys, no whitespace, no NaN."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def checkpoint_hash(path: str | Path, limit: int = MAX_BYTES) -> str:
    """sha256 of a checkpoint: a file's bytes (what ``sha256sum`` prints), or over a residual
    directory each file's relative name and bytes, sorted by name. Files are streamed, and
    only plain files of at most ``limit`` bytes count (see ``files``).

    Raises:
        FileNotFoundError: ``path`` does not exist (never the hash of nothing).
        SubmissionFileError: a symlink, a special file or a file over ``limit``.
    """
    root = Path(path)
    if not root.exists() and not root.is_symlink():
        raise FileNotFoundError(f"no checkpoint at {root}")
    if root.is_symlink() or not root.is_dir():
        return sha256_file(root, limit)
    digest = hashlib.sha256()
    for name in list_files(root):
        # Length-prefix the name so that no two layouts can hash the same byte stream.
        digest.update(f"{len(name)}:{name}\n".encode())
        digest.update(bytes.fromhex(sha256_file(root / name, limit)))
    return digest.hexdigest()


def submission_id(submission: dict[str, Any], episodes: bytes) -> str:
    """The content hash naming a submission (16 hex digits)."""
    body = {k: v for k, v in submission.items() if k != "id"}
    digest = hashlib.sha256(canonical_json(body) + b"\n" + episodes)
    return digest.hexdigest()[:16]


def suite_spec_hashes(suites: Iterable[str], env_id: str = ENV_ID) -> dict[str, Any]:
    """The spec hashes of the benchmark's task ``env_id`` as this code defines it.

    ``scene`` is the hash of the task's scene spec; ``suites[s]`` is the ``env_spec_hash``
    every episode of shipped suite ``s`` records (scene + suite + control rate), computed the
    way :class:`~residual_bench.task_env.ResidualTaskEnv` computes it, without a simulator.

    Raises:
        ValueError: a suite that is not shipped with the benchmark, or an unknown task.
    """
    scene = load_env_spec(None, None, task_entry(env_id).task.scene)
    hashes = {}
    shipped = suite_names()
    for name in suites:
        # By name only: a path would make the verifier read a file of the submitter's choice.
        if not isinstance(name, str) or name not in shipped:
            raise ValueError(f"suite {excerpt(name)} is not shipped; shipped: {', '.join(shipped)}")
        suite = dataclasses.asdict(load_suite(name))
        hashes[name] = spec_hash({"scene": scene, "suite": suite, "control_hz": CONTROL_HZ})
    return {"scene": spec_hash(scene), "suites": hashes}


def canonical_order(records: Iterable[EpisodeRecord]) -> list[EpisodeRecord]:
    """Records sorted by (suite, objects, training seed, episode index): one order per set."""

    def key(r: EpisodeRecord) -> tuple:
        seed = r.extra.get("train_seed")
        return (r.suite, r.objects, -1 if seed is None else int(seed), r.extra["episode_index"])

    return sorted(records, key=key)


def episodes_bytes(records: Iterable[EpisodeRecord]) -> bytes:
    """The episode file of a submission, one record a line in the format of ``append_jsonl``."""
    lines = [json.dumps(r.to_dict(), allow_nan=False, separators=(",", ":")) for r in records]
    return "".join(line + "\n" for line in lines).encode()


def hardware() -> dict[str, Any]:
    """The submitting machine, as far as it is known without a GPU probe."""
    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }


def _select(records: Sequence[EpisodeRecord], base: str, residual: str | None, env_id: str) -> list:
    chosen = [
        r
        for r in records
        if r.base == base and r.residual == residual and _on_task(r.env_id, env_id)
    ]
    if not chosen:
        methods = sorted({f"{r.base} + {r.residual or 'none'} on {r.env_id}" for r in records})
        raise ValueError(
            f"no episodes of base {base!r} with residual {residual or 'none'!r} on {env_id}; "
            f"the results hold: {', '.join(methods) or 'nothing'}"
        )
    missing = [r.seed for r in chosen if "episode_index" not in r.extra]
    if missing:
        raise ValueError(f"records of seeds {missing[:3]} lack episode_index: not from bench eval")
    return chosen


def _on_task(record_env_id: str, env_id: str) -> bool:
    """Whether a record's env id is (a version of) task ``env_id``; unknown ids are not."""
    return record_env_id in task_ids() and same_task(record_env_id, env_id)


def build_submission(
    records: Sequence[EpisodeRecord],
    *,
    name: str,
    base: str,
    residual: str | None,
    submitter: str,
    checkpoints: dict[int, str] | None = None,
    supersedes: Sequence[str] = (),
    env_id: str = ENV_ID,
) -> dict[str, Any]:
    """The ``submission.json`` of a method's records on task ``env_id`` (without its ``id``).

    Args:
        records: the method's records, in :func:`canonical_order`.
        name: display name on the leaderboard.
        base: base policy name; residual: the residual's name or None for the base alone.
        submitter: who submits (a name, handle or e-mail).
        checkpoints: training seed -> checkpoint directory inside the submission.
        supersedes: ids of earlier submissions of the same submitter that this replaces.
        env_id: the task the records ran (written only for a task other than pick-and-place,
            so that every pick-and-place submission keeps the form, and the id, it had).
    """
    first = records[0]
    train_seeds = sorted({int(r.extra["train_seed"]) for r in records if "train_seed" in r.extra})
    residual_info = None
    if residual is not None:
        if not checkpoints:
            raise ValueError(f"residual {residual!r} submitted without its checkpoints")
        meta = json.loads((Path(next(iter(checkpoints.values()))) / "residual.json").read_text())
        residual_info = {
            "name": residual,
            "algo": meta["algo"],
            "features": meta["features"],
            "description": f"{meta['algo']} residual on {meta['features']} features, "
            f"alpha {meta['alpha']}",
            "checkpoints": {
                str(seed): {"path": f"{CHECKPOINTS_DIR}/seed{seed}", "sha256": checkpoint_hash(p)}
                for seed, p in sorted(checkpoints.items())
            },
        }
    suites = sorted({r.suite for r in records})
    lineage = {"supersedes": list(supersedes)} if supersedes else {}
    task = {} if same_task(env_id, ENV_ID) else {"env_id": env_id}
    return {
        **lineage,
        **task,
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "benchmark_version": __version__,
        "name": name,
        "submitter": submitter,
        "spec_hashes": suite_spec_hashes(suites, env_id),
        "protocol": {
            "suites": suites,
            "objects": sorted({r.objects for r in records}),
            "train_seeds": train_seeds,
            "episodes": 1 + max(int(r.extra["episode_index"]) for r in records),
            "master_seed": int(first.extra.get("master_seed", 0)),
        },
        "base": base_info(base),
        "residual": residual_info,
        "versions": first.extra.get("versions", {}),
        "git_commit": first.extra.get("git_commit"),
        "hardware": hardware(),
        "summary": {"cells": json.loads(json.dumps(cell_summaries(records)))},
    }


def submission_env_id(data: dict[str, Any]) -> str:
    """The task a ``submission.json`` is on: its ``env_id``, or pick-and-place's for one
    without (every submission made before other tasks existed)."""
    return str(data.get("env_id", ENV_ID))


def base_info(base: str) -> dict[str, str]:
    """The submission's ``base``: name, description and, for a base whose weights are a file
    (``bc``), their SHA-256, so a later change of the shipped weights is caught, not
    mistaken for a failed re-run."""
    if base not in base_names():  # a remote base is described by its URL, not contacted
        return {"name": base, "description": base}
    entry = get_base(base)
    info = {"name": base, "description": entry.description}
    if entry.weights is not None:
        info["weights_sha256"] = checkpoint_hash(entry.weights(), limit=BASE_WEIGHTS_BYTES)
    return info


def submit(
    results_dir: str | Path,
    *,
    name: str,
    base: str,
    residual: str | None,
    submitter: str,
    root: str | Path = DEFAULT_ROOT,
    supersedes: Sequence[str] = (),
    env_id: str = ENV_ID,
) -> Path:
    """Turn a results directory's episodes of one method on task ``env_id`` into a new
    submission under ``root/submissions/``; ``supersedes`` names earlier submissions of the
    same submitter that it replaces.

    Residual checkpoints are copied from the records' ``extra.residual_path`` and the records
    then point at the copies (``checkpoints/seed<S>``), so the submission stands alone.

    Returns:
        The submission directory.

    Raises:
        FileNotFoundError: no ``episodes.jsonl`` in ``results_dir``, or a missing checkpoint.
        FileExistsError: the same submission is already there (submissions are append-only).
        ValueError: an unknown task, no records of that method on it, or records not
            written by ``bench eval``.
    """
    task_entry(env_id)  # an unknown id is refused here, naming the registered ones
    path = Path(results_dir) / EPISODES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{results_dir}: no {EPISODES_FILE} (run `bench eval` first)")
    records = _select(read_jsonl(path), base, residual, env_id)
    submissions = Path(root) / SUBMISSIONS_DIR
    submissions.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".submission.", dir=submissions))
    try:
        checkpoints = _copy_checkpoints(records, tmp) if residual is not None else None
        records = canonical_order(records)
        data = build_submission(
            records,
            name=name,
            base=base,
            residual=residual,
            submitter=submitter,
            checkpoints=checkpoints,
            supersedes=supersedes,
            env_id=env_id,
        )
        episodes = episodes_bytes(records)
        data = {"id": submission_id(data, episodes), **data}
        (tmp / EPISODES_FILE).write_bytes(episodes)
        (tmp / SUBMISSION_FILE).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        final = submissions / data["id"]
        if final.exists():
            raise FileExistsError(f"submission {data['id']} already exists at {final}")
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _copy_checkpoints(records: list[EpisodeRecord], into: Path) -> dict[int, str]:
    """Copy each training seed's residual into ``into`` and repoint the records at the copy."""
    sources: dict[int, str] = {}
    for r in records:
        seed, source = r.extra.get("train_seed"), r.extra.get("residual_path")
        if seed is None or source is None:
            raise ValueError(f"record of seed {r.seed} lacks train_seed / residual_path")
        if sources.setdefault(int(seed), source) != source:
            raise ValueError(f"training seed {seed} was evaluated from two checkpoints")
    copies = {}
    for seed, source in sorted(sources.items()):
        location = residual_location(source)
        if not (location / "residual.json").is_file():
            raise FileNotFoundError(f"checkpoint {source!r} of training seed {seed} is missing")
        read_metadata(location)  # refuses a pickle-bearing model.zip, naming the conversion
        target = into / CHECKPOINTS_DIR / f"seed{seed}"
        target.mkdir(parents=True)
        # Only what `load_residual` needs: no optimiser checkpoints or logs of the run.
        for file in RESIDUAL_FILES:
            shutil.copyfile(location / file, target / file)
        copies[seed] = str(target)
    for r in records:
        r.extra["residual_path"] = f"{CHECKPOINTS_DIR}/seed{int(r.extra['train_seed'])}"
    return copies


def convert_submission(path: str | Path) -> Path:
    """A new submission beside ``path`` whose checkpoints, in the earlier pickle-bearing
    ``model.zip`` format, are converted to safetensors + JSON without unpickling (see
    :func:`~residual_bench.residual.checkpoint.convert_residual`); returns its directory.

    The episodes and every claimed number stay as they are: the converted networks act
    exactly as before. Only the checkpoint hashes, and so the id, change; the old directory
    is removed, since it can no longer pass the checkpoint rule.

    Raises:
        ValueError: not a submission with checkpoints to convert.
        FileExistsError: the converted submission already exists.
    """
    path = Path(path)
    list_files(path)  # plain files inside the submission only, or SubmissionFileError
    data = json.loads(read_bounded(path / SUBMISSION_FILE))
    residual = data.get("residual") if isinstance(data, dict) else None
    seeds = sorted((residual or {}).get("checkpoints", {}))
    if not all(isinstance(s, str) and s.isdigit() for s in seeds):
        raise ValueError(f"{path}: checkpoint seeds must be integers, got {excerpt(seeds)}")
    if not seeds or not all(
        (path / CHECKPOINTS_DIR / f"seed{s}" / PICKLED_MODEL_FILE).is_file() for s in seeds
    ):
        raise ValueError(f"{path}: no checkpoints in the {PICKLED_MODEL_FILE} format to convert")
    tmp = Path(tempfile.mkdtemp(prefix=".submission.", dir=path.parent))
    try:
        shutil.copytree(path, tmp, dirs_exist_ok=True)
        for seed in seeds:
            where = tmp / CHECKPOINTS_DIR / f"seed{seed}"
            convert_residual(where)
            residual["checkpoints"][seed]["sha256"] = checkpoint_hash(where)
        episodes = (tmp / EPISODES_FILE).read_bytes()
        data["id"] = submission_id(data, episodes)
        (tmp / SUBMISSION_FILE).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        final = path.parent / data["id"]
        if final.exists():
            raise FileExistsError(f"submission {data['id']} already exists at {final}")
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(path)
    return final
