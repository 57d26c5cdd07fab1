"""DAgger, round by round: every round's network on the training suite and on ``nominal``.

    python benchmarks/dagger_rounds.py runs/dagger-s0 runs/dagger-s1 runs/dagger-s2 \\
        --work runs/dagger-rounds                  # the committed table: 50 episodes a cell
    python benchmarks/dagger_rounds.py runs/dagger-s0 --rounds 0,4 --episodes 10 \\
        --work runs/dagger-rounds --out runs/dagger-rounds-look  # a quick look at two rounds

Each positional argument is the folder of one training seed's ``finetune-dagger`` run
(``bench train --base bc --residual finetune-dagger --seed S --steps 60000 --out RUN``):
``round-K.pt`` is the network after round K, ``rounds.csv`` the environment steps used by
then. The run's own curve scores each round on 20 held-out ``mixed`` episodes; here the
``bc`` base and every round's network, deployed as a base (``bench eval --base
bc:RUN/round-K.pt``), play more episodes, in two conditions:

- ``mixed``, held-out objects: the suite the run's curve and its choice of ``final.pt`` use;
- ``nominal``, held-out objects (``--train-objects``: also with training objects): the
  unperturbed task, where a network that forgot its demonstrations shows it.

Every network plays the same episodes (episode ``i`` uses ``episode_seed(eval_seed, suite,
objects, i)``, the seeds of ``bench eval --seed``), so each round is paired with the base
alone: its change in points with the exact McNemar p. A round's pooled line adds up the
episodes of every seed that reached it (its environment steps are their mean; its change has
no p: the seeds share the base's episodes, so their pairs are not independent).

Resumable: each (network, suite, objects) evaluation keeps its episode records under
``--work``, and running the same command again continues where it stopped. A round whose
network exists but has no row in ``rounds.csv`` yet (its run is still training) is left out
and listed. Writes ``dagger-rounds.{md,json,png}`` in ``--out`` (default ``results/finetune``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from residual_bench.episodes.metrics import wilson_interval
from residual_bench.episodes.records import EpisodeRecord, read_jsonl
from residual_bench.eval.episode_tasks import make_tasks
from residual_bench.eval.executors import init_worker
from residual_bench.eval.report import mcnemar_by_seed
from residual_bench.eval.report_render import format_p_value
from residual_bench.eval.runner import evaluate
from residual_bench.policies.bc.model import load_checkpoint

matplotlib.use("Agg")  # headless machines: never try to open a window
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "results" / "finetune"
BASE = "bc"


@dataclass(frozen=True)
class Condition:
    """Where the networks are scored: a suite and an object split."""

    suite: str
    objects: str

    @property
    def key(self) -> str:
        return f"{self.suite}-{self.objects}"

    @property
    def title(self) -> str:
        split = "held-out" if self.objects == "heldout" else "training"
        return f"{self.suite}, {split} objects"


@dataclass(frozen=True)
class Round:
    """One finished round of a run: its network and the environment steps used by then."""

    index: int
    env_steps: int
    checkpoint: Path


def finished_rounds(run: Path) -> tuple[list[Round], list[int]]:
    """The rounds of ``run`` with a network and a ``rounds.csv`` row, and the indices of
    those with a network only (written before its row: the run is still in that round).

    Raises:
        ValueError: ``run`` is not a folder, holds no ``round-*.pt``, no finished round, or a
            ``rounds.csv`` without ``round`` and ``env_steps`` columns.
    """
    if not run.is_dir():
        raise ValueError(f"{run}: no such run folder")
    networks = {}
    for path in run.glob("round-*.pt"):  # also matches round-K.pt.train.pt, skipped below
        index = path.name.removeprefix("round-").removesuffix(".pt")
        if index.isdigit():
            networks[int(index)] = path
    if not networks:
        raise ValueError(f"{run}: no round-*.pt, not a finetune-dagger run folder")
    steps: dict[int, int] = {}
    log = run / "rounds.csv"
    if log.is_file():
        with log.open(newline="") as f:
            reader = csv.DictReader(f)
            if not {"round", "env_steps"} <= set(reader.fieldnames or ()):
                raise ValueError(f"{log}: expected columns round and env_steps")
            steps = {int(row["round"]): int(row["env_steps"]) for row in reader}
    rounds = [Round(k, steps[k], networks[k]) for k in sorted(networks) if k in steps]
    if not rounds:
        raise ValueError(f"{run}: no finished round yet (no round of {log.name} has a network)")
    return rounds, sorted(set(networks) - set(steps))


def selected_rounds(rounds: list[Round], wanted: Sequence[int] | None, run: Path) -> list[Round]:
    """The rounds listed in ``wanted`` (None: all of them).

    Raises:
        ValueError: a wanted round that ``run`` has not finished, naming the finished ones.
    """
    if wanted is None:
        return rounds
    by_index = {r.index: r for r in rounds}
    missing = sorted(set(wanted) - set(by_index))
    if missing:
        raise ValueError(
            f"--rounds: {run} has no finished round {', '.join(map(str, missing))} "
            f"(finished: {', '.join(str(r.index) for r in rounds)})"
        )
    return [by_index[k] for k in sorted(set(wanted))]


def training_seed(first: Round) -> int:
    """The DAgger seed of the run that trained ``first``.

    Raises:
        ValueError: the checkpoint does not record its training seed.
    """
    # train_bc's seed is the DAgger seed plus the round (finetune/dagger.py), and every bc
    # checkpoint keeps its training seed in its provenance.
    seed = load_checkpoint(first.checkpoint).get("provenance", {}).get("seed")
    if seed is None:
        raise ValueError(f"{first.checkpoint}: no training seed in its provenance")
    return int(seed) - first.index


def evaluation_folder(work: Path, network: Path | None, condition: Condition, seed: int) -> Path:
    """Where the episodes of one network (None: the ``bc`` base) in one condition are kept."""
    cell = f"{condition.key}-seed{seed}"
    if network is None:
        return work / BASE / cell
    # Records name their network by its path: keying the folder by the path and the file's
    # bytes keeps a moved or retrained network from resuming another network's episodes.
    digest = hashlib.sha256(str(network.resolve()).encode() + network.read_bytes())
    return work / network.parent.name / f"{network.stem}-{digest.hexdigest()[:10]}" / cell


def network_records(
    network: Path | None, conditions: Sequence[Condition], args: argparse.Namespace, label: str
) -> dict[str, list[EpisodeRecord]]:
    """Per condition key, the first ``args.episodes`` episodes of ``network`` (None: the
    ``bc`` base), run where they are not yet under ``args.work``."""
    base = BASE if network is None else f"bc:{network.resolve()}"
    out = {}
    for c in conditions:
        folder = evaluation_folder(args.work, network, c, args.eval_seed)
        tasks = make_tasks(base, [None], [c.suite], [c.objects], args.episodes, args.eval_seed)
        records_path = folder / "episodes.jsonl"
        before = len(read_jsonl(records_path)) if records_path.is_file() else 0
        start, desc = time.perf_counter(), f"{label}, {c.suite}/{c.objects}"
        evaluate(tasks, folder, workers=args.workers, resume=True, progress=True, desc=desc)
        records = read_jsonl(records_path)
        if len(records) > before:
            took = time.perf_counter() - start
            print(f"{desc}: {len(records) - before} episodes in {took:.0f} s", flush=True)
        records = [r for r in records if r.extra["episode_index"] < args.episodes]
        out[c.key] = sorted(records, key=lambda r: r.extra["episode_index"])
    return out


# -- the table, from records --------------------------------------------------------------------


def success(records: Sequence[Any]) -> dict[str, Any]:
    """Success rate, count and Wilson 95% interval of some episodes."""
    k, n = sum(bool(r.success) for r in records), len(records)
    return {"rate": k / n if n else None, "k": k, "n": n, "ci": list(wilson_interval(k, n))}


def round_rows(
    base: dict[str, list], evaluations: list[dict[str, Any]], conditions: Sequence[Condition]
) -> list[dict[str, Any]]:
    """The table's rows: the base alone, then per round each seed's network and the pooled line.

    Args:
        base: per condition key, the base's records.
        evaluations: one per (seed, round): ``seed``, ``round``, ``env_steps`` and ``records``
            (per condition key, the network's records on the base's episodes).

    Raises:
        ValueError: a network's episodes are not the base's (their seeds differ).
    """
    base_cells = {c.key: success(base[c.key]) for c in conditions}
    rows = [dict(seed=None, round=None, env_steps=0, cells=base_cells)]
    for index in sorted({e["round"] for e in evaluations}):
        mine = sorted((e for e in evaluations if e["round"] == index), key=lambda e: e["seed"])
        for e in mine:
            cells = {}
            for c in conditions:
                test = mcnemar_by_seed(base[c.key], e["records"][c.key])
                change = {"change_pp": 100 * test["difference"], "p_value": test["p_value"]}
                cells[c.key] = {**success(e["records"][c.key]), **change}
            rows.append(dict(seed=e["seed"], round=index, env_steps=e["env_steps"], cells=cells))
        if len(mine) > 1:
            cells = {}
            for c in conditions:
                pooled = success([r for e in mine for r in e["records"][c.key]])
                change = {"change_pp": 100 * (pooled["rate"] - base_cells[c.key]["rate"])}
                cells[c.key] = {**pooled, **change, "p_value": None}
            steps = float(np.mean([e["env_steps"] for e in mine]))
            seeds = [e["seed"] for e in mine]
            rows.append(dict(seed="pooled", seeds=seeds, round=index, env_steps=steps, cells=cells))
    return rows


def _cell(cell: dict[str, Any]) -> str:
    text = f"{cell['rate']:.0%} [{cell['ci'][0]:.0%}, {cell['ci'][1]:.0%}]"
    if "change_pp" in cell:
        text += f", {cell['change_pp']:+.0f} pp"
        if cell["p_value"] is not None:
            text += f" ({format_p_value(cell['p_value'])})"
    return text


def table_markdown(rows: list[dict[str, Any]], conditions: Sequence[Condition]) -> str:
    """The rows of :func:`round_rows` as a Markdown table."""
    lines = [
        "| seed | round | env steps | " + " | ".join(c.title for c in conditions) + " |",
        "|---|---:|---:|" + "---:|" * len(conditions),
    ]
    for row in rows:
        if row["round"] is None:
            seed, index = "-", "base alone"
        elif row["seed"] == "pooled":
            seed, index = f"pooled ({len(row['seeds'])} seeds)", str(row["round"])
        else:
            seed, index = str(row["seed"]), str(row["round"])
        cells = " | ".join(_cell(row["cells"][c.key]) for c in conditions)
        lines.append(f"| {seed} | {index} | {row['env_steps']:,.0f} | {cells} |")
    return "\n".join(lines) + "\n"


def plot_rounds(rows: list[dict[str, Any]], conditions: Sequence[Condition], path: Path) -> None:
    """Success against environment steps: one panel per condition, a line per seed (and the
    pooled one, thick), the base alone dashed."""
    fig, axes = plt.subplots(1, len(conditions), figsize=(5 * len(conditions), 4), squeeze=False)
    for ax, c in zip(axes[0], conditions, strict=True):
        ax.axhline(rows[0]["cells"][c.key]["rate"], color="0.3", ls="--", lw=1, label="bc base")
        for seed in dict.fromkeys(r["seed"] for r in rows[1:]):
            mine = [r for r in rows[1:] if r["seed"] == seed]
            steps = [r["env_steps"] for r in mine]
            rates = [r["cells"][c.key]["rate"] for r in mine]
            if seed == "pooled":
                ax.plot(steps, rates, color="k", lw=2.5, marker="o", label="pooled")
            else:
                ax.plot(steps, rates, marker="o", lw=1, label=f"seed {seed}")
        ax.set_ylim(-0.02, 1.02)  # points at 0% and 100% stay visible
        ax.set_xlim(0, 1.05 * max(r["env_steps"] for r in rows))
        ax.set_xlabel("environment steps")
        ax.set_ylabel("success rate")
        ax.set_title(c.title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- the command line ---------------------------------------------------------------------------


def round_list(text: str) -> list[int]:
    """``"0,4"`` -> [0, 4]."""
    try:
        rounds = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected round numbers like 0,4, got {text!r}") from None
    if min(rounds) < 0:
        raise argparse.ArgumentTypeError(f"rounds count from 0, got {text!r}")
    return rounds


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "runs", nargs="+", type=Path, help="finetune-dagger run folders, one a seed"
    )
    parser.add_argument(
        "--work",
        type=Path,
        required=True,
        help="folder that keeps every evaluation's episodes (for resuming)",
    )
    parser.add_argument("--episodes", type=int, default=50, help="episodes per network and cell")
    parser.add_argument("--rounds", type=round_list, help="only these rounds, e.g. 0,4")
    parser.add_argument(
        "--train-objects", action="store_true", help="also score nominal with the training objects"
    )
    parser.add_argument("--eval-seed", type=int, default=0, help="master seed of the episodes")
    parser.add_argument("--workers", type=int, help="parallel episodes (default: one per core)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser


def read_runs(
    folders: Sequence[Path], wanted: Sequence[int] | None
) -> tuple[dict[int, tuple[Path, list[Round]]], dict[str, list[int]]]:
    """Per DAgger seed, its run folder and the rounds to score; per folder, the rounds left
    out because they are still training.

    Raises:
        ValueError: a folder that is not a finished run (:func:`finished_rounds`), a wanted
            round it lacks, or two folders of one seed.
    """
    runs, left_out = {}, {}
    for run in folders:
        rounds, left_out[str(run)] = finished_rounds(run)
        seed = training_seed(rounds[0])
        if seed in runs:
            raise ValueError(f"{runs[seed][0]} and {run} are both seed {seed}: one run a seed")
        runs[seed] = (run, selected_rounds(rounds, wanted, run))
    return runs, left_out


def write_outputs(
    out: Path, rows: list[dict[str, Any]], conditions: Sequence[Condition], about: dict[str, Any]
) -> str:
    """``dagger-rounds.{md,json,png}`` in ``out``; returns the table."""
    folders = ", ".join(f"seed {seed} `{run}`" for seed, run in about["runs"].items())
    note = (
        f"Produced by `{about['command']}`. Success of the `bc` base and of every DAgger "
        "round's network (`round-K.pt`, deployed as `--base bc:RUN/round-K.pt`) on "
        f"{about['episodes']} episodes a cell, the same episodes for every network (evaluation "
        f"seed {about['eval_seed']}); Wilson 95% intervals; change against the base alone on "
        "the same episodes in points, with the exact McNemar p. A pooled line adds up the "
        "seeds' episodes at that round (env steps: their mean; no p, the seeds share the "
        "base's episodes). Env steps are those used by the end of the round (`rounds.csv`). "
        f"Run folders: {folders}."
    )
    pending = [
        f"`{run}` round {', '.join(map(str, ks))}" for run, ks in about["left_out"].items() if ks
    ]
    if pending:
        note += " Still training, left out: " + "; ".join(pending) + "."
    table = table_markdown(rows, conditions)
    out.mkdir(parents=True, exist_ok=True)
    title = "# DAgger: every round's network, per seed, on the training suite and on nominal"
    (out / "dagger-rounds.md").write_text(f"{title}\n\n{note}\n\n{table}")
    result = {**about, "conditions": [c.key for c in conditions], "rows": rows}
    (out / "dagger-rounds.json").write_text(json.dumps(result, indent=2) + "\n")
    plot_rounds(rows, conditions, out / "dagger-rounds.png")
    return table


def main() -> None:
    parser = argument_parser()
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    conditions = [Condition("mixed", "heldout"), Condition("nominal", "heldout")]
    if args.train_objects:
        conditions.append(Condition("nominal", "train"))
    try:
        runs, left_out = read_runs(args.runs, args.rounds)
    except ValueError as exc:
        parser.error(str(exc))
    # With one worker the episodes run in this process: one torch thread, as in every pool
    # worker; torch's default of one thread a core slows each episode down on a busy machine.
    init_worker()

    total = 1 + sum(len(rounds) for _, rounds in runs.values())
    base_records = network_records(None, conditions, args, f"[1/{total}] bc base")
    evaluations = []
    for seed, (_, rounds) in runs.items():
        for r in rounds:
            label = f"[{len(evaluations) + 2}/{total}] seed {seed} round {r.index}"
            records = network_records(r.checkpoint, conditions, args, label)
            evaluations.append(
                dict(seed=seed, round=r.index, env_steps=r.env_steps, records=records)
            )
    about = {
        "command": shlex.join(["python", "benchmarks/dagger_rounds.py", *sys.argv[1:]]),
        "episodes": args.episodes,
        "eval_seed": args.eval_seed,
        "runs": {seed: str(run) for seed, (run, _) in runs.items()},
        "left_out": left_out,
    }
    rows = round_rows(base_records, evaluations, conditions)
    print(write_outputs(args.out, rows, conditions, about))


if __name__ == "__main__":
    main()
