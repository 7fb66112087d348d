"""The fleet snapshot (SPEC §7), from the registry to the checked JSON document.

The pipeline, top to bottom (:func:`make_snapshot`), each step handing the next typed
values (``petrova.models``), never text to be read back:

1. **load**: the registry, checked against the catalogue (``documents.registry``);
2. **read**: every migrated repo's contract and ledger (``fleet.gather``); per-repo
   trouble becomes typed problems and warnings, never a stop;
3. **derive**: each row and each cell, once, into frozen values (:func:`derive_snapshot`,
   pure functions, no file touched);
4. **gate**: each tier's rollout gate over those very dots (``fleet.rollout``);
5. **encode**: the document, once, checked against ``contracts/snapshot.schema.json``,
   into deterministic JSON bytes.

The command then renders the typed result (``render``: table, Markdown, the page) or
writes the bytes (``files.disk.write_atomic``) and publishes them (``delivery``).
Nothing here reaches back up.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from petrova import __version__, clock
from petrova.documents.catalogue import Catalogue
from petrova.documents.registry import load_registry
from petrova.documents.schemas import check_snapshot
from petrova.errors import APPLICABILITY_CONFLICT, REVIEW_OVERDUE, TIMESTAMP_IN_FUTURE
from petrova.files.json_strict import to_json_bytes
from petrova.fleet.gather import NOTHING_READ, Declared, FleetInputs, gather
from petrova.fleet.rollout import rollout_report
from petrova.fleet.runs import last_run
from petrova.ledger.rules import DEFAULT_STALE_AFTER, FUTURE_SKEW, Observation, observed_status
from petrova.models import (
    CELL_HISTORY_LIMIT,
    Applicability,
    ApplicabilityDetail,
    ApplicabilityValue,
    CellStatus,
    Dot,
    FleetRow,
    FleetSnapshot,
    Mark,
    Notice,
    Override,
    RepoEntry,
    Totals,
    format_timestamp,
    parse_timestamp,
)
from petrova.render.formats import snapshot_document

#: The window the snapshot's ``gates`` use: the runbook's "green for 7 days".
GATE_DAYS = 7


@dataclass(frozen=True)
class Made:
    """A snapshot as the command writes it: the typed result, and its JSON document
    (checked against its schema), encoded once."""

    snapshot: FleetSnapshot
    data: bytes


def make_snapshot(
    registry: Path,
    catalogue: Catalogue,
    *,
    state_dir: Path,
    workspace: Path | None,
    now: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> Made:
    """The fleet snapshot at ``now``: load, read, derive, gate, encode."""
    loaded = load_registry(registry, catalogue, today=now.date())
    inputs = gather(loaded, state_dir=state_dir, workspace=workspace)
    snapshot = fleet_snapshot(inputs, state_dir=state_dir, now=now, stale_after=stale_after)
    document = snapshot_document(snapshot)
    check_snapshot(document, catalogue)
    return Made(snapshot, to_json_bytes(document))


def fleet_snapshot(
    inputs: FleetInputs,
    *,
    state_dir: Path,
    now: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> FleetSnapshot:
    """Derive and gate what :func:`gather` read: the typed snapshot, before encoding
    (``notify`` works on this very value)."""
    derived = derive_snapshot(inputs, now=now, stale_after=stale_after)
    report = rollout_report(inputs, derived, now=now, days=GATE_DAYS)
    return replace(
        derived,
        gates=tuple(tier.gate(GATE_DAYS) for tier in report.tiers),
        last_run=last_run(state_dir),
    )


def snapshot_time() -> datetime:
    """Now, by the one clock (``SOURCE_DATE_EPOCH`` when set, for reproducible snapshots)."""
    return clock.now()


def derive_status(
    *, applicability: str | None, declared: str | None, observed: str | None
) -> CellStatus:
    """SPEC §7, in order: not applicable by policy or intent; declared pending; observation."""
    if applicability == "not_applicable" or declared == "not_applicable":
        return "not_applicable"
    if declared == "pending":
        return "pending"
    if observed is None:
        return "pending"
    return observed  # type: ignore[return-value]  # ObservedStatus is a subset of CellStatus


def derive_snapshot(
    inputs: FleetInputs, *, now: datetime, stale_after: timedelta = DEFAULT_STALE_AFTER
) -> FleetSnapshot:
    """Every row and cell, derived once from what was read; no gates yet.

    Warnings keep the order a reader expects: the registry's findings, the fleet's, then
    each repo's in registry order (what reading it found, then each cell's).
    """
    loaded = inputs.loaded
    ids = loaded.catalogue.ids
    warnings: list[Notice] = [
        Notice(f.slug, f.code, f"{f.location}: {f.message}") for f in loaded.findings
    ]
    warnings.extend(inputs.warnings)
    context = _Context.at(now, stale_after)
    rows: list[FleetRow] = []
    migrated = 0
    for entry in loaded.registry.repos:
        if not entry.migrated:
            rows.append(_row(entry, None, None))
            continue
        migrated += 1
        slug = entry.slug
        repo_inputs = inputs.repos.get(slug, NOTHING_READ)
        warnings.extend(repo_inputs.warnings)
        policies = entry.integrations_applicability
        declared = repo_inputs.declared or _NONE
        observed = repo_inputs.observed or _NONE
        cells = {
            i: _cell(slug, i, policies.get(i), declared.get(i), observed.get(i), context, warnings)
            for i in ids
        }
        rows.append(_row(entry, repo_inputs.commit, cells))
    return FleetSnapshot(
        generated_at=context.text,
        generator=f"petrova {__version__}",
        integration_ids=tuple(ids),
        totals=Totals(len(rows), migrated),
        warnings=tuple(warnings),
        rows=tuple(rows),
    )


#: What a repo whose contract or ledger was not read has for each integration.
_NONE: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class _Context:
    """What every cell of one snapshot shares: ``now`` as each cell compares with it,
    worked out once per snapshot rather than once per cell (a 10,000-repo fleet has
    40,000 cells), and the dots made so far."""

    now: datetime
    text: str
    stale_after: timedelta
    #: An entry at or after this is in the future (``None``: nothing can be, near year 9999).
    future_from: datetime | None
    #: Each distinct dot once: probes run on shared schedules, so a fleet's 40,000 cells
    #: are a few thousand distinct dots. Equal dots are one object, which spares memory
    #: and lets the document make each cell's JSON once, looked up by identity
    #: (:func:`petrova.render.formats.snapshot_document`).
    dots: dict[Dot, Dot]

    @classmethod
    def at(cls, now: datetime, stale_after: timedelta) -> _Context:
        try:
            future_from: datetime | None = now + FUTURE_SKEW
        except OverflowError:
            future_from = None
        return cls(now, format_timestamp(now), stale_after, future_from, {})

    def overdue(self, review_by: str) -> bool:
        """Overdue once the day is over: ``now`` past the last instant of ``review_by``."""
        return self.now > _review_deadline(review_by)


def _row(entry: RepoEntry, commit: str | None, cells: dict[str, Dot] | None) -> FleetRow:
    return FleetRow(
        entry.slug,
        entry.url,
        entry.role,
        entry.profile,
        entry.tier,
        entry.default_branch,
        entry.contract_sha,
        commit,
        cells,
    )


def _cell(
    slug: str,
    integration_id: str,
    policy: Applicability | None,
    declared_cell: Declared | None,
    seen: Observation | None,
    context: _Context,
    warnings: list[Notice],
) -> Dot:
    """One dot (SPEC §7) from the registry's policy, the contract's word and the ledger."""
    detail: ApplicabilityDetail | None = None
    applicability: ApplicabilityValue | None
    if isinstance(policy, ApplicabilityDetail):
        detail, applicability = policy, policy.value
    else:
        applicability = policy
    declared = declared_cell.status if declared_cell is not None else None
    if applicability == "not_applicable" and declared == "wired":
        warnings.append(
            Notice(
                slug,
                APPLICABILITY_CONFLICT,
                f"{integration_id}: the contract declares it wired but the registry "
                "says not_applicable; the registry wins until one of them is changed",
            )
        )
    observed = last_verified_at = override = history = None
    needs_human = False
    if seen is not None:
        observed = observed_status(seen, now=context.now, stale_after=context.stale_after)
        last_verified_at = seen.last_verified_at
        needs_human = seen.needs_human
        if context.future_from is not None and _in_future(seen, context.future_from):
            warnings.append(_future_notice(slug, integration_id, seen, context))
        if seen.history:
            history = cell_history(seen.history)
    review_by = None
    if detail is not None and detail.review_by is not None:
        review_by = detail.review_by
    elif declared_cell is not None and declared_cell.review_by is not None:
        review_by = declared_cell.review_by
        if context.overdue(review_by):
            warnings.append(
                Notice(
                    slug,
                    REVIEW_OVERDUE,
                    f"{integration_id}: the contract's not_applicable was due for "
                    f"review on {review_by}",
                )
            )
    # No applicability yet (the catalogue gained the id since the pin): policy has not
    # spoken, so the dot is pending whatever the contract or the probes say.
    status: CellStatus = (
        "pending"
        if policy is None
        else derive_status(applicability=applicability, declared=declared, observed=observed)
    )
    if seen is not None and seen.override is not None and status == "ok":
        override = Override(seen.override["at"], seen.override["by"], seen.override["reason"])
    dot = Dot(
        status,
        applicability,
        declared,
        observed,
        last_verified_at,
        review_by,
        needs_human,
        override,
        history,
    )
    return context.dots.setdefault(dot, dot)


def cell_history(history: Sequence[Mapping[str, Any]]) -> tuple[Mark, ...]:
    """The newest ledger entries as the snapshot carries them: time, outcome (or
    ``promoted``) and the probe's detail (or the promotion's reason), oldest first."""
    return tuple(
        [
            Mark(e["at"], e["outcome"], e.get("detail"))
            if "outcome" in e
            else Mark(e["at"], "promoted", e.get("reason"))
            for e in (
                history if len(history) <= CELL_HISTORY_LIMIT else history[-CELL_HISTORY_LIMIT:]
            )
        ]
    )


def _in_future(seen: Observation, future_from: datetime) -> bool:
    """The ledger entry is later than the snapshot's time: a replay wrote the future
    into it. Future while ``now <= latest - skew`` (a probe runner's clock may drift a
    little), that is ``latest >= now + skew``: :attr:`_Context.future_from`."""
    verified, newest = seen.last_verified_at, seen.newest_at
    # ``|``, not ``or``: both times are read, as the rule reads both (a bad one is refused)
    return (verified is not None and parse_timestamp(verified) >= future_from) | (
        newest is not None and parse_timestamp(newest) >= future_from
    )


def _future_notice(slug: str, integration_id: str, seen: Observation, context: _Context) -> Notice:
    times = [t for t in (seen.last_verified_at, seen.newest_at) if t is not None]
    latest = max(times, key=parse_timestamp)
    return Notice(
        slug,
        TIMESTAMP_IN_FUTURE,
        f"{integration_id}: the ledger has an entry at {latest}, later than this "
        f"snapshot's time ({context.text}); a replay with --now may have "
        "written the future into the real ledger",
    )


@functools.cache
def _review_deadline(review_by: str) -> datetime:
    """The last instant of ``review_by`` (UTC); the same few dates recur across a fleet."""
    return datetime.combine(date.fromisoformat(review_by), time.max, tzinfo=UTC)
