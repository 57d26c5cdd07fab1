"""A sweep file: the grid of training runs and the evaluation every one of them gets.

A sweep is a YAML file (shipped ones under ``baselines/sweeps/``)::

    name: residual-comparison
    grid:                        # every combination is one cell: train, then evaluate
                                 # (a list of such mappings: the union of their cells)
      env_ids: [ResidualPickPlace-v1]
      bases: [scripted, bc]
      methods: [sac]             # residual configs or fine-tuning baselines (baselines/)
      features: [objects]        # residual methods only; omit for each config's own
      seeds: [0, 1, 2]
    steps: null                  # environment steps per run; null: each config's budget
    base_alone: true             # also evaluate every base alone (the paired comparison)
    eval: {suites: [nominal, mixed], objects: [heldout], episodes: 100, master_seed: 0}
    resources: {cpus_per_run: 1, retries: 1}

Every name is checked before anything runs; an error names the file and the field.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from residual_bench.config_fields import Section, build_section, positive
from residual_bench.env_spec import SpecError, read_yaml, spec_dir
from residual_bench.finetune.config import config_path, is_finetune_config
from residual_bench.perturb import load_suite
from residual_bench.policies.registry import get_base
from residual_bench.registration import ENV_ID
from residual_bench.residual.config import load_config
from residual_bench.residual.features import check_features
from residual_bench.sim.objects import OBJECT_SPLITS
from residual_bench.tasks import task_ids

MAX_CELLS = 1000
"""More cells than any study here runs (the largest shipped grid has 24): a typo in a range
should be an error, not a month of compute."""
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Names that become folder names: plain, short, no path separators."""
TOP_LEVEL = ("name", "description", "grid", "steps", "base_alone", "eval", "resources")
GRID_AXES = ("env_ids", "bases", "methods", "features", "seeds")


@dataclass(frozen=True)
class EvalProtocol(Section):
    """The evaluation every cell gets: the same episodes for every cell (paired)."""

    suites: list[str] = dataclasses.field(default_factory=lambda: ["nominal", "mixed"])
    """Perturbation suites (``bench list``)."""
    objects: list[str] = dataclasses.field(default_factory=lambda: ["heldout"])
    """Object splits."""
    episodes: int = positive(100)
    """Episodes per (suite, object split)."""
    master_seed: int = 0
    """Master seed of the episode seeds."""


@dataclass(frozen=True)
class Resources(Section):
    """What Ray reserves for each cell, and how often it re-runs a cell whose worker died."""

    cpus_per_run: float = positive(1.0)
    """CPUs per cell (a run trains on one torch thread)."""
    retries: int = 1
    """Re-runs of a cell whose worker process died (a cell that raises is not re-run: it is
    reported with its log)."""


@dataclass(frozen=True)
class Cell:
    """One training run and its evaluation (``method`` None: the base alone)."""

    env_id: str
    base: str
    method: str | None = None
    features: str | None = None
    seed: int | None = None

    @property
    def kind(self) -> str:
        """``base`` (no training), ``residual`` or ``finetune``."""
        if self.method is None:
            return "base"
        return "finetune" if is_finetune_config(self.method) else "residual"

    @property
    def name(self) -> str:
        """The cell's folder name: its coordinates, joined."""
        parts = [self.env_id, self.base, Path(self.method).stem if self.method else "base-alone"]
        if self.features is not None:
            parts.append(self.features)
        if self.seed is not None:
            parts.append(f"seed{self.seed}")
        return "__".join(parts)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file."""

    name: str
    cells: list[Cell]
    eval: EvalProtocol
    resources: Resources
    steps: int | None = None
    description: str = ""
    source: str = ""


def sweep_path(name_or_path: str | Path) -> Path:
    """The YAML file of a shipped sweep name (``baselines/sweeps/NAME.yaml``) or a path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return path
    return spec_dir("baselines") / "sweeps" / f"{name_or_path}.yaml"


def sweep_names() -> list[str]:
    """Names of the shipped sweeps."""
    return sorted(p.stem for p in (spec_dir("baselines") / "sweeps").glob("*.yaml"))


def load_sweep(name_or_path: str | Path) -> SweepSpec:
    """Read and check a sweep file; every cell's names are resolved now.

    Raises:
        SpecError: naming the file and the field that is wrong.
        FileNotFoundError: no such sweep file.
    """
    path = sweep_path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no sweep {str(name_or_path)!r}: not a file, and not a shipped sweep "
            f"({', '.join(sweep_names())})"
        )
    where = str(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping with {', '.join(TOP_LEVEL)}")
    unknown = sorted(set(map(str, data)) - set(TOP_LEVEL))
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {unknown}; valid: {', '.join(TOP_LEVEL)}")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not NAME.match(name):
        raise SpecError(f"{where}: name must be a plain name (letters, digits, . _ -)")
    steps = data.get("steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise SpecError(f"{where}: steps must be a positive integer or null, got {steps!r}")
    base_alone = data.get("base_alone", True)
    if not isinstance(base_alone, bool):
        raise SpecError(f"{where}: base_alone must be true or false, got {base_alone!r}")
    protocol = build_section(EvalProtocol, data.get("eval"), "eval", where)
    _check_protocol(protocol, where)
    resources = build_section(Resources, data.get("resources"), "resources", where)
    cells = _cells(data.get("grid"), base_alone, where)
    description = str(data.get("description", ""))[:500]
    return SweepSpec(name, cells, protocol, resources, steps, description, where)


def _axis(grid: dict, key: str, where: str, default: list | None = None) -> list:
    values = grid.get(key, default)
    if values is None:
        raise SpecError(f"{where}: grid.{key} is required")
    if not isinstance(values, list) or not values:
        raise SpecError(f"{where}: grid.{key} must be a non-empty list, got {values!r}")
    if len(values) != len({repr(v) for v in values}):
        raise SpecError(f"{where}: grid.{key} lists a value twice: {values!r}")
    return values


def _cells(grid: Any, base_alone: bool, where: str) -> list[Cell]:
    """The cells of one grid, or of a list of grids (their union, in order)."""
    grids = grid if isinstance(grid, list) else [grid]
    if not grids or len(grids) > 20:
        raise SpecError(f"{where}: grid must be a mapping or a list of 1 to 20 of them")
    cells: list[Cell] = []
    for index, one in enumerate(grids):
        at = f"{where}: grid[{index}]" if isinstance(grid, list) else where
        cells += [c for c in _grid_cells(one, base_alone, at) if c not in cells]
        if len(cells) > MAX_CELLS:
            raise SpecError(f"{where}: the grid has more than {MAX_CELLS} cells")
    if not cells:
        raise SpecError(f"{where}: the grid has no cell (no methods and base_alone: false)")
    return cells


def _grid_cells(grid: Any, base_alone: bool, where: str) -> list[Cell]:
    if not isinstance(grid, dict):
        raise SpecError(f"{where}: grid must be a mapping of {', '.join(GRID_AXES)}")
    unknown = sorted(set(map(str, grid)) - set(GRID_AXES))
    if unknown:
        raise SpecError(f"{where}: grid: unknown axis {unknown}; valid: {', '.join(GRID_AXES)}")
    env_ids = _axis(grid, "env_ids", where, [ENV_ID])
    bases = _axis(grid, "bases", where)
    methods = _axis(grid, "methods", where) if "methods" in grid else []
    features = _axis(grid, "features", where) if "features" in grid else [None]
    seeds = _axis(grid, "seeds", where, [0])
    for env_id in env_ids:
        if env_id not in task_ids():
            raise SpecError(f"{where}: grid.env_ids: unknown task {env_id!r}; registered: "
                            f"{', '.join(task_ids())}")  # fmt: skip
    for base in bases:
        if not isinstance(base, str) or not NAME.match(base):
            raise SpecError(f"{where}: grid.bases: {base!r} is not a registered base name")
        _named(get_base, base, f"{where}: grid.bases")
    methods = [_method(m, Path(where).parent, where) for m in methods]
    for method in methods:
        if not is_finetune_config(method):
            _named(load_config, method, f"{where}: grid.methods")
    for feature in features:
        if feature is not None:
            _named(check_features, feature, f"{where}: grid.features")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
            raise SpecError(f"{where}: grid.seeds: {seed!r} is not a seed (0 <= seed < 2**31)")
    cells: list[Cell] = []
    if base_alone:
        cells += [Cell(env_id, base) for env_id in env_ids for base in bases]
    for env_id, base, method, feature, seed in itertools.product(
        env_ids, bases, methods, features, seeds
    ):
        finetune = is_finetune_config(method)
        if finetune and env_id != ENV_ID:
            raise SpecError(f"{where}: {method} fine-tunes the bc network of {ENV_ID} only")
        cell = Cell(env_id, base, method, None if finetune else feature, seed)
        if cell not in cells:  # a fine-tuning method has no features axis
            cells.append(cell)
        if len(cells) > MAX_CELLS:
            raise SpecError(f"{where}: the grid has more than {MAX_CELLS} cells")
    return cells


def _method(method: Any, folder: Path, where: str) -> str:
    """A config name under ``baselines/``, or a YAML path relative to the sweep file."""
    if not isinstance(method, str):
        raise SpecError(f"{where}: grid.methods: {method!r} is not a config name or file")
    path = Path(method)
    if path.suffix in (".yaml", ".yml"):
        path = path if path.is_absolute() else folder / path
        if not path.is_file() or not NAME.match(path.stem):
            raise SpecError(f"{where}: grid.methods: no config file {method!r}")
        return str(path)
    if not NAME.match(method) or not config_path(method).is_file():
        raise SpecError(f"{where}: grid.methods: no config {method!r} under baselines/")
    return method


def _named(lookup: Any, name: Any, where: str) -> None:
    """``lookup(name)``, whose error names the valid choices, prefixed with where it came from."""
    try:
        lookup(name)
    except (ValueError, SpecError, FileNotFoundError) as err:
        raise SpecError(f"{where}: {err}") from None


def _check_protocol(protocol: EvalProtocol, where: str) -> None:
    for split in protocol.objects:
        if split not in OBJECT_SPLITS:
            raise SpecError(f"{where}: eval.objects: {split!r} is not one of {OBJECT_SPLITS}")
    for suite in protocol.suites:
        _named(load_suite, suite, f"{where}: eval.suites")
