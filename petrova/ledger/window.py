"""What restarts the rollout gate's green window: exactly SPEC §12's list, as a pure rule.

A cell's counted green run is the newest unbroken run of ``ok`` outcomes checked against
the pinned contract, or the promotion that began it. Only these restart it:

- ``not_ok``: a conclusive non-``ok`` outcome (``degraded``, ``failing``,
  ``not_applicable``);
- ``contract_change``: an ``ok`` outcome checked against another contract (its
  ``evidence_sha`` is not the pin's, or it has none): the run counts from the first
  ``ok`` after it that was checked against the pin;
- ``promotion``: a human promotion; the run counts from it;
- ``override``: a human override; the run counts from the next ``ok`` outcome after it;
- ``gap``: no conclusive outcome for longer than the staleness window; the run counts
  from the first conclusive outcome after the gap.

``unreachable`` neither counts nor breaks the run: it is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from petrova.ledger.rules import DEFAULT_STALE_AFTER
from petrova.models import parse_timestamp

Restart = Literal["not_ok", "contract_change", "promotion", "override", "gap"]

#: How a hold line names each restart.
RESTART_WORDS: dict[str, str] = {
    "not_ok": "a non-ok outcome",
    "contract_change": "a contract change (an ok not checked against the pinned contract)",
    "promotion": "a promotion",
    "override": "an override (green time waits for the next ok outcome)",
    "gap": "no conclusive outcome for longer than the staleness window",
}


class Window(NamedTuple):
    """When the counted green run began (``None``: not begun), and what restarted it last
    (``None`` when the kept history shows nothing that did) and when."""

    start: str | None
    restart: Restart | None
    restarted_at: str | None


def green_window(
    history: Sequence[Mapping[str, Any]],
    *,
    pin: str | None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> Window:
    """The cell's counted green run, read back from its newest entry (JSON form).

    ``pin``: the registry's ``contract_sha``; an ``evidence_sha`` matches it when either
    is a prefix of the other (probes may record more or fewer digits).
    """
    start: str | None = None
    later: str | None = None  # the conclusive entry after the one being looked at
    later_moment: datetime | None = None  # its time: each entry's is parsed once, not twice
    for entry in reversed(history):
        at = entry["at"]
        outcome = entry.get("outcome")
        if outcome == "unreachable":
            continue
        if later is not None:
            if later_moment is None:
                later_moment = parse_timestamp(later)
            moment = parse_timestamp(at)
            if later_moment - moment > stale_after:
                return Window(start, "gap", later)
            later_moment = moment
        if outcome is None:  # a human promotion or override
            if entry.get("override"):
                return Window(start, "override", at)
            return Window(at, "promotion", at)
        if outcome != "ok":
            return Window(start, "not_ok", at)
        sha = entry.get("evidence_sha")
        if sha is None or (sha != pin and not _pinned(sha, pin)):
            return Window(start, "contract_change", at)
        start = later = at
    return Window(start, None, None)


def _pinned(sha: str, pin: str | None) -> bool:
    """``sha`` is the pinned contract's: either is a prefix of the other (the common
    case, equal, is settled before this is called)."""
    return pin is not None and (sha.startswith(pin) or pin.startswith(sha))
