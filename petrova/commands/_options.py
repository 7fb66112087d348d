"""What every command takes: the fleet's files as one :class:`FleetOptions` (one decorator,
:func:`fleet_options`, the SPEC §8 defaults), ``--json``, ``--shard``, and the click types
that refuse what is not a duration or a number of seconds."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click

from petrova.documents.catalogue import Catalogue, find_catalogue, load_catalogue
from petrova.documents.registry import LoadedRegistry, default_registry_path, load_registry

F = TypeVar("F", bound=Callable[..., Any])


def _registry_option(func: F) -> F:
    return click.option(
        "--registry",
        "registry_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="The fleet registry. [default: $PETROVA_REGISTRY or ./registry.yaml]",
    )(func)


def _catalogue_option(func: F) -> F:
    return click.option(
        "--catalogue",
        "catalogue_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="The integration catalogue. [default: $PETROVA_CATALOGUE, else "
        "contracts/contract.schema.json beside the registry, else the one petrova ships]",
    )(func)


def _state_dir_option(func: F) -> F:
    return click.option(
        "--state-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Where probe ledgers live. [default: state/ beside the registry]",
    )(func)


def _workspace_option(func: F) -> F:
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

    def catalogue_file(self) -> Path:
        """Where the catalogue is: ``--catalogue``, ``$PETROVA_CATALOGUE``, beside the
        registry, else the one petrova ships."""
        return find_catalogue(self.catalogue_path, self.registry)

    def catalogue(self) -> Catalogue:
        return open_catalogue(self.catalogue_path, self.registry)

    def load(self, *, today: date | None = None) -> LoadedRegistry:
        """The registry, loaded and checked against the catalogue."""
        return open_registry(self.registry_path, self.catalogue_path, today=today)


def fleet_options(
    *, state: bool = True, workspace: bool = True, registry: bool = True
) -> Callable[[F], F]:
    """Add ``--catalogue`` and, as asked, ``--registry``, ``--state-dir`` and
    ``--workspace``; the command receives them as one ``fleet: FleetOptions``. Every
    command that takes any of them takes them this way (tests/commands/test_options.py)."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            fleet = FleetOptions(
                kwargs.pop("registry_path", None),
                kwargs.pop("catalogue_path"),
                kwargs.pop("state_dir", None),
                kwargs.pop("workspace", None),
            )
            return func(*args, fleet=fleet, **kwargs)

        wrapped: Any = command
        chosen = [_registry_option] if registry else []
        chosen += [_catalogue_option]
        chosen += [_state_dir_option] if state else []
        chosen += [_workspace_option] if workspace else []
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
    """A finite number of seconds (or of ``unit``), at least ``minimum`` (above it when
    ``open_min``) and at most ``maximum``: ``nan``, ``inf`` and negatives are usage
    errors, not an endless wait or a crash. Every option that takes a number of seconds
    or hours uses it (click's ``FloatRange`` lets ``nan`` through every bound)."""

    name = "seconds"

    def __init__(
        self,
        minimum: float = 0.0,
        *,
        maximum: float | None = None,
        open_min: bool = False,
        unit: str = "seconds",
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.open_min = open_min
        self.unit = unit
        self.name = unit

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        low_ok = number > self.minimum if self.open_min else number >= self.minimum
        high_ok = self.maximum is None or number <= self.maximum
        if not (math.isfinite(number) and low_ok and high_ok):
            bound = "above" if self.open_min else "at least"
            most = f" and at most {self.maximum:g}" if self.maximum is not None else ""
            self.fail(
                f"{value!r} is not a number of {self.unit} {bound} {self.minimum:g}{most} "
                "(e.g. 30)",
                param,
                ctx,
            )
        return number


#: ``--wait``: zero (do not wait) or more seconds.
WAIT_SECONDS = SecondsType(0.0)
#: ``--timeout``: more than zero seconds.
TIMEOUT_SECONDS = SecondsType(0.0, open_min=True)


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
