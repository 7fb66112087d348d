"""The one place petrova asks what time it is. There are three clocks:

- :func:`now`, petrova's clock: every rule that depends on the date (a ledger going
  stale, a review date becoming overdue, the rollout window, the snapshot's
  ``generated_at``, an outcome's default time) reads it. Order of precedence:

  1. ``--now`` where a command has it (replays, tests): an explicit choice wins;
  2. ``SOURCE_DATE_EPOCH`` (reproducible builds and the test suite's fixed clock);
  3. the system clock.

- :func:`machine_now`, the clock the future-timestamp guard holds petrova's clock
  against (a replay's ``--now`` must not write the future into the real ledger): the
  system clock, unless ``PETROVA_MACHINE_EPOCH`` replaces it. Only a test suite sets
  that, so that its runs do not depend on the day they run (setting it anywhere else
  moves the guard, as ``--force`` switches it off).
- :func:`system_now`, the system clock and nothing else: for what another machine's
  clock is compared with (an HTTP ``Retry-After`` date). Callers take it as an
  injectable function, so tests pass their own.

Times are UTC, to whole seconds, so that same inputs give the same bytes.
Durations that bound waiting (timeouts, lock waits, retries) use ``time.monotonic``
and never these clocks: a fixed clock must not make a run wait forever.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

from petrova.errors import Location, TimestampInvalid, UsageError
from petrova.models import parse_timestamp

ENV = "SOURCE_DATE_EPOCH"
#: Replaces the system clock for the future-timestamp guard (a test suite's fixed clock).
MACHINE_ENV = "PETROVA_MACHINE_EPOCH"


def _from_environment(name: str = ENV) -> datetime | None:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (ValueError, OverflowError, OSError):
        raise UsageError(
            f"{name}={raw!r} is not a whole number of seconds since 1970-01-01 UTC; "
            f"unset it or give e.g. {name}=1795676400"
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


def machine_now() -> datetime:
    """The machine's clock for the future-timestamp guard: ``PETROVA_MACHINE_EPOCH``, else
    the system clock. ``--now`` and ``SOURCE_DATE_EPOCH`` never move it."""
    fixed = _from_environment(MACHINE_ENV)
    if fixed is not None:
        return fixed
    return system_now()


def system_now() -> datetime:
    """The system clock, ignoring every override."""
    return datetime.now(UTC).replace(microsecond=0)


def today() -> date:
    """The current UTC date, by :func:`now`."""
    return now().date()
