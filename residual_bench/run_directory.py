"""Files and directories a run writes: atomically, and one writer at a time.

Every file a long run writes (a checkpoint, a summary, a weights file) goes through
:func:`write_file_atomically` or :func:`write_directory_atomically`, so a kill at any point
leaves the old version or the new one, never a truncated one that a resumed run would take
for finished work; :func:`finish_interrupted_write` puts back a directory whose replacement
was interrupted between its two renames. Every run directory is held by :func:`run_lock`
while a process writes it, and a file a run appends to is opened by :func:`open_run_file`,
which never writes through a link planted in a directory received from elsewhere. A
training run's checkpoint (:func:`save_checkpoint`) is stable-baselines3's own pickled format,
opened again only by :func:`checkpoint_to_resume`'s rules.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO


def write_file_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file with ``write(file)`` beside ``path``, then rename it into place.

    A run killed mid-write leaves the old file or none, never a truncated one that a resumed
    run would take for finished work.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    # A fresh file, never one already there: a link planted at this name would otherwise
    # have the run write through it into whatever it points at.
    tmp.unlink(missing_ok=True)
    try:
        with tmp.open("xb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_directory_atomically(out: str | Path, write: Callable[[Path], None]) -> Path:
    """Fill a fresh directory with ``write(directory)``, then put it at ``out`` in one rename.

    A crash at any point leaves either the old ``out`` or the new one, never a half-written
    directory: the old one is moved aside first and removed last, and a crash between the two
    renames is undone by :func:`finish_interrupted_write` (called here first, and by whoever
    reads ``out`` after a crash).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    finish_interrupted_write(out)
    tmp = Path(tempfile.mkdtemp(prefix=_fresh_prefix(out), dir=out.parent))
    try:
        write(tmp)
        if out.exists():
            old = _aside(out)
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def finish_interrupted_write(out: str | Path) -> None:
    """Undo what a killed :func:`write_directory_atomically` left beside ``out``.

    Killed between its two renames, it leaves no ``out`` and the previous one moved aside:
    that one is put back (without this a resumed run would find no checkpoint and silently
    start again from step 0). Killed while removing the replaced directory, it leaves the
    new ``out`` and part of the old one, which is removed (a replay buffer can be gigabytes).
    The fresh directories of writes killed before their renames are removed too.
    """
    out = Path(out)
    aside = _aside(out)
    if aside.is_dir() and not aside.is_symlink():
        if out.exists() or out.is_symlink():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(aside, out)
    if not out.parent.is_dir():
        return
    prefix = _fresh_prefix(out)
    for stale in out.parent.glob(f"{prefix}*"):
        # Not a sibling's: ".a.b.new-..." of a directory "a.b" also starts with ".a.", but
        # what follows this prefix is a random name without dots.
        if "." not in stale.name[len(prefix) :] and stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def _aside(out: Path) -> Path:
    """Where :func:`write_directory_atomically` moves the directory it replaces."""
    return out.with_name(f".{out.name}.old")


def _fresh_prefix(out: Path) -> str:
    """The name prefix of the directories :func:`write_directory_atomically` fills."""
    return f".{out.name}.new-"


def open_run_file(path: str | Path, flags: int) -> int:
    """``os.open(path, flags)`` for a file a run writes in its directory, refusing anything
    but a regular file (:func:`check_run_file`).

    Raises:
        PermissionError: ``path`` is a link or not a regular file.
    """
    check_run_file(path)
    # No following here either: a link put in place after the check is refused too.
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o644)


def check_run_file(path: str | Path) -> None:
    """Refuse a file a run would write that is there but is not a regular file: a run
    directory received from elsewhere may hold a link named like one of its files, and the
    run would otherwise write, append or truncate where it points.

    Raises:
        PermissionError: ``path`` is a link or not a regular file.
    """
    path = Path(path)
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        kind = "a link" if stat.S_ISLNK(info.st_mode) else "a special file or directory"
        raise PermissionError(
            f"{path}: {kind}, not a regular file; a run writes only regular files of its own "
            "directory (remove it, or choose another --out)"
        )


class RunInUseError(FileExistsError):
    """Another process is writing the same run directory."""


@contextmanager
def run_lock(out: str | Path) -> Iterator[Path]:
    """Hold ``out/.lock`` for as long as one process writes the run directory ``out``.

    Two processes resuming the same run would each overwrite the other's checkpoints and
    append to the same learning curve; two evaluations into one directory would each run the
    episodes the other has not written yet, and record them twice. The lock is an OS file
    lock, so a process that dies releases it and the run can be resumed at once.

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
    fd = open_run_file(out / ".lock", os.O_RDWR | os.O_CREAT)
    with os.fdopen(fd, "r+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunInUseError(
                f"{out} is being written by another process (pid {holder}); "
                "wait for it to finish or stop it, or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield out


def run_in_use(out: str | Path) -> bool:
    """Whether a process holds ``out``'s :func:`run_lock` right now."""
    if not (Path(out) / ".lock").exists():
        return False
    try:
        with run_lock(out):
            return False
    except RunInUseError:
        return True


def save_checkpoint(model: Any, directory: Path, state: dict[str, int]) -> None:
    """Write an SB3 model, its replay buffer (off-policy agents) and ``state`` (the step
    counts a resumed run goes on from, as ``state.json``) atomically to ``directory``."""

    def write(tmp: Path) -> None:
        model.save(tmp / "model.zip")
        if hasattr(model, "replay_buffer"):
            model.save_replay_buffer(tmp / "replay_buffer.pkl")
        (tmp / "state.json").write_text(json.dumps(state))

    write_directory_atomically(directory, write)


CHECKPOINT_FILES = ("model.zip", "replay_buffer.pkl", "state.json")


def checkpoint_to_resume(directory: Path, resume: bool) -> bool:
    """Whether to continue from the SB3 checkpoint in ``directory`` (False: there is none).

    The checkpoint's files hold pickles, which run code when loaded, so they are opened only
    when the user asked to resume and every file in the directory is a plain file owned by
    this user: a run directory copied from elsewhere, or planted by another account, is never
    unpickled.

    Raises:
        FileExistsError: a checkpoint exists and ``resume`` is False.
        PermissionError: a file of the checkpoint is not this user's own plain file.
    """
    if not (directory / "model.zip").exists():
        return False
    if not resume:
        raise FileExistsError(
            f"{directory.parent} holds an unfinished run; pass --resume to continue it (only a "
            "run you made: its checkpoint is unpickled), or choose another --out"
        )
    uid = os.getuid() if hasattr(os, "getuid") else None
    for path in (directory, *directory.iterdir()):
        info = path.lstat()
        plain = path.is_dir() if path == directory else path.is_file()
        if path.is_symlink() or not plain or (uid is not None and info.st_uid != uid):
            raise PermissionError(
                f"{path}: not a plain file of this user; a checkpoint is resumed only when "
                "this user wrote it (its pickles would run code)"
            )
        if path != directory and path.name not in CHECKPOINT_FILES:
            raise PermissionError(f"{path}: not a file of a training checkpoint")
    return True


def own_checkpoint_model(run: str | Path) -> Path:
    """The pickled SB3 model of a ``bench train`` run folder that this user made:
    ``run/checkpoint/model.zip``, checked as a resume checks it (:func:`checkpoint_to_resume`),
    since loading it runs code. For tools that read a run's critic or actor.

    Raises:
        FileNotFoundError: ``run`` has no checkpoint.
        PermissionError: a file of the checkpoint is not this user's own plain file.
    """
    checkpoint = Path(run) / "checkpoint"
    if not checkpoint_to_resume(checkpoint, resume=True):
        raise FileNotFoundError(f"{run}: not a training run (no checkpoint/model.zip)")
    return checkpoint / "model.zip"


def training_run_argument(value: str) -> Path:
    """An argparse ``type`` for a run folder whose checkpoint :func:`own_checkpoint_model`
    accepts: a bad one is a usage error naming the folder, before anything runs."""
    try:
        own_checkpoint_model(value)
    except (FileNotFoundError, PermissionError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return Path(value)
