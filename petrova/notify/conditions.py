"""What needs a human, and what changed since the last run: pure functions (SPEC §13).

Input is what a snapshot is made of (the typed document, each cell's observation with
its history, the sync manifest, the merged contracts read from the workspace); output is
a list of :class:`Condition` (one GitHub issue each) and of :class:`Transition` (one chat
message each). Nothing here reads a file, sends a request or looks at a clock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from petrova.models import DailyRun, FleetSnapshot, Gate
from petrova.notify.escape import safe

Kind = Literal["awaiting_promotion", "unhealthy", "sync_failing", "unpinned"]
#: Runs in a row whose sync failed before it becomes a condition: one failure is weather.
SYNC_FAILURES_TO_REPORT = 2
#: Outcomes shown as evidence in an issue body.
EVIDENCE_OUTCOMES = 5
UNHEALTHY = ("degraded", "failing", "stale")


@dataclass(frozen=True)
class Outcome:
    at: str
    what: str  # an outcome, or "promotion"
    detail: str | None


@dataclass(frozen=True)
class Condition:
    """One thing that needs a human: one issue, found again by :attr:`key`."""

    kind: Kind
    slug: str
    integration: str | None
    #: What is wrong, in a sentence (petrova's words; inputs are escaped when rendered).
    summary: str
    since: str | None
    #: The facts whose change is worth an edit (digested); times of routine outcomes are
    #: left out so that a cell failing the same way every day is not edited every day.
    facts: tuple[tuple[str, str], ...]
    evidence: tuple[Outcome, ...] = ()
    #: The exact command that fixes it, when there is one.
    command: str | None = None
    #: The fix in words (petrova's), e.g. the PR to review.
    fix: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.slug}/{self.integration or '-'}"

    @property
    def digest(self) -> str:
        data = json.dumps([self.kind, self.summary, list(self.facts), self.command, self.fix])
        return hashlib.sha256(data.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CellView:
    """One cell as the snapshot shows it, with its ledger history (oldest first)."""

    slug: str
    integration: str
    tier: int
    status: str
    needs_human: bool
    status_since: str | None
    history: tuple[Outcome, ...] = ()


@dataclass(frozen=True)
class SyncView:
    slug: str
    failed_runs: int
    since: str | None
    code: str | None
    message: str | None


@dataclass(frozen=True)
class PinView:
    """A consumer's merged contract (valid) next to what the registry pins."""

    slug: str
    sha: str
    commit: str
    pinned: str | None
    #: Applicability the pin would add (``id: value``), in catalogue order.
    adds: tuple[tuple[str, str], ...] = ()
    #: Why the pin cannot be made as it stands (an applicability conflict), if so.
    conflict: str | None = None
    #: The open pin PR, when petrova knows one.
    pr: int | None = None


@dataclass(frozen=True)
class FleetView:
    snapshot: FleetSnapshot
    cells: tuple[CellView, ...]
    syncs: tuple[SyncView, ...] = ()
    pins: tuple[PinView, ...] = ()
    #: The last daily run's record, as the snapshot carries it (``last_run``), if any.
    daily: DailyRun | None = field(default=None)


# --- building the view ---------------------------------------------------------------------


def history_of(entries: Iterable[Mapping[str, Any]]) -> tuple[Outcome, ...]:
    """A ledger cell's history (JSON form) as outcomes; promotions show as such."""
    out = []
    for e in entries:
        what = e.get("outcome") or ("promotion" if "promoted_to" in e else "entry")
        out.append(Outcome(str(e.get("at", "")), str(what), e.get("detail") or e.get("reason")))
    return tuple(out)


def count_sync_failures(
    previous: Mapping[str, Any] | None, *, status: str | None, synced_at: str | None
) -> dict[str, Any]:
    """Failed runs in a row: a new failed record counts once (by its ``synced_at``, so a
    re-run of notify does not count again), an ``ok`` one resets."""
    prev = dict(previous or {})
    if status != "failed" or synced_at is None:
        return {"failed_runs": 0, "last": synced_at, "since": None}
    if prev.get("last") == synced_at:
        return prev
    return {
        "failed_runs": int(prev.get("failed_runs", 0)) + 1,
        "last": synced_at,
        "since": prev.get("since") or synced_at,
    }


# --- conditions ----------------------------------------------------------------------------


def promote_command(slug: str, integration: str) -> str:
    return (
        f'petrova state promote {slug} {integration} --by human:YOUR-NAME --reason "WHY IT IS OK"'
    )


def pin_command(slug: str) -> str:
    return f"petrova registry pin {slug} --workspace WORKSPACE"


def conditions(view: FleetView) -> list[Condition]:
    """Everything that needs a human, in a stable order (by key)."""
    found: list[Condition] = []
    for cell in view.cells:
        found.extend(_cell_conditions(cell))
    for sync in view.syncs:
        if sync.failed_runs >= SYNC_FAILURES_TO_REPORT:
            found.append(
                Condition(
                    "sync_failing",
                    sync.slug,
                    None,
                    f"petrova sync failed for {sync.slug} on {sync.failed_runs} runs in a row",
                    sync.since,
                    (("code", sync.code or ""), ("message", sync.message or "")),
                    fix="Make the repo reachable at its registry url and default branch "
                    "(credentials, renamed branch, moved repo), then wait for the next run.",
                )
            )
    for pin in view.pins:
        if pin.sha == pin.pinned:
            continue
        facts: tuple[tuple[str, str], ...] = (
            ("sha", pin.sha),
            ("pinned", pin.pinned or ""),
            ("conflict", pin.conflict or ""),
        )
        if pin.conflict is not None:
            fix = "Settle the conflict between the contract and the registry, by pull request."
        elif pin.pr is not None:
            fix = f"Review and merge the pin pull request #{pin.pr}."
            facts += (("pr", str(pin.pr)),)
        else:
            fix = "Pin it in the registry by pull request."
        found.append(
            Condition(
                "unpinned",
                pin.slug,
                None,
                f"the contract merged on {pin.slug}'s default branch is not the registry's pin",
                None,
                facts,
                command=None if pin.conflict or pin.pr else pin_command(pin.slug),
                fix=fix,
            )
        )
    return sorted(found, key=lambda c: c.key)


def _cell_conditions(cell: CellView) -> list[Condition]:
    newest = _newest_conclusive(cell.history)
    evidence = cell.history[-EVIDENCE_OUTCOMES:]
    base_facts: tuple[tuple[str, str], ...] = (
        ("status", cell.status),
        ("since", cell.status_since or ""),
    )
    if newest is not None:
        base_facts += (("outcome", newest.what), ("detail", newest.detail or ""))
    if cell.needs_human:
        return [
            Condition(
                "awaiting_promotion",
                cell.slug,
                cell.integration,
                f"probes see {cell.integration} on {cell.slug} recovered; the dot stays "
                f"{cell.status} until a human promotes it",
                cell.status_since,
                base_facts,
                evidence,
                command=promote_command(cell.slug, cell.integration),
                fix="Check that the recovery is real, then promote (from a checkout of the "
                "control plane, by pull request).",
            )
        ]
    if cell.status in UNHEALTHY:
        return [
            Condition(
                "unhealthy",
                cell.slug,
                cell.integration,
                f"{cell.integration} on {cell.slug} is {cell.status}",
                cell.status_since,
                base_facts,
                evidence,
                fix=(
                    "Find out why the probe cannot conclude (token, endpoint, network); "
                    "the dot comes back with the next conclusive outcome."
                    if cell.status == "stale"
                    else "Fix the integration; once probes see it ok again, petrova asks "
                    "for the promotion."
                ),
            )
        ]
    return []


def _newest_conclusive(history: Sequence[Outcome]) -> Outcome | None:
    for entry in reversed(history):
        if entry.what in ("ok", "degraded", "failing", "not_applicable", "promotion"):
            return entry
    return history[-1] if history else None


# --- transitions (chat) --------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """A change worth one chat message; ``key`` and ``state`` say what was told."""

    key: str
    state: str
    text: str


def cell_phase(cell: CellView) -> str:
    """What chat has told about a cell: its status, and whether a human is awaited."""
    return cell.status + ("+human" if cell.needs_human else "")


def cell_transition(cell: CellView, told: str | None) -> Transition | None:
    """The message for a cell whose phase differs from what was told, if it is news.

    Nothing told yet counts as a healthy cell: a first run reports what is wrong now
    and stays quiet about what is fine.
    """
    now = cell_phase(cell)
    if now == told:
        return None
    key = f"cell/{cell.slug}/{cell.integration}"
    where = f"{safe(cell.integration)} on {safe(cell.slug)}"
    before = (told or "ok").split("+")[0]
    before_human = told is not None and told.endswith("+human")
    if cell.needs_human and not before_human:
        text = (
            f"{where}: probes see a recovery; "
            f"awaiting a human to promote it (the dot is {cell.status})"
        )
    elif cell.status in UNHEALTHY and cell.status != before:
        text = f"{where}: {before} → {cell.status} (demoted)"
    elif cell.status == "ok" and before in UNHEALTHY:
        text = f"{where}: {before} → ok (promoted or overridden)"
    else:
        return Transition(key, now, "")  # remembered, not news
    return Transition(key, now, text)


def gate_transition(gate: Gate, told: bool | None) -> Transition | None:
    """Tier gate opened or closed; the first sight of a gate is remembered, not told."""
    if told is None or told == gate.green:
        return None if told == gate.green else Transition(f"gate/{gate.tier}", _g(gate), "")
    if gate.green:
        text = f"tier {gate.tier}'s gate opened: green for {gate.days} days"
        if gate.green_since:
            text += f" (since {gate.green_since})"
    else:
        holds = len(gate.holds)
        text = f"tier {gate.tier}'s gate closed ({holds} hold{'s' if holds != 1 else ''})"
    return Transition(f"gate/{gate.tier}", _g(gate), text)


def _g(gate: Gate) -> str:
    return "open" if gate.green else "closed"


def sync_transition(sync: SyncView, told: str | None) -> Transition | None:
    failing = sync.failed_runs >= SYNC_FAILURES_TO_REPORT
    state = "failing" if failing else "ok"
    if state == (told or "ok"):
        return None
    text = (
        f"sync of {safe(sync.slug)} failing on {sync.failed_runs} runs in a row" if failing else ""
    )
    return Transition(f"sync/{sync.slug}", state, text)
