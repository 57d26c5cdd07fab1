"""``bench run`` over one task or every task: which tasks, with which suites, written where.

:func:`plan_run` makes the one decision between the two: with ``--env ID`` the run is the
protocol of :mod:`residual_bench.protocol` on that task, written into the run folder itself,
exactly as it always was; without it, the run covers every current task in turn, each in
its own sub-folder ``OUT/<task id>/`` laid out (and resumed) as a one-task run, and ends
with one report over all of them, ``OUT/report.md``, whose main table is task x suite.

Over every task, the user's suite list is read for each task: a suite that does not apply to
a task (a drop where nothing is held) is left out of that task, not run as a no-op; for one
task it is refused, as before. A residual algorithm (``sac``) is trained once per task, since
a trained residual is tied to the task it was trained on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from residual_bench.eval.episode_tasks import make_tasks
from residual_bench.eval.report import load_results
from residual_bench.eval.report_tasks import build_task_report, task_suite_table, task_suite_text
from residual_bench.perturb.suite import load_suite, suite_applies, suite_names
from residual_bench.protocol import (
    Protocol,
    RunPlan,
    closing_table,
    format_minutes,
    heldout_suites,
    plan_benchmark,
    run_benchmark,
)
from residual_bench.residual.checkpoint import read_metadata, residual_location, trained_env_id
from residual_bench.residual.config import config_names
from residual_bench.tasks import current_task_ids, task_entry


@dataclass
class ProtocolOptions:
    """The ``bench run`` options that shape each task's protocol; ``None`` (or ``False``)
    keeps the protocol's own default."""

    quick: bool = False
    """Start from :meth:`Protocol.quick`: the task's nominal and mixed suites, 10 episodes."""
    suites: Sequence[str] | None = None
    """Suite names or YAML paths, instead of the task's own suites."""
    heldout: bool = False
    """Add the held-out suites that apply to the task."""
    objects: Sequence[str] | None = None
    """Object splits."""
    episodes: int | None = None
    """Episodes per cell."""
    seeds: Sequence[int] | None = None
    """Training seeds: one residual each."""
    train_steps: int | None = None
    """Training steps of a residual trained by the run."""
    master_seed: int | None = None
    """Master seed of the episode seeds."""

    def protocol(self, env_id: str, only_applicable: bool = False) -> Protocol:
        """The protocol on task ``env_id``. With ``only_applicable`` the suites that do not
        apply to the task are left out (the list is meant for every task); without, they are
        kept, for the run to refuse by name.

        Raises:
            ValueError: an unknown suite; ``heldout`` on a task no held-out suite applies
                to, unless ``only_applicable``.
        """
        protocol = Protocol.quick(env_id) if self.quick else Protocol(env_id=env_id)
        if self.suites:
            protocol.suites = list(self.suites)
        if only_applicable:
            protocol.suites = applicable_suites(protocol.suites, env_id)
        if self.heldout:
            added = (
                applicable_suites(suite_names("heldout"), env_id)
                if only_applicable
                else heldout_suites(protocol.suites, env_id)
            )
            protocol.suites = [*protocol.suites, *(s for s in added if s not in protocol.suites)]
        if self.objects:
            protocol.objects = list(self.objects)
        if self.episodes:
            protocol.episodes = self.episodes
        if self.seeds:
            protocol.seeds = list(self.seeds)
        if self.train_steps:
            protocol.train_steps = self.train_steps
        if self.master_seed is not None:
            protocol.master_seed = self.master_seed
        return protocol


def applicable_suites(suites: Sequence[str], env_id: str) -> list[str]:
    """The suites of ``suites`` that apply to task ``env_id`` (its phases and perturbation
    kinds), in the order given.

    Raises:
        ValueError: an unknown suite name or a malformed suite file (naming the valid ones).
    """
    task = task_entry(env_id).task
    return [
        suite
        for suite in suites
        if suite_applies(load_suite(suite), task.phases, task.perturbation_kinds)
    ]


@dataclass
class TaskRun:
    """One task's part of a run: its plan (protocol, residuals, estimate) and its folder."""

    plan: RunPlan
    out: Path

    @property
    def env_id(self) -> str:
        return self.plan.protocol.env_id


@dataclass
class BenchmarkRun:
    """What ``bench run`` will do: one task's run, or every task's."""

    base: str
    algo: str
    out: Path
    every_task: bool
    """Set by :func:`plan_run` alone: without ``--env``, every task into its own folder."""
    tasks: list[TaskRun]
    left_out: dict[str, list[str]] = field(default_factory=dict)
    """Task -> the suites asked for that do not apply to it (over every task only)."""

    def describe(self) -> str:
        """The plan as lines for the terminal; one task's is the plan of a one-task run."""
        if not self.every_task:
            return self.tasks[0].plan.describe()
        total = sum(sum(t.plan.estimated_seconds().values()) for t in self.tasks)
        lines = [
            f"bench run: {self.base} + {self.algo} on every task ({len(self.tasks)}), each in "
            f"its own folder of {self.out}, then one report over all of them"
        ]
        for number, task in enumerate(self.tasks, 1):
            lines.append(f"[{number}/{len(self.tasks)}] {task.env_id} -> {task.out}")
            plan = task.plan.describe().removeprefix("bench run: ")
            lines += [f"  {line}" for line in plan.splitlines()]
            if self.left_out.get(task.env_id):
                skipped = ", ".join(self.left_out[task.env_id])
                lines.append(f"  left out (they do not apply to the task): {skipped}")
        for env_id, suites in self.left_out.items():
            if env_id not in [task.env_id for task in self.tasks]:
                lines.append(f"{env_id}: none of the suites applies ({', '.join(suites)})")
        lines.append(f"estimated total over every task: about {format_minutes(total)}")
        return "\n".join(lines)

    def closing_text(self) -> str:
        """The table the run ends with: base alone against base + residual per cell (one
        task), or per task and suite (every task)."""
        if not self.every_task:
            return closing_table(json.loads((self.out / "summary.json").read_text()))
        records = [r for task in self.tasks for r in load_results(task.out)]
        return task_suite_text(task_suite_table(records))


def refuse_trained_residual(algo: str) -> None:
    """Refuse a trained residual where every task needs one: it belongs to the one task it
    was trained on, and the library refuses to evaluate it on another.

    Raises:
        ValueError: ``algo`` is a trained residual (a directory or ``shipped:NAME``), not a
            residual algorithm or config.
    """
    if algo in config_names() or Path(algo).suffix in (".yaml", ".yml"):
        return
    if not residual_location(algo).is_dir():
        return  # neither: the config loader names the valid algorithms
    try:
        trained = trained_env_id(read_metadata(algo))
        task, option = f" ({trained})", f"--env {trained}"
    except (OSError, ValueError):
        task, option = "", "--env ID"
    raise ValueError(
        f"--residual: {algo} is a trained residual, which belongs to the one task it was "
        f"trained on{task}; without --env, bench run trains one residual per task from a "
        f"residual algorithm ({', '.join(config_names())}); evaluate this one with "
        f"`bench eval {option} --residual {algo}`"
    )


def plan_run(
    base: str,
    algo: str,
    out: str | Path,
    env_id: str | None,
    options: ProtocolOptions | None = None,
    *,
    workers: int | None = None,
    use_shipped: bool = True,
) -> BenchmarkRun:
    """What ``bench run`` will do: on task ``env_id`` into ``out``, or, when ``env_id`` is
    ``None``, on every current task, each into ``out/<task id>``. Every task's grid is
    checked here, before anything runs.

    Raises:
        ValueError: an unknown task, base, residual algorithm or suite; a suite that does not
            apply to the one task asked for; a trained residual for every task; suites that
            apply to no task.
    """
    out = Path(out)
    options = options or ProtocolOptions()
    every_task = env_id is None
    if every_task:
        refuse_trained_residual(algo)
    env_ids = current_task_ids() if every_task else [task_entry(str(env_id)).env_id]
    tasks, left_out = [], {}
    for task_id in env_ids:
        protocol = options.protocol(task_id, only_applicable=every_task)
        if every_task and options.suites:
            left_out[task_id] = [s for s in options.suites if s not in protocol.suites]
        if not protocol.suites:
            continue  # none of the suites asked for applies to this task
        grid = (protocol.suites, protocol.objects, protocol.episodes, protocol.master_seed)
        make_tasks(base, [None], *grid, env_id=task_id)  # every task's grid, before any runs
        folder = out / task_id if every_task else out
        plan = plan_benchmark(
            base, algo, folder, protocol, workers=workers, use_shipped=use_shipped
        )
        tasks.append(TaskRun(plan, folder))
    if not tasks:
        raise ValueError(f"--suite: none of {', '.join(options.suites or [])} applies to any task")
    return BenchmarkRun(base, algo, out, every_task, tasks, left_out)


def execute_run(
    run: BenchmarkRun,
    *,
    executor: str = "local",
    workers: int | None = None,
    resume: bool = False,
    progress: bool = True,
    use_shipped: bool = True,
    filmstrip: bool = True,
) -> Path:
    """Run what :func:`plan_run` planned, task after task; returns the report's markdown
    path (the task's own, or the one over every task).

    Raises:
        FileExistsError: a task's folder holds an earlier evaluation and ``resume`` is False
            (checked for every task before the first one starts).
    """
    if run.every_task and (run.out / "episodes.jsonl").exists():
        raise FileExistsError(
            f"{run.out} holds the run of one task (episodes.jsonl); a run over every task "
            "writes one folder per task: choose another --out, or pass that run's --env"
        )
    if not resume:
        for task in run.tasks:
            if (task.out / "episodes.jsonl").exists():
                raise FileExistsError(
                    f"{task.out / 'episodes.jsonl'} already exists; pass --resume to continue "
                    "that run, or choose another --out"
                )
    reports = []
    for number, task in enumerate(run.tasks, 1):
        if run.every_task:
            print(f"[{number}/{len(run.tasks)}] {task.env_id} -> {task.out}", flush=True)
        reports.append(
            run_benchmark(
                run.base,
                run.algo,
                task.out,
                task.plan.protocol,
                executor=executor,
                workers=workers,
                resume=resume,
                progress=progress,
                use_shipped=use_shipped,
                filmstrip=filmstrip,
            )
        )
    if not run.every_task:
        return reports[0]
    title = f"residual-bench: {run.base} + {run.algo} on every task"
    return build_task_report([task.out for task in run.tasks], run.out, title=title)
