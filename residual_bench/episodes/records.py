"""Per-episode evaluation records and their append-only JSONL storage.

One :class:`EpisodeRecord` is written per evaluated episode, one JSON object per line.
All times are simulated seconds since ``reset`` (never wall-clock time).

``EpisodeRecord`` fields:

- ``schema_version``: layout version of the record, must equal :data:`SCHEMA_VERSION`.
- ``env_id``: registered environment id.
- ``env_spec_hash``: hash of everything that shapes the episodes a seed gives: the resolved
  scene spec, the perturbation suite and the control rate (``env.unwrapped.env_spec_hash``).
- ``seed``: seed passed to ``reset`` (``None`` only for an unseeded, non-reproducible reset).
- ``suite``: perturbation suite name.
- ``objects``: object split the target was drawn from (e.g. ``"train"`` / ``"heldout"``).
- ``base``: name of the frozen base policy.
- ``residual``: name of the residual policy, ``None`` for the base policy alone.
- ``instruction``: language instruction of the episode.
- ``target_object``: name of the object to be placed.
- ``success``: task condition holds at the end of the episode.
- ``first_success_time``: first time the task condition held, ``None`` if it never did.
- ``episode_time``: simulated duration of the episode.
- ``n_steps``: number of control steps.
- ``events``: perturbation events, in firing order, with their recovery and reaction results.
- ``mean_abs_residual_ratio``: mean of ``|alpha * tanh(r)| / alpha`` (``None`` without residual).
- ``action_jerk``: mean L2 norm of the second difference of executed actions / dt^2.
- ``action_rate``: mean L2 norm of the first difference of executed actions / dt.
- ``final_state_hash``: hash of the final simulator state, for determinism checks.
- ``extra``: free-form JSON-serialisable metadata.

Exact metric definitions are in ``docs/metrics.md``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import stat
import types
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from residual_bench.run_directory import open_run_file

SCHEMA_VERSION = 1
MAX_RECORDS_BYTES = 1 << 30
"""A results file read whole is refused beyond 1 GiB (about a million episodes): a run folder
from elsewhere must not make a report allocate without bound."""


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples (recursively) to plain JSON types.

    :param value: arbitrary nested value from an environment ``info`` dict.
    :return: the same value built only from dict, list, str, int, float, bool and None.
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_fields(cls: type, data: Mapping[str, Any], where: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    # Defaulted fields are required too, so that a record from another writer version is
    # never silently completed with defaults; only fields added to the schema after records
    # of it were published may be absent (those older records read them as ``None``).
    missing = sorted(names - set(data) - set(getattr(cls, "ADDED_FIELDS", ())))
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")


def _check_type(where: str, name: str, value: Any, kinds: tuple[type, ...], optional: bool) -> Any:
    if value is None and optional:
        return None
    # JSON writes 2.0 as 2.0 but hand-written files and env info may hold ints; bool is an
    # int subclass, so it must be excluded explicitly from numeric fields.
    accepted = kinds + (int,) if float in kinds else kinds
    ok = isinstance(value, accepted) and not (isinstance(value, bool) and bool not in kinds)
    if not ok:
        expected = " or ".join(k.__name__ for k in kinds) + (" or None" if optional else "")
        raise ValueError(f"{where}: field {name!r} must be {expected}, got {value!r}")
    if float in kinds and isinstance(value, int):
        return float(value)
    return value


@functools.cache
def _field_kinds(cls: type) -> dict[str, tuple[tuple[type, ...], bool]]:
    """Map each field to (accepted runtime types, whether None is allowed), from annotations."""
    kinds = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = typing.get_origin(hint) is types.UnionType and len(args) == 1
        base = args[0] if optional else hint
        kinds[name] = ((typing.get_origin(base) or base,), optional)
    return kinds


@dataclass
class PerturbationEvent:
    """One perturbation that fired during an episode.

    :param type: event type (``"poke"``, ``"slide"``, ``"drop"``, ``"latency"``, ...).
    :param trigger: what fired it (e.g. ``"time"``, ``"grasp"``, ``"transport"``).
    :param time: simulated time at which it fired.
    :param magnitude: type-specific strength (impulse, displacement, stall length, ...).
    :param target: name of the perturbed body or subsystem.
    :param duration: how long the disturbance acts (the stall for ``latency``, the force for
        ``poke``, the forced opening for a ``drop`` release; 0 when instantaneous). Only
        ``latency`` uses it in the recovery metric.
    :param params: further type-specific parameters.
    :param recovery_time: seconds until recovery (see ``docs/metrics.md``), ``None`` if never.
    :param grasped_at_event: whether the target was grasped just before the event.
    :param reaction_time: seconds until the first executed command that turns towards undoing
        the event (see ``docs/metrics.md``), ``None`` if none did or the event has no rule.
    :param reaction_rule: the rule that dated the reaction (``"towards_displacement"``,
        ``"opens_gripper"``), ``None`` where reaction time is undefined for the event, and in
        records written before reaction times were recorded.
    """

    ADDED_FIELDS: ClassVar[tuple[str, ...]] = ("reaction_time", "reaction_rule")
    """Fields added to schema 1 after records of it were committed: absent there, ``None``."""

    type: str
    trigger: str
    time: float
    magnitude: float
    target: str
    duration: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    recovery_time: float | None = None
    grasped_at_event: bool | None = None
    reaction_time: float | None = None
    reaction_rule: str | None = None

    @classmethod
    def from_info(cls, info_event: Mapping[str, Any]) -> PerturbationEvent:
        """Build an event from one entry of ``info["new_events"]``.

        numpy values are converted to plain types; ``duration`` and ``params`` may be omitted
        and the recovery and reaction fields are filled in later by the recorder.
        """
        data = {"duration": 0.0, "params": {}, "recovery_time": None, "grasped_at_event": None}
        data.update({k: to_jsonable(v) for k, v in info_event.items()})
        return cls.from_dict(data, where="info event")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict; inverse of :meth:`from_dict`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "event") -> PerturbationEvent:
        """Build an event, raising ``ValueError`` naming any unknown, missing or mistyped field."""
        _check_fields(cls, data, where)
        values = {
            name: _check_type(where, name, data[name], *_field_kinds(cls)[name]) for name in data
        }
        if values.get("reaction_time") is not None and values["reaction_time"] < 0.0:
            raise ValueError(
                f"{where}: field 'reaction_time' must be >= 0, got {values['reaction_time']}"
            )
        if values.get("duration", 0.0) < 0.0:
            raise ValueError(f"{where}: field 'duration' must be >= 0, got {values['duration']}")
        return cls(**values)


@dataclass(kw_only=True)
class EpisodeRecord:
    """Outcome of one evaluated episode; the fields are documented in the module docstring."""

    schema_version: int = SCHEMA_VERSION
    env_id: str
    env_spec_hash: str
    seed: int | None
    suite: str
    objects: str
    base: str
    residual: str | None
    instruction: str
    target_object: str
    success: bool
    first_success_time: float | None
    episode_time: float
    n_steps: int
    events: list[PerturbationEvent] = field(default_factory=list)
    mean_abs_residual_ratio: float | None = None
    action_jerk: float | None = None
    action_rate: float | None = None
    final_state_hash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def perturbed(self) -> bool:
        """Whether at least one perturbation event fired."""
        return len(self.events) > 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict; inverse of :meth:`from_dict`."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["events"] = [e.to_dict() for e in self.events]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "record") -> EpisodeRecord:
        """Build a record, raising ``ValueError`` naming any bad field or schema version.

        Every field is required, including the defaulted ones.
        """
        if "schema_version" in data and data["schema_version"] != SCHEMA_VERSION:
            raise ValueError(
                f"{where}: field 'schema_version' is {data['schema_version']!r}, "
                f"this reader supports {SCHEMA_VERSION}"
            )
        _check_fields(cls, data, where)
        values = {
            name: _check_type(where, name, data[name], *_field_kinds(cls)[name]) for name in data
        }
        events = []
        for i, event in enumerate(values["events"]):
            here = f"{where}: events[{i}]"
            _check_type(here, "event", event, (dict,), False)
            events.append(PerturbationEvent.from_dict(event, where=here))
        values["events"] = events
        return cls(**values)


def append_jsonl(path: str | os.PathLike[str], record: EpisodeRecord) -> None:
    """Append one record as a single line, then flush and fsync.

    Existing complete lines are never modified. A final line without its newline is the
    remainder of a writer killed mid-write: a whole record (killed between the record and its
    newline, and already counted as done by :func:`read_jsonl`) gets its newline; anything
    else is dropped with a warning. Either way the new record starts a line of its own. One
    writer per file is assumed (the results directory's lock).

    :param path: JSONL file, created if absent.
    :param record: the record to append.
    :raises PermissionError: ``path`` is a link or not a regular file (nothing is written).
    """
    line = json.dumps(record.to_dict(), allow_nan=False, separators=(",", ":")) + "\n"
    path = Path(path)
    if path.exists():
        drop_partial_tail(path, keep=_is_record)
    data = line.encode("utf-8")
    fd = open_run_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        # One write call per line keeps lines intact; loop only for short writes.
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_record(line: bytes) -> bool:
    try:
        _parse_line(Path("tail"), 0, line)
    except ValueError:
        return False
    return True


def drop_partial_tail(path: Path, keep: Callable[[bytes], bool] | None = None) -> None:
    """Make the file end in a newline before the next append: a final line without one (the
    remainder of a writer killed mid-write) is completed when ``keep(line)`` says it is
    whole, and cut off with a warning otherwise.

    Raises:
        PermissionError: ``path`` is a link or not a regular file (it is left as it is).
    """
    with os.fdopen(open_run_file(path, os.O_RDWR), "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        pos, chunk = size, 65536
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            cut = f.read(pos - start).rfind(b"\n")
            if cut >= 0:
                keep_to = start + cut + 1
                break
            pos = start
        else:
            keep_to = 0
        f.seek(keep_to)
        if keep is not None and keep(f.read(size - keep_to)):
            f.seek(size)
            f.write(b"\n")
        else:
            warnings.warn(
                f"{path}: dropping {size - keep_to} bytes of a truncated final line",
                stacklevel=3,
            )
            f.truncate(keep_to)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike[str]) -> list[EpisodeRecord]:
    """Read all records of a JSONL file.

    :param path: file written by :func:`append_jsonl`.
    :return: the records in file order.
    :raises ValueError: a file that is not regular or larger than ``MAX_RECORDS_BYTES`` (read
        before anything is allocated), or naming file and 1-based line number of any
        malformed line. The only
        tolerated defect is an unparsable final line without trailing newline (left by a
        killed writer), which is skipped with a warning.
    """
    path = Path(path)
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path}: not a regular file")
    if info.st_size > MAX_RECORDS_BYTES:
        raise ValueError(
            f"{path}: {info.st_size} bytes, more than the {MAX_RECORDS_BYTES} a results file "
            "may hold (about a million episodes): split the evaluation"
        )
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    # A trailing newline yields a final empty element, which is not a line.
    complete = lines[:-1]
    partial = lines[-1]
    records = []
    for lineno, line in enumerate(complete, start=1):
        records.append(_parse_line(path, lineno, line))
    if partial:
        try:
            records.append(_parse_line(path, len(complete) + 1, partial))
        except ValueError as err:
            warnings.warn(f"skipping truncated final line: {err}", stacklevel=2)
    return records


def _parse_line(path: Path, lineno: int, line: bytes) -> EpisodeRecord:
    where = f"{path}:{lineno}"
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{where}: malformed JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
    return EpisodeRecord.from_dict(data, where=where)
