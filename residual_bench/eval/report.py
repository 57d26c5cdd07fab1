"""Tables and a Markdown/HTML report comparing methods from one or more results directories.

A results directory holds ``episodes.jsonl`` and optionally ``train/*/progress.csv`` (learning
curves, one per training seed) and ``filmstrip.png``. A method is ``base`` for the base policy
alone, else ``base+residual``. Success and recovery rates carry Wilson 95% intervals, times
percentile-bootstrap intervals; residual methods are compared with their base alone on the
same episode seeds (exact McNemar test). Definitions are in ``docs/metrics.md``.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from residual_bench.episodes.metrics import wilson_interval
from residual_bench.episodes.pairing import harm_rate, pair_by_seed, records_by_seed
from residual_bench.episodes.records import EpisodeRecord, read_jsonl
from residual_bench.episodes.statistics import (
    bootstrap_interval,
    iqm,
    iqm_interval,
    mcnemar_exact,
    paired_bootstrap_difference,
    probability_of_improvement_interval,
)
from residual_bench.eval import plots
from residual_bench.eval.report_provenance import provenance_blocks
from residual_bench.eval.report_render import (
    NOTES,
    Block,
    html_page,
    markdown_page,
    method_block,
    paired_block,
    recovery_block,
    seed_block,
)
from residual_bench.training.learning_curve import read_progress

SUITE_ORDER = ("nominal", "poke", "slide", "drop", "latency", "mixed")
NAN = math.nan
Dirs = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


def _dir_list(dirs: Dirs) -> list[Path]:
    return [Path(dirs)] if isinstance(dirs, str | os.PathLike) else [Path(d) for d in dirs]


def load_results(dirs: Dirs) -> list[EpisodeRecord]:
    """Read the episode records of every results directory, in the order given.

    Args:
        dirs: One results directory or several.

    Returns:
        All records of the directories' ``episodes.jsonl`` files, concatenated.

    Raises:
        FileNotFoundError: Naming the path, if a directory or its ``episodes.jsonl`` is missing.
        ValueError: From :func:`~residual_bench.episodes.records.read_jsonl` for a corrupt file.
    """
    records: list[EpisodeRecord] = []
    for d in _dir_list(dirs):
        if not d.is_dir():
            raise FileNotFoundError(f"results directory not found: {d}")
        path = d / "episodes.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"no episode records: {path} does not exist")
        records.extend(read_jsonl(path))
    return records


def method_name(record: EpisodeRecord) -> str:
    """Method label of a record: ``base`` alone, or ``base+residual``.

    Args:
        record: An episode record.

    Returns:
        The label.
    """
    return record.base if record.residual is None else f"{record.base}+{record.residual}"


def suite_key(suite: str) -> tuple[int, str]:
    """Sort key putting the standard suites first, in their order, then others by name."""
    return (SUITE_ORDER.index(suite), "") if suite in SUITE_ORDER else (len(SUITE_ORDER), suite)


def _group(records: Iterable[EpisodeRecord], key: Any) -> dict[Any, list[EpisodeRecord]]:
    groups: dict[Any, list[EpisodeRecord]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r)
    return groups


def _mean(values: Iterable[float | None]) -> float:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else NAN


def _rate(records: list[EpisodeRecord]) -> tuple[float, float, float]:
    k, n = sum(r.success for r in records), len(records)
    return (k / n if n else NAN, *wilson_interval(k, n))


def _completion_times(records: Iterable[EpisodeRecord]) -> list[float]:
    return [r.first_success_time for r in records if r.success and r.first_success_time is not None]


METHOD_COLUMNS = (
    "objects suite method episodes success success_lo success_hi recovery recovery_lo "
    "recovery_hi completion_time completion_lo completion_hi residual_ratio action_jerk"
).split()


def method_table(records: Iterable[EpisodeRecord]) -> pd.DataFrame:
    """Per (object split, suite, method): success, recovery, completion time and smoothness.

    Args:
        records: Episode records of any methods, suites and object splits.

    Returns:
        One row per group with the columns of :data:`METHOD_COLUMNS`. Rates are fractions with
        Wilson 95% bounds; ``recovery`` is over perturbed episodes (NaN if none);
        ``completion_time`` is the mean first success time of successful episodes with a
        bootstrap 95% interval (NaN bounds below two such episodes). Sorted by object split,
        suite (:data:`SUITE_ORDER` first) and method.
    """
    rows = []
    groups = _group(records, lambda r: (r.objects, r.suite, method_name(r)))
    for (objects, suite, method), recs in groups.items():
        times = _completion_times(recs)
        ci = bootstrap_interval(times) if len(times) >= 2 else (NAN, NAN)
        rows.append(
            (objects, suite, method, len(recs), *_rate(recs))
            + _rate([r for r in recs if r.perturbed])
            + (_mean(times), *ci)
            + (_mean(r.mean_abs_residual_ratio for r in recs), _mean(r.action_jerk for r in recs))
        )
    rows.sort(key=lambda row: (row[0], suite_key(row[1]), row[2]))
    return pd.DataFrame(rows, columns=METHOD_COLUMNS)


def mcnemar_by_seed(
    first: Iterable[EpisodeRecord], second: Iterable[EpisodeRecord]
) -> dict[str, Any]:
    """:func:`mcnemar_exact` of two runs of the same episodes, matched by episode seed.

    ``difference`` is ``second``'s success rate minus ``first``'s.

    Raises:
        ValueError: The two runs hold different episode seeds, or one holds a seed twice.
    """
    pairs = pair_by_seed(first, second)
    return mcnemar_exact([a.success for a, _ in pairs], [b.success for _, b in pairs])


RECOVERY_COLUMNS = (
    "objects suite method events at_150ms at_150ms_lo at_150ms_hi at_500ms at_500ms_lo "
    "at_500ms_hi at_1s at_1s_lo at_1s_hi eventual eventual_lo eventual_hi "
    "reaction_events react_150ms react_150ms_lo react_150ms_hi"
).split()


def recovery_table(records: Iterable[EpisodeRecord]) -> pd.DataFrame:
    """Per (object split, suite, method): the share of perturbation events recovered within
    150 ms, 500 ms and 1 s, and by the episode's end, and the share of the events with a
    reaction rule reacted to within 150 ms (NaN without such events), with Wilson 95%
    intervals."""
    rows = []
    groups = _group(records, lambda r: (r.objects, r.suite, method_name(r)))
    for (objects, suite, method), recs in groups.items():
        events = [e for r in recs for e in r.events]
        times = [e.recovery_time for e in events]
        if not times:
            continue
        row: tuple = (objects, suite, method, len(times))
        for horizon in (0.15, 0.5, 1.0, math.inf):
            k = sum(t is not None and t <= horizon + 1e-9 for t in times)
            row += (k / len(times), *wilson_interval(k, len(times)))
        reacting = [e.reaction_time for e in events if e.reaction_rule is not None]
        n, k = len(reacting), sum(t is not None and t <= 0.15 + 1e-9 for t in reacting)
        rows.append(row + (n, k / n if n else NAN, *wilson_interval(k, n)))
    rows.sort(key=lambda row: (row[0], suite_key(row[1]), row[2]))
    return pd.DataFrame(rows, columns=RECOVERY_COLUMNS)


PAIRED_COLUMNS = (
    "objects suite base method train_seed pairs base_success method_success difference "
    "p_value completion_time_difference completion_difference_lo completion_difference_hi "
    "harm harm_lo harm_hi help help_lo help_hi"
).split()


def paired_comparisons(records: Iterable[EpisodeRecord]) -> pd.DataFrame:
    """Each residual method against its base alone on the same episode seeds.

    Records of a residual method trained with several seeds (``extra["train_seed"]``) are
    compared separately per training seed, so that every pair is one base episode and one
    residual episode. Groups without any common seed are left out.

    Args:
        records: Episode records of any methods, suites and object splits.

    Returns:
        One row per (object split, suite, residual method, training seed) with the columns of
        :data:`PAIRED_COLUMNS`: success rates over the pairs, their difference (method minus
        base), the exact McNemar p-value, and the mean completion time difference (method
        minus base) with a paired bootstrap 95% interval over pairs where both succeeded
        (NaN when fewer than two), and the harm and help rates over the pairs
        (:func:`~residual_bench.episodes.pairing.harm_rate`: base alone succeeded and the
        method failed, and the reverse) with Wilson 95% intervals. ``train_seed`` is
        ``<NA>`` for single-seed methods.

    Raises:
        ValueError: If an episode seed appears twice for one method in one group.
    """
    records = list(records)
    alone = _group(
        (r for r in records if r.residual is None), lambda r: (r.objects, r.suite, r.base)
    )
    residual = _group(
        (r for r in records if r.residual is not None),
        lambda r: (r.objects, r.suite, r.base, method_name(r), r.extra.get("train_seed")),
    )
    rows = []
    for (objects, suite, base, method, train_seed), recs in residual.items():
        where = f"objects={objects!r}, suite={suite!r}"
        seed_note = "" if train_seed is None else f", train seed {train_seed}"
        mine = records_by_seed(recs, f"method {method!r}{seed_note} ({where})")
        theirs = alone.get((objects, suite, base), [])
        theirs = records_by_seed(theirs, f"method {base!r} ({where})")
        seeds = sorted(set(mine) & set(theirs))
        if not seeds:
            continue
        harm = harm_rate([theirs[s] for s in seeds], [mine[s] for s in seeds])
        a = [theirs[s].success for s in seeds]
        b = [mine[s].success for s in seeds]
        test = mcnemar_exact(a, b)
        both = [s for s in seeds if len(_completion_times([theirs[s], mine[s]])) == 2]
        diff = {"difference": NAN, "ci": [NAN, NAN]}
        if len(both) >= 2:
            diff = paired_bootstrap_difference(
                [theirs[s].first_success_time for s in both],
                [mine[s].first_success_time for s in both],
            )
        rows.append(
            (objects, suite, base, method, train_seed, len(seeds), float(np.mean(a)))
            + (float(np.mean(b)), test["difference"], test["p_value"], diff["difference"])
            + tuple(diff["ci"])
            + tuple(
                x for k in ("harm_rate", "help_rate") for x in (harm[k]["rate"], *harm[k]["ci"])
            )
        )
    rows.sort(key=lambda row: (row[0], suite_key(row[1]), row[3], row[4] or 0))
    table = pd.DataFrame(rows, columns=PAIRED_COLUMNS)
    table["train_seed"] = table["train_seed"].astype("Int64")
    return table


SEED_COLUMNS = (
    "objects base method train_seeds suites iqm iqm_lo iqm_hi base_iqm "
    "improvement_probability improvement_lo improvement_hi"
).split()


def seed_aggregates(records: Iterable[EpisodeRecord]) -> pd.DataFrame:
    """Across training seeds: IQM success and probability of improvement over the base alone.

    Only residual records with ``extra["train_seed"]`` count. The scores are per-suite success
    rates, runs = training seeds, tasks = the suites every training seed was evaluated on. The
    base alone is one run; the probability of improvement uses the suites it shares.

    Args:
        records: Episode records of any methods, suites and object splits.

    Returns:
        One row per (object split, residual method) with the columns of :data:`SEED_COLUMNS`;
        the base and improvement columns are NaN if the base alone was not evaluated there.
    """
    records = list(records)
    alone = _group(
        (r for r in records if r.residual is None), lambda r: (r.objects, r.base, r.suite)
    )
    seeded = _group(
        (r for r in records if r.residual is not None and "train_seed" in r.extra),
        lambda r: (r.objects, r.base, method_name(r)),
    )
    rows = []
    for (objects, base, method), recs in sorted(seeded.items()):
        runs = dict(sorted(_group(recs, lambda r: r.extra["train_seed"]).items()))
        suites = set.intersection(*({r.suite for r in rs} for rs in runs.values()))
        suites = sorted(suites, key=suite_key)
        if not suites:
            continue
        scores = np.array(
            [[_rate([r for r in rs if r.suite == s])[0] for s in suites] for rs in runs.values()]
        )
        agg = iqm_interval(scores)
        shared = [i for i, s in enumerate(suites) if (objects, base, s) in alone]
        base_scores = np.array([[_rate(alone[(objects, base, suites[i])])[0] for i in shared]])
        poi = {"probability": NAN, "ci": [NAN, NAN]}
        if shared:
            poi = probability_of_improvement_interval(scores[:, shared], base_scores)
        rows.append(
            (objects, base, method, len(runs), len(suites), agg["iqm"], *agg["ci"])
            + (iqm(base_scores) if shared else NAN, poi["probability"], *poi["ci"])
        )
    return pd.DataFrame(rows, columns=SEED_COLUMNS)


def _learning_curves(dirs: list[tuple[Path, list[EpisodeRecord]]]) -> dict[str, list[pd.DataFrame]]:
    curves: dict[str, list[pd.DataFrame]] = {}
    for d, records in dirs:
        # progress.csv does not name its method: use the directory's only residual method.
        residuals = {method_name(r) for r in records if r.residual is not None}
        label = residuals.pop() if len(residuals) == 1 else d.name
        for path in sorted(d.glob("train/*/progress.csv")):
            curves.setdefault(label, []).append(read_progress(path))
    return curves


def build_report(
    dirs: Dirs, out: str | os.PathLike[str], title: str = "residual-bench report"
) -> Path:
    """Write ``report.md``, ``report.html`` and their figures (under ``plots/``) to ``out``.

    Args:
        dirs: One results directory or several; their records are pooled.
        out: Output directory, created if needed.
        title: Report title.

    Returns:
        Path of ``report.md``.

    Raises:
        FileNotFoundError: If a directory or its ``episodes.jsonl`` is missing.
        ValueError: If there are no episodes, or a results file is corrupt.
    """
    per_dir = [(d, load_results(d)) for d in _dir_list(dirs)]
    records = [r for _, recs in per_dir for r in recs]
    sources = ", ".join(str(d) for d, _ in per_dir)
    if not records:
        raise ValueError(f"no episodes in {sources}")
    out = Path(out)
    figures = out / "plots"
    figures.mkdir(parents=True, exist_ok=True)
    methods, paired, seeds = (
        f(records) for f in (method_table, paired_comparisons, seed_aggregates)
    )
    by_method = dict(sorted(_group(records, method_name).items()))

    # Images are linked relative to the report so that the output directory can be moved.
    blocks: list[Block] = [("h1", title), ("p", f"Sources: {sources}")]
    blocks += provenance_blocks(records)
    blocks += [("h2", "Success, recovery and completion time"), method_block(methods)]
    plots.plot_success(methods, figures / "success.png")
    blocks += [("p", NOTES["methods"]), ("img", "success rate", "plots/success.png")]
    blocks.append(("h2", "Residual versus base alone (paired by episode seed)"))
    if len(paired):
        blocks += [paired_block(paired), ("p", NOTES["paired"])]
    else:
        blocks.append(("p", NOTES["unpaired"]))
    if len(seeds):
        blocks += [("h2", "Across training seeds"), seed_block(seeds), ("p", NOTES["seeds"])]
    blocks.append(("h2", "Recovery after perturbations"))
    recovery = recovery_table(records)
    if len(recovery):
        blocks += [recovery_block(recovery), ("p", NOTES["recovery"])]
    plots.plot_recovery_curves(by_method, figures / "recovery.png")
    blocks += [("img", "recovery", "plots/recovery.png"), ("p", NOTES["recovery_curves"])]
    plots.plot_completion_times(by_method, figures / "completion.png")
    blocks += [("h2", "Completion time"), ("img", "completion time", "plots/completion.png")]
    blocks.append(("p", NOTES["completion"]))
    curves = _learning_curves(per_dir)
    (figures / "learning.png").unlink(missing_ok=True)  # never show a stale figure
    if curves:
        plots.plot_learning_curves(curves, figures / "learning.png")
        blocks += [("h2", "Learning curves"), ("img", "learning curves", "plots/learning.png")]
    film = next((d / "filmstrip.png" for d, _ in per_dir if (d / "filmstrip.png").is_file()), None)
    if film is not None:
        if film.resolve() != (out / "filmstrip.png").resolve():
            shutil.copyfile(film, out / "filmstrip.png")
        blocks += [("h2", "Filmstrip"), ("img", "filmstrip", "filmstrip.png")]
    (out / "report.html").write_text(html_page(blocks, title), encoding="utf-8")
    report = out / "report.md"
    report.write_text(markdown_page(blocks), encoding="utf-8")
    return report
