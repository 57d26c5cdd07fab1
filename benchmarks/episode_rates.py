"""Episodes per second of one worker, base alone and base + residual: what `bench run`
estimates its time from (``protocol.EPISODES_PER_SECOND``).

    python benchmarks/episode_rates.py --episodes 5

Runs the ``scripted`` base alone and with its shipped residual (seed 0) on every standard
suite of ``bench run``, held-out objects, in this process (one core), and writes
``results/episode_rates.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from residual_bench.eval.episode_tasks import make_tasks
from residual_bench.eval.runner import play
from residual_bench.protocol import STANDARD_SUITES

RESULTS = Path(__file__).resolve().parent.parent / "results"


def rate(residual: str | None, episodes: int) -> float:
    """Episodes per second of one worker over ``episodes`` episodes of each standard suite
    (after one warm-up episode per suite builds its env)."""
    elapsed = 0.0
    for suite in STANDARD_SUITES:
        tasks = make_tasks("scripted", [residual], [suite], ["heldout"], episodes + 1)
        play(tasks[0])
        began = time.perf_counter()
        for task in tasks[1:]:
            play(task)
        elapsed += time.perf_counter() - began
    return episodes * len(STANDARD_SUITES) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=5, help="timed episodes per suite")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rates = {
        "base": rate(None, args.episodes),
        "residual": rate("shipped:scripted-sac-seed0", args.episodes),
    }
    out = {
        "command": f"python benchmarks/episode_rates.py --episodes {args.episodes}",
        "machine": {"processor": platform.processor() or platform.machine()},
        "episodes_per_second_per_worker": {k: round(v, 2) for k, v in rates.items()},
    }
    (RESULTS / "episode_rates.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
