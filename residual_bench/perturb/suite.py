"""Perturbation suites: declarative YAML specs under ``envs/suites/``.

A suite lists perturbation entries; each entry says what kind, when (a task phase or a time
window, plus a random delay), how often and how strong. Example (``envs/suites/poke.yaml``)::

    name: poke
    description: one push on the target object while the robot reaches for it or closes on it
    split: train                              # or heldout; train when left out
    perturbations:
      - type: poke
        trigger: {phase: [approach, grasp]}   # one of these, drawn per episode
        delay: [0.0, 0.3]                     # seconds after the phase starts
        count: [1, 1]                         # events per episode from this entry
        speed: [0.3, 0.6]                     # velocity change it gives the object, m/s

Fields a kind does not set keep the defaults of its class in :mod:`.events`. A malformed
suite raises :class:`~residual_bench.env_spec.SpecError` naming the file and the field.

``split`` says whether residual training may see the suite's disturbances (``train``) or
whether they are kept back to measure how a residual's reflex generalises (``heldout``);
``envs/suites/README.md`` lists what makes each held-out suite unlike every training one. The
split is a label on the suite, not part of what it draws: it is left out of the hashed
content (``dataclasses.asdict`` of a :class:`Suite`), so records keep their ``env_spec_hash``
whatever split their suite is filed under.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from residual_bench.env_spec import (
    SpecError,
    excerpt,
    is_finite_number,
    is_number,
    number_text_hint,
    quote,
    read_yaml,
    spec_dir,
)
from residual_bench.perturb.events import PERTURBATIONS

# The pick-and-place phases; an entry without a trigger fires in the first three. Each task
# declares its own phases (``Task.phases``): a suite names them freely here and is checked
# against the task it is applied to (:func:`check_suite_applies`).
PHASES = ("approach", "grasp", "transport", "done")
PHASE_NAME = re.compile(r"[a-z][a-z0-9_]*")
# ``train``: residual training may see these disturbances; ``heldout``: kept back for
# evaluation (a suite that leaves ``split`` out is a training suite).
SPLITS = ("train", "heldout")
# Simulated seconds within the longest episode a scene allows (``task.episode_seconds``).
MAX_SECONDS = 120.0
# A handful of events per episode, all entries together: each is a full disturbance of the
# task (the shipped suites have at most 4).
MAX_EVENTS = 10
MAX_ENTRIES = 10
# The fields every entry has besides its kind's own (``events.py`` bounds those), and the
# bounds of their numbers.
ENTRY_BOUNDS: dict[str, tuple[float, float]] = {
    "trigger.time": (0.0, MAX_SECONDS),  # s since the episode started
    "delay": (0.0, MAX_SECONDS),  # s after the trigger
    "count": (0, MAX_EVENTS),  # events from this entry
    "gap": (0.0, MAX_SECONDS),  # s between this entry's events
    "probability": (0.0, 1.0),  # that the entry fires at all in an episode
}
ENTRY_FIELDS = {"type", "trigger", "delay", "count", "gap", "probability"}
# A suite's name keys episode seeds and is written in every record; its description is one
# line of ``bench list``.
MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 300


@dataclass(frozen=True)
class SuiteEntry:
    """One line of a suite: a perturbation kind with its trigger rule and parameters."""

    type: str
    phases: tuple[str, ...] | None  # trigger on entering one of these phases...
    time: tuple[float, float] | None  # ...or at a simulated time drawn from this window
    delay: tuple[float, float]
    count: tuple[int, int]
    gap: float
    probability: float
    params: dict[str, Any]


@dataclass(frozen=True)
class Suite:
    """A named set of perturbation entries that residual training may see."""

    #: ``train`` or ``heldout`` (:data:`SPLITS`). A class variable, not a field: the fields
    #: are the suite's hashed content, and the split does not change what a seed draws.
    split: ClassVar[str] = "train"

    name: str
    description: str
    entries: tuple[SuiteEntry, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class HeldOutSuite(Suite):
    """A suite whose disturbances no training suite contains (``split: heldout``)."""

    split: ClassVar[str] = "heldout"


SUITE_CLASSES: dict[str, type[Suite]] = {cls.split: cls for cls in (Suite, HeldOutSuite)}


def suite_names(split: str | None = None) -> list[str]:
    """Names of the suites shipped under ``envs/suites/``, only those of ``split`` if given."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    names = sorted(p.stem for p in (spec_dir() / "suites").glob("*.yaml"))
    if split is None:
        return names
    return [name for name in names if load_suite(name).split == split]


def load_suite(suite: str | Path | dict | Suite | None) -> Suite:
    """A suite by name, YAML path or dict (``None`` is the unperturbed ``nominal`` suite)."""
    if isinstance(suite, Suite):
        return suite
    if suite is None:
        suite = "nominal"
    if isinstance(suite, dict):
        return parse_suite(suite, "suite")
    path = Path(suite)
    if path.suffix not in (".yaml", ".yml"):
        path = spec_dir() / "suites" / f"{suite}.yaml"
        if not path.is_file():
            raise ValueError(
                f"unknown suite {str(suite)!r}; shipped suites: {', '.join(suite_names())} "
                "(or pass a path to a .yaml file)"
            )
    return parse_suite(read_yaml(path), str(path))


def _range(value: Any, where: str, bounds: tuple[float, float], integer: bool = False) -> tuple:
    """A ``[low, high]`` range (or one number) inside ``bounds``, finite, low <= high."""
    if is_number(value):
        value = [value, value]
    ok = isinstance(value, list) and len(value) == 2 and all(is_number(v) for v in value)
    if not ok:
        hint = number_text_hint(value)
        raise SpecError(f"{where}: expected a number or [low, high], got {quote(value)}{hint}")
    if not all(is_finite_number(v) for v in value):
        raise SpecError(f"{where}: expected finite numbers, got {quote(value)}")
    low, high = bounds
    if value[0] > value[1] or value[0] < low or value[1] > high:
        raise SpecError(f"{where}: expected {low:g} <= low <= high <= {high:g}, got {quote(value)}")
    if integer and any(int(v) != v for v in value):
        raise SpecError(f"{where}: expected whole numbers, got {quote(value)}")
    return (int(value[0]), int(value[1])) if integer else (float(value[0]), float(value[1]))


def _number(value: Any, where: str, bounds: tuple[float, float]) -> float:
    """One finite number inside ``bounds``."""
    low, high = bounds
    if not is_number(value) or not low <= value <= high:  # NaN fails both comparisons
        hint = number_text_hint(value)
        raise SpecError(
            f"{where}: expected a number in [{low:g}, {high:g}], got {quote(value)}{hint}"
        )
    return float(value)


def _entry(raw: Any, where: str) -> SuiteEntry:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping, got {quote(raw)}")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in PERTURBATIONS:
        raise SpecError(f"{where}.type: expected one of {sorted(PERTURBATIONS)}, got {quote(kind)}")
    cls = PERTURBATIONS[kind]
    for key in raw:
        if key not in ENTRY_FIELDS and key not in cls.fields:
            valid = ", ".join(sorted(ENTRY_FIELDS | set(cls.fields)))
            raise SpecError(
                f"{where}.{excerpt(str(key))}: unknown field for a {kind}; valid fields: {valid}"
            )
    trigger = raw.get("trigger", {"phase": list(PHASES[:3])})
    if not isinstance(trigger, dict) or len(trigger) != 1 or not {"phase", "time"} >= set(trigger):
        raise SpecError(
            f"{where}.trigger: expected {{phase: NAME or [NAMES]}} or "
            f"{{time: [low, high]}}, got {quote(trigger)}"
        )
    phases, time = None, None
    if "phase" in trigger:
        phases = trigger["phase"] if isinstance(trigger["phase"], list) else [trigger["phase"]]
        bad = [p for p in phases if not isinstance(p, str) or not PHASE_NAME.fullmatch(p)]
        if bad or not phases:
            raise SpecError(
                f"{where}.trigger.phase: expected phase names (lower-case words, e.g. "
                f"{', '.join(PHASES)}), got {quote(trigger['phase'])}"
            )
        phases = tuple(phases)
    else:
        time = _range(trigger["time"], f"{where}.trigger.time", ENTRY_BOUNDS["trigger.time"])
    params = {}
    for key, default in cls.fields.items():
        value = raw.get(key, default)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise SpecError(f"{where}.{key}: expected a string, got {quote(value)}")
            params[key] = value
        else:
            params[key] = list(_range(value, f"{where}.{key}", cls.bounds[key]))
    if kind == "slide" and params["mode"] not in ("displace", "kick"):
        mode = quote(params["mode"])
        raise SpecError(f"{where}.mode: expected displace or kick, got {mode}")
    if kind == "drop" and params["mode"] not in ("release", "from_height"):
        mode = quote(params["mode"])
        raise SpecError(f"{where}.mode: expected release or from_height, got {mode}")
    return SuiteEntry(
        type=kind,
        phases=phases,
        time=time,
        delay=_range(raw.get("delay", 0.0), f"{where}.delay", ENTRY_BOUNDS["delay"]),
        count=_range(raw.get("count", 1), f"{where}.count", ENTRY_BOUNDS["count"], integer=True),
        gap=_number(raw.get("gap", 1.0), f"{where}.gap", ENTRY_BOUNDS["gap"]),
        probability=_number(
            raw.get("probability", 1.0), f"{where}.probability", ENTRY_BOUNDS["probability"]
        ),
        params=params,
    )


def parse_suite(raw: dict[str, Any], origin: str) -> Suite:
    """Validate a suite mapping; errors name ``origin`` and the field."""
    for key in raw:
        if key not in ("name", "description", "split", "perturbations"):
            raise SpecError(
                f"{origin}: {excerpt(str(key))}: unknown field; "
                "valid fields: description, name, perturbations, split"
            )
    name = raw.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS or not name.isprintable():
        raise SpecError(
            f"{origin}: name: expected one line of 1 to {MAX_NAME_CHARS} characters, "
            f"got {quote(name)}"
        )
    description = raw.get("description", "")
    description = "" if description is None else description  # ``description:`` left empty
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS:
        raise SpecError(
            f"{origin}: description: expected a string of at most {MAX_DESCRIPTION_CHARS} "
            f"characters, got {quote(description)}"
        )
    split = raw.get("split", Suite.split)
    if not isinstance(split, str) or split not in SPLITS:
        raise SpecError(f"{origin}: split: expected one of {', '.join(SPLITS)}, got {quote(split)}")
    entries = raw.get("perturbations") or []
    if not isinstance(entries, list):
        raise SpecError(f"{origin}: perturbations: expected a list, got {quote(entries)}")
    if len(entries) > MAX_ENTRIES:
        raise SpecError(f"{origin}: perturbations: {len(entries)} entries, at most {MAX_ENTRIES}")
    try:
        parsed = tuple(_entry(e, f"perturbations[{i}]") for i, e in enumerate(entries))
    except SpecError as exc:
        raise SpecError(f"{origin}: {exc}") from None
    events = sum(entry.count[1] for entry in parsed)
    if events > MAX_EVENTS:
        raise SpecError(
            f"{origin}: perturbations: up to {events} events per episode (the sum of the "
            f"entries' highest counts), at most {MAX_EVENTS}"
        )
    return SUITE_CLASSES[split](name=name, description=description, entries=parsed)


def check_suite_applies(
    suite: Suite,
    task: str,
    phases: tuple[str, ...],
    kinds: Collection[str] | None = None,
    origin: str | None = None,
) -> None:
    """Refuse a suite that a task cannot host, rather than let an entry silently do nothing.

    Args:
        suite: the parsed suite.
        task: the task's name for the message (its gymnasium id).
        phases: the task's phases (``Task.phases``); every phase trigger must name one.
        kinds: the perturbation kinds that mean something for the task
            (``Task.perturbation_kinds``); ``None`` accepts every kind.
        origin: where the suite came from (a file or a shipped name), for the message.

    Raises:
        SpecError: naming the suite, the entry, the kind or phase and the task.
    """
    where = f"suite {suite.name!r}" + (f" ({origin})" if origin and origin != suite.name else "")
    for i, entry in enumerate(suite.entries):
        if kinds is not None and entry.type not in kinds:
            raise SpecError(
                f"{where}: perturbations[{i}].type: a {entry.type} does not apply to {task}; "
                f"the kinds it takes: {', '.join(kinds) or 'none'}"
            )
        missing = [p for p in entry.phases or () if p not in phases]
        if missing:
            raise SpecError(
                f"{where}: perturbations[{i}].trigger.phase: {', '.join(map(repr, missing))} "
                f"is not a phase of {task}; its phases: {', '.join(phases)} (an entry without "
                f"a trigger fires in {', '.join(PHASES[:3])})"
            )


def suite_applies(
    suite: Suite, phases: tuple[str, ...], kinds: Collection[str] | None = None
) -> bool:
    """Whether :func:`check_suite_applies` accepts ``suite`` on a task with ``phases`` and
    perturbation ``kinds``: to pick the shipped suites that fit a task."""
    try:
        check_suite_applies(suite, "", phases, kinds)
    except SpecError:
        return False
    return True
