"""Trained residuals on disk, and the agent that runs one at evaluation.

A trained residual is a directory::

    residual.json   format, version, algo, base (name and spec), features, alpha,
                    the full config, training seed / steps / suite, package versions
    model.zip       the SB3 model (weights and optimiser state, SB3's own format)

:func:`load_residual` checks the metadata before touching the weights, so a wrong or damaged
directory gives one clear error.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from residual_bench.residual.config import ALGOS

FORMAT = "residual-bench-residual"
SHIPPED_DIR = "data/residuals"
VERSION = 2  # 2: features in units of 5 cm and 0.5 m/s, not metres
REQUIRED = ("format", "version", "algo", "name", "base", "features", "alpha", "train_seed")


def write_file_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file with ``write(file)`` beside ``path``, then rename it into place.

    A run killed mid-write leaves the old file or none, never a truncated one that a resumed
    run would take for finished work.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_directory_atomically(out: str | Path, write: Callable[[Path], None]) -> Path:
    """Fill a fresh directory with ``write(directory)``, then put it at ``out`` in one rename.

    A crash at any point leaves either the old ``out`` or the new one, never a half-written
    directory (the old one is moved aside first and removed last).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(tmp)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


class RunInUseError(FileExistsError):
    """Another process is training into the same run directory."""


@contextmanager
def run_lock(out: str | Path) -> Iterator[Path]:
    """Hold ``out/.lock`` for as long as one training process writes the run directory ``out``.

    Two processes resuming the same run would each overwrite the other's checkpoints and
    append to the same learning curve. The lock is an OS file lock, so a process that dies
    releases it and the run can be resumed at once.

    Raises:
        RunInUseError: another process holds the lock (its pid is in the message).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): run unguarded
        yield out
        return
    with open(out / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunInUseError(
                f"{out} is being written by another training process (pid {holder}); "
                "wait for it to finish or stop it, or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield out


def run_in_use(out: str | Path) -> bool:
    """Whether a training process holds ``out``'s :func:`run_lock` right now."""
    if not (Path(out) / ".lock").exists():
        return False
    try:
        with run_lock(out):
            return False
    except RunInUseError:
        return True


def save_residual(model: Any, out: str | Path, metadata: dict[str, Any]) -> Path:
    """Write ``model`` and ``metadata`` to directory ``out`` atomically (all or nothing)."""

    def write(directory: Path) -> None:
        model.save(directory / "model.zip")
        meta = {"format": FORMAT, "version": VERSION, **metadata}
        (directory / "residual.json").write_text(json.dumps(meta, indent=2) + "\n")

    return write_directory_atomically(out, write)


SHIPPED_PREFIX = "shipped:"
"""``shipped:<base>-<algo>-seed<S>`` names a residual shipped with the package."""


def residual_location(ref: str | Path) -> Path:
    """The directory a residual reference names: a path, or ``shipped:NAME`` for a residual
    shipped with the package (records name those the same way on every machine)."""
    text = str(ref)
    if text.startswith(SHIPPED_PREFIX):
        name = text[len(SHIPPED_PREFIX) :]
        root = Path(str(resources.files("residual_bench").joinpath(SHIPPED_DIR)))
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"{text!r}: expected {SHIPPED_PREFIX}<base>-<algo>-seed<S>")
        return root / name
    return Path(ref)


def shipped_residual(base: str, algo: str, seed: int) -> str | None:
    """The reference of the residual shipped for this base, algorithm and seed, if any."""
    ref = f"{SHIPPED_PREFIX}{base}-{algo}-seed{seed}"
    return ref if (residual_location(ref) / "residual.json").is_file() else None


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The checked ``residual.json`` of a trained residual (a directory or ``shipped:NAME``).

    Raises:
        FileNotFoundError: no such directory.
        ValueError: not a trained residual, an unknown version, or missing fields.
    """
    path = residual_location(path)
    if not path.exists():
        raise FileNotFoundError(f"residual {str(path)!r} does not exist")
    meta_path = path / "residual.json"
    if not path.is_dir() or not meta_path.is_file() or not (path / "model.zip").is_file():
        raise ValueError(
            f"{path}: not a trained residual (expected a directory with residual.json and "
            "model.zip, as written by `bench train`)"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{meta_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path}: not a residual-bench residual (format {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise ValueError(
            f"{meta_path}: version {meta.get('version')!r}, expected {VERSION} (a residual of "
            "another version saw other features: train it again with this release)"
        )
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise ValueError(f"{meta_path}: missing field(s) {missing}")
    if meta["algo"] not in ALGOS:
        raise ValueError(f"{meta_path}: unknown algo {meta['algo']!r}")
    return meta


class ResidualAgent:
    """A trained residual, ready to run: deterministic actions from its residual env's obs."""

    def __init__(self, path: str | Path) -> None:
        self.path = residual_location(path)
        self.metadata = read_metadata(self.path)
        self.name: str = self.metadata["name"]
        self.base: str = self.metadata["base"]
        self.features: str = self.metadata["features"]
        self.alpha: list[float] = list(self.metadata["alpha"])
        self.train_seed: int = int(self.metadata["train_seed"])
        from residual_bench.residual.agents import load_agent

        try:
            gated = self.metadata.get("config", {}).get("gated")
            self.model = load_agent(
                self.metadata["algo"], str(self.path / "model.zip"), gated=gated
            )
        except Exception as exc:  # SB3 raises many types for a damaged zip
            raise ValueError(
                f"{self.path}: the model could not be loaded ({type(exc).__name__}: {exc})"
            ) from None

    def env_kwargs(self) -> dict[str, Any]:
        """The env arguments this residual's features need (see ``residual_env_kwargs``)."""
        from residual_bench.residual.factory import residual_env_kwargs

        return residual_env_kwargs(self.base, self.features)

    def wrap(self, env: Any, controller: Any) -> Any:
        """The residual env this agent acts in, around ``env`` and a base ``controller``."""
        from residual_bench.residual.env import ResidualEnv

        return ResidualEnv(env, controller, features=self.features, alpha=tuple(self.alpha))

    def reset(self) -> None:
        """Nothing to reset: the policy is memoryless."""

    def act(self, obs: Any) -> np.ndarray:
        """The deterministic residual action r in [-1, 1]^7."""
        action, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(action, dtype=np.float64)


def load_residual(path: str | Path) -> ResidualAgent:
    """Load a trained residual directory (see the module docstring)."""
    return ResidualAgent(path)
