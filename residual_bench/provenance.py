"""Where a result came from: package versions and the git commit of the code that produced it."""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "residual-bench",
    "gymnasium",
    "pybullet",
    "numpy",
    "torch",
    "stable-baselines3",
)


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape an episode (None if not installed)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The commit of the checkout the package runs from, ``+dirty`` if it has local changes.

    None when the package is not inside a git checkout (an installed wheel) or git is missing.
    """
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = "+dirty" if status.returncode == 0 and status.stdout.strip() else ""
    return commit.stdout.strip() + dirty


REPOSITORY = Path(__file__).resolve().parent.parent
"""The checkout the package runs from (when it runs from one)."""


def shown_path(path: str | Path) -> str:
    """How a result's command names a file: by its path inside the repository, so that the
    command re-runs from a checkout, else by its name alone (a path of this machine says
    nothing to a reader elsewhere)."""
    path = Path(path)
    try:
        return path.resolve().relative_to(REPOSITORY).as_posix()
    except ValueError:
        return path.name


@functools.cache
def run_provenance() -> dict[str, Any]:
    """``{"versions": ..., "git_commit": ...}``, computed once per process."""
    return {"versions": package_versions(), "git_commit": git_commit()}
