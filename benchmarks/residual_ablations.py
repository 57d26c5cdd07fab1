"""The residual's four feature modes and four agents on the `bc` base, side by side.

    python benchmarks/residual_ablations.py                 # the committed table
    python benchmarks/residual_ablations.py --episodes 20   # a quick look

Every variant is one training run with the shipped ``sac`` budget (300k environment steps on
``mixed``, training objects, seed 0), only the named setting changed:

    bench train --base bc --residual sac --features proprio --seed 0 \
        --out runs/abl-bc/proprio-sac-seed0
    bench train --base bc --residual td3 --features objects --seed 0 \
        --out runs/abl-bc/objects-td3-seed0

(``privileged-sac``, ``global-sac``, ``objects-ppo`` and ``objects-sac-gated`` alike). The
reference, ``objects`` + ``sac``, is the shipped ``bc-sac-seed0`` and its episodes in
``results/bc-sac`` (``bench run --env ResidualPickPlace-v1 --base bc --residual sac --seeds
0-2 ...``), as is the base alone.

For each finished run the script copies the trained residual and its learning curve to
``results/ablations/bc/<variant>/`` and evaluates it there on the same held-out ``mixed``
episodes (master seed 0) as the reference, so every comparison is paired by episode. It
writes ``results/ablations/bc/table.md`` (success with Wilson 95% intervals, the paired
difference to the base alone and to the reference with exact McNemar p-values, recovery,
correction size, jerk), ``ablations.json``, ``ablations.png`` (bars with 95% intervals) and
``learning.png``. A variant whose run has not finished is listed with how far it has trained,
its learning curve so far copied and drawn dashed; a run stopped early and saved with a
smaller ``--steps`` is listed with its training steps, and is evaluated again once it has
trained on. Evaluations resume episode by episode, so re-running the same command continues
where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from residual_bench.episodes.metrics import summarize, wilson_interval  # noqa: E402
from residual_bench.episodes.records import EpisodeRecord, read_jsonl  # noqa: E402
from residual_bench.eval.episode_tasks import make_tasks  # noqa: E402
from residual_bench.eval.plots import plot_learning_curves  # noqa: E402
from residual_bench.eval.report import mcnemar_by_seed  # noqa: E402
from residual_bench.eval.report_render import format_p_value  # noqa: E402
from residual_bench.eval.runner import evaluate  # noqa: E402
from residual_bench.sweep.collect import training_runs  # noqa: E402
from residual_bench.training.learning_curve import read_progress  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "objects-sac"
#: (group, label, run directory name): the reference appears in both groups.
VARIANTS = (
    ("features", "objects", REFERENCE),
    ("features", "privileged", "privileged-sac"),
    ("features", "global", "global-sac"),
    ("features", "proprio", "proprio-sac"),
    ("agents", "sac", REFERENCE),
    ("agents", "td3", "objects-td3"),
    ("agents", "ppo", "objects-ppo"),
    ("agents", "sac-gated", "objects-sac-gated"),
)
SUITE, OBJECTS, MASTER_SEED = "mixed", "heldout", 0


def reference_records(results: Path, episodes: int) -> tuple[list, list]:
    """The base alone and ``objects`` + ``sac`` (training seed 0) from ``results/bc-sac``."""
    records = read_jsonl(results / "bc-sac" / "episodes.jsonl")
    cell = [r for r in records if r.suite == SUITE and r.objects == OBJECTS]
    base = [r for r in cell if r.residual is None]
    sac = [r for r in cell if r.residual == "sac" and r.extra.get("train_seed") == 0]
    for name, found in (("base alone", base), ("sac seed 0", sac)):
        if len(found) < episodes:
            raise SystemExit(
                f"results/bc-sac holds {len(found)} {name} episodes, {episodes} needed; run "
                "`bench run --env ResidualPickPlace-v1 --base bc --residual sac --seeds 0-2 "
                "--suite mixed --episodes 100 "
                "--out results/bc-sac` first"
            )
    by_index = sorted(base, key=lambda r: r.extra["episode_index"])[:episodes]
    return by_index, sorted(sac, key=lambda r: r.extra["episode_index"])[:episodes]


def train_steps(residual: Path) -> int:
    """The environment steps a saved residual was trained for."""
    return int(json.loads((residual / "residual.json").read_text())["train_steps"])


def evaluate_variant(run: Path, out: Path, episodes: int, workers: int) -> list[EpisodeRecord]:
    """Copy a finished run's residual and curve into ``out`` and evaluate it there."""
    out.mkdir(parents=True, exist_ok=True)
    copied = out / "residual"
    evaluated = train_steps(copied) if copied.is_dir() else None
    trained = train_steps(run / "residual")
    if evaluated is not None and evaluated != trained:
        # The run went on training since the last evaluation: its episodes describe an
        # older residual and must not be resumed into the new one's.
        print(f"{run.name}: {evaluated} -> {trained} steps, evaluating again")
        shutil.rmtree(copied)
        for stale in ("episodes.jsonl", "summary.json"):
            (out / stale).unlink(missing_ok=True)
    if not copied.is_dir():
        shutil.copytree(run / "residual", copied)
    shutil.copyfile(run / "progress.csv", out / "progress.csv")
    # The records name the residual by this path: relative, so they re-run from any clone.
    residual = os.path.relpath(out / "residual", ROOT)
    tasks = make_tasks("bc", [residual], [SUITE], [OBJECTS], episodes, MASTER_SEED)
    evaluate(tasks, out, workers=workers, resume=True, progress=True)
    return sorted(read_jsonl(out / "episodes.jsonl"), key=lambda r: r.extra["episode_index"])


def row(
    name: str,
    label: str,
    group: str,
    records: list,
    base: list,
    reference: list,
    steps: int | None = None,
) -> dict[str, Any]:
    """One table row: the variant's metrics, its training steps and its paired differences."""
    summary = summarize(records)
    success = summary["success_rate"]
    vs_base = mcnemar_by_seed(base, records)
    vs_reference = mcnemar_by_seed(reference, records)
    return {
        "group": group,
        "name": name,
        "variant": label,
        "success": success["rate"],
        "success_lo": success["ci"][0],
        "success_hi": success["ci"][1],
        "episodes": success["n"],
        "vs_base_pp": 100 * vs_base["difference"],
        "vs_base_p": vs_base["p_value"],
        "vs_reference_pp": 100 * vs_reference["difference"],
        "vs_reference_p": vs_reference["p_value"],
        "train_steps": steps,
        "recovery": summary["recovery_rate"]["rate"],
        "mean_abs_residual_ratio": summary["mean_abs_residual_ratio"],
        "action_jerk": summary["action_jerk"],
    }


def _change(pp: float, p: float) -> str:
    return f"{pp:+.0f} pp ({format_p_value(p)})"


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def table_markdown(rows: list[dict[str, Any]], base_row: dict[str, Any]) -> str:
    lines = [
        "| group | variant | training steps | success [95% CI] | vs base | vs objects + sac "
        "| recovery | mean \\|r\\| / alpha | action jerk |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in [base_row, *rows]:
        if r.get("missing"):
            done = r.get("trained_so_far")
            status = "not trained yet" if done is None else f"training: {done:,} so far"
            lines.append(f"| {r['group']} | {r['variant']} | {status} | | | | | | |")
            continue
        vs_base = "" if r["name"] == "base" else _change(r["vs_base_pp"], r["vs_base_p"])
        vs_reference = ""
        if r["name"] not in ("base", REFERENCE):
            vs_reference = _change(r["vs_reference_pp"], r["vs_reference_p"])
        cells = [
            r["group"],
            r["variant"],
            _fmt(r["train_steps"], "{:,}"),
            f"{r['success']:.0%} [{r['success_lo']:.0%}, {r['success_hi']:.0%}]",
            vs_base,
            vs_reference,
            _fmt(r["recovery"], "{:.0%}"),
            _fmt(r["mean_abs_residual_ratio"], "{:.3f}"),
            _fmt(r["action_jerk"], "{:.1f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pooled_reference_note(results: Path, episodes: int) -> str:
    """The reference over all its training seeds: the single-seed rows are seed 0."""
    records = read_jsonl(results / "bc-sac" / "episodes.jsonl")
    per_seed: dict[int, list] = {}
    for r in records:
        if r.residual == "sac" and r.suite == SUITE and r.objects == OBJECTS:
            per_seed.setdefault(r.extra["train_seed"], []).append(r.success)
    pooled = [s for seed in sorted(per_seed) for s in per_seed[seed][:episodes]]
    lo, hi = wilson_interval(sum(pooled), len(pooled))
    each = ", ".join(f"{np.mean(per_seed[s][:episodes]):.0%}" for s in sorted(per_seed))
    return (
        f"\nEvery variant is training seed 0. The reference, `objects` + `sac`, over its "
        f"{len(per_seed)} training seeds ({each}): {np.mean(pooled):.0%} "
        f"[{lo:.0%}, {hi:.0%}] (results/bc-sac).\n"
    )


def plot_bars(rows: list[dict[str, Any]], base_row: dict[str, Any], path: Path) -> None:
    """One panel per group: success with Wilson 95% error bars, the base alone as a line."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, group in zip(axes, ("features", "agents"), strict=True):
        mine = [r for r in rows if r["group"] == group]
        x = range(len(mine))
        values = [r["success"] for r in mine]
        errors = [
            [r["success"] - r["success_lo"] for r in mine],
            [r["success_hi"] - r["success"] for r in mine],
        ]
        ax.bar(x, values, yerr=errors, capsize=4, color="tab:blue", alpha=0.8)
        ax.axhline(base_row["success"], color="0.3", ls="--", lw=1, label="bc alone")
        ax.set_xticks(list(x), [r["variant"] for r in mine])
        ax.set_title(f"bc + residual: {group} (seed 0)")
        ax.set_ylim(0, 1)
    axes[0].set_ylabel(f"success, held-out {SUITE}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "abl-bc")
    parser.add_argument("--sweep", type=Path, default=None, help="a bench sweep's folder")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "ablations" / "bc")
    args = parser.parse_args()

    runs = training_runs(args.sweep) if args.sweep is not None else {}
    base, reference = reference_records(ROOT / "results", args.episodes)
    curves_of = {REFERENCE: ROOT / "results" / "residual" / "bc-objects-sac-seed0"}
    records_of = {REFERENCE: reference}
    shipped = ROOT / "residual_bench" / "data" / "residuals" / "bc-sac-seed0"
    steps_of = {REFERENCE: train_steps(shipped)}
    unfinished: dict[str, Path] = {}
    rows: list[dict[str, Any]] = []
    for group, label, name in VARIANTS:
        if name not in records_of:
            run = runs.get(f"{name}-seed0", args.runs / f"{name}-seed0")
            if not (run / "residual" / "residual.json").is_file():
                missing = {"group": group, "name": name, "variant": label, "missing": True}
                if (run / "progress.csv").is_file():
                    (args.out / name).mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(run / "progress.csv", args.out / name / "progress.csv")
                    curve = read_progress(args.out / name / "progress.csv")
                    missing["trained_so_far"] = int(curve["timesteps"].max())
                    unfinished[name] = args.out / name
                rows.append(missing)
                continue
            print(f"evaluating {name} ({run})")
            records_of[name] = evaluate_variant(run, args.out / name, args.episodes, args.workers)
            curves_of[name] = args.out / name
            steps_of[name] = train_steps(args.out / name / "residual")
        records = records_of[name][: args.episodes]
        rows.append(row(name, label, group, records, base, reference, steps_of[name]))
    base_row = row("base", "base alone", "base", base, base, reference)

    args.out.mkdir(parents=True, exist_ok=True)
    table = table_markdown(rows, base_row) + pooled_reference_note(ROOT / "results", args.episodes)
    (args.out / "table.md").write_text(table)
    (args.out / "ablations.json").write_text(
        json.dumps({"base": base_row, "rows": rows}, indent=2) + "\n"
    )
    plot_bars([r for r in rows if not r.get("missing")], base_row, args.out / "ablations.png")
    curves = {
        name.replace("-", " + ", 1): [read_progress(path / "progress.csv")]
        for name, path in curves_of.items()
    }
    training = {
        name.replace("-", " + ", 1) + " (training)": [read_progress(path / "progress.csv")]
        for name, path in unfinished.items()
    }
    plot_learning_curves({**curves, **training}, args.out / "learning.png", dashed=set(training))
    print(table)


if __name__ == "__main__":
    main()
