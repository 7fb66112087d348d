"""The one place petrova asks what time it is.

Every rule that depends on the date (a ledger going stale, a review date becoming
overdue, the rollout window, the snapshot's ``generated_at``, the future-timestamp
guard) reads :func:`now`. Order of precedence:

1. ``--now`` where a command has it (replays, tests): an explicit choice wins;
2. ``SOURCE_DATE_EPOCH`` (reproducible builds and the test suite's fixed clock);
3. the system clock.

Times are UTC, to whole seconds, so that same inputs give the same bytes.
Durations that bound waiting (timeouts, lock waits, retries) use ``time.monotonic``
and never this clock: a fixed clock must not make a run wait forever.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

from petrova.errors import Location, TimestampInvalid, UsageError
from petrova.models import parse_timestamp

ENV = "SOURCE_DATE_EPOCH"


def _from_environment() -> datetime | None:
    raw = os.environ.get(ENV)
    if raw is None or raw == "":
        return None
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (ValueError, OverflowError, OSError):
        raise UsageError(
            f"{ENV}={raw!r} is not a whole number of seconds since 1970-01-01 UTC; "
            f"unset it or give e.g. {ENV}=1795676400"
        ) from None


def now(override: str | None = None) -> datetime:
    """The current time: ``--now`` text, else ``SOURCE_DATE_EPOCH``, else the system clock."""
    if override is not None:
        try:
            return parse_timestamp(override)
        except ValueError as exc:
            raise TimestampInvalid(str(exc), location=Location(field="--now")) from None
    fixed = _from_environment()
    if fixed is not None:
        return fixed
    return system_now()


def system_now() -> datetime:
    """The machine's clock, ignoring every override: for the future-timestamp guard."""
    return datetime.now(UTC).replace(microsecond=0)


def today() -> date:
    """The current UTC date, by :func:`now`."""
    return now().date()
