"""Declarative environment specs: the YAML files under ``envs/``.

A spec is validated against its task's shipped default (``envs/pick_place.yaml`` for
pick-and-place): a user's file or dict may override any field, but every field must exist
there and keep its shape.
Errors name the offending field by its dotted path, e.g. ``randomization.object_mass``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import stat
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DEFAULT_ENV_SPEC = "pick_place"
MAX_SPEC_BYTES = 64 * 1024
"""A spec file is a page of YAML (the shipped ones are under 2 KB); anything larger is refused
unparsed: PyYAML reads about 100 KB a second, so this also bounds the time one file can take."""
QUOTE_CHARS = 200
"""Characters of a user's value quoted in an error message."""
MAX_INT_CHARS = 1000
"""Characters of a whole number in a spec: far more than any quantity needs, far fewer than
the 4300 digits past which Python refuses to convert one."""

Bounds = tuple[float, float]

# Physical bounds of the scene's numbers, by field: what the Panda, its 8 cm gripper, the
# table and the camera can represent. Every number of a field (a range's ends, a box's
# corners, a vector's components) must lie within them; a tuple of bounds gives one per axis.
SCENE_BOUNDS: dict[str, Bounds | tuple[Bounds, ...]] = {
    "task.episode_seconds": (0.05, 120.0),  # s: from one control step to two minutes
    "task.object_size": (0.01, 0.08),  # m: the gripper opens 8 cm
    "task.object_region": (-0.8, 0.8),  # m, robot base frame: the arm's reach
    "task.goal_region": (-0.8, 0.8),
    "task.goal_radius": (0.02, 0.3),  # m
    "task.min_separation": (0.0, 0.3),  # m
    "randomization.object_mass": (0.005, 5.0),  # kg: the Panda's payload is 3 kg
    # Below 0.1 the fingers cannot hold an object and a poke sends it off the table.
    "randomization.object_friction": (0.1, 5.0),
    "randomization.color_jitter": (0.0, 1.0),
    # Towards a light above the table: a zero or downward vector lights nothing.
    "randomization.light_direction": ((-10.0, 10.0), (-10.0, 10.0), (0.1, 10.0)),
    "randomization.camera_eye_jitter": (0.0, 0.2),  # m
    "randomization.camera_target_jitter": (0.0, 0.2),  # m
    "randomization.pixel_noise_std": (0.0, 128.0),  # 0-255 units
    "camera.eye": (-3.0, 3.0),  # m
    "camera.target": (-3.0, 3.0),  # m
    "camera.fov_deg": (5.0, 150.0),
}
MIN_CAMERA_DISTANCE = 0.05
"""m between the camera's eye and its target after jitter: a view needs two distinct points."""
AXES = "xyz"


class SpecError(ValueError):
    """A spec file or dict is malformed; the message names the file and the field."""


def excerpt(text: str) -> str:
    """``text`` cut to ``QUOTE_CHARS``: errors quote a user's text, never all of it."""
    return text if len(text) <= QUOTE_CHARS else f"{text[:QUOTE_CHARS]}... ({len(text)} chars)"


def quote(value: Any) -> str:
    """``repr(value)`` cut to ``QUOTE_CHARS`` (a field's value in an error message)."""
    try:
        return excerpt(repr(value))
    except ValueError:  # an int of more digits than Python will print
        return f"<a {type(value).__name__} too large to show>"


def number_text_hint(value: Any) -> str:
    """Why a number written with an exponent may have been read as text: PyYAML reads
    ``1.0e6`` (no sign in the exponent) as a string. Empty when that is not the case."""
    if isinstance(value, dict):
        value = [v for part in value.values() for v in (part if isinstance(part, list) else [])]
    texts = value if isinstance(value, list) else [value]
    if any(isinstance(t, str) and _is_exponent_number(t) for t in texts):
        return " (YAML reads a number like 1.0e6 as text: write 1.0e+6)"
    return ""


def _is_exponent_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return "e" in text.lower()


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases: ``*name`` can make a small file expand into
    gigabytes ("billion laughs"), and no spec needs one."""

    def __init__(self, text: str, path: Path) -> None:
        super().__init__(text)
        self.name = str(path)  # what PyYAML's own errors call the file

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise SpecError(
                f"{self.name}: line {mark.line + 1}: YAML aliases (*name) are not allowed in "
                "a spec; write the values out"
            )
        return super().compose_node(parent, index)

    def construct_bounded_int(self, node: yaml.ScalarNode) -> int:
        # Python reads at most 4300 digits and says so in terms of its own settings.
        if len(node.value) > MAX_INT_CHARS:
            raise SpecError(
                f"{self.name}: line {node.start_mark.line + 1}: a whole number of "
                f"{len(node.value)} characters; a spec's have at most {MAX_INT_CHARS}"
            )
        return self.construct_yaml_int(node)


_NoAliasLoader.add_constructor("tag:yaml.org,2002:int", _NoAliasLoader.construct_bounded_int)


def spec_dir(kind: str = "envs") -> Path:
    """Directory of the shipped specs (``envs`` or ``baselines``), inside the package."""
    return Path(str(resources.files("residual_bench").joinpath("specs", kind)))


def _read_spec_bytes(path: Path) -> bytes:
    """The bytes of a spec file, refused unread when it is not a regular file or too large."""
    try:
        # Non-blocking: opening a FIFO for reading would otherwise wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SpecError(f"spec file {quote(str(path))} does not exist") from None
    except OSError as exc:
        raise SpecError(f"spec file {quote(str(path))} cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"{path}: not a regular file")
        if info.st_size > MAX_SPEC_BYTES:
            raise SpecError(f"{path}: {info.st_size} bytes, more than a spec's {MAX_SPEC_BYTES}")
        # The file may have grown since fstat: read one byte past the bound to know.
        data = file.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: more than a spec's {MAX_SPEC_BYTES} bytes")
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, turning parse errors into a :class:`SpecError` naming the file.

    Every spec file (scene, suite, residual and fine-tuning configs) is read here: its size
    is checked before it is read and YAML aliases are refused.
    """
    path = Path(path)
    raw = _read_spec_bytes(path)
    try:
        loader = _NoAliasLoader(raw.decode("utf-8"), path)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except SpecError:  # from the loader, already naming the file and line
        raise
    # ValueError: not UTF-8 text, or a date such as 2026-13-45 (PyYAML reads dates);
    # RecursionError: nesting deeper than Python's stack.
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise SpecError(f"{path}: malformed YAML: {excerpt(str(exc))}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def is_number(x: Any) -> bool:
    """A real number, not a bool (YAML's ``true`` is not 1 here)."""
    return isinstance(x, int | float) and not isinstance(x, bool)


def is_finite_number(x: Any) -> bool:
    """A number that is not NaN or infinite (a whole number of any size is finite, and is
    compared with bounds exactly: ``math.isfinite`` would fail to convert it to a float)."""
    return is_number(x) and (isinstance(x, int) or math.isfinite(x))


def _check_structure(value: Any, default: Any, where: str) -> None:
    """Check that ``value`` has the structure and types of ``default`` (not its ranges)."""
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise SpecError(f"{where}: expected a mapping, got {quote(value)}")
        for key, sub in value.items():
            if key not in default:
                valid = ", ".join(sorted(default))
                raise SpecError(
                    f"{where}.{excerpt(str(key))}: unknown field; valid fields: {valid}"
                )
            _check_structure(sub, default[key], f"{where}.{key}")
    elif isinstance(default, list):
        if not isinstance(value, list) or len(value) != len(default):
            raise SpecError(
                f"{where}: expected a list of {len(default)} numbers, got {quote(value)}"
            )
        if not all(is_finite_number(v) for v in value):
            hint = number_text_hint(value)
            raise SpecError(f"{where}: expected finite numbers, got {quote(value)}{hint}")
    elif is_number(default):
        if not is_finite_number(value):
            hint = number_text_hint(value)
            raise SpecError(f"{where}: expected a finite number, got {quote(value)}{hint}")
        if value < 0:
            raise SpecError(f"{where}: must not be negative, got {quote(value)}")
    elif not isinstance(value, type(default)):
        raise SpecError(f"{where}: expected {type(default).__name__}, got {quote(value)}")


def _check_ranges(spec: Any, where: str) -> None:
    """Check every range of a complete spec.

    Two forms: a ``{low: [...], high: [...]}`` box (low <= high elementwise; its corners are
    points, not ranges) and a two-number ``[low, high]`` list anywhere else.
    """
    if isinstance(spec, dict):
        if set(spec) == {"low", "high"}:
            if any(lo > hi for lo, hi in zip(spec["low"], spec["high"], strict=True)):
                raise SpecError(f"{where}: low must not exceed high, got {quote(spec)}")
            return
        for key, sub in spec.items():
            _check_ranges(sub, f"{where}.{key}")
    elif isinstance(spec, list) and len(spec) == 2 and spec[0] > spec[1]:
        raise SpecError(f"{where}: range [low, high] has low > high: {quote(spec)}")


def _check_values(spec: dict[str, Any], default: dict[str, Any]) -> None:
    """Checks of single fields that the structure cannot express."""
    if spec["version"] != default["version"]:
        raise SpecError(f"version: expected {default['version']}, got {quote(spec['version'])}")
    lo, hi = spec["task"].get("n_objects", (1, 1))
    if int(lo) != lo or int(hi) != hi or not 1 <= lo <= hi <= 3:
        raise SpecError(
            f"task.n_objects: expected integers 1 <= low <= high <= 3, got {quote([lo, hi])}"
        )
    for name, bounds in SCENE_BOUNDS.items():
        section, key = name.split(".")
        if key in default.get(section, {}):  # a task's scene declares the fields it uses
            _check_bounds(name, spec[section][key], bounds)
    camera, randomization = spec["camera"], spec["randomization"]
    distance = math.dist(camera["eye"], camera["target"])
    # Each jitter moves its point up to sqrt(3) times its per-axis size.
    jitter = randomization["camera_eye_jitter"] + randomization["camera_target_jitter"]
    needed = MIN_CAMERA_DISTANCE + math.sqrt(3) * jitter
    if distance < needed:
        raise SpecError(
            f"camera.eye: {distance:.3g} m from camera.target; with the camera jitters they "
            f"must be at least {needed:.3g} m apart"
        )


def _check_bounds(name: str, value: Any, bounds: Bounds | tuple[Bounds, ...]) -> None:
    """Every number of a field's value (a number, a range, a vector or a box) within bounds."""
    per_axis = isinstance(bounds[0], tuple)
    for corner in [value["low"], value["high"]] if isinstance(value, dict) else [value]:
        for axis, number in enumerate(corner if isinstance(corner, list) else [corner]):
            low, high = bounds[axis] if per_axis else bounds
            if not low <= number <= high:
                which = f" in {AXES[axis]}" if per_axis else ""
                raise SpecError(f"{name}: {quote(value)} is outside [{low:g}, {high:g}]{which}")


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_env_spec(
    spec: str | Path | dict | None = None,
    overrides: dict | None = None,
    default_name: str = DEFAULT_ENV_SPEC,
) -> dict[str, Any]:
    """Resolve an environment spec.

    Args:
        spec: ``None`` for the default, the name of a shipped spec, a path to a YAML file,
            or a dict; anything given is laid over the default.
        overrides: a dict laid over the result, for one-off changes from ``gym.make``.
        default_name: the task's spec that defines the fields and their defaults: a shipped
            name (``envs/<name>.yaml``) or a path to a YAML file.

    Returns:
        The merged, validated spec as a plain dict.

    Raises:
        SpecError: naming the file and the field that is wrong.
    """
    default_path = Path(default_name)
    if default_path.suffix not in (".yaml", ".yml"):
        default_path = spec_dir() / f"{default_name}.yaml"
    default = read_yaml(default_path)
    layers: list[tuple[str, dict]] = []
    if isinstance(spec, dict):
        layers.append(("spec", spec))
    elif spec is not None:
        path = Path(spec)
        if path.suffix not in (".yaml", ".yml"):
            path = spec_dir() / f"{spec}.yaml"
        layers.append((str(path), read_yaml(path)))
    if overrides:
        layers.append(("scene_overrides", overrides))
    merged = default
    for origin, layer in layers:
        # Each layer is checked on its own for structure, then the spec it produces for
        # ranges and values: the first layer that makes the spec inconsistent is named.
        try:
            _check_structure(layer, default, "spec")
            merged = _merge(merged, layer)
            _check_ranges(merged, "spec")
            _check_values(merged, default)
        except SpecError as exc:
            raise SpecError(f"{origin}: {str(exc).removeprefix('spec.')}") from None
    return merged


def spec_hash(spec: dict[str, Any]) -> str:
    """A short content hash of a resolved spec, recorded with every episode."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
