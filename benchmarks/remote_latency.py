"""A remote base under the ``latency`` suite: the split architecture on loopback.

    python benchmarks/remote_latency.py                 # 30 episodes per setting, ~10 min

Serves the ``bc`` base with ``bench serve``'s server on 127.0.0.1 (a free port) and evaluates
``remote:ws://127.0.0.1:PORT`` under the ``latency`` suite, held-out objects, twice, with the
simulated latency of the executor set from GPU figures for real VLAs (shared/DESIGN.md):

- ``bc`` as shipped: 50-100 ms per call;
- OpenVLA-like: 170-250 ms per call (about 4-6 actions/s on an RTX 4090);

and the in-process ``bc`` on the same episodes for reference. Writes
``results/remote/<setting>/{episodes.jsonl,summary.json}`` and ``results/remote_latency.md``
(success with Wilson intervals, completion time, failed remote calls, and how many episodes
end in exactly the in-process base's final state: all of them when the latency model is the
same, since the simulation waits for each answer).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from residual_bench.episodes.records import read_jsonl
from residual_bench.eval.episode_tasks import make_tasks
from residual_bench.eval.runner import evaluate
from residual_bench.policies.remote.server import serve_base
from residual_bench.rollout import format_rate

RESULTS = Path(__file__).resolve().parent.parent / "results"
SETTINGS = {
    "bc-remote": (0.05, 0.05),  # bc's own latency model, over the websocket
    "openvla-like-remote": (0.17, 0.08),
}


def run_remote(name: str, latency: tuple[float, float], episodes: int, out: Path) -> dict:
    executor = {"mode": "receding", "replan_every": 4, "ensemble_decay": 0.1}
    executor.update(align="observation", latency_fixed_s=latency[0], latency_jitter_s=latency[1])
    server = serve_base("bc", metadata={"executor": executor})
    server.start()
    try:
        tasks = make_tasks(f"remote:{server.url}", [None], ["latency"], ["heldout"], episodes)
        return evaluate(tasks, out, executor="serial", progress=False)
    finally:
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    root = args.out / "remote"
    if root.exists():
        shutil.rmtree(root)
    summaries = {}
    tasks = make_tasks("bc", [None], ["latency"], ["heldout"], args.episodes)
    summaries["bc-in-process"] = evaluate(tasks, root / "bc-in-process", executor="serial",
                                          progress=False)  # fmt: skip
    for name, latency in SETTINGS.items():
        summaries[name] = run_remote(name, latency, args.episodes, root / name)
    lines = [
        "# A remote base under the latency suite",
        "",
        f"Produced by `python benchmarks/remote_latency.py --episodes {args.episodes}`: the "
        "`bc` base served on loopback by the `bench serve` server and evaluated as "
        "`remote:ws://127.0.0.1:PORT` under the `latency` suite (held-out objects, the same "
        "episode seeds in every row). Simulated latency per call: bc's own 50-100 ms, and "
        "170-250 ms as measured for OpenVLA on an RTX 4090.",
        "",
        "| setting | success | completion (s) | failed remote calls | final state as in-process |",
        "|---|---:|---:|---:|---:|",
    ]
    reference = {
        r.seed: r.final_state_hash for r in read_jsonl(root / "bc-in-process" / "episodes.jsonl")
    }
    for name, summary in summaries.items():
        cell = summary["cells"][0]
        records = read_jsonl(root / name / "episodes.jsonl")
        failed = sum(r.extra.get("base_errors", 0) for r in records)
        same = sum(reference.get(r.seed) == r.final_state_hash for r in records)
        ct = cell["completion_time_mean"]
        lines.append(
            f"| {name} | {format_rate(cell['success_rate'])} | "
            f"{'-' if ct is None else f'{ct:.2f}'} | {failed} | {same}/{len(records)} |"
        )
    lines.append("")
    (args.out / "remote_latency.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
