"""The benchmark's main job (``bench run``): residuals for a base, evaluated against it.

For a base and a residual algorithm, :func:`run_benchmark`:

1. finds one trained residual per training seed: the one shipped with the package for that
   base, algorithm and seed if there is one, else ``OUT/train/seed<S>/residual`` - training
   it there if needed (resumable, like ``bench train``);
2. evaluates the base alone and base + each residual on every suite and object split of the
   protocol, all methods on the same episode seeds (paired), into ``OUT/episodes.jsonl``;
3. writes ``OUT/report/`` (markdown and HTML tables, plots, and a filmstrip of the base's worst
   failure next to the residual's recovery on the same episode).

The default protocol is the task's own suites (``Task.suites``; :data:`STANDARD_SUITES` for
pick-and-place) on held-out objects, 100 episodes per cell; ``quick`` is a smoke version that
finishes in a few minutes on a laptop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from residual_bench.eval.episode_tasks import make_tasks
from residual_bench.eval.filmstrip import save_comparison_filmstrip
from residual_bench.eval.report import build_report
from residual_bench.eval.runner import evaluate
from residual_bench.perturb.suite import load_suite, suite_applies, suite_names
from residual_bench.policies.registry import get_base
from residual_bench.registration import ENV_ID
from residual_bench.residual.checkpoint import shipped_residual
from residual_bench.residual.config import load_config
from residual_bench.residual.train import train_residual
from residual_bench.tasks import task_entry

# The suites of the reference task, pick-and-place (``bench run --env ResidualPickPlace-v1``).
STANDARD_SUITES = task_entry(ENV_ID).task.suites
# Measured by `python benchmarks/episode_rates.py` (results/episode_rates.json): episodes a
# second of one worker over the standard suites. A residual episode renders depth and
# segmentation every step for its features, so it is about five times slower.
EPISODES_PER_SECOND = {"base": 2.76, "residual": 0.58}
# The filmstrip's two re-run episodes and the report's figures: 8 s and 6 s measured.
REPORT_SECONDS = 15.0
# results/eval_workers.md: two workers on two cores run 1.87 times as fast as one.
PARALLEL_EFFICIENCY = 0.93
# docs/residuals.md: 300k steps of the shipped SAC config take about 40 minutes on one core.
TRAIN_STEPS_PER_SECOND = 125.0


@dataclass
class Protocol:
    """What ``bench run`` evaluates; every field is a ``bench run`` option."""

    suites: list[str] | None = None  # None: the task's own (``Task.suites``)
    objects: list[str] = field(default_factory=lambda: ["heldout"])
    episodes: int = 100
    seeds: list[int] = field(default_factory=lambda: [0])
    master_seed: int = 0
    train_steps: int | None = None  # None: the residual config's budget
    env_id: str = ENV_ID  # the task: every residual is trained and evaluated on it

    def __post_init__(self) -> None:
        if self.suites is None:
            self.suites = list(task_entry(self.env_id).task.suites)

    @classmethod
    def quick(cls, env_id: str = ENV_ID) -> Protocol:
        """A smoke run: the task's nominal and mixed suites (its first and last), 10
        episodes, a 3000-step residual if none is shipped."""
        suites = task_entry(env_id).task.suites
        return cls(suites=[suites[0], suites[-1]], episodes=10, train_steps=3000, env_id=env_id)


@dataclass
class RunPlan:
    """What ``bench run`` will do, and about how long it will take (from measured rates)."""

    base: str
    algo: str
    protocol: Protocol
    residuals: dict[int, str]  # training seed -> where its residual comes from
    train_steps: dict[int, int]  # training seeds still to train -> their steps
    workers: int

    @property
    def cells(self) -> int:
        return len(self.protocol.suites) * len(self.protocol.objects)

    @property
    def base_episodes(self) -> int:
        return self.cells * self.protocol.episodes

    @property
    def residual_episodes(self) -> int:
        return self.base_episodes * len(self.residuals)

    def estimated_seconds(self) -> dict[str, float]:
        """Seconds of each phase: training, base episodes, residual episodes."""
        speed = 1 + (self.workers - 1) * PARALLEL_EFFICIENCY
        return {
            "train": sum(self.train_steps.values()) / TRAIN_STEPS_PER_SECOND,
            "base": self.base_episodes / (EPISODES_PER_SECOND["base"] * speed),
            "residual": self.residual_episodes / (EPISODES_PER_SECOND["residual"] * speed),
            "report": REPORT_SECONDS,
        }

    def describe(self) -> str:
        """The plan as a few lines for the terminal."""
        p = self.protocol
        times = self.estimated_seconds()
        task = f" on {p.env_id}" if p.env_id != ENV_ID else ""
        lines = [
            f"bench run: {self.base} + {self.algo}{task}, {len(p.suites)} suite(s) "
            f"({', '.join(p.suites)}) x {', '.join(p.objects)} objects, "
            f"{p.episodes} paired episodes per cell, master seed {p.master_seed}",
        ]
        for seed, source in self.residuals.items():
            lines.append(f"  residual of training seed {seed}: {source}")
        if self.train_steps:
            lines.append(f"  training: about {format_minutes(times['train'])}")
        lines.append(
            f"  base alone: {self.base_episodes} episodes, about {format_minutes(times['base'])}; "
            f"base + residual: {self.residual_episodes} episodes, about "
            f"{format_minutes(times['residual'])} ({self.workers} worker(s))"
        )
        lines.append(f"  estimated total: about {format_minutes(sum(times.values()))}")
        return "\n".join(lines)


def format_minutes(seconds: float) -> str:
    """An estimate for the terminal: minutes from 90 s on, else seconds."""
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def plan_benchmark(
    base: str,
    algo: str,
    out: str | Path,
    protocol: Protocol | None = None,
    *,
    workers: int | None = None,
    use_shipped: bool = True,
) -> RunPlan:
    """What :func:`run_benchmark` will do with the same arguments, without doing it."""
    protocol = protocol or Protocol()
    task_entry(protocol.env_id)  # an unknown id is refused here, naming the registered ones
    out = Path(out)
    config_steps = int(load_config(algo).train.steps)
    residuals, train_steps = {}, {}
    for seed in protocol.seeds:
        shipped = shipped_residual(base, algo, seed, protocol.env_id) if use_shipped else None
        final = out / "train" / f"seed{seed}" / "residual"
        if shipped is not None:
            residuals[seed] = f"{shipped} (shipped with the package)"
        elif (final / "residual.json").is_file():
            residuals[seed] = f"{final} (trained earlier)"
        else:
            steps = protocol.train_steps or config_steps
            residuals[seed] = f"trained now into {final.parent} ({steps} steps)"
            train_steps[seed] = steps
    workers = workers if workers is not None else (os.cpu_count() or 1)
    return RunPlan(base, algo, protocol, residuals, train_steps, max(1, workers))


def closing_table(summary: dict[str, Any]) -> str:
    """Success of the base alone and with its residual (pooled over training seeds), per
    cell, from a run's ``summary.json``: the lines ``bench run`` ends with. Held-out suites
    (disturbances no training suite contains) are marked, and when both kinds were run the
    table ends with the mean gain over each kind."""
    rows: dict[tuple[str, str], dict[str, list[int]]] = {}
    for cell in summary["cells"]:
        method = "base" if cell["residual"] is None else "residual"
        counts = rows.setdefault((cell["suite"], cell["objects"]), {}).setdefault(method, [0, 0])
        counts[0] += cell["success_rate"]["k"]
        counts[1] += cell["success_rate"]["n"]
    held_out = set(suite_names("heldout"))
    lines = [f"{'suite':<30} {'objects':<8} {'base':>16} {'+ residual':>16} {'gain':>7}"]
    gains: dict[bool, list[float]] = {False: [], True: []}
    for (suite, objects), methods in sorted(rows.items()):
        base, residual = methods.get("base"), methods.get("residual")
        cells = [
            f"{k / n:6.1%} ({k}/{n})" if n else "-" for k, n in (base or (0, 0), residual or (0, 0))
        ]
        gain = ""
        if base and residual:
            difference = residual[0] / residual[1] - base[0] / base[1]
            gains[suite in held_out].append(difference)
            gain = f"{difference:+.1%}"
        name = f"{suite} (held out)" if suite in held_out else suite
        lines.append(f"{name:<30} {objects:<8} {cells[0]:>16} {cells[1]:>16} {gain:>7}")
    if gains[True] and gains[False]:
        for kind, values in (("training suites", gains[False]), ("held-out suites", gains[True])):
            lines.append(f"mean gain on {kind}: {sum(values) / len(values):+.1%}")
    return "\n".join(lines)


def resolve_residuals(
    base: str,
    algo: str,
    protocol: Protocol,
    out: Path,
    progress: bool = True,
    use_shipped: bool = True,
    resume: bool = False,
) -> list[str | Path]:
    """One trained residual per training seed of the protocol (shipped, found or trained),
    all on the protocol's task: ``shipped:NAME`` references or directories. ``resume``
    continues interrupted training runs of this user in ``out/train``."""
    paths: list[str | Path] = []
    for seed in protocol.seeds:
        shipped = shipped_residual(base, algo, seed, protocol.env_id) if use_shipped else None
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
                task=protocol.env_id,
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
    """Run the protocol for ``base`` + residual ``algo`` on the protocol's task; returns the
    report's markdown path.

    Raises:
        ValueError: unknown task, base, residual algorithm, suite or executor; a residual
            found in ``out/train`` that was trained on another task.
        FileExistsError: ``out`` holds an earlier evaluation and ``resume`` is False.
    """
    protocol = protocol or Protocol()
    task_entry(protocol.env_id)
    get_base(base)
    load_config(algo)
    out = Path(out)
    records_path = out / "episodes.jsonl"
    if records_path.exists() and not resume:
        raise FileExistsError(
            f"{records_path} already exists; pass --resume to continue that run, or choose "
            "another --out"
        )
    # Validate the whole grid before the (long) training starts.
    grid = (protocol.suites, protocol.objects, protocol.episodes)
    make_tasks(base, [None], *grid, env_id=protocol.env_id)
    residuals = resolve_residuals(base, algo, protocol, out, progress, use_shipped, resume)
    methods = [None, *[str(p) for p in residuals]]
    tasks = make_tasks(base, methods, *grid, protocol.master_seed, protocol.env_id)
    # One bar per phase: residual episodes run five times slower than the base's, so one bar
    # over both would show a wrong time left.
    phases = (
        ("base alone", [t for t in tasks if t.residual is None]),
        ("base + residual", [t for t in tasks if t.residual is not None]),
    )
    for number, (label, phase) in enumerate(phases):
        evaluate(
            phase,
            out,
            executor=executor,
            workers=workers,
            resume=resume or number > 0,
            progress=progress,
            desc=label,
        )
    if filmstrip:
        save_comparison_filmstrip(out, out / "filmstrip.png")
    task = f" on {protocol.env_id}" if protocol.env_id != ENV_ID else ""
    return build_report([out], out / "report", title=f"residual-bench: {base} + {algo}{task}")


def heldout_suites(already: Sequence[str] = (), env_id: str = ENV_ID) -> list[str]:
    """The held-out perturbation suites not in ``already`` that apply to task ``env_id``:
    what ``bench run --heldout`` adds, so a residual's gain on disturbances it never saw is
    reported beside the others.

    Raises:
        ValueError: no held-out suite applies to the task (``--heldout`` would add nothing).
    """
    task = task_entry(env_id).task
    applicable = [
        name
        for name in suite_names("heldout")
        if suite_applies(load_suite(name), task.phases, task.perturbation_kinds)
    ]
    if not applicable:
        raise ValueError(f"--heldout: no held-out suite applies to {env_id}")
    return [name for name in applicable if name not in already]


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
