"""Evaluation throughput with 1 and 2 local workers, measured side by side in one run.

    python benchmarks/eval_workers.py                # 80 episodes per setting, ~1 min
    python benchmarks/eval_workers.py --episodes 40  # shorter: worker start-up weighs more

Runs the same episode grid (the ``scripted`` base on ``nominal`` and ``mixed``, held-out
objects) with the local process-pool executor at 1 and 2 workers, in fresh directories, and
writes ``results/eval_workers.{json,md}``: episodes per second and the speed-up from the
second core (target: at least 1.8x). Records from both runs are checked to be identical.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from residual_bench.episodes.records import read_jsonl
from residual_bench.eval.episode_tasks import make_tasks
from residual_bench.eval.runner import evaluate

RESULTS = Path(__file__).resolve().parent.parent / "results"


def timed_evaluation(tasks: list, workers: int) -> tuple[float, list]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        evaluate(tasks, tmp, executor="local", workers=workers, progress=False)
        seconds = time.perf_counter() - start
        records = read_jsonl(Path(tmp) / "episodes.jsonl")
    return seconds, sorted((r.suite, r.seed, r.final_state_hash, r.success) for r in records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=80, help="episodes per setting")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    per_suite = max(1, args.episodes // 2)
    tasks = make_tasks("scripted", [None], ["nominal", "mixed"], ["heldout"], per_suite)
    timed_evaluation(tasks[:2], 2)  # warm the caches (imports, object meshes) for both runs
    one, records_one = timed_evaluation(tasks, 1)
    two, records_two = timed_evaluation(tasks, 2)
    if records_one != records_two:
        raise SystemExit("records differ between 1 and 2 workers: the work unit is not pure")
    result = {
        "episodes": len(tasks),
        "cpu_count": os.cpu_count(),
        "one_worker_episodes_per_s": len(tasks) / one,
        "two_workers_episodes_per_s": len(tasks) / two,
        "speedup": one / two,
    }
    (args.out / "eval_workers.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Evaluation throughput",
        "",
        f"Produced by `python benchmarks/eval_workers.py --episodes {args.episodes}` on a "
        f"{result['cpu_count']}-core machine: the `scripted` base, nominal and mixed suites, "
        "held-out objects, local process-pool executor; both settings run the same episodes "
        "and give identical records.",
        "",
        "| workers | episodes/s |",
        "|---:|---:|",
        f"| 1 | {result['one_worker_episodes_per_s']:.2f} |",
        f"| 2 | {result['two_workers_episodes_per_s']:.2f} |",
        "",
        f"Speed-up from the second worker: {result['speedup']:.2f}x (target 1.8x).",
        "",
    ]
    (args.out / "eval_workers.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
