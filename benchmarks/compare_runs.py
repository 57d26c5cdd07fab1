"""Train every run of the residual-vs-fine-tuning comparison, a few at a time, resuming each.

    python benchmarks/compare_runs.py --jobs 2                 # everything, two runs at once
    python benchmarks/compare_runs.py --methods scratch --seeds 2
    python benchmarks/compare_runs.py --dry-run                # what is left, and the commands

The comparison (results/finetune/README.md) is many runs of 300k environment steps that take
from one to four hours of one core each. This script is its queue: for every method and
training seed it runs ``bench train ... --out RUNS/<method>-seed<S>`` as its own process with
one torch thread, ``--jobs`` at a time, seed 0 of every method before seed 1, each one's output
in ``RUNS/<method>-seed<S>.log``. A finished run (its ``final.pt`` or ``residual/`` written,
there or already collected into ``results/finetune/<method>-seed<S>/``) is skipped; an
unfinished one resumes from its last checkpoint, as ``bench train`` does, and one that
another process is training already is left to it. After an interruption, run the same
command again. Ctrl-C stops the running runs, which lose at most
the steps since their last checkpoint.

The bc + sac residuals (the reference) are trained by ``bench run --base bc --residual sac``
and are not part of this queue. Afterwards ``python benchmarks/sample_efficiency.py --runs
RUNS`` copies the curves and final policies into ``results/finetune/`` and writes the table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from residual_bench.run_directory import run_in_use

ROOT = Path(__file__).resolve().parent.parent
COLLECTED = ROOT / "results" / "finetune"
#: method -> (base, baselines/ config), in the order the queue starts them.
METHODS = {
    "finetune-rl": ("bc", "finetune-rl"),
    "finetune-dagger": ("bc", "finetune-dagger"),
    "scratch": ("zero", "scratch"),
    "finetune-rl-ppo": ("bc", "finetune-rl-ppo"),
}


def is_finished(run: Path) -> bool:
    """Whether ``bench train`` has written the run's final policy."""
    return (run / "final.pt").is_file() or (run / "residual" / "residual.json").is_file()


def command(method: str, seed: int, out: Path) -> list[str]:
    """The ``bench train`` command of one run."""
    base, config = METHODS[method]
    return [
        sys.executable, "-m", "residual_bench.cli", "train", "--base", base,
        "--residual", config, "--seed", str(seed), "--out", str(out), "--resume", "--quiet",
    ]  # fmt: skip


def pending(runs: Path, methods: list[str], seeds: list[int]) -> list[tuple[str, int]]:
    """The unfinished (method, seed) runs, seed by seed."""
    return [
        (method, seed)
        for seed in seeds
        for method in methods
        if not any(is_finished(where / f"{method}-seed{seed}") for where in (runs, COLLECTED))
    ]


def run_queue(runs: Path, queue: list[tuple[str, int]], jobs: int) -> int:
    """Run ``queue`` with ``jobs`` processes at a time; returns how many runs failed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    running: dict[str, tuple[subprocess.Popen, object]] = {}
    failed = 0
    try:
        while queue or running:
            while queue and len(running) < jobs:
                method, seed = queue.pop(0)
                name = f"{method}-seed{seed}"
                if run_in_use(runs / name):
                    print(f"skip {name}: another process is training it", flush=True)
                    continue
                log = open(runs / f"{name}.log", "a")  # noqa: SIM115 - closed when it ends
                cmd = command(method, seed, runs / name)
                print(f"start {name}: bench {' '.join(cmd[3:])}", flush=True)
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
                running[name] = (proc, log)
            time.sleep(5)
            for name, (proc, log) in list(running.items()):
                if proc.poll() is None:
                    continue
                log.close()
                del running[name]
                if proc.returncode == 0:
                    print(f"finished {name}", flush=True)
                else:
                    failed += 1
                    print(f"FAILED {name} (exit {proc.returncode}): see {name}.log", flush=True)
    except KeyboardInterrupt:
        print("interrupted: stopping the running runs; rerun to resume them", flush=True)
        for proc, _ in running.values():
            proc.terminate()
        for proc, log in running.values():
            proc.wait()
            log.close()
        raise
    return failed


def parse_seeds(text: str) -> list[int]:
    """``0-2`` or ``0,2`` or ``1`` -> a list of seeds."""
    if "-" in text:
        low, high = text.split("-", 1)
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/compare"))
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2], help="e.g. 0-2 or 0,2")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (one core each)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs left and stop")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    args.runs.mkdir(parents=True, exist_ok=True)
    queue = pending(args.runs, args.methods, args.seeds)
    for method, seed in queue:
        print("bench", " ".join(command(method, seed, args.runs / f"{method}-seed{seed}")[3:]))
    if not queue:
        print("every run is finished")
    if args.dry_run or not queue:
        return 0
    return 1 if run_queue(args.runs, queue, args.jobs) else 0


if __name__ == "__main__":
    sys.exit(main())
