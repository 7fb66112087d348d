"""The green window as written for speed (each time parsed once, the pin compared for
equality first) gives exactly the rule as SPEC §12 states it, on any history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from petrova.ledger.rules import DEFAULT_STALE_AFTER
from petrova.ledger.window import Window, green_window
from petrova.models import format_timestamp, parse_timestamp

PIN = "abcdef123456"
START = datetime(2026, 11, 1, 6, tzinfo=UTC)


def _the_rule(
    history: Sequence[Mapping[str, Any]], *, pin: str | None, stale_after: timedelta
) -> Window:
    """SPEC §12's list, read back from the newest entry, written the plain way."""
    start: str | None = None
    later: str | None = None
    for entry in reversed(history):
        at = entry["at"]
        outcome = entry.get("outcome")
        if outcome == "unreachable":
            continue
        if later is not None and parse_timestamp(later) - parse_timestamp(at) > stale_after:
            return Window(start, "gap", later)
        if outcome is None:
            if entry.get("override"):
                return Window(start, "override", at)
            return Window(at, "promotion", at)
        if outcome != "ok":
            return Window(start, "not_ok", at)
        sha = entry.get("evidence_sha")
        if pin is None or sha is None or not (sha.startswith(pin) or pin.startswith(sha)):
            return Window(start, "contract_change", at)
        start = later = at
    return Window(start, None, None)


_OUTCOMES = ("ok", "ok", "ok", "unreachable", "degraded", "failing", "not_applicable")
_SHAS = (PIN, PIN, PIN[:7], PIN + "00", "0123456789ab", None)


@st.composite
def _histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    moment = START
    history: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 12))):
        moment += timedelta(hours=draw(st.sampled_from([1, 12, 24, 47, 48, 49, 72, 100])))
        at = format_timestamp(moment)
        kind = draw(st.sampled_from(["probe", "probe", "probe", "promotion", "override"]))
        if kind == "probe":
            entry: dict[str, Any] = {"at": at, "outcome": draw(st.sampled_from(_OUTCOMES))}
            sha = draw(st.sampled_from(_SHAS))
            if sha is not None:
                entry["evidence_sha"] = sha
        else:
            entry = {"at": at, "promoted_to": "ok", "by": "human:ada", "reason": "checked"}
            if kind == "override":
                entry["override"] = True
        history.append(entry)
    return history


@given(
    history=_histories(),
    pin=st.sampled_from([PIN, PIN[:7], None]),
    stale_hours=st.sampled_from([24, 48, 72]),
)
def test_the_window_is_the_rule_as_written(
    history: list[dict[str, Any]], pin: str | None, stale_hours: int
) -> None:
    stale_after = timedelta(hours=stale_hours)
    assert green_window(history, pin=pin, stale_after=stale_after) == _the_rule(
        history, pin=pin, stale_after=stale_after
    )


def test_an_ok_without_evidence_is_never_the_pins_even_without_a_pin() -> None:
    """Equal shas settle the pin at once; a missing sha equals a missing pin, and still
    counts as another contract."""
    history = [{"at": format_timestamp(START), "outcome": "ok"}]
    expected = Window(None, "contract_change", format_timestamp(START))
    assert green_window(history, pin=None) == expected
    assert green_window(history, pin=None, stale_after=DEFAULT_STALE_AFTER) == expected
