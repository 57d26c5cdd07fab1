"""Re-running a submission's episodes (``bench verify``).

Verification re-runs ``k`` of the submitted episodes from the submitted checkpoint and checks
that success, recovery and completion time come out exactly as recorded. The episodes are
drawn with a nonce the verifier picks when verifying (see ``draw``), so the submitter cannot
know or aim the draw, and the verification records the nonce and what it drew, so anyone can
audit it. The outcome lives in ``leaderboards/verifications/<id>.json``, outside the
submission's directory, whose files stay immutable. The submitted checkpoint is data only
(``residual.json`` + ``policy.safetensors``) and is loaded only after its hash is re-checked.

A maintainer can also run a submission on a private master seed
(:func:`heldout_evaluation`): episodes nobody saw before, compared with the claimed rates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from residual_bench.episodes.metrics import wilson_interval
from residual_bench.episodes.records import EpisodeRecord, read_jsonl
from residual_bench.eval.episode_tasks import EpisodeTask
from residual_bench.eval.runner import play
from residual_bench.leaderboard.draw import audit_draw, draw_record, new_nonce
from residual_bench.leaderboard.files import read_bounded
from residual_bench.leaderboard.layout import (
    CHECKPOINTS_DIR,
    EPISODES_FILE,
    SUBMISSION_FILE,
    SUBMISSIONS_DIR,
    VERIFICATIONS_DIR,
)
from residual_bench.leaderboard.submission import checkpoint_hash
from residual_bench.leaderboard.validate import MASTER_SEEDS, validate_submission
from residual_bench.policies.registry import BC_PREFIX, base_names, get_base
from residual_bench.provenance import package_versions

VERIFIED, FAILED, NOT_VERIFIABLE = "verified", "failed", "not-verifiable"


def not_verifiable_reason(base: dict[str, Any]) -> str | None:
    """Why episodes of a submission's ``base`` cannot be re-run here, or None when they can.

    Only the bases registered in the package run on this machine's CPU; a remote base
    (``remote:``, ``openvla-rest:``, ``octo``) needs a GPU policy server, and a ``bc:PATH``
    base's weights file is not part of the submission. A base whose weights the submission
    names by hash must still have those weights.
    """
    name = base["name"]
    if name.startswith(BC_PREFIX):
        return f"base {name!r} runs weights from a file outside the package and the submission"
    if name not in base_names():
        return f"base {name!r} needs a GPU policy server, not available to the verifier"
    claimed, entry = base.get("weights_sha256"), get_base(name)
    if claimed is not None and entry.weights is not None:
        here = checkpoint_hash(entry.weights())
        if here != claimed:
            return (
                f"base {name!r} ran with weights {claimed[:12]}..., but this installation "
                f"ships {here[:12]}...: re-run the submission's episodes with those weights"
            )
    return None


def outcome(record: EpisodeRecord) -> dict[str, Any]:
    """What verification compares: success, recovery and completion time, exactly."""
    return {
        "success": record.success,
        "recovered": record.success if record.perturbed else None,
        "recovery_times": [e.recovery_time for e in record.events],
        "completion_time": record.first_success_time,
    }


def _task(path: Path, data: dict[str, Any], record: EpisodeRecord, master_seed: int, index: int):
    checkpoint = None
    if data["residual"] is not None:
        seed = str(record.extra["train_seed"])
        where = path / CHECKPOINTS_DIR / f"seed{seed}"
        # Re-checked here: only the checkpoint that was hashed into the id may run.
        if checkpoint_hash(where) != data["residual"]["checkpoints"][seed]["sha256"]:
            raise ValueError(f"{path.name}: checkpoint of training seed {seed} has another hash")
        checkpoint = str(where)
    suite = record.suite  # shipped suites only: the spec hash rule guarantees it
    return EpisodeTask(
        data["base"]["name"],
        checkpoint,
        suite,
        suite,
        record.objects,
        index,
        master_seed,
        record.env_id,  # one of the benchmark's ids: the records rule guarantees it
    )


def _load_valid(path: str | Path) -> tuple[Path, dict[str, Any], list[EpisodeRecord]]:
    path = Path(path)
    if not (path / SUBMISSION_FILE).is_file():
        raise FileNotFoundError(f"{path}: not a submission (no {SUBMISSION_FILE})")
    failures = validate_submission(path)
    if failures:
        raise ValueError("; ".join(str(f) for f in failures[:5]))
    data = json.loads(read_bounded(path / SUBMISSION_FILE))
    return path, data, read_jsonl(path / EPISODES_FILE)


def verify_submission(path: str | Path, k: int = 10, nonce: str | None = None) -> dict[str, Any]:
    """Re-run ``k`` drawn episodes of a valid submission and compare them with the records.

    ``nonce`` seeds the draw (a fresh random one when None; give the one of a stored
    verification to repeat it).

    Returns:
        ``{"submission", "status", "k", "draw", "episodes": [...], ...}``; status is
        ``verified`` when every re-run matches, ``failed`` otherwise, ``not-verifiable`` for a
        GPU base. ``draw`` holds the nonce, the rule and the indices drawn.

    Raises:
        FileNotFoundError: not a submission directory.
        ValueError: the submission breaks a rule of ``bench leaderboard check``.
    """
    path, data, records = _load_valid(path)
    result: dict[str, Any] = {"submission": data["id"], "k": k, "versions": package_versions()}
    reason = not_verifiable_reason(data["base"])
    if reason is not None:
        return {**result, "status": NOT_VERIFIABLE, "reason": reason, "episodes": []}
    draw = draw_record(data["id"], nonce or new_nonce(), len(records), k)
    result["draw"] = draw
    episodes = []
    for record_index in draw["indices"]:
        record = records[record_index]
        index = int(record.extra["episode_index"])
        rerun = play(_task(path, data, record, int(record.extra["master_seed"]), index))
        claimed, got = outcome(record), outcome(rerun)
        episodes.append(
            {
                "record_index": record_index,
                "suite": record.suite,
                "objects": record.objects,
                "train_seed": record.extra.get("train_seed"),
                "episode_index": index,
                "seed": record.seed,
                "match": claimed == got,
                "claimed": claimed,
                "rerun": got,
            }
        )
    status = VERIFIED if all(e["match"] for e in episodes) else FAILED
    return {**result, "status": status, "episodes": episodes}


def read_heldout_seeds(path: str | Path) -> dict[str, int]:
    """A maintainer's private seed file: ``{"master_seed": int, "episodes": int}``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: malformed, or a public master seed (its episodes are already submitted).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--heldout-seeds: {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text())
        master_seed, episodes = int(data["master_seed"]), int(data["episodes"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise ValueError(
            f"{path}: expected a JSON object {{'master_seed': int, 'episodes': int}}"
        ) from None
    if master_seed in MASTER_SEEDS or master_seed < 0 or episodes < 1:
        raise ValueError(
            f"{path}: need a private master seed >= 0 (not {MASTER_SEEDS}), episodes >= 1"
        )
    return {"master_seed": master_seed, "episodes": episodes}


def heldout_evaluation(path: str | Path, seeds_file: str | Path) -> dict[str, Any]:
    """Run a submission on private seeds; compare each cell with its claimed success rate.

    A cell is ``consistent`` when the 95% Wilson intervals of the claimed and the hidden
    success rates overlap. The seeds themselves are never written into the result.
    """
    path, data, records = _load_valid(path)
    hidden = read_heldout_seeds(seeds_file)
    reason = not_verifiable_reason(data["base"])
    if reason is not None:
        return {"submission": data["id"], "status": NOT_VERIFIABLE, "reason": reason}
    cells: dict[tuple, list[EpisodeRecord]] = {}
    for r in records:
        cells.setdefault((r.suite, r.objects, r.extra.get("train_seed")), []).append(r)
    out = []
    for (suite, objects, train_seed), cell in sorted(cells.items(), key=str):
        wins = 0
        for index in range(hidden["episodes"]):
            task = _task(path, data, cell[0], hidden["master_seed"], index)
            wins += play(task).success
        claimed = sum(r.success for r in cell)
        a, b = wilson_interval(claimed, len(cell)), wilson_interval(wins, hidden["episodes"])
        out.append(
            {
                "suite": suite,
                "objects": objects,
                "train_seed": train_seed,
                "claimed": [claimed, len(cell)],
                "hidden": [wins, hidden["episodes"]],
                "consistent": a[0] <= b[1] and b[0] <= a[1],
            }
        )
    status = "consistent" if all(c["consistent"] for c in out) else "inconsistent"
    return {"submission": data["id"], "status": status, "cells": out}


def write_verification(root: str | Path, result: dict[str, Any], key: str = "replay") -> Path:
    """Store a result under ``key`` (``replay`` or ``heldout``) in the verification file."""
    where = Path(root) / VERIFICATIONS_DIR / f"{result['submission']}.json"
    where.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(where.read_text()) if where.is_file() else {}
    current[key] = result
    where.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    return where


def audit_verifications(root: str | Path) -> list[str]:
    """What is wrong with the stored verifications under ``root``: a replay whose draw does not
    follow from its nonce, or that predates the nonce draw, or a file of no submission."""
    problems = []
    folder = Path(root) / VERIFICATIONS_DIR
    for where in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        sub_id = where.stem
        submission = Path(root) / SUBMISSIONS_DIR / sub_id
        if not (submission / EPISODES_FILE).is_file():
            problems.append(f"{where.name}: no submission {sub_id}")
            continue
        try:
            replay = json.loads(read_bounded(where)).get("replay")
            n = len(read_bounded(submission / EPISODES_FILE).splitlines())
        except (ValueError, AttributeError) as exc:
            problems.append(f"{where.name}: unreadable ({exc})")
            continue
        if replay is None or replay.get("status") == NOT_VERIFIABLE:
            continue
        problem = audit_draw(replay, sub_id, n)
        if problem is not None:
            problems.append(f"{where.name}: the replay {problem}")
    return problems


def verification_status(root: str | Path, sub_id: str) -> str:
    """``verified``, ``failed``, ``not-verifiable`` or ``self-reported`` (never checked)."""
    where = Path(root) / VERIFICATIONS_DIR / f"{sub_id}.json"
    if not where.is_file():
        return "self-reported"
    replay = json.loads(where.read_text()).get("replay", {})
    return replay.get("status", "self-reported")
