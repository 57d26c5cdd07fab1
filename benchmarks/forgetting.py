"""Forgetting: the base's success where training did not go, before and after each method.

    python benchmarks/forgetting.py                  # the committed table
    python benchmarks/forgetting.py --episodes 20    # a quick look

Every method trained on the ``mixed`` suite with training objects. This script measures what
that did elsewhere: on the ``nominal`` suite (no perturbations) with the training objects,
with the held-out objects, which no training run saw, and with the held-out objects told in
held-out wordings (``instructions="heldout"``: the same scenes in words no training used, so
"forgets how to read" is tested on language too). "Before" is the ``bc`` base alone (its
episodes in ``results/bases/bc``, written by ``benchmarks/base_policies.py``; in held-out
wordings evaluated here, into ``forgetting/bc-alone/``); "after" is, on the same episodes
(master seed 0, paired by episode):

- residual: ``bc`` + each shipped ``bc-sac-seed*`` residual (the base's weights are untouched
  by construction; the residual still acts everywhere);
- finetune-rl / finetune-rl-ppo / finetune-rl-bc / finetune-rl-bc-head / finetune-dagger: the
  fine-tuned network ``results/finetune/<method>-seed*/final.pt`` deployed as the base is
  (``--base bc:PATH``);
- scratch: the from-scratch policy ``results/finetune/scratch-seed*/residual`` on the ``zero``
  base (it had no "before": its starting point does nothing).

Beside success, each row gives the median action jerk of the executed actions before and after
(and ``forgetting.json`` the action rate too): a network that lost the smooth chunks it
learnt from demonstrations shows it there, whether or not it still succeeds.

Writes ``results/finetune/forgetting/<method>-seed<S>/<suite>-<objects>[-heldout-words]/``
(episodes and summary), ``results/finetune/forgetting.{md,json,png}``. Evaluations resume episode by
episode, so re-running the same command continues where it stopped; a method or seed whose
training has not produced its final policy yet is skipped and listed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from residual_bench.episodes.metrics import summarize, wilson_interval
from residual_bench.episodes.records import read_jsonl
from residual_bench.eval.episode_tasks import make_tasks
from residual_bench.eval.plots import plot_success
from residual_bench.eval.report import mcnemar_by_seed
from residual_bench.eval.report_render import format_p_value
from residual_bench.eval.runner import evaluate
from residual_bench.residual.checkpoint import residual_location

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
CONDITIONS = (("nominal", "train", "train"), ("nominal", "heldout", "train"),
              ("nominal", "heldout", "heldout"))  # fmt: skip
"""(suite, objects, instruction wordings) of each measurement."""
METHODS = (
    "residual",
    "finetune-rl",
    "finetune-rl-ppo",
    "finetune-rl-bc",
    "finetune-rl-bc-head",
    "finetune-dagger",
    "scratch",
)
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


def condition_folder(suite: str, objects: str, instructions: str) -> str:
    """The folder of a condition's episodes under a method's seed (the training wordings'
    folders keep their names from before held-out wordings existed)."""
    folder = f"{suite}-{objects}"
    return folder if instructions == "train" else f"{folder}-{instructions}-words"


def before_records(suite: str, objects: str, instructions: str, episodes: int, out: Path,
                   workers: int) -> list:  # fmt: skip
    """The ``bc`` base alone's episodes: ``results/bases/bc``'s in the training wordings,
    evaluated into ``out/forgetting/bc-alone/`` in held-out ones."""
    if instructions != "train":
        folder = out / "forgetting" / "bc-alone" / condition_folder(suite, objects, instructions)
        return after_records(("bc", None), folder, suite, objects, instructions, episodes, workers)
    path = RESULTS / "bases" / "bc" / suite / objects / "episodes.jsonl"
    records = read_jsonl(path) if path.is_file() else []
    if len(records) < episodes:
        raise SystemExit(
            f"{path} holds {len(records)} episodes, {episodes} needed: run "
            f"`python benchmarks/base_policies.py --bases bc --episodes {episodes}` first"
        )
    return records[:episodes]


def after_records(policy: tuple[str, str | None], out: Path, suite: str, objects: str,
                  instructions: str, episodes: int, workers: int) -> list:  # fmt: skip
    base, residual = policy
    tasks = make_tasks(
        base, [residual], [suite], [objects], episodes, master_seed=0, instructions=instructions
    )
    evaluate(tasks, out, workers=workers, resume=True, progress=True)
    records = sorted(read_jsonl(out / "episodes.jsonl"), key=lambda r: r.extra["episode_index"])
    return records[:episodes]


def rate(records: list) -> dict[str, Any]:
    """Success rate, count and Wilson 95% interval (``rate``, ``k``, ``n``, ``ci``)."""
    return summarize(records)["success_rate"]


def action_medians(records: list) -> dict[str, float | None]:
    """Median action jerk and action rate of the executed actions (records.py defines them):
    what a network that forgot its demonstrations does differently, even where it fails."""
    medians = {}
    for field in ("action_jerk", "action_rate"):
        values = [getattr(r, field) for r in records if getattr(r, field) is not None]
        medians[field] = float(np.median(values)) if values else None
    return medians


def _jerk_cell(r: dict[str, Any]) -> str:
    before = r["actions_before"]["action_jerk"] if r["actions_before"] else None
    after = r["actions_after"]["action_jerk"]
    return " -> ".join("-" if v is None else f"{v:.0f}" for v in (before, after))


def _rate_cell(r: dict[str, Any] | None) -> str:
    return "-" if r is None else f"{r['rate']:.0%} [{r['ci'][0]:.0%}, {r['ci'][1]:.0%}]"


def table_markdown(rows: list[dict[str, Any]], missing: list[str]) -> str:
    lines = [
        "| method | training seed | suite | objects | wordings | before (bc alone) | after "
        "| change | action jerk, median (before -> after) |",
        "|---|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        change = "-"
        if r["change_pp"] is not None:
            change = f"{r['change_pp']:+.0f} pp ({format_p_value(r['p_value'])})"
        lines.append(
            f"| {r['method']} | {r['seed']} | {r['suite']} | {r['objects']} "
            f"| {r.get('instructions', 'train')} | "
            f"{_rate_cell(r['before'])} | {_rate_cell(r['after'])} | {change} | {_jerk_cell(r)} |"
        )
    if missing:
        lines += ["", "Not trained yet (no final policy): " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"


def success_table(rows: list[dict[str, Any]], before: dict) -> pd.DataFrame:
    """Per condition, bc alone and each method's after pooled over its seeds, for
    :func:`~residual_bench.eval.plots.plot_success`."""
    entries = [(condition, "bc alone", [r]) for condition, r in before.items()]
    for method in METHODS:
        for condition in CONDITIONS:
            mine = [
                r["after"] for r in rows if r["method"] == method and _condition(r) == condition
            ]
            if mine:
                entries.append((condition, f"{method} ({len(mine)} seeds)", mine))
    table = []
    for (suite, objects, instructions), method, rates in entries:
        k, n = sum(r["k"] for r in rates), sum(r["n"] for r in rates)
        lo, hi = wilson_interval(k, n)
        shown = objects if instructions == "train" else f"{objects}, {instructions} words"
        table.append({"objects": shown, "suite": suite, "method": method,
                      "success": k / n, "success_lo": lo, "success_hi": hi})  # fmt: skip
    return pd.DataFrame(table)


def _condition(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["suite"], row["objects"], row.get("instructions", "train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "finetune")
    args = parser.parse_args()

    before = {c: before_records(*c, args.episodes, args.out, args.workers) for c in CONDITIONS}
    rows, missing = [], []
    for method in METHODS:
        for seed in SEEDS:
            policy = policy_of(method, seed)
            if policy is None:
                missing.append(f"{method} seed {seed}")
                continue
            for suite, objects, instructions in CONDITIONS:
                print(f"{method} seed {seed}: {suite}, {objects} objects, {instructions} words")
                folder = condition_folder(suite, objects, instructions)
                out = args.out / "forgetting" / f"{method}-seed{seed}" / folder
                after = after_records(
                    policy, out, suite, objects, instructions, args.episodes, args.workers
                )
                pre = None if method == "scratch" else before[(suite, objects, instructions)]
                test = None if pre is None else mcnemar_by_seed(pre, after)
                rows.append({
                    "method": method, "seed": seed, "suite": suite, "objects": objects,
                    "instructions": instructions,
                    "policy": list(policy),
                    "before": None if pre is None else rate(pre),
                    "after": rate(after),
                    "change_pp": None if test is None else 100 * test["difference"],
                    "p_value": None if test is None else test["p_value"],
                    "actions_before": None if pre is None else action_medians(pre),
                    "actions_after": action_medians(after),
                })  # fmt: skip
    table = table_markdown(rows, missing)
    (args.out / "forgetting.md").write_text(table)
    (args.out / "forgetting.json").write_text(
        json.dumps({"episodes": args.episodes, "rows": rows, "missing": missing}, indent=2) + "\n"
    )
    befores = {c: rate(r) for c, r in before.items()}
    plot_success(success_table(rows, befores), args.out / "forgetting.png")
    print(table)


if __name__ == "__main__":
    main()
