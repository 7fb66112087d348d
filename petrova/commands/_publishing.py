"""Options shared by the commands that talk to the ingest endpoint (snapshot, contracts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from petrova import terminal
from petrova.commands._options import TIMEOUT_SECONDS
from petrova.commands._output import say
from petrova.delivery.policy import DEFAULT_TOKEN_ENV, RetryNote, RetryPolicy

F = TypeVar("F", bound=Callable[..., Any])


def http_options(func: F) -> F:
    """``--token-env``, ``--timeout``, ``--retries``: never a token value on the command line."""
    func = click.option(
        "--retries",
        type=click.IntRange(0, 10),
        metavar="N",
        default=RetryPolicy.retries,
        show_default=True,
        help="Retries after a transient failure (connection refused or reset, timeout, "
        "429, 502, 503, 504), with exponential backoff from 1s (Retry-After wins, up to "
        "120s).",
    )(func)
    func = click.option(
        "--timeout",
        type=TIMEOUT_SECONDS,
        metavar="SECONDS",
        default=RetryPolicy.timeout,
        show_default=True,
        help="Seconds each attempt may take in all (connect, headers and body).",
    )(func)
    func = click.option(
        "--token-env",
        metavar="NAME",
        default=DEFAULT_TOKEN_ENV,
        show_default=True,
        help="The environment variable holding the ingest bearer token.",
    )(func)
    return func


def retry_reporter() -> Callable[[RetryNote], None] | None:
    """Retry notes for a person watching; unattended runs stay quiet unless they fail."""
    if not terminal.watching():
        return None

    def report(note: RetryNote) -> None:
        say(f"attempt {note.attempt} failed ({note.reason}); retrying in {note.delay:g}s")

    return report
