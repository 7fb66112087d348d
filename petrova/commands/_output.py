"""What commands write: data to stdout or atomically to ``-o FILE`` (never over one of
their inputs), and notes for people on stderr, made safe and only when someone watches."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import click

from petrova import terminal
from petrova.errors import Location, OutputError, OutputIsInput
from petrova.files.disk import check_output, write_atomic
from petrova.sync.workspace import MANIFEST_NAME, SCRATCH_NAME
from petrova.terminal import visible


def emit(data: bytes, output: Path | None) -> str | None:
    """Data to stdout, or atomically to ``output``; returns the write verb for a file."""
    if output is None:
        stream = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
        if stream is not None:
            stream.write(data)
            stream.flush()
        else:  # pragma: no cover - only odd embedders give a text-only stdout
            click.echo(data.decode(), nl=False)
        return None
    if not output.parent.is_dir():
        raise OutputError(
            f"directory {str(output.parent)!r} does not exist", location=Location(str(output))
        )
    return write_atomic(output, data)


def guard_output(
    output: Path | None, *, inputs: Iterable[Path] = (), folders: Iterable[Path] = ()
) -> None:
    """Refuse ``-o`` before any work when it is not a regular file (or a link or a new
    name), or when it is one of the command's inputs: one of ``inputs``, or a file in
    one of ``folders`` (compared by identity, so another spelling or a hard link is
    caught too). A link is replaced by the rename, never written through, so a link to
    an input is harmless and allowed.

    Whatever the command, ``-o`` never names what ``petrova sync`` keeps in a workspace
    (its manifest, ``.petrova-sync.json``, or anything in ``.petrova-sync.d``), existing
    or not: written over, the next sync would refuse the whole fleet."""
    if output is None:
        return
    if output.name == MANIFEST_NAME or SCRATCH_NAME in output.parts:
        raise OutputIsInput(
            f"is where `petrova sync` keeps its own records ({MANIFEST_NAME}, "
            f"{SCRATCH_NAME}/); writing there would make the next sync refuse the fleet: "
            "write the output somewhere else",
            location=Location(str(output)),
        )
    check_output(output)
    try:
        info = os.lstat(output)
    except OSError:
        return  # a new path cannot be an input
    if not stat.S_ISREG(info.st_mode):
        return
    target = (info.st_dev, info.st_ino)
    candidates: list[Path | os.DirEntry[str]] = list(inputs)
    for folder in folders:
        # Directory entries, not paths: a state folder holds a ledger per repo (10,000),
        # and a pathlib object for each was a fifth of this check.
        with contextlib.suppress(OSError):
            candidates += list(os.scandir(folder))
    for candidate in candidates:
        try:
            seen = candidate.stat()  # following a link, as writing through it would
        except OSError:
            continue
        if (seen.st_dev, seen.st_ino) == target:
            shown = candidate.path if isinstance(candidate, os.DirEntry) else candidate
            raise OutputIsInput(
                f"is also an input of this command ({shown}); writing it would destroy "
                "that input: write the output somewhere else",
                location=Location(str(output)),
            )


def say(message: str) -> None:
    """A note for people: always on stderr, so stdout stays data; control characters
    from inputs are shown, not obeyed."""
    click.echo(visible(message, keep_lines=True), err=True)


def progress_reporter(label: str) -> Callable[[int, int], None] | None:
    """A progress line on stderr for people: only on a terminal, and only once a run
    has lasted a second (cron and pipes get nothing)."""
    if not terminal.watching():
        return None
    import time

    started = time.monotonic()

    def report(done: int, total: int) -> None:
        if time.monotonic() - started < 1.0:
            return
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{label}: {done}/{total}{end}")
        sys.stderr.flush()

    return report
