"""Two runs of the same episodes, paired by episode seed: the base alone and base + residual.

A seed fixes the scene and every perturbation, so the two records of one seed saw the same
episode; only the policy differs. :func:`harm_rate` counts what the residual broke and what
it fixed on such pairs (definitions in ``docs/metrics.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from residual_bench.episodes.metrics import _rate
from residual_bench.episodes.records import EpisodeRecord


def records_by_seed(records: Iterable[EpisodeRecord], label: str) -> dict[int, EpisodeRecord]:
    """The records keyed by episode seed; unseeded records have no counterpart and are left out.

    :param records: one run's records.
    :param label: what the run is, for the error message (e.g. ``"method 'bc'"``).
    :raises ValueError: a seed appears twice, naming the seed and ``label``.
    """
    out: dict[int, EpisodeRecord] = {}
    for r in records:
        if r.seed is None:
            continue
        if r.seed in out:
            raise ValueError(f"episode seed {r.seed} appears more than once for {label}")
        out[r.seed] = r
    return out


def pair_by_seed(
    first: Iterable[EpisodeRecord],
    second: Iterable[EpisodeRecord],
    labels: tuple[str, str] = ("the first run", "the second run"),
) -> list[tuple[EpisodeRecord, EpisodeRecord]]:
    """The records of two runs of the same episodes, matched by seed, in seed order.

    :raises ValueError: the runs hold different seeds (saying how many are in one run only,
        and a few of them), or one run holds a seed twice.
    """
    a, b = records_by_seed(first, labels[0]), records_by_seed(second, labels[1])
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))
        shown = ", ".join(map(str, only[:3])) + (", ..." if len(only) > 3 else "")
        raise ValueError(
            f"the runs hold different episodes ({len(only)} seeds in one run only: {shown})"
        )
    return [(a[s], b[s]) for s in sorted(a)]


def harm_rate(
    base_records: Iterable[EpisodeRecord], residual_records: Iterable[EpisodeRecord]
) -> dict[str, Any]:
    """How often the residual turned a success of the base alone into a failure, and back.

    The records are paired by episode seed (:func:`pair_by_seed`); over the ``n`` pairs:

    - ``harm_rate``: pairs where the base alone succeeded and base + residual failed;
    - ``help_rate``: pairs where the base alone failed and base + residual succeeded.

    Each is ``{"rate", "k", "n", "ci"}`` with a Wilson 95% interval (``None`` rate and bounds
    without pairs). ``base_successes`` is the number of pairs the base alone solved, so that
    ``harm_rate.k / base_successes`` is the share of the base's successes the residual broke.

    :param base_records: the base policy alone, one record per seed.
    :param residual_records: base + residual on the same seeds.
    :raises ValueError: a record has no seed, the seeds differ between the runs, or a seed
        repeats within one.
    """
    base_records, residual_records = list(base_records), list(residual_records)
    for name, records in (("base_records", base_records), ("residual_records", residual_records)):
        unseeded = sum(r.seed is None for r in records)
        if unseeded:
            raise ValueError(f"{name}: {unseeded} record(s) without a seed cannot be paired")
    pairs = pair_by_seed(base_records, residual_records, ("base_records", "residual_records"))
    harmed = sum(base.success and not residual.success for base, residual in pairs)
    helped = sum(residual.success and not base.success for base, residual in pairs)
    return {
        "n": len(pairs),
        "base_successes": sum(base.success for base, _ in pairs),
        "harm_rate": _rate(harmed, len(pairs)),
        "help_rate": _rate(helped, len(pairs)),
    }
