"""What an evaluation runs: one :class:`EpisodeTask` per episode, the grid of them
(:func:`make_tasks`), and the key that matches an episode's record to its task.

Episode ``i`` of suite ``s`` on split ``o`` uses ``episode_seed(master_seed, s, o, i)`` - the
seeds of :func:`residual_bench.rollout.run_episodes` - whatever the base, residual or training
seed, so every comparison between methods is paired on identical scenes and perturbations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from residual_bench.env_arguments import INSTRUCTION_SPLITS
from residual_bench.episodes.records import EpisodeRecord
from residual_bench.perturb import check_suite_applies, load_suite
from residual_bench.policies.registry import get_base
from residual_bench.registration import ENV_ID
from residual_bench.residual.checkpoint import check_residual_task, read_metadata
from residual_bench.seeding import episode_seed
from residual_bench.tasks import task_entry, task_ids


@dataclass(frozen=True)
class EpisodeTask:
    """One episode to evaluate; everything needed to re-run it anywhere.

    Attributes:
        base: registered base policy name.
        residual: path of a trained residual checkpoint, or None for the base alone.
        suite: suite name (``bench list``) or YAML path.
        suite_name: the suite's own name (keys the episode seed).
        objects: object split, ``train`` or ``heldout``.
        index: episode index within the (suite, objects) cell.
        master_seed: master seed of the evaluation.
        env_id: the environment's registered id (and so its version).
        instructions: the instruction wordings, ``train`` or ``heldout`` (the same scenes in
            wordings no training used).
    """

    base: str
    residual: str | None
    suite: str
    suite_name: str
    objects: str
    index: int
    master_seed: int = 0
    env_id: str = ENV_ID
    instructions: str = "train"

    @property
    def seed(self) -> int:
        """The episode's reset seed."""
        return episode_seed(self.master_seed, self.suite_name, self.objects, self.index)


def make_tasks(
    base: str,
    residuals: Sequence[str | None],
    suites: Sequence[str],
    objects: Sequence[str],
    episodes: int,
    master_seed: int = 0,
    env_id: str = ENV_ID,
    instructions: str = "train",
) -> list[EpisodeTask]:
    """The task grid: every method (base alone = ``None``) x suite x split x episode, on the
    task ``env_id``, its instructions in the ``instructions`` wordings.

    Raises:
        ValueError: an unknown task, base or suite (naming the valid choices), a suite
            that does not apply to the task (a ``SpecError`` naming its kind or phase),
            ``episodes < 1``, a residual trained on another base or another task, or
            held-out wordings of a task that has none.
        FileNotFoundError: a residual path that does not exist.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    task = task_entry(env_id).task  # an unknown id is refused here, naming the registered ones
    if instructions not in INSTRUCTION_SPLITS:
        raise ValueError(
            f"instructions must be one of {', '.join(INSTRUCTION_SPLITS)}, got {instructions!r}"
        )
    if instructions == "heldout" and not task.heldout_templates:
        raise ValueError(f"{env_id} has no held-out instruction wordings")
    get_base(base)
    repeated = sorted({str(r) for r in residuals if list(residuals).count(r) > 1})
    if repeated:
        raise ValueError(f"method(s) listed more than once: {', '.join(repeated)}")
    for residual in residuals:
        if residual is not None:
            meta = read_metadata(residual)
            if meta["base"] != base:
                raise ValueError(
                    f"residual {residual} was trained on base {meta['base']!r}, not {base!r}"
                )
            check_residual_task(residual, meta, env_id)
    names = {}
    for suite in suites:
        loaded = load_suite(suite)
        # Every cell's suite must fit the task before any episode (or training) runs.
        check_suite_applies(loaded, env_id, task.phases, task.perturbation_kinds, str(suite))
        names[suite] = loaded.name
    return [
        EpisodeTask(
            base, residual, suite, names[suite], split, index, master_seed, env_id, instructions
        )
        for residual in residuals
        for suite in suites
        for split in objects
        for index in range(episodes)
    ]


def task_key(
    base: str,
    residual: str | None,
    suite: str,
    objects: str,
    seed: int,
    instructions: str = "train",
) -> tuple:
    """What identifies an episode in a results file (a record or a task)."""
    return (base, residual, suite, objects, int(seed), instructions)


def task_of(record: EpisodeRecord) -> EpisodeTask:
    """The task that re-runs a record written by :func:`evaluate` (same seed, same method)."""
    extra = record.extra
    missing = [k for k in ("master_seed", "episode_index") if k not in extra]
    if missing:
        raise ValueError(f"record of seed {record.seed} lacks {missing}: not from `bench eval`")
    if record.env_id not in task_ids():
        raise ValueError(f"record of seed {record.seed}: unknown env_id {record.env_id!r}")
    return EpisodeTask(
        record.base,
        extra.get("residual_path"),
        extra.get("suite_source", record.suite),
        record.suite,
        record.objects,
        int(extra["episode_index"]),
        int(extra["master_seed"]),
        record.env_id,  # an episode of an earlier version re-runs in that version
        extra.get("instructions", "train"),
    )


def record_key(record: EpisodeRecord) -> tuple:
    """:func:`task_key` of a record (its residual is the checkpoint path it was run with)."""
    residual_path = record.extra.get("residual_path")
    instructions = record.extra.get("instructions", "train")
    return task_key(
        record.base, residual_path, record.suite, record.objects, record.seed, instructions
    )
