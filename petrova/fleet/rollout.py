"""The rollout gate: "do not proceed to tier N+1 until tier N has been green for 7 days".

Pure functions over what :func:`petrova.fleet.gather.gather` read (its typed problems
and observations), the snapshot's derived dots and a clock. The dots are the snapshot's
own values (same derivation, same staleness), so the gate can never disagree with the
dashboard about what a cell shows. The reporters are in ``petrova.render.rollout``.

The gate fails closed (SPEC §11). A repo is green only when everything the dashboard
would show for it is known and green: it is migrated, its contract was read and matches
the pin, its ledger was readable, its last sync did not fail, and every applicable
integration is declared ``wired`` and shows ``ok``. Anything unknown holds the tier,
with the reason.

Green time counts from the dot, not from probe history alone: only the newest unbroken
run of ``ok`` outcomes whose ``evidence_sha`` is the pinned contract's (the contract
that declares the cell wired) counts, starting at its first such outcome, or at the
human promotion that began it. An ``ok`` seen while the contract still declared the
cell ``pending``, or under an earlier contract, does not count. What restarts the run is
exactly SPEC §12's list, one pure rule (:func:`petrova.ledger.window.green_window`),
and each hold line names it; ``unreachable`` neither counts nor breaks it. The run is read from
the history the ledger keeps (its last 20 entries), so a cell probed more than 20 times
in a window is counted from its oldest kept entry: later, never earlier. The holds only
read that rule's answer (:func:`counted_since`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from petrova.fleet.gather import NOTHING_READ, FleetInputs, RepoInputs
from petrova.ledger.rules import Observation
from petrova.ledger.window import RESTART_WORDS, Window, green_window
from petrova.models import (
    CellView,
    Dot,
    FleetSnapshot,
    Hold,
    HoldReason,
    RepoEntry,
    RepoView,
    RolloutReport,
    TierView,
    format_timestamp,
    parse_timestamp,
)


def rollout_report(
    inputs: FleetInputs,
    snapshot: FleetSnapshot,
    *,
    now: datetime,
    days: int,
) -> RolloutReport:
    """Every tier, in ascending order, its repos in registry order.

    ``snapshot``: the dots derived from the same ``inputs`` at ``now``
    (:func:`petrova.fleet.snapshot.derive_snapshot`), so that the gate reads the very
    dots the dashboard shows.
    """
    window = timedelta(days=days)
    by_tier: dict[int, list[RepoView]] = {}
    for entry, row in zip(inputs.loaded.registry.repos, snapshot.rows, strict=True):
        slug = entry.slug
        if row.integrations is None:
            unmigrated = Hold(
                slug,
                None,
                "not_migrated",
                None,
                None,
                None,
                f"{slug}: not migrated (no contract_sha in the registry)",
            )
            by_tier.setdefault(entry.tier, []).append(
                RepoView(slug, False, (), (unmigrated,), None)
            )
            continue
        repo_inputs = inputs.repos.get(slug, NOTHING_READ)
        observed = repo_inputs.observed or _NONE
        pin = entry.contract_sha
        cells: list[CellView] = []
        holds = _unknowns(entry, repo_inputs)
        since: list[str] = []
        for integration, dot in row.integrations.items():
            stored = observed.get(integration)
            # the window rule once per cell: the view and the hold line both read it
            counted = (
                green_window(stored.history, pin=pin)
                if dot.status == "ok" and dot.declared == "wired" and stored is not None
                else None
            )
            applicable = dot.applicability != "not_applicable" and dot.declared != "not_applicable"
            view = CellView(
                integration,
                dot.status,
                applicable,
                dot.needs_human,
                counted.start if counted is not None else None,
                dot.override is not None,
            )
            cells.append(view)
            if not applicable:
                continue
            hold = _hold(slug, view, dot, stored, now, window, pin, counted)
            if hold is not None:
                holds.append(hold)
            elif view.ok_since is not None:
                since.append(view.ok_since)
        green_since = max(since, key=parse_timestamp) if since and not holds else None
        by_tier.setdefault(entry.tier, []).append(
            RepoView(slug, True, tuple(cells), tuple(holds), green_since)
        )
    tiers = tuple(TierView(t, tuple(by_tier[t])) for t in sorted(by_tier))
    return RolloutReport(now, days, snapshot.integration_ids, tiers, snapshot.warnings)


#: What a repo whose ledger was not read has for each integration.
_NONE: Mapping[str, Observation] = MappingProxyType({})


def _unknowns(entry: RepoEntry, read: RepoInputs) -> list[Hold]:
    """What the gate cannot know about a migrated repo: each one holds its tier."""
    slug = entry.slug
    holds: list[Hold] = []
    if read.sync_failure is not None:
        holds.append(
            _unknown(
                slug,
                "sync_failed",
                f"its last sync failed ({read.sync_failure}); what was read may be old",
            )
        )
    if read.declared is None:
        why = read.contract_unread or "the contract was not read"
        holds.append(_unknown(slug, "contract_unknown", f"contract not read: {why}"))
    elif read.contract_sha != entry.contract_sha:
        holds.append(
            _unknown(
                slug,
                "contract_drift",
                f"the contract's sha is {read.contract_sha}, the registry pins "
                f"{entry.contract_sha}: the dots are of a contract nobody pinned",
            )
        )
    if read.ledger_unreadable is not None:
        holds.append(
            _unknown(slug, "ledger_unreadable", f"ledger not readable: {read.ledger_unreadable}")
        )
    return holds


def _unknown(slug: str, reason: HoldReason, message: str) -> Hold:
    return Hold(slug, None, reason, None, None, None, f"{slug}: {message}")


# --- the green run: when a dot's counted green time began (a pure rule of its own) ------


def counted_since(seen: Observation, pin: str | None) -> str | None:
    """When the dot's counted green run began: the window rule (:mod:`petrova.ledger.window`)."""
    return green_window(seen.history, pin=pin).start


def _restart_note(window: Window) -> str:
    """`` (window restarted at T by ...)`` when something in the kept history did."""
    if window.restart is None:
        return ""
    return f" (window {_restarted(window)})"


def _restarted(window: Window) -> str:
    """What restarted the cell's window last, in words for a hold line (SPEC §12)."""
    if window.restart is None:
        return "nothing in the kept history restarted it"
    return f"restarted at {window.restarted_at} by {RESTART_WORDS[window.restart]}"


# --- the holds ----------------------------------------------------------------------

#: The last second a datetime can hold: ``green_at`` is capped there, so a clock near
#: year 9999 gives a far-off green_at rather than an OverflowError.
_LATEST = datetime.max.replace(tzinfo=UTC, microsecond=0)


def _hold(
    slug: str,
    view: CellView,
    dot: Dot,
    stored: Observation | None,
    now: datetime,
    window: timedelta,
    pin: str | None = None,
    counted: Window | None = None,
) -> Hold | None:
    """Why this applicable cell holds its tier back, or ``None`` when it is green.

    ``counted``: the cell's window when the caller has it already."""
    name = f"{slug} {view.integration}"
    status = view.status
    if status == "pending":
        why = (
            "declared pending in the contract"
            if dot.declared == "pending"
            else "nothing observed yet"
        )
        return Hold(
            slug, view.integration, "pending", status, None, None, f"{name}: pending, {why}"
        )
    if stored is None:  # pragma: no cover - only pending cells lack a ledger cell
        return None
    if status == "stale":
        since = stored.last_verified_at
        return Hold(
            slug,
            view.integration,
            "stale",
            status,
            since,
            None,
            f"{name}: stale, no conclusive probe outcome since {since}",
        )
    if status != "ok":
        since = stored.status_since
        message = f"{name}: {status} since {since}"
        if stored.needs_human:
            message += (
                f"; the newest outcome disagrees and waits for a human "
                f"(petrova state promote {slug} {view.integration} ...)"
            )
        return Hold(slug, view.integration, "not_ok", status, since, None, message)
    if view.ok_since is None:
        if dot.declared is None:
            return None  # the repo's contract_unknown hold says it once for every cell
        restarted = counted if counted is not None else green_window(stored.history, pin=pin)
        return Hold(
            slug,
            view.integration,
            "run_broken",
            status,
            restarted.restarted_at,
            None,
            f"{name}: ok, but the dot's green time has not started: the window was "
            f"{_restarted(restarted)}; the {window.days}-day clock starts at the next ok "
            "outcome checked against the pinned contract (evidence_sha of the pin)",
        )
    young = _young(view.ok_since, now, window)
    if young is None:
        return None
    if counted is None:
        counted = green_window(stored.history, pin=pin)
    span, green_at = young
    return Hold(
        slug,
        view.integration,
        "too_young",
        status,
        view.ok_since,
        green_at,
        f"{name}: ok since {view.ok_since}, {span} of "
        f"{window.days}d{_restart_note(counted)}; green at {green_at} if every "
        "outcome until then is ok",
    )


@functools.lru_cache(maxsize=4096)
def _young(ok_since: str, now: datetime, window: timedelta) -> tuple[str, str] | None:
    """How long a green run that began at ``ok_since`` has lasted at ``now`` and when it
    fills the window (``green_at``); ``None`` once it has. Cached: a fleet's probes run
    on shared schedules, so thousands of cells began their runs at the same instants."""
    began = parse_timestamp(ok_since)
    if now - began >= window:
        return None
    return _span(now - began), format_timestamp(min(began, _LATEST - window) + window)


def _span(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24}d {hours % 24}h"
