"""Options and loading shared by several commands (SPEC §8 defaults)."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import stat
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click

from petrova.documents.catalogue import Catalogue, find_catalogue, load_catalogue
from petrova.documents.registry import LoadedRegistry, default_registry_path, load_registry
from petrova.errors import Location, OutputError, OutputIsInput
from petrova.files.disk import check_output, write_atomic
from petrova.sync.workspace import MANIFEST_NAME, SCRATCH_NAME
from petrova.terminal import visible

F = TypeVar("F", bound=Callable[..., Any])


def registry_option(func: F) -> F:
    return click.option(
        "--registry",
        "registry_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="The fleet registry. [default: $PETROVA_REGISTRY or ./registry.yaml]",
    )(func)


def catalogue_option(func: F) -> F:
    return click.option(
        "--catalogue",
        "catalogue_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="The integration catalogue. [default: $PETROVA_CATALOGUE, else "
        "contracts/contract.schema.json beside the registry, else the one petrova ships]",
    )(func)


def state_dir_option(func: F) -> F:
    return click.option(
        "--state-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Where probe ledgers live. [default: state/ beside the registry]",
    )(func)


def workspace_option(func: F) -> F:
    return click.option(
        "--workspace",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        envvar="PETROVA_WORKSPACE",
        show_envvar=True,
        help="Folder of consumer clones, each at <workspace>/<slug>.",
    )(func)


@dataclass(frozen=True)
class FleetOptions:
    """Where the fleet's files are, as the common options gave them (SPEC §8 defaults).

    One object instead of four parameters passed along by hand: a command takes
    ``fleet: FleetOptions`` (see :func:`fleet_options`) and asks it for what it needs.
    """

    registry_path: Path | None = None
    catalogue_path: Path | None = None
    state_dir: Path | None = None
    workspace: Path | None = None

    @property
    def registry(self) -> Path:
        """``--registry``, else ``$PETROVA_REGISTRY``, else ``./registry.yaml``."""
        return resolve_registry_path(self.registry_path)

    @property
    def states(self) -> Path:
        """``--state-dir``, else ``state/`` beside the registry."""
        return resolve_state_dir(self.state_dir, self.registry)

    def catalogue(self) -> Catalogue:
        return open_catalogue(self.catalogue_path, self.registry)

    def load(self, *, today: date | None = None) -> LoadedRegistry:
        """The registry, loaded and checked against the catalogue."""
        return open_registry(self.registry_path, self.catalogue_path, today=today)


def fleet_options(*, state: bool = True, workspace: bool = True) -> Callable[[F], F]:
    """Add ``--registry``, ``--catalogue`` and, as asked, ``--state-dir`` and
    ``--workspace``; the command receives them as one ``fleet: FleetOptions``."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            fleet = FleetOptions(
                kwargs.pop("registry_path"),
                kwargs.pop("catalogue_path"),
                kwargs.pop("state_dir", None),
                kwargs.pop("workspace", None),
            )
            return func(*args, fleet=fleet, **kwargs)

        wrapped: Any = command
        chosen = [registry_option, catalogue_option]
        chosen += [state_dir_option] if state else []
        chosen += [workspace_option] if workspace else []
        for option in reversed(chosen):
            wrapped = option(wrapped)
        return wrapped  # type: ignore[no-any-return]

    return decorate


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)


def resolve_registry_path(registry_path: Path | None) -> Path:
    return registry_path if registry_path is not None else default_registry_path()


def resolve_state_dir(state_dir: Path | None, registry_path: Path) -> Path:
    return state_dir if state_dir is not None else registry_path.parent / "state"


def open_catalogue(catalogue_path: Path | None, registry_path: Path | None) -> Catalogue:
    return load_catalogue(find_catalogue(catalogue_path, registry_path))


def open_registry(
    registry_path: Path | None, catalogue_path: Path | None, *, today: date | None = None
) -> LoadedRegistry:
    path = resolve_registry_path(registry_path)
    return load_registry(path, open_catalogue(catalogue_path, path), today=today)


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
    candidates = list(inputs)
    for folder in folders:
        with contextlib.suppress(OSError):
            candidates += [Path(entry.path) for entry in os.scandir(folder)]
    for candidate in candidates:
        try:
            seen = candidate.stat()
        except OSError:
            continue
        if (seen.st_dev, seen.st_ino) == target:
            raise OutputIsInput(
                f"is also an input of this command ({candidate}); writing it would destroy "
                "that input: write the output somewhere else",
                location=Location(str(output)),
            )


def say(message: str) -> None:
    """A note for people: always on stderr, so stdout stays data; control characters
    from inputs are shown, not obeyed."""
    click.echo(visible(message, keep_lines=True), err=True)


def is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class DurationType(click.ParamType):  # type: ignore[type-arg]
    """``72h``, ``3d``, ``90m`` or a bare number of hours."""

    name = "duration"
    _UNITS: ClassVar[dict[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from datetime import timedelta

        if isinstance(value, timedelta):
            return value
        text = str(value).strip().lower()
        unit = text[-1:] if text[-1:] in self._UNITS else "h"
        number = text[:-1] if text[-1:] in self._UNITS else text
        try:
            amount = float(number)
            # inf, nan and anything past timedelta's range are not durations either
            result = timedelta(seconds=amount * self._UNITS[unit])
        except (ValueError, OverflowError):
            amount = -1
        if not amount > 0:
            self.fail(f"{value!r} is not a duration such as 72h, 3d or 90m", param, ctx)
        return result


DURATION = DurationType()


class SecondsType(click.ParamType):  # type: ignore[type-arg]
    """A finite number of seconds, at least ``minimum`` (above it when ``open_min``):
    ``nan``, ``inf`` and negatives are usage errors, not an endless wait or a crash."""

    name = "seconds"

    def __init__(self, minimum: float = 0.0, *, open_min: bool = False) -> None:
        self.minimum = minimum
        self.open_min = open_min

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        low_ok = number > self.minimum if self.open_min else number >= self.minimum
        if not (math.isfinite(number) and low_ok):
            bound = "above" if self.open_min else "at least"
            self.fail(
                f"{value!r} is not a number of seconds {bound} {self.minimum:g} (e.g. 30)",
                param,
                ctx,
            )
        return number


#: ``--wait``: zero (do not wait) or more seconds.
WAIT_SECONDS = SecondsType(0.0)
#: ``--timeout``: more than zero seconds.
TIMEOUT_SECONDS = SecondsType(0.0, open_min=True)


def progress_reporter(label: str) -> Callable[[int, int], None] | None:
    """A progress line on stderr for people: only on a terminal, and only once a run
    has lasted a second (cron and pipes get nothing)."""
    if not is_tty(sys.stderr):
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


def shard_option(func: F) -> F:
    """``--shard K/N``: this run takes only its share of the fleet (see petrova.documents.shard)."""

    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        from petrova.documents.shard import ALL, parse_shard

        return ALL if value is None else parse_shard(value)

    return click.option(
        "--shard",
        metavar="K/N",
        default=None,
        callback=convert,
        help="Take only shard K of N (a stable split by slug), to spread the fleet "
        "over N runners. [default: the whole fleet]",
    )(func)
