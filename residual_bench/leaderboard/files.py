"""Reading a submission's files without trusting them.

A submission comes from a stranger. Every file of it is reached through this module, which
holds three promises:

- *contained*: only plain files and directories inside the submission are listed or read; a
  symlink, a FIFO, a device or a socket anywhere in the tree is refused by name, and no path
  is ever followed outside (files are opened with ``O_NOFOLLOW``);
- *bounded*: a file's size is checked (``lstat``) before it is opened and again on the open
  descriptor, no more than the limit is ever read, and the tree's depth and file count are
  capped, so a 3 GB file or ``/dev/zero`` costs nothing;
- *non-blocking*: files are opened with ``O_NONBLOCK``, so a FIFO swapped in after the listing
  cannot hang the reader.

Hashes are streamed in chunks, never by reading a whole file.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

MAX_FILE_BYTES = 5 * 1024 * 1024
"""No submission file may be larger than the whole submission's cap."""
MAX_FILES = 64
"""A submission is two files plus two per training seed."""
MAX_DEPTH = 3
"""``checkpoints/seed<S>/<file>`` is the deepest a submission goes."""
CHUNK = 1 << 20
EXCERPT = 200
"""Characters of submitted text quoted in an error message."""


class SubmissionFileError(ValueError):
    """A submission's file that is not a plain, contained file of bounded size."""


def excerpt(value: object) -> str:
    """``repr(value)``, cut to :data:`EXCERPT` characters: error messages quote submitted text
    without rendering all of it."""
    text = repr(value)
    return text if len(text) <= EXCERPT else text[:EXCERPT] + f"... ({len(text)} chars)"


def list_files(root: str | Path) -> list[str]:
    """Every file under ``root``, as sorted POSIX paths relative to it.

    Raises:
        SubmissionFileError: ``root`` is not a plain directory, or the tree holds a symlink,
            a special file, more than ``MAX_FILES`` entries or more than ``MAX_DEPTH`` levels.
    """
    root = Path(root)
    if root.is_symlink() or not root.is_dir():
        raise SubmissionFileError(f"{root}: not a plain directory")
    files: list[str] = []
    seen = 0
    pending: list[tuple[Path, int]] = [(root, 0)]
    while pending:
        directory, depth = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                seen += 1
                if seen > MAX_FILES:
                    raise SubmissionFileError(f"{root}: more than {MAX_FILES} files and folders")
                relative = Path(entry.path).relative_to(root).as_posix()
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    raise SubmissionFileError(f"{relative}: a symlink (only plain files count)")
                if stat.S_ISDIR(mode):
                    if depth + 1 >= MAX_DEPTH:
                        raise SubmissionFileError(f"{relative}: folders nest too deep")
                    pending.append((Path(entry.path), depth + 1))
                elif stat.S_ISREG(mode):
                    files.append(relative)
                else:
                    raise SubmissionFileError(f"{relative}: not a regular file (a FIFO or device)")
    return sorted(files)


def _open(path: Path, limit: int) -> tuple[int, int]:
    """An open descriptor of a plain file of at most ``limit`` bytes, and its size."""
    try:
        info = path.lstat()
    except FileNotFoundError:  # a missing file is the caller's "missing" rule, not a hostile one
        raise
    except OSError as exc:
        raise SubmissionFileError(f"{path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise SubmissionFileError(f"{path}: not a regular file (a symlink, FIFO or device)")
    if info.st_size > limit:
        raise SubmissionFileError(f"{path}: {info.st_size} bytes, more than the limit of {limit}")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise SubmissionFileError(f"{path}: cannot be opened ({exc.strerror})") from None
    opened = os.fstat(fd)
    # The file may have been swapped between the lstat and the open.
    if not stat.S_ISREG(opened.st_mode) or opened.st_size > limit:
        os.close(fd)
        raise SubmissionFileError(f"{path}: changed while it was opened")
    return fd, opened.st_size


def read_bounded(path: str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a plain file of at most ``limit`` bytes (checked before reading).

    Raises:
        FileNotFoundError: no such file.
        SubmissionFileError: a symlink, a special file, or a file over the limit.
    """
    path = Path(path)
    fd, _ = _open(path, limit)
    chunks, total = [], 0
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(min(CHUNK, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise SubmissionFileError(f"{path}: grew past the limit of {limit} bytes")
    return b"".join(chunks)


def sha256_file(path: str | Path, limit: int = MAX_FILE_BYTES) -> str:
    """sha256 of a plain file of at most ``limit`` bytes, streamed in chunks."""
    path = Path(path)
    fd, _ = _open(path, limit)
    digest, total = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            total += len(chunk)
            if total > limit:
                raise SubmissionFileError(f"{path}: grew past the limit of {limit} bytes")
            digest.update(chunk)
    return digest.hexdigest()


def total_size(root: str | Path, files: list[str]) -> int:
    """Bytes of the listed files (``lstat``: nothing is opened)."""
    return sum((Path(root) / name).lstat().st_size for name in files)
