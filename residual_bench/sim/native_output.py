"""Silencing what native code writes straight to the process's stdout and stderr."""

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_output() -> Iterator[None]:
    """Silence what PyBullet's C++ core prints on import and connect ("argv[0]=", build time).

    Those lines go straight to file descriptors 1 and 2, so ``sys.stdout`` redirection does
    not catch them; they would corrupt machine-readable output of the command line.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError):  # no real file descriptors (some embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
