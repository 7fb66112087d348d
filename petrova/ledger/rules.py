"""The ledger's rules as pure functions (SPEC §6): hysteresis, promotion, staleness.

Probes demote, humans promote: an outcome moves a cell's status only down (``ok ->
degraded`` after 2 non-ok outcomes in a row, ``degraded -> failing`` after 3 more); only
:func:`apply_promotion` moves it up. :func:`check_cell` replays a stored history to prove
the stored status follows from it, so a hand edit cannot promote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pydantic import ValidationError

from petrova.errors import (
    Location,
    NothingToPromote,
    Problem,
    PromotionInvalid,
)
from petrova.models import (
    HISTORY_LIMIT,
    HistoryEntry,
    LedgerCell,
    ObservedStatus,
    ProbeEntry,
    PromotionEntry,
    StoredStatus,
    parse_timestamp,
)

#: The fields only the rules write; a hand edit of one is caught by the replay.
DERIVED_FIELDS = (
    "current_status",
    "status_since",
    "last_verified_at",
    "ok_since",
    "needs_human",
    "streak",
)

FieldProblem = tuple[tuple[str | int, ...], str]

DEFAULT_STALE_AFTER = timedelta(hours=72)


CONCLUSIVE = frozenset({"ok", "degraded", "failing", "not_applicable"})


#: status -> (consecutive non-ok outcomes that demote it, the status it demotes to)
DEMOTION: dict[str, tuple[int, StoredStatus]] = {"ok": (2, "degraded"), "degraded": (3, "failing")}


def check_cell(cell: LedgerCell) -> tuple[LedgerCell | None, list[FieldProblem]]:
    """Replay a cell's history; return the cell with absent derived fields filled in.

    A full history (fewer than :data:`HISTORY_LIMIT` entries) is replayed from
    ``pending``. A capped one may have started in any state, so every possible start
    is tried and the cell is accepted when one of them leads to it. Timestamps are
    stored in one form (UTC, ``Z``), so comparing them as strings compares times.
    """
    history = cell.history
    for index in range(1, len(history)):
        if history[index].at < history[index - 1].at:
            return None, [
                (
                    ("history", index, "at"),
                    f"{history[index].at} is earlier than the entry before it "
                    f"({history[index - 1].at}); history is kept in time order",
                )
            ]
    given = cell.model_fields_set | {"current_status"}
    stored = state_of(cell)
    for prune in (True, False):  # the likely starts first; all of them to explain a "no"
        results, refused = _replay_all(possible_starts(cell, prune=prune), history)
        for result in results:
            if all(getattr(result, f) == getattr(stored, f) for f in DERIVED_FIELDS if f in given):
                filled = {f: getattr(result, f) for f in DERIVED_FIELDS if f not in given}
                return (cell.model_copy(update=filled) if filled else cell), []
    if not results and refused is not None:
        index, message = refused
        return None, [(("history", index), message)]
    for name in DERIVED_FIELDS:
        if name not in given:
            continue
        possible = sorted({repr(getattr(r, name)) for r in results})
        if repr(getattr(cell, name)) not in possible:
            return None, [
                (
                    (name,),
                    f"{getattr(cell, name)!r} does not follow from the recorded history, "
                    f"which gives {' or '.join(possible)}; the ledger was edited outside "
                    "petrova (restore it from version control; change it only with "
                    "`petrova state record` and `petrova state promote`)",
                )
            ]
    return None, [
        (
            ("current_status",),
            "these fields together do not follow from the recorded history; the ledger "
            "was edited outside petrova (restore it from version control)",
        )
    ]


_REACHABLE: dict[str, frozenset[str]] = {
    "ok": frozenset({"ok", "degraded", "failing"}),
    "degraded": frozenset({"degraded", "failing"}),
    "failing": frozenset({"failing"}),
    "not_applicable": frozenset({"not_applicable"}),
}


def possible_starts(cell: LedgerCell, *, prune: bool = False) -> list[State]:
    if len(cell.history) < HISTORY_LIMIT:
        return [State()]
    first = cell.history[0].at

    def before(value: str | None) -> str | None:
        return value if value is not None and value <= first else None

    starts: list[State] = [State()]
    streaks: dict[StoredStatus, tuple[int, ...]] = {
        "ok": (0, 1),
        "degraded": (0, 1, 2),
        "failing": (0,),
        "not_applicable": (0,),
    }
    # Without a promotion a status only falls, so a start above the stored status with
    # nothing to lift it cannot lead there: skip it (most capped cells keep 2 of 15 starts).
    prune = prune and not any(isinstance(e, PromotionEntry) for e in cell.history)
    for status, counts in streaks.items():
        if prune and cell.current_status not in _REACHABLE[status]:
            continue
        for streak in counts:
            for needs_human in (False, True):
                starts.append(
                    State(
                        current_status=status,
                        status_since=before(cell.status_since),
                        last_verified_at=before(cell.last_verified_at),
                        ok_since=before(cell.ok_since) if status == "ok" else None,
                        needs_human=needs_human,
                        streak=streak,
                    )
                )
    return starts


def _replay_all(
    starts: Sequence[State], entries: Sequence[HistoryEntry]
) -> tuple[list[State], tuple[int, str] | None]:
    """Replay every start in step, merging starts that have become the same state.

    Different starts converge within a few entries, so a capped history costs little
    more than one replay. Returns the end states and the last refusal, if any.
    """
    states = dict.fromkeys(starts)
    refused: tuple[int, str] | None = None
    for index, entry in enumerate(entries):
        after: dict[State, None] = {}
        for state in states:
            if isinstance(entry, ProbeEntry):
                after[step_outcome(state, entry.outcome, entry.at)] = None
                continue
            try:
                after[step_promotion(state, entry.at, override=bool(entry.override))] = None
            except NothingToPromote as exc:
                refused = (index, f"a promotion cannot happen here: {exc.message}")
        states = after
        if not states:
            break
    return list(states), refused


def replay(start: LedgerCell, entries: Sequence[HistoryEntry]) -> LedgerCell:
    """Apply ``entries`` in order to ``start``: the reference reading of the rules."""
    cell = start
    for index, entry in enumerate(entries):
        if isinstance(entry, ProbeEntry):
            cell = apply_outcome(cell, entry)
            continue
        try:
            cell = apply_promotion(cell, entry)
        except NothingToPromote as exc:
            raise _ReplayRefusal(f"a promotion cannot happen here: {exc.message}", index) from None
    return cell


class _ReplayRefusal(NothingToPromote):
    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def _capped(history: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    return list(history[-HISTORY_LIMIT:])


class State(NamedTuple):
    """A cell's derived fields (everything but its history): what the rules move.

    The rules work on this plain tuple so that replaying histories on every load is
    cheap; :func:`apply_outcome` and :func:`apply_promotion` wrap them for cells.
    """

    current_status: StoredStatus = "pending"
    status_since: str | None = None
    last_verified_at: str | None = None
    ok_since: str | None = None
    needs_human: bool = False
    streak: int = 0


def state_of(cell: LedgerCell) -> State:
    return State(
        cell.current_status,
        cell.status_since,
        cell.last_verified_at,
        cell.ok_since,
        cell.needs_human,
        cell.streak,
    )


def step_outcome(state: State, outcome: str, at: str) -> State:
    """The rule for one probe outcome. Never raises a status; see the module docstring."""
    if outcome == "unreachable":
        return state._replace(ok_since=None)
    status, status_since, _, ok_since, needs_human, streak = state
    if status == "pending":
        status, status_since, streak, needs_human = outcome, at, 0, False  # type: ignore[assignment]
    elif outcome == "ok":
        streak = 0
        needs_human = status != "ok"
    elif outcome == "not_applicable":
        needs_human = status != "not_applicable"
    elif status == "not_applicable":
        needs_human = True
    else:
        needs_human = False
        if status in DEMOTION:
            limit, lower = DEMOTION[status]
            streak += 1
            if streak >= limit:
                status, status_since, streak = lower, at, 0
    ok_run = outcome == "ok" and status == "ok"
    return State(
        status, status_since, at, (ok_since or at) if ok_run else None, needs_human, streak
    )


def step_promotion(state: State, at: str, *, override: bool = False) -> State:
    """The rule for a promotion; :class:`NothingToPromote` when there is nothing to lift.

    An override lifts the dot as a promotion does, but starts no green time: ``ok_since``
    stays empty until a probe sees ``ok`` (SPEC §12).
    """
    status = state.current_status
    if status == "pending":
        raise NothingToPromote(
            "the cell is pending: nothing has been observed yet, and the first conclusive "
            "probe outcome sets its status"
        )
    if status == "ok" and not state.needs_human and state.streak == 0:
        raise NothingToPromote("the cell is already ok with nothing waiting for a human")
    return State(
        "ok",
        state.status_since if status == "ok" else at,
        state.last_verified_at,
        None if override else state.ok_since or at,
        False,
        0,
    )


def _with_state(cell: LedgerCell, state: State, history: list[HistoryEntry]) -> LedgerCell:
    return cell.model_copy(update={**state._asdict(), "history": history})


def apply_outcome(cell: LedgerCell, entry: ProbeEntry) -> LedgerCell:
    """The cell after one probe outcome. Never raises a status; see the module docstring."""
    state = step_outcome(state_of(cell), entry.outcome, entry.at)
    return _with_state(cell, state, _capped([*cell.history, entry]))


def promote(cell: LedgerCell, by: str, reason: str, at: str) -> LedgerCell:
    """A human lifting the cell to ``ok`` (the only way up); the entry records who and why."""
    return apply_promotion(cell, promotion_entry(by, reason, at))


def promotion_entry(by: str, reason: str, at: str, *, override: bool = False) -> PromotionEntry:
    """Check a promotion's who, why and when before any ledger is touched."""
    try:
        return PromotionEntry(at=at, by=by, reason=reason, override=True if override else None)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            name = str(err["loc"][0]) if err["loc"] else "promotion"
            option = {"by": "--by", "reason": "--reason", "at": "--now"}.get(name, name)
            hint = {
                "by": " (expected human:NAME, e.g. human:ada)",
                "reason": " (a sentence of 1 to 500 characters saying why)",
            }.get(name, "")
            problems.append(Problem(f"{err['msg']}{hint}", Location(field=option)))
        raise PromotionInvalid("the promotion is not valid", problems=problems) from None


def apply_promotion(cell: LedgerCell, entry: PromotionEntry) -> LedgerCell:
    state = step_promotion(state_of(cell), entry.at, override=bool(entry.override))
    return _with_state(cell, state, _capped([*cell.history, entry]))


def newest_at(cell: LedgerCell) -> datetime | None:
    """The time of the cell's newest entry: new entries may not be older."""
    return parse_timestamp(cell.history[-1].at) if cell.history else None


def run_broken_at(history: Sequence[Mapping[str, Any]]) -> str | None:
    """When the cell's run of ``ok`` outcomes ended: the first entry after the last ok.

    ``None`` when the newest entry is an ok outcome or a promotion (nothing broke it).
    ``history`` is in its JSON form, as :func:`observe` reads it.
    """
    since: str | None = None
    for entry in reversed(history):
        if entry.get("outcome", "ok") == "ok":  # an ok outcome, or a promotion
            break
        since = entry["at"]
    return since


#: How far ahead of the clock a ledger entry may be before it counts as the future:
#: the clocks of probe runners drift a little; a replay's --now is days ahead.
FUTURE_SKEW = timedelta(minutes=5)


class Observation(NamedTuple):
    """What the snapshot and the gate read of a cell: its fields and a few facts of its
    history, small enough to hold (and cache) for a whole fleet."""

    current_status: StoredStatus
    status_since: str | None
    last_verified_at: str | None
    ok_since: str | None
    needs_human: bool
    #: Staleness counts from here: the newest conclusive outcome, else the first probe.
    stale_from: str | None
    #: The newest entry's time, and what it was: an outcome, or "promotion".
    newest_at: str | None
    newest_what: str | None
    #: See :func:`run_broken_at`.
    run_broken_at: str | None
    #: The cell's history in its JSON form, as read (shared, not copied): the gate reads
    #: its green window (:mod:`petrova.ledger.window`) from it for the cells that show ok.
    history: Sequence[Mapping[str, Any]] = ()
    #: The override (its JSON form) the dot stands on: see :func:`standing_override`.
    override: Mapping[str, Any] | None = None


def observe(cell: LedgerCell | Mapping[str, Any]) -> Observation:
    """Read a cell in its JSON form (as a ledger file holds it, absent optionals left
    out); a model is read through that form. One reading for both ways in, so that a
    sealed file read without pydantic gives exactly what the full check would."""
    # A sealed ledger's cells are plain dicts: the exact type test first (18,000 a snapshot).
    data = (
        cell
        if type(cell) is dict
        else cell.model_dump(mode="json", exclude_none=True)
        if isinstance(cell, LedgerCell)
        else cell
    )
    history: Sequence[Mapping[str, Any]] = data.get("history", ())
    stale_from: str | None = data.get("last_verified_at")
    if stale_from is None:  # only a cell built in memory: a loaded one has it filled in
        probes = [e for e in history if "outcome" in e]
        conclusive = [e["at"] for e in probes if e["outcome"] in CONCLUSIVE]
        stale_from = conclusive[-1] if conclusive else probes[0]["at"] if probes else None
    newest = history[-1] if history else None
    return Observation(
        data.get("current_status", "pending"),
        data.get("status_since"),
        data.get("last_verified_at"),
        data.get("ok_since"),
        data.get("needs_human", False),
        stale_from,
        None if newest is None else newest["at"],
        None if newest is None else newest.get("outcome", "promotion"),
        run_broken_at(history),
        history,
        standing_override(history),
    )


def standing_override(history: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest promotion when it was an override and no probe has seen ``ok`` since:
    the dot is green on a human's word alone, which the dashboard says (SPEC §12)."""
    for entry in reversed(history):
        if "outcome" not in entry:
            return entry if entry.get("override") else None
        if entry["outcome"] == "ok":
            return None
    return None


def newest_conclusive(history: Sequence[Mapping[str, Any]]) -> str | None:
    """The newest conclusive probe outcome (``unreachable`` says nothing), or ``None``."""
    for entry in reversed(history):
        outcome = entry.get("outcome")
        if outcome in CONCLUSIVE:
            return str(outcome)
    return None


def observed_status(
    cell: LedgerCell | Observation, *, now: datetime, stale_after: timedelta
) -> ObservedStatus:
    """The cell's status as of ``now``: ``stale`` once probes stop concluding anything.

    A conclusive outcome older than the window, or only inconclusive (``unreachable``)
    outcomes for longer than the window, reads ``stale``; ``pending`` and
    ``not_applicable`` never go stale, there is nothing to re-verify.
    """
    seen = cell if isinstance(cell, Observation) else observe(cell)
    status = seen.current_status
    if status in ("pending", "not_applicable") or seen.stale_from is None:
        return status
    if now - parse_timestamp(seen.stale_from) > stale_after:
        return "stale"
    return status
