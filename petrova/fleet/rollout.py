"""The rollout gate: "do not proceed to tier N+1 until tier N has been green for 7 days".

Pure functions over what :func:`petrova.fleet.gather.gather` read and a clock. The dots
are the snapshot's own (same derivation, same staleness), so the gate can never disagree
with the dashboard about what a cell shows.

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
in a window is counted from its oldest kept entry: later, never earlier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from petrova.errors import CONTRACT_UNREADABLE, STATE_UNREADABLE, TierUnknown
from petrova.files.json_strict import to_json_bytes
from petrova.fleet.gather import FleetInputs, RepoInputs
from petrova.ledger.rules import Observation
from petrova.ledger.window import RESTART_WORDS, green_window
from petrova.models import (
    CellStatus,
    RepoEntry,
    SnapshotWarning,
    format_timestamp,
    parse_timestamp,
)
from petrova.render.formats import STATUS_LABELS, text_table
from petrova.terminal import visible

HoldReason = Literal[
    "not_migrated",
    "contract_unknown",
    "contract_drift",
    "ledger_unreadable",
    "sync_failed",
    "pending",
    "not_ok",
    "stale",
    "run_broken",
    "too_young",
]


@dataclass(frozen=True)
class Hold:
    """Why one repo (or one of its cells) keeps its tier from being green, and since when."""

    slug: str
    integration: str | None
    reason: HoldReason
    status: CellStatus | None
    since: str | None
    green_at: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "integration": self.integration,
            "reason": self.reason,
            "status": self.status,
            "since": self.since,
            "green_at": self.green_at,
            "message": self.message,
        }


@dataclass(frozen=True)
class CellView:
    integration: str
    status: CellStatus
    applicable: bool
    needs_human: bool
    ok_since: str | None
    #: The dot is ok on a human's override alone (shown as ``*``, like the snapshot's table).
    override: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "applicable": self.applicable,
            "needs_human": self.needs_human,
            "ok_since": self.ok_since,
        }


@dataclass(frozen=True)
class RepoView:
    slug: str
    migrated: bool
    cells: tuple[CellView, ...]
    holds: tuple[Hold, ...]
    #: When every applicable cell had become ok for good; ``None`` when held back or
    #: when nothing applies (then nothing can hold it back).
    green_since: str | None

    @property
    def green(self) -> bool:
        return not self.holds

    def as_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "migrated": self.migrated,
            "green": self.green,
            "green_since": self.green_since,
            "cells": {c.integration: c.as_dict() for c in self.cells},
            "holds": [h.as_dict() for h in self.holds],
        }


@dataclass(frozen=True)
class TierView:
    tier: int
    repos: tuple[RepoView, ...]

    @property
    def green(self) -> bool:
        return all(r.green for r in self.repos)

    @property
    def holds(self) -> tuple[Hold, ...]:
        return tuple(h for r in self.repos for h in r.holds)

    @property
    def green_since(self) -> str | None:
        if not self.green:
            return None
        times = [r.green_since for r in self.repos if r.green_since is not None]
        return max(times, key=parse_timestamp) if times else None

    @property
    def green_at(self) -> str | None:
        """The earliest the tier can be green: when every hold is only a young ``ok``."""
        holds = self.holds
        if not holds or any(h.green_at is None for h in holds):
            return None
        return max((h.green_at for h in holds if h.green_at), key=parse_timestamp)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "green": self.green,
            "green_since": self.green_since,
            "green_at": self.green_at,
            "repos": [r.as_dict() for r in self.repos],
            "holds": [h.as_dict() for h in self.holds],
        }


@dataclass(frozen=True)
class RolloutReport:
    now: datetime
    days: int
    integration_ids: tuple[str, ...]
    tiers: tuple[TierView, ...]
    warnings: tuple[SnapshotWarning, ...]

    def tier(self, number: int) -> TierView:
        for view in self.tiers:
            if view.tier == number:
                return view
        known = ", ".join(str(t.tier) for t in self.tiers) or "none"
        raise TierUnknown(f"no repo in the registry has tier {number}; tiers: {known}")

    def header(self) -> dict[str, Any]:
        return {"now": format_timestamp(self.now), "days": self.days}

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.header(),
            "integration_ids": list(self.integration_ids),
            "tiers": [t.as_dict() for t in self.tiers],
            "warnings": [w.model_dump(mode="json") for w in self.warnings],
        }


def rollout_report(
    inputs: FleetInputs,
    document: Mapping[str, Any],
    *,
    now: datetime,
    days: int,
) -> RolloutReport:
    """Every tier, in ascending order, its repos in registry order.

    ``document``: the snapshot made from the same ``inputs`` at ``now``
    (:func:`petrova.fleet.snapshot.snapshot_document`), so that the gate reads the very
    dots the dashboard shows.
    """
    window = timedelta(days=days)
    by_tier: dict[int, list[RepoView]] = {}
    for entry, row in zip(inputs.loaded.registry.repos, document["rows"], strict=True):
        repo_inputs = inputs.repos.get(entry.slug)
        observed = repo_inputs.observed if repo_inputs is not None else None
        if "integrations" not in row:
            unmigrated = Hold(
                entry.slug,
                None,
                "not_migrated",
                None,
                None,
                None,
                f"{entry.slug}: not migrated (no contract_sha in the registry)",
            )
            by_tier.setdefault(entry.tier, []).append(
                RepoView(entry.slug, False, (), (unmigrated,), None)
            )
            continue
        cells: list[CellView] = []
        holds = _unknowns(entry, repo_inputs)
        since: list[str] = []
        for integration, shown in row["integrations"].items():
            stored = observed.get(integration) if observed is not None else None
            view = _cell_view(integration, shown, stored, pin=entry.contract_sha)
            cells.append(view)
            if not view.applicable:
                continue
            hold = _hold(
                entry.slug, view, shown, stored, now=now, window=window, pin=entry.contract_sha
            )
            if hold is not None:
                holds.append(hold)
            elif view.ok_since is not None:
                since.append(view.ok_since)
        green_since = max(since, key=parse_timestamp) if since and not holds else None
        by_tier.setdefault(entry.tier, []).append(
            RepoView(entry.slug, True, tuple(cells), tuple(holds), green_since)
        )
    tiers = tuple(TierView(t, tuple(by_tier[t])) for t in sorted(by_tier))
    warnings = tuple(SnapshotWarning(**w) for w in document["warnings"])
    return RolloutReport(now, days, tuple(document["integration_ids"]), tiers, warnings)


def gates_document(report: RolloutReport) -> list[dict[str, Any]]:
    """Each tier's gate as the snapshot carries it (``gates``): what the page shows."""
    return [
        {
            "tier": tier.tier,
            "days": report.days,
            "green": tier.green,
            "green_since": tier.green_since,
            "green_at": tier.green_at,
            "holds": [
                {
                    "slug": h.slug,
                    "integration": h.integration,
                    "reason": h.reason,
                    "message": h.message,
                }
                for h in tier.holds
            ],
        }
        for tier in report.tiers
    ]


def _unknowns(entry: RepoEntry, read: RepoInputs | None) -> list[Hold]:
    """What the gate cannot know about a migrated repo: each one holds its tier."""
    slug = entry.slug
    holds: list[Hold] = []

    def hold(reason: HoldReason, message: str) -> None:
        holds.append(Hold(slug, None, reason, None, None, None, f"{slug}: {message}"))

    said = {w.code: w.message for w in (read.warnings if read is not None else ())}
    if read is not None and read.sync_failure is not None:
        hold("sync_failed", f"its last sync failed ({read.sync_failure}); what was read may be old")
    if read is None or read.declared is None:
        why = said.get(CONTRACT_UNREADABLE, "the contract was not read")
        hold("contract_unknown", f"contract not read: {why}")
    elif read.contract_sha != entry.contract_sha:
        hold(
            "contract_drift",
            f"the contract's sha is {read.contract_sha}, the registry pins "
            f"{entry.contract_sha}: the dots are of a contract nobody pinned",
        )
    if read is not None and STATE_UNREADABLE in said:
        hold("ledger_unreadable", f"ledger not readable: {said[STATE_UNREADABLE]}")
    return holds


def counted_since(seen: Observation, pin: str | None) -> str | None:
    """When the dot's counted green run began: the window rule (:mod:`petrova.ledger.window`)."""
    return green_window(seen.history, pin=pin).start


def _restart_note(stored: Observation, pin: str | None) -> str:
    """`` (window restarted at T by ...)`` when something in the kept history did."""
    if green_window(stored.history, pin=pin).restart is None:
        return ""
    return f" (window {_restarted(stored, pin)})"


def _restarted(stored: Observation, pin: str | None) -> str:
    """What restarted the cell's window last, in words for a hold line (SPEC §12)."""
    window = green_window(stored.history, pin=pin)
    if window.restart is None:
        return "nothing in the kept history restarted it"
    return f"restarted at {window.restarted_at} by {RESTART_WORDS[window.restart]}"


def _cell_view(
    integration: str, shown: Mapping[str, Any], stored: Observation | None, *, pin: str | None
) -> CellView:
    declared = shown["declared"]
    applicable = not (shown["applicability"] == "not_applicable" or declared == "not_applicable")
    counted = (
        counted_since(stored, pin)
        if stored is not None and shown["status"] == "ok" and declared == "wired"
        else None
    )
    needs_human = bool(shown.get("needs_human", False))
    override = "override" in shown
    return CellView(integration, shown["status"], applicable, needs_human, counted, override)


def _hold(
    slug: str,
    view: CellView,
    shown: Mapping[str, Any],
    stored: Observation | None,
    *,
    now: datetime,
    window: timedelta,
    pin: str | None = None,
) -> Hold | None:
    """Why this applicable cell holds its tier back, or ``None`` when it is green."""
    name = f"{slug} {view.integration}"
    status = view.status
    if status == "pending":
        why = (
            "declared pending in the contract"
            if shown["declared"] == "pending"
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
        if shown["declared"] is None:
            return None  # the repo's contract_unknown hold says it once for every cell
        restarted = green_window(stored.history, pin=pin)
        return Hold(
            slug,
            view.integration,
            "run_broken",
            status,
            restarted.restarted_at,
            None,
            f"{name}: ok, but the dot's green time has not started: the window was "
            f"{_restarted(stored, pin)}; the {window.days}-day clock starts at the next ok "
            "outcome checked against the pinned contract (evidence_sha of the pin)",
        )
    ok_since = parse_timestamp(view.ok_since)
    if now - ok_since < window:
        # Capped at the last second datetime can hold, so a clock near year 9999
        # gives a far-off green_at rather than an OverflowError.
        latest = datetime.max.replace(tzinfo=UTC, microsecond=0)
        green_at = format_timestamp(min(ok_since, latest - window) + window)
        return Hold(
            slug,
            view.integration,
            "too_young",
            status,
            view.ok_since,
            green_at,
            f"{name}: ok since {view.ok_since}, {_span(now - ok_since)} of "
            f"{window.days}d{_restart_note(stored, pin)}; green at {green_at} if every "
            "outcome until then is ok",
        )
    return None


def _span(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24}d {hours % 24}h"


# --- reporters -------------------------------------------------------------------------


def status_json(report: RolloutReport) -> bytes:
    return to_json_bytes(report.as_dict())


def status_text(report: RolloutReport) -> bytes:
    """Each tier: its repos, migrated or not, each dot, green or not, and what holds it."""
    parts: list[str] = []
    for tier in report.tiers:
        parts.append(_tier_heading(tier, report) + "\n")
        headers = ["slug", "migrated", *report.integration_ids, "green"]
        rows = []
        for repo in tier.repos:
            dots = {c.integration: _dot(c) for c in repo.cells}
            rows.append(
                [
                    repo.slug,
                    "yes" if repo.migrated else "no",
                    *(dots.get(i, "-") for i in report.integration_ids),
                    "yes" if repo.green else "no",
                ]
            )
        parts.append(text_table(headers, rows))
        parts += [visible(f"  held: {h.message}") + "\n" for h in tier.holds]
        parts.append("\n")
    if any(c.needs_human for t in report.tiers for r in t.repos for c in r.cells):
        parts.append("! = the newest outcome waits for a human: petrova state promote\n")
    if any(c.override for t in report.tiers for r in t.repos for c in r.cells):
        parts.append("* = ok on a human's override, not yet observed ok\n")
    return "".join(parts).encode()


def gate_text(tier: TierView, report: RolloutReport) -> bytes:
    lines = [_tier_heading(tier, report)]
    lines += [visible(f"  held: {h.message}") for h in tier.holds]
    return ("\n".join(lines) + "\n").encode()


def gate_json(tier: TierView, report: RolloutReport) -> bytes:
    return to_json_bytes({**report.header(), **tier.as_dict()})


def _tier_heading(tier: TierView, report: RolloutReport) -> str:
    at = format_timestamp(report.now)
    if tier.green:
        since = f"ok since {tier.green_since}" if tier.green_since else "nothing applicable"
        return f"tier {tier.tier}: green for the {report.days}-day window at {at} ({since})"
    count = len(tier.holds)
    earliest = f"; green at {tier.green_at} at the earliest" if tier.green_at else ""
    return (
        f"tier {tier.tier}: held back at {at} ({count} hold(s), {report.days}-day window){earliest}"
    )


def _dot(cell: CellView) -> str:
    return (
        STATUS_LABELS[cell.status]
        + ("!" if cell.needs_human else "")
        + ("*" if cell.override else "")
    )
