"""Advisory file locks, so two unattended runs never interleave on one file.

The lock is a sibling file ``.<name>.lock`` (never the data file itself, which is
replaced by rename and so cannot carry a lock). ``flock`` locks die with their
process, so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from petrova.errors import Location, LockTimeout, OutputError


def lock_path_for(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def file_lock(target: Path, *, wait: float = 60.0, poll: float = 0.05) -> Iterator[None]:
    """Hold an exclusive lock for ``target`` while the block runs.

    Waits up to ``wait`` seconds for another holder, then raises :class:`LockTimeout`
    naming the lock file, so the operator knows what is held and where.
    """
    lock_file = lock_path_for(target)
    try:
        # O_NOFOLLOW: a link planted at the lock's name must not make petrova create
        # or open a file somewhere else.
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        reason = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise OutputError(
            f"cannot create the lock file: {reason}", location=Location(str(lock_file))
        ) from None
    try:
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"another petrova run still holds the lock after {wait:g}s; "
                        "wait for it, or raise --wait",
                        location=Location(str(lock_file)),
                    ) from None
                time.sleep(poll)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
