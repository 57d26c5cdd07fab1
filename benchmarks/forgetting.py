"""Forgetting: the base's success where training did not go, before and after each method.

    python benchmarks/forgetting.py                  # the committed table
    python benchmarks/forgetting.py --episodes 20    # a quick look

Every method trained on the ``mixed`` suite with training objects. This script measures what
that did elsewhere: on the ``nominal`` suite (no perturbations) with the training objects
and with the held-out objects, which no training run saw. "Before" is the ``bc`` base alone
(its episodes in ``results/bases/bc``, written by ``benchmarks/base_policies.py``); "after"
is, on the same episodes (master seed 0, paired by episode):

- residual: ``bc`` + each shipped ``bc-sac-seed*`` residual (the base's weights are untouched
  by construction; the residual still acts everywhere);
- finetune-rl / finetune-dagger: the fine-tuned network ``results/finetune/<method>-seed*/final.pt``
  deployed as the base is (``--base bc:PATH``);
- scratch: the from-scratch policy ``results/finetune/scratch-seed*/residual`` on the ``zero``
  base (it had no "before": its starting point does nothing).

Writes ``results/finetune/forgetting/<method>-seed<S>/<suite>-<objects>/`` (episodes and
summary), ``results/finetune/forgetting.{md,json,png}``. Evaluations resume episode by
episode, so re-running the same command continues where it stopped; a method or seed whose
training has not produced its final policy yet is skipped and listed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from residual_bench.eval.metrics import wilson_interval  # noqa: E402
from residual_bench.eval.records import read_jsonl  # noqa: E402
from residual_bench.eval.runner import evaluate, make_tasks  # noqa: E402
from residual_bench.eval.statistics import mcnemar_exact  # noqa: E402
from residual_bench.residual.checkpoint import residual_location  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
CONDITIONS = (("nominal", "train"), ("nominal", "heldout"))
METHODS = ("residual", "finetune-rl", "finetune-dagger", "scratch")
SEEDS = (0, 1, 2)


def policy_of(method: str, seed: int) -> tuple[str, str | None] | None:
    """(base, residual) of a method's final policy for one training seed; None if not there."""
    if method == "residual":
        name = f"shipped:bc-sac-seed{seed}"
        return ("bc", name) if residual_location(name).exists() else None
    folder = RESULTS / "finetune" / f"{method}-seed{seed}"
    if method == "scratch":
        found = (folder / "residual" / "residual.json").is_file()
        return ("zero", os.path.relpath(folder / "residual", ROOT)) if found else None
    network = folder / "final.pt"
    return (f"bc:{os.path.relpath(network, ROOT)}", None) if network.is_file() else None


def before_records(suite: str, objects: str, episodes: int) -> list:
    path = RESULTS / "bases" / "bc" / suite / objects / "episodes.jsonl"
    records = read_jsonl(path) if path.is_file() else []
    if len(records) < episodes:
        raise SystemExit(
            f"{path} holds {len(records)} episodes, {episodes} needed: run "
            f"`python benchmarks/base_policies.py --bases bc --episodes {episodes}` first"
        )
    return records[:episodes]


def after_records(policy: tuple[str, str | None], out: Path, suite: str, objects: str,
                  episodes: int, workers: int) -> list:  # fmt: skip
    base, residual = policy
    tasks = make_tasks(base, [residual], [suite], [objects], episodes, master_seed=0)
    evaluate(tasks, out, workers=workers, resume=True, progress=True)
    records = sorted(read_jsonl(out / "episodes.jsonl"), key=lambda r: r.extra["episode_index"])
    return records[:episodes]


def paired_test(before: list, after: list) -> dict[str, Any]:
    """Exact McNemar test of the same episodes (matched by reset seed) before and after."""
    by_seed = {r.seed: r.success for r in before}
    if sorted(by_seed) != sorted(r.seed for r in after):
        raise SystemExit("before and after hold different episodes; they cannot be paired")
    return mcnemar_exact([by_seed[r.seed] for r in after], [r.success for r in after])


def rate(records: list) -> dict[str, float]:
    k, n = sum(r.success for r in records), len(records)
    lo, hi = wilson_interval(k, n)
    return {"rate": k / n, "lo": lo, "hi": hi, "k": k, "n": n}


def table_markdown(rows: list[dict[str, Any]], missing: list[str]) -> str:
    lines = [
        "| method | training seed | suite | objects | before (bc alone) | after | change |",
        "|---|---:|---|---|---:|---:|---:|",
    ]
    for r in rows:
        b, a = r["before"], r["after"]
        before = "-" if b is None else f"{b['rate']:.0%} [{b['lo']:.0%}, {b['hi']:.0%}]"
        change = "-"
        if r["change_pp"] is not None:
            p = r["p_value"]
            change = f"{r['change_pp']:+.0f} pp (" + (
                "p < 0.001)" if p < 0.001 else f"p = {p:.3f})"
            )
        lines.append(
            f"| {r['method']} | {r['seed']} | {r['suite']} | {r['objects']} | {before} | "
            f"{a['rate']:.0%} [{a['lo']:.0%}, {a['hi']:.0%}] | {change} |"
        )
    if missing:
        lines += ["", "Not trained yet (no final policy): " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], before: dict, path: Path) -> None:
    """Per condition: bc alone, then each method's after (pooled over its seeds)."""
    fig, axes = plt.subplots(1, len(CONDITIONS), figsize=(4.5 * len(CONDITIONS), 3.6), sharey=True)
    for ax, (suite, objects) in zip(np.atleast_1d(axes), CONDITIONS, strict=True):
        labels, values, errors = ["bc alone"], [], [[], []]
        b = before[(suite, objects)]
        bars = [(b["k"], b["n"])]
        for method in METHODS:
            mine = [
                r["after"] for r in rows
                if r["method"] == method and (r["suite"], r["objects"]) == (suite, objects)
            ]  # fmt: skip
            if mine:
                labels.append(f"{method}\n({len(mine)} seeds)")
                bars.append((sum(a["k"] for a in mine), sum(a["n"] for a in mine)))
        for k, n in bars:
            lo, hi = wilson_interval(k, n)
            values.append(k / n)
            errors[0].append(k / n - lo)
            errors[1].append(hi - k / n)
        colors = ["0.6"] + ["tab:blue"] * (len(bars) - 1)
        ax.bar(range(len(bars)), values, yerr=errors, capsize=4, color=colors)
        ax.set_xticks(range(len(bars)), labels, fontsize=8)
        ax.set_title(f"{suite}, {objects} objects")
        ax.set_ylim(0, 1)
    np.atleast_1d(axes)[0].set_ylabel("success (95% CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "finetune")
    args = parser.parse_args()

    before = {c: before_records(*c, args.episodes) for c in CONDITIONS}
    rows, missing = [], []
    for method in METHODS:
        for seed in SEEDS:
            policy = policy_of(method, seed)
            if policy is None:
                missing.append(f"{method} seed {seed}")
                continue
            for suite, objects in CONDITIONS:
                print(f"{method} seed {seed}: {suite}, {objects} objects")
                out = args.out / "forgetting" / f"{method}-seed{seed}" / f"{suite}-{objects}"
                after = after_records(policy, out, suite, objects, args.episodes, args.workers)
                pre = None if method == "scratch" else before[(suite, objects)]
                test = None if pre is None else paired_test(pre, after)
                rows.append({
                    "method": method, "seed": seed, "suite": suite, "objects": objects,
                    "policy": list(policy),
                    "before": None if pre is None else rate(pre),
                    "after": rate(after),
                    "change_pp": None if test is None else 100 * test["difference"],
                    "p_value": None if test is None else test["p_value"],
                })  # fmt: skip
    table = table_markdown(rows, missing)
    (args.out / "forgetting.md").write_text(table)
    (args.out / "forgetting.json").write_text(
        json.dumps({"episodes": args.episodes, "rows": rows, "missing": missing}, indent=2) + "\n"
    )
    plot(rows, {c: rate(r) for c, r in before.items()}, args.out / "forgetting.png")
    print(table)


if __name__ == "__main__":
    main()
