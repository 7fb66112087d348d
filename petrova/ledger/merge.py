"""Human promotions merged into the bot's ledger by time (SPEC §12).

The daily job rewrites every ledger every day, so humans never write one: a promotion is
appended to ``state/promotions/<slug>.yaml`` (:mod:`petrova.ledger.promotions`) and every
read of a ledger merges those entries into each cell's history at their time, replaying
the rules from there. A promotion PR opened before any number of bot runs therefore
merges cleanly and takes effect at the next read, as if it had been recorded when it was
made. The bot's next write copies the merged entries into the ledger (its own file), so
the replay cost is paid once.
"""

from __future__ import annotations

from collections.abc import Sequence

from petrova.errors import NothingToPromote
from petrova.ledger.rules import (
    State,
    possible_starts,
    state_of,
    step_outcome,
    step_promotion,
)
from petrova.models import HISTORY_LIMIT, HistoryEntry, LedgerCell, ProbeEntry, PromotionEntry


def promotion_key(entry: PromotionEntry) -> tuple[str, str, str, bool]:
    """What makes two promotion entries the same one (the ledger's copy and the human's)."""
    return (entry.at, entry.by, entry.reason, bool(entry.override))


def pending_promotions(
    cell: LedgerCell, promotions: Sequence[PromotionEntry]
) -> list[PromotionEntry]:
    """The promotions the ledger does not hold yet and that fall within its kept history.

    One older than the oldest kept entry is left out: either the ledger applied it long
    ago (its copy was capped away), or it was made before anything the ledger still
    knows, when the outcomes since have already decided the dot.
    """
    if not cell.history:
        return []
    known = {promotion_key(e) for e in cell.history if isinstance(e, PromotionEntry)}
    first = cell.history[0].at
    return [p for p in promotions if promotion_key(p) not in known and p.at >= first]


def merge_promotions(cell: LedgerCell, promotions: Sequence[PromotionEntry]) -> LedgerCell:
    """The cell as if every pending promotion had been recorded at its time.

    Entries are ordered by time, a promotion after the outcomes of the same second (it
    was made after looking at them). A promotion the rules refuse at its place (the cell
    was already ok with nothing waiting, say a second promotion of one recovery) changes
    nothing and is left out. Returns ``cell`` itself when nothing is pending.
    """
    pending = pending_promotions(cell, promotions)
    if not pending:
        return cell
    start = _start_of(cell)
    merged: list[HistoryEntry] = sorted(
        [*cell.history, *pending],
        key=lambda e: (e.at, isinstance(e, PromotionEntry)),
    )
    state = start
    kept: list[HistoryEntry] = []
    for entry in merged:
        if isinstance(entry, ProbeEntry):
            state = step_outcome(state, entry.outcome, entry.at)
        else:
            try:
                state = step_promotion(state, entry.at, override=bool(entry.override))
            except NothingToPromote:
                continue
        kept.append(entry)
    return cell.model_copy(update={**state._asdict(), "history": kept[-HISTORY_LIMIT:]})


def _start_of(cell: LedgerCell) -> State:
    """Where the cell's kept history starts from: ``pending`` for a full history, else a
    start that replays to the stored fields (starts converge within a few entries, so
    any that does gives the same merge)."""
    if len(cell.history) < HISTORY_LIMIT:
        return State()
    stored = state_of(cell)
    for start in possible_starts(cell):
        state = start
        try:
            for entry in cell.history:
                if isinstance(entry, ProbeEntry):
                    state = step_outcome(state, entry.outcome, entry.at)
                else:
                    state = step_promotion(state, entry.at, override=bool(entry.override))
        except NothingToPromote:
            continue
        if state == stored:
            return start
    return State()  # pragma: no cover - a loaded cell replays from one of its starts
