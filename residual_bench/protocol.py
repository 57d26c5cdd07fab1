"""The benchmark's main job (``bench run``): residuals for a base, evaluated against it.

For a base and a residual algorithm, :func:`run_benchmark`:

1. finds one trained residual per training seed: the one shipped with the package for that
   base, algorithm and seed if there is one, else ``OUT/train/seed<S>/residual`` - training
   it there if needed (resumable, like ``bench train``);
2. evaluates the base alone and base + each residual on every suite and object split of the
   protocol, all methods on the same episode seeds (paired), into ``OUT/episodes.jsonl``;
3. writes ``OUT/report/`` (markdown and HTML tables, plots, and a filmstrip of the base's worst
   failure next to the residual's recovery on the same episode).

The default protocol is :data:`STANDARD_SUITES` on held-out objects, 100 episodes per cell;
``quick`` is a smoke version that finishes in a few minutes on a laptop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from residual_bench.eval.report import build_report
from residual_bench.eval.runner import evaluate, make_tasks
from residual_bench.residual.checkpoint import shipped_residual

STANDARD_SUITES = ("nominal", "poke", "slide", "drop", "latency", "mixed")


@dataclass
class Protocol:
    """What ``bench run`` evaluates; every field is a ``bench run`` option."""

    suites: list[str] = field(default_factory=lambda: list(STANDARD_SUITES))
    objects: list[str] = field(default_factory=lambda: ["heldout"])
    episodes: int = 100
    seeds: list[int] = field(default_factory=lambda: [0])
    master_seed: int = 0
    train_steps: int | None = None  # None: the residual config's budget

    @classmethod
    def quick(cls) -> Protocol:
        """A smoke run: two suites, 10 episodes, a 3000-step residual if none is shipped."""
        return cls(suites=["nominal", "mixed"], episodes=10, train_steps=3000)


def resolve_residuals(
    base: str,
    algo: str,
    protocol: Protocol,
    out: Path,
    progress: bool = True,
    use_shipped: bool = True,
    resume: bool = False,
) -> list[str | Path]:
    """One trained residual per training seed of the protocol (shipped, found or trained):
    ``shipped:NAME`` references or directories. ``resume`` continues interrupted training
    runs of this user in ``out/train``."""
    from residual_bench.residual.train import train_residual

    paths: list[str | Path] = []
    for seed in protocol.seeds:
        shipped = shipped_residual(base, algo, seed) if use_shipped else None
        if shipped is not None:
            paths.append(shipped)
            continue
        run_dir = out / "train" / f"seed{seed}"
        final = run_dir / "residual"
        if not (final / "residual.json").is_file():
            train_residual(
                base,
                algo,
                run_dir,
                steps=protocol.train_steps,
                seed=seed,
                progress=progress,
                resume=resume,
            )
        paths.append(final)
    return paths


def run_benchmark(
    base: str,
    algo: str,
    out: str | Path,
    protocol: Protocol | None = None,
    *,
    executor: str = "local",
    workers: int | None = None,
    resume: bool = False,
    progress: bool = True,
    use_shipped: bool = True,
    filmstrip: bool = True,
) -> Path:
    """Run the protocol for ``base`` + residual ``algo``; returns the report's markdown path.

    Raises:
        ValueError: unknown base, residual algorithm, suite or executor.
        FileExistsError: ``out`` holds an earlier evaluation and ``resume`` is False.
    """
    from residual_bench.policies.registry import get_base
    from residual_bench.residual.config import load_config

    get_base(base)
    load_config(algo)
    protocol = protocol or Protocol()
    out = Path(out)
    records_path = out / "episodes.jsonl"
    if records_path.exists() and not resume:
        raise FileExistsError(
            f"{records_path} already exists; pass --resume to continue that run, or choose "
            "another --out"
        )
    # Validate the whole grid before the (long) training starts.
    make_tasks(base, [None], protocol.suites, protocol.objects, protocol.episodes)
    residuals = resolve_residuals(base, algo, protocol, out, progress, use_shipped, resume)
    tasks = make_tasks(
        base,
        [None, *[str(p) for p in residuals]],
        protocol.suites,
        protocol.objects,
        protocol.episodes,
        protocol.master_seed,
    )
    evaluate(tasks, out, executor=executor, workers=workers, resume=resume, progress=progress)
    if filmstrip:
        from residual_bench.eval.filmstrip import save_comparison_filmstrip

        save_comparison_filmstrip(out, out / "filmstrip.png")
    return build_report([out], out / "report", title=f"residual-bench: {base} + {algo}")


def parse_seeds(values: Sequence[str]) -> list[int]:
    """Training seeds from the command line: ``0 1 2`` or ``0-2``."""
    seeds: list[int] = []
    for value in values:
        try:
            if "-" in value.strip("-"):
                lo, hi = value.split("-")
                seeds.extend(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(value))
        except ValueError:
            raise ValueError(
                f"--seeds: expected integers like '0 1 2' or '0-2', got {value!r}"
            ) from None
    if any(s < 0 for s in seeds) or not seeds:
        raise ValueError(f"--seeds: expected non-negative integers, got {list(values)}")
    return list(dict.fromkeys(seeds))  # each training seed once, in the order given
