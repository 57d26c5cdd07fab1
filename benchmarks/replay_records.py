"""Re-run a sample of committed episode records and compare their final-state hashes.

A change that should not change behaviour (a refactor, a new checkpoint format) keeps every
committed record reproducible: each re-run episode must end in the same simulator state,
bit for bit, as the one recorded. This draws ``--sample`` records from each results file (a
seeded draw, favouring records of residuals when ``--residuals-only``), re-runs them with the
same task and compares ``final_state_hash``, success and completion time.

    python benchmarks/replay_records.py results/scripted-sac/episodes.jsonl --sample 4
    python benchmarks/replay_records.py results/*/episodes.jsonl --residuals-only \
        --out results/replay_check.json

Exit status 1 when any re-run differs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from residual_bench.episodes.records import read_jsonl
from residual_bench.eval.episode_tasks import task_of
from residual_bench.eval.runner import play
from residual_bench.rollout import replay_record


def replay(paths: list[Path], sample: int, seed: int, residuals_only: bool) -> list[dict]:
    """One row per re-run record: where it came from and whether it matched."""
    rows = []
    rng = np.random.default_rng(seed)
    for path in paths:
        records = read_jsonl(path)
        if residuals_only:
            records = [r for r in records if r.residual is not None]
        if not records:
            continue
        picked = rng.choice(len(records), size=min(sample, len(records)), replace=False)
        for index in sorted(int(i) for i in picked):
            record = records[index]
            began = time.perf_counter()
            # bench eval's records name their task; bench demo's are re-run from their seed.
            evaluated = "episode_index" in record.extra and "master_seed" in record.extra
            again = play(task_of(record)) if evaluated else replay_record(record)
            rows.append(
                {
                    "file": str(path),
                    "residual": record.extra.get("residual_path"),
                    "suite": record.suite,
                    "objects": record.objects,
                    "episode_index": record.extra.get("episode_index"),
                    "seed": record.seed,
                    "recorded_hash": record.final_state_hash,
                    "replayed_hash": again.final_state_hash,
                    "same": again.final_state_hash == record.final_state_hash
                    and again.success == record.success
                    and again.first_success_time == record.first_success_time,
                    "wall_s": round(time.perf_counter() - began, 2),
                }
            )
            print(
                f"{'same' if rows[-1]['same'] else 'DIFFERENT'}  {path}  "
                f"{record.suite}/{record.objects} seed {record.seed}  "
                f"{record.extra.get('residual_path') or 'base alone'}",
                flush=True,
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="episodes.jsonl files")
    parser.add_argument("--sample", type=int, default=3, help="records per file (3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (0)")
    parser.add_argument("--residuals-only", action="store_true", help="only base + residual")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    # As evaluate's workers do: a matrix product summed by more threads rounds differently,
    # and a policy's trajectory then drifts from the recorded one.
    torch.set_num_threads(1)
    rows = replay(args.files, args.sample, args.seed, args.residuals_only)
    same = sum(row["same"] for row in rows)
    print(f"{same} of {len(rows)} re-run episodes end in the recorded state")
    if args.out is not None:
        summary = {"command": " ".join(sys.argv), "same": same, "total": len(rows), "rows": rows}
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if same == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
