"""The rules every submission must pass (``bench leaderboard check``).

Each rule returns the ways a submission breaks it; a :class:`Failure` names the submission and
the rule, so that a failing check says exactly what to fix. The rules, in order:

- ``files``: plain files only (no symlink, FIFO or device anywhere), ``submission.json`` and
  ``episodes.jsonl`` present, and nothing else but each declared training seed's checkpoint
  files (``residual.json`` and ``policy.safetensors``: a pickle-bearing ``model.zip`` is
  refused), so that every file is covered by the id or a checkpoint hash.
- ``size``: the whole directory is at most ``MAX_BYTES`` (5 MiB), checked before any file
  is read; every read is bounded (see ``files``).
- ``schema``: the known format and schema version, every field present with its JSON type,
  and every value that becomes a path or a loop bound bounded (:mod:`.schema`).
- ``id``: the id is the content hash of the files and the directory's name.
- ``benchmark``: a known benchmark version, and spec hashes equal to this code's.
- ``records``: every line is a valid episode record of the declared method, task (``env_id``,
  pick-and-place when absent) and suites.
- ``grid``: every suite x objects x training seed x episode index present exactly once.
- ``seeds``: every episode's seed is the derived one (no cherry-picked episodes).
- ``summary``: the claimed summary equals the one recomputed from the episodes.
- ``checkpoint``: each training seed's checkpoint is there and has the declared hash.
- ``lineage``: each submission it ``supersedes`` is one of this leaderboard's, made by the same
  submitter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from residual_bench.episodes.records import EpisodeRecord
from residual_bench.eval.runner import cell_summaries
from residual_bench.leaderboard.files import (
    SubmissionFileError,
    excerpt,
    list_files,
    read_bounded,
    total_size,
)
from residual_bench.leaderboard.layout import (
    CHECKPOINTS_DIR,
    EPISODES_FILE,
    KNOWN_BENCHMARK_VERSIONS,
    MAX_BYTES,
    SUBMISSION_FILE,
    SUBMISSIONS_DIR,
)
from residual_bench.leaderboard.schema import schema_problems
from residual_bench.leaderboard.submission import (
    checkpoint_hash,
    submission_env_id,
    submission_id,
    suite_spec_hashes,
)
from residual_bench.registration import same_task
from residual_bench.residual.checkpoint import PICKLED_MODEL_FILE, RESIDUAL_FILES
from residual_bench.seeding import episode_seed
from residual_bench.tasks import task_ids

MASTER_SEEDS = (0,)  # the benchmark's published master seed
MAX_SUBMISSION_JSON_BYTES = 1024 * 1024
MAX_MESSAGE = 300  # characters of one failure message: submitted text is quoted, not rendered


@dataclass(frozen=True)
class Failure:
    """One broken rule of one submission."""

    submission: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.submission}: [{self.rule}] {self.message}"


Fail = Callable[[str, str], None]  # fail(rule, message)


class _Broken(Exception):
    """A rule failed in a way that makes the later rules meaningless."""


def validate_submission(path: str | Path) -> list[Failure]:
    """Every rule the submission at ``path`` breaks (empty when it is valid)."""
    path = Path(path)
    failures: list[Failure] = []

    def fail(rule: str, message: str) -> None:
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "..."
        failures.append(Failure(path.name, rule, message))

    try:
        files = _plain_files(path, fail)
        data, raw = _files_and_schema(path, files, fail)
        records = _records(data, raw, fail)
    except _Broken:
        return failures
    _layout(data, files, fail)
    expected_id = submission_id(data, raw)
    if data["id"] != expected_id or path.name != data["id"]:
        fail("id", f"id {data['id']!r} in {path.name!r}, but the content hash is {expected_id!r}")
    _benchmark(data, fail)
    _grid_and_seeds(data, records, fail)
    _summary(data, records, fail)
    _checkpoints(path, data, fail)
    _lineage(path, data, fail)
    return failures


def _lineage(path: Path, data: dict[str, Any], fail: Fail) -> None:
    """Each superseded submission is an earlier one of this root, by the same submitter."""
    for old in data.get("supersedes", []):
        if old == data["id"]:
            fail("lineage", "a submission cannot supersede itself")
            continue
        try:
            text = read_bounded(path.parent / old / SUBMISSION_FILE, MAX_SUBMISSION_JSON_BYTES)
            earlier = json.loads(text)
        except (OSError, ValueError):  # a SubmissionFileError is a ValueError
            fail("lineage", f"supersedes {old}, which is not a submission here")
            continue
        if not isinstance(earlier, dict) or earlier.get("submitter") != data["submitter"]:
            fail("lineage", f"supersedes {old}, which another submitter made")


def validate_all(root: str | Path) -> list[Failure]:
    """The failures of every submission under ``root/submissions/``, in name order."""
    submissions = Path(root) / SUBMISSIONS_DIR
    if not submissions.is_dir():
        return []
    failures = []
    for path in sorted(p for p in submissions.iterdir() if not p.name.startswith(".")):
        failures.extend(validate_submission(path))
    return failures


def _plain_files(path: Path, fail: Fail) -> list[str]:
    """The submission's files, all plain and inside it, of bounded total size: checked
    before a single byte is read."""
    try:
        files = list_files(path)
    except SubmissionFileError as exc:
        fail("files", str(exc))
        raise _Broken from None
    except OSError as exc:
        fail("files", f"not a readable directory ({exc.strerror})")
        raise _Broken from None
    size = total_size(path, files)
    if size > MAX_BYTES:
        fail("size", f"{size} bytes, more than the cap of {MAX_BYTES} bytes")
        raise _Broken
    return files


def _files_and_schema(path: Path, files: list[str], fail: Fail) -> tuple[dict[str, Any], bytes]:
    missing = sorted({SUBMISSION_FILE, EPISODES_FILE} - set(files))
    extra = sorted(
        {f for f in files if not f.startswith(f"{CHECKPOINTS_DIR}/")}
        - {SUBMISSION_FILE, EPISODES_FILE}
    )
    if missing:
        fail("files", f"missing {', '.join(missing)}")
        raise _Broken
    if extra:
        fail("files", f"unexpected file(s) {', '.join(excerpt(e) for e in extra[:5])}")
    try:
        data = json.loads(read_bounded(path / SUBMISSION_FILE, MAX_SUBMISSION_JSON_BYTES))
        raw = read_bounded(path / EPISODES_FILE, MAX_BYTES)
    except SubmissionFileError as exc:
        fail("files", str(exc))
        raise _Broken from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        fail("schema", f"{SUBMISSION_FILE} is not valid JSON ({type(exc).__name__})")
        raise _Broken from None
    problems = schema_problems(data)
    if not problems and submission_env_id(data) not in task_ids():
        problems = [f"env_id {excerpt(data['env_id'])} is not a task of this benchmark"]
    for problem in problems:
        fail("schema", problem)
    if problems:
        raise _Broken
    return data, raw


def _layout(data: dict[str, Any], files: list[str], fail: Fail) -> None:
    """Every file under ``checkpoints/`` is a file of a declared training seed's residual:
    nothing escapes the id's hash."""
    seeds = {str(s) for s in data["protocol"]["train_seeds"]} if data["residual"] else set()
    allowed = {f"{CHECKPOINTS_DIR}/seed{s}/{name}" for s in seeds for name in RESIDUAL_FILES}
    for name in files:
        if not name.startswith(f"{CHECKPOINTS_DIR}/") or name in allowed:
            continue
        if name.endswith(f"/{PICKLED_MODEL_FILE}"):
            fail(
                "checkpoint",
                f"{excerpt(name)} is stable-baselines3's pickle-bearing format, never loaded "
                "here; convert the checkpoint with `bench residual convert DIR` and submit again",
            )
        else:
            fail("files", f"unexpected file {excerpt(name)} (not covered by any hash)")


def _records(data: dict[str, Any], raw: bytes, fail: Fail) -> list[EpisodeRecord]:
    records = []
    base = data["base"]["name"]
    residual = data["residual"]["name"] if data["residual"] else None
    env_id = submission_env_id(data)
    lines = raw.split(b"\n")
    if lines[-1]:
        fail("records", "the last line has no newline (a truncated file)")
    for lineno, line in enumerate(lines[:-1], start=1):
        try:
            record = EpisodeRecord.from_dict(json.loads(line), where=f"line {lineno}")
        except (ValueError, TypeError, AttributeError) as exc:
            fail("records", str(exc))
            continue
        if record.base != base or record.residual != residual:
            fail("records", f"line {lineno} is {record.base} + {record.residual}, not the method")
        elif record.env_id not in task_ids() or not same_task(record.env_id, env_id):
            fail(
                "records",
                f"line {lineno}: env_id {excerpt(record.env_id)} is not the submission's task "
                f"{env_id}",
            )
        elif "episode_index" not in record.extra or "master_seed" not in record.extra:
            fail("records", f"line {lineno} lacks extra.episode_index / extra.master_seed")
        else:
            records.append(record)
    if len(records) != len(lines) - 1 or not records:
        fail("records", "no valid records" if not records else "some records are invalid")
        raise _Broken
    return records


def _benchmark(data: dict[str, Any], fail: Fail) -> None:
    if data["benchmark_version"] not in KNOWN_BENCHMARK_VERSIONS:
        fail("benchmark", f"unknown benchmark version {data['benchmark_version']!r}")
    try:
        expected = suite_spec_hashes(data["protocol"]["suites"], submission_env_id(data))
    except ValueError as exc:
        fail("benchmark", str(exc))
        return
    if data["spec_hashes"] != expected:
        fail("benchmark", f"spec hashes {data['spec_hashes']} differ from this benchmark's")


def _grid_and_seeds(data: dict[str, Any], records: list[EpisodeRecord], fail: Fail) -> None:
    protocol = data["protocol"]
    seeds = protocol["train_seeds"] if data["residual"] else [None]
    hashes = data["spec_hashes"].get("suites", {})
    if protocol["master_seed"] not in MASTER_SEEDS:
        # A free master seed would let a submitter pick the luckiest of many evaluations.
        fail("seeds", f"master seed {protocol['master_seed']}, the benchmark's is {MASTER_SEEDS}")
    expected = {
        (suite, objects, seed, index)
        for suite in protocol["suites"]
        for objects in protocol["objects"]
        for seed in seeds
        for index in range(protocol["episodes"])
    }
    seen: dict[tuple, int] = {}
    for r in records:
        key = (r.suite, r.objects, r.extra.get("train_seed"), r.extra["episode_index"])
        seen[key] = seen.get(key, 0) + 1
        derived = episode_seed(protocol["master_seed"], r.suite, r.objects, key[3])
        if r.extra["master_seed"] != protocol["master_seed"] or r.seed != derived:
            fail("seeds", f"{_cell(key)}: seed {r.seed}, derived seed {derived}")
        if r.env_spec_hash != hashes.get(r.suite):
            fail("benchmark", f"{_cell(key)}: env_spec_hash {r.env_spec_hash!r} is not the suite's")
    for key in sorted(expected - set(seen), key=str)[:5]:
        fail("grid", f"{_cell(key)} is missing")
    for key, n in sorted(seen.items(), key=str):
        if key not in expected:
            fail("grid", f"{_cell(key)} is outside the declared protocol")
        elif n > 1:
            fail("grid", f"{_cell(key)} is present {n} times")


def _cell(key: tuple) -> str:
    suite, objects, seed, index = key
    seed_part = "" if seed is None else f" train seed {seed}"
    return f"{suite}/{objects}{seed_part} episode {index}"


SUMMARY_KEYS = ("base", "residual", "train_seed", "suite", "objects", "n_episodes", "success_rate")
"""What every claimed cell holds, whichever version made it."""


def _summary(data: dict[str, Any], records: list[EpisodeRecord], fail: Fail) -> None:
    """Every number the claimed summary holds is the one its episodes give. A submission made
    before a metric existed claims none for it (the boards recompute every metric from the
    episodes anyway), so only the claimed keys are compared, and every cell must be there."""
    # Through JSON, so that the comparison sees exactly what a file can hold.
    recomputed = json.loads(json.dumps(cell_summaries(records)))
    claimed = data["summary"]["cells"]
    differ = len(claimed) != len(recomputed)
    cells = []
    for mine, theirs in zip(claimed, recomputed, strict=False):
        if (
            not isinstance(mine, dict)
            or any(k not in mine for k in SUMMARY_KEYS)
            or any(k not in theirs or mine[k] != theirs[k] for k in mine)
        ):
            cells.append(mine)
    if differ or cells:
        where = ", ".join(
            f"{c.get('suite')}/{c.get('objects')}" for c in cells[:3] if isinstance(c, dict)
        )
        fail(
            "summary", f"the claimed summary differs from the episodes' (cells: {where or 'count'})"
        )


def _checkpoints(path: Path, data: dict[str, Any], fail: Fail) -> None:
    residual = data["residual"]
    if residual is None:
        if (path / CHECKPOINTS_DIR).exists():
            fail("checkpoint", "a base-alone submission has checkpoints")
        return
    declared = {str(s) for s in data["protocol"]["train_seeds"]}
    if set(residual["checkpoints"]) != declared:
        fail(
            "checkpoint", f"checkpoints for seeds {sorted(residual['checkpoints'])}, not {declared}"
        )
    for seed, entry in sorted(residual["checkpoints"].items()):
        where = path / CHECKPOINTS_DIR / f"seed{seed}"
        if not where.is_dir() or where.is_symlink():
            fail("checkpoint", f"training seed {seed}: no {CHECKPOINTS_DIR}/seed{seed}")
            continue
        try:
            digest = checkpoint_hash(where)
        except SubmissionFileError as exc:
            fail("checkpoint", str(exc))
            continue
        if digest != entry.get("sha256"):
            fail("checkpoint", f"training seed {seed}: the checkpoint's hash differs")
