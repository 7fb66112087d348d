"""The probe ledger ``state/<slug>.yaml`` (SPEC §6): what probes observed, and its rules.

Observation never merges into intent: the snapshot shows both. This module holds the
file format (read, check, render), the two pure rules that move a cell (an outcome
demotes with hysteresis; only a human promotes), and staleness. The rules are the
only writer of a cell's derived fields, and a ledger is checked on load by replaying
its history through them, so a hand edit into an impossible state is caught.

Replaying costs: at 10,000 repos it was half of a snapshot. So :func:`render_ledger`
ends every ledger with a ``seal``, a sha256 over :data:`SEAL_DOMAIN` (naming this
version of the rules) and the canonical JSON of the data. :func:`read_observations`
trusts a ledger whose seal it recomputes and skips both pydantic and the replay; an
absent or stale seal (a hand edit, a file from older rules) means the full check. The
seal is a checksum of what the rules wrote, not a signature: whoever can write the
ledger can write anything, seal included, as they always could.

The rules, in full (README "Design decisions" says why):

- From ``pending`` the first conclusive outcome sets the status directly.
- After that nothing but :func:`promote` raises a status. ``ok`` demotes to ``degraded``
  after 2 consecutive non-ok (``degraded``/``failing``) outcomes, ``degraded`` to
  ``failing`` after 3 more; the streak restarts at each demotion and at any ``ok``.
- ``unreachable`` is recorded and changes nothing but the gate's ``ok_since``.
- ``needs_human`` says the newest conclusive outcome disagrees with the status in a way
  only a human may settle: ``ok`` on a degraded/failing cell (a recovery), or
  ``not_applicable`` on an applicable one or the reverse. The next outcome that agrees
  with the status clears it, and so does a promotion.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from petrova.catalogue import Catalogue
from petrova.errors import (
    Location,
    NothingToPromote,
    Problem,
    PromotionInvalid,
    StateInvalid,
    YamlInvalid,
)
from petrova.io import (
    WriteVerb,
    YamlDocument,
    decode_text,
    parse_yaml,
    read_input,
    write_atomic,
)
from petrova.models import (
    HISTORY_LIMIT,
    LEDGER_KEYS,
    HistoryEntry,
    Ledger,
    LedgerCell,
    ObservedStatus,
    ProbeEntry,
    PromotionEntry,
    StoredStatus,
    parse_timestamp,
)
from petrova.validation import MAX_PROBLEMS, pydantic_problems

DEFAULT_STALE_AFTER = timedelta(hours=72)
CONCLUSIVE = frozenset({"ok", "degraded", "failing", "not_applicable"})
NON_OK = frozenset({"degraded", "failing"})
#: status -> (consecutive non-ok outcomes that demote it, the status it demotes to)
DEMOTION: dict[str, tuple[int, StoredStatus]] = {"ok": (2, "degraded"), "degraded": (3, "failing")}
#: The fields the rules derive, in the order a mismatch is reported.
#: What a seal vouches for: that the rules of this version derived the fields. Bump it
#: whenever the rules change, so that ledgers sealed by the old rules are checked in full.
SEAL_DOMAIN = b"petrova-ledger-rules-1\0"
DERIVED_FIELDS = (
    "current_status",
    "status_since",
    "last_verified_at",
    "ok_since",
    "needs_human",
    "streak",
)


def ledger_path(state_dir: Path, slug: str) -> Path:
    return state_dir / f"{slug}.yaml"


def empty_ledger(slug: str) -> Ledger:
    return Ledger(schema_version=1, slug=slug)


# --- reading and checking ----------------------------------------------------------------


def load_ledger(path: Path, catalogue: Catalogue, *, slug: str) -> Ledger:
    """Read one ledger; ``FileNotFoundError`` passes through (a missing ledger is normal).

    Always the full check, seal or not: this is what a write starts from.
    """
    shown = str(path)
    return _parse_raw(_read_raw(path, shown), shown, catalogue, slug=slug)


def read_observations(path: Path, catalogue: Catalogue, *, slug: str) -> dict[str, Observation]:
    """What the snapshot and the gate need of one ledger, by integration in catalogue order.

    A ledger whose seal holds is read straight from its JSON, without pydantic and
    without replaying its history; any other goes through :func:`load_ledger`'s full
    check, which reports each problem at its line. ``FileNotFoundError`` passes through.
    """
    shown = str(path)
    raw = _read_raw(path, shown)
    cells = _sealed_cells(raw, catalogue, slug=slug)
    if cells is not None:
        try:
            return {i: observe(cells[i]) for i in catalogue.ids if i in cells}
        except (AttributeError, KeyError, TypeError):
            pass  # a matching seal over shapes petrova never writes: the full check says
    ledger = _parse_raw(raw, shown, catalogue, slug=slug)
    return {i: observe(cell) for i, cell in ledger.integrations.items()}


def seal_of(document: Mapping[str, Any]) -> str:
    """The seal of a ledger's JSON form (without its ``seal``): over the data, not the
    bytes, so re-indenting or reordering keys keeps it while any changed value breaks it."""
    canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(SEAL_DOMAIN + canonical).hexdigest()


def _sealed_cells(raw: bytes, catalogue: Catalogue, *, slug: str) -> dict[str, Any] | None:
    """The cells of a ledger for ``slug`` whose seal holds, keyed by current ids only;
    ``None`` sends the ledger to the full check (legacy ids are mapped there)."""
    if raw[:1] != b"{":
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    seal = data.pop("seal", None)
    cells = data.get("integrations")
    version = data.get("schema_version")
    if (
        not isinstance(seal, str)
        or type(version) is not int
        or version != 1
        or data.get("slug") != slug
        or not isinstance(cells, dict)
        or not all(key in catalogue.ids for key in cells)
        or seal_of(data) != seal
    ):
        return None
    return cells


def _read_raw(path: Path, shown: str) -> bytes:
    try:
        return read_input(path, display=shown)
    except IsADirectoryError:
        raise StateInvalid("is a directory, not a ledger file", location=Location(shown)) from None
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StateInvalid(
            f"cannot read the ledger: {exc.strerror}", location=Location(shown)
        ) from None


def _parse_raw(raw: bytes, shown: str, catalogue: Catalogue, *, slug: str) -> Ledger:
    """Ledgers petrova wrote are JSON, read by a JSON parser (about 30x faster than YAML);
    anything else, and any ledger with a problem, is read by the strict YAML loader so
    that problems point at their lines."""
    if raw[:1] == b"{":
        try:
            data = orjson.loads(raw)
            return parse_ledger(YamlDocument(shown, data, None), catalogue, slug=slug)
        except (orjson.JSONDecodeError, StateInvalid):
            pass  # the strict loader says what is wrong, and where
    try:
        doc = parse_yaml(decode_text(raw, shown), shown, string_keys=LEDGER_KEYS.strings)
    except YamlInvalid as exc:
        raise StateInvalid(exc.message, problems=exc.problems) from None
    return parse_ledger(doc, catalogue, slug=slug)


def parse_ledger(doc: YamlDocument, catalogue: Catalogue, *, slug: str) -> Ledger:
    """Validate a ledger document and replay every cell's history against its fields.

    Derived fields left out of the file are filled in from the replay; fields that are
    present must be what the rules give, else ``STATE_INVALID`` at the field's line.
    The ledger returned has no seal: a seal vouches for a file, and
    :func:`render_ledger` seals what it writes afresh.
    """
    data, raw_keys = _canonical_ids(doc.data, catalogue)
    if not isinstance(data, dict):
        raise StateInvalid(
            "a ledger must be a mapping with schema_version, slug and integrations",
            location=doc.locate(()),
        )
    try:
        ledger = Ledger.model_validate(data)
    except ValidationError as exc:
        shown = doc if data is doc.data else YamlDocument(doc.path, data, doc.node)
        found = [_relocate(p, raw_keys, doc) for p in pydantic_problems(exc, shown)]
        raise StateInvalid(f"{len(found)} problem(s) in the ledger", problems=found) from None
    problems: list[Problem] = []
    if ledger.slug != slug:
        problems.append(
            Problem(
                f"ledger says slug {ledger.slug!r} but is the file for {slug!r}",
                doc.locate(("slug",)),
            )
        )
    allowed = ", ".join(catalogue.ids)
    cells: dict[str, LedgerCell] = {}
    for key, cell in ledger.integrations.items():
        raw_key = raw_keys.get(key, key)
        if len(problems) >= MAX_PROBLEMS:  # locating each of thousands is quadratic
            problems.append(Problem("... and more problems not shown", doc.locate(())))
            break
        if key not in catalogue.ids:
            problems.append(
                Problem(
                    f"{key!r} is not an integration id in the catalogue; allowed: {allowed}",
                    doc.locate(("integrations", raw_key)),
                )
            )
            continue
        base = ("integrations", raw_key)
        checked, wrong = check_cell(cell)
        problems += [Problem(msg, doc.locate((*base, *where))) for where, msg in wrong]
        if checked is not None:
            cells[key] = checked
    if problems:
        raise StateInvalid(f"{len(problems)} problem(s) in the ledger", problems=problems)
    ordered = {i: cells[i] for i in catalogue.ids if i in cells}
    return ledger.model_copy(update={"integrations": ordered, "seal": None})


def _relocate(problem: Problem, raw_keys: dict[str, str], doc: YamlDocument) -> Problem:
    """Point a problem found under a mapped (legacy) id back at the key in the file."""
    field = problem.location.field or ""
    for current, raw in raw_keys.items():
        prefix = f"integrations.{current}"
        if raw != current and (field == prefix or field.startswith(prefix + ".")):
            parts = ("integrations", raw, *_split_field(field[len(prefix) :]))
            return Problem(problem.message, doc.locate(parts))
    return problem


def _split_field(rest: str) -> list[str | int]:
    parts: list[str | int] = []
    for chunk in rest.replace("[", ".[").split("."):
        if chunk.startswith("[") and chunk.endswith("]"):
            parts.append(int(chunk[1:-1]))
        elif chunk:
            parts.append(chunk)
    return parts


def _canonical_ids(data: Any, catalogue: Catalogue) -> tuple[Any, dict[str, str]]:
    """Map legacy integration ids (``x-legacy-ids``) to current ones; remember the raw key."""
    if not isinstance(data, dict) or not isinstance(data.get("integrations"), dict):
        return data, {}
    cells = data["integrations"]
    renamed: dict[Any, Any] = {}
    raw_keys: dict[str, str] = {}
    for key, value in cells.items():
        current = catalogue.resolve(key) if isinstance(key, str) else None
        use = current if current is not None and current not in cells else key
        renamed[use] = value
        raw_keys[str(use)] = key
    return {**data, "integrations": renamed}, raw_keys


FieldProblem = tuple[tuple[str | int, ...], str]


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
        results, refused = _replay_all(_possible_starts(cell, prune=prune), history)
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


def _possible_starts(cell: LedgerCell, *, prune: bool = False) -> list[State]:
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
                after[step_promotion(state, entry.at)] = None
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


# --- the rules -------------------------------------------------------------------------------


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


def step_promotion(state: State, at: str) -> State:
    """The rule for a promotion; :class:`NothingToPromote` when there is nothing to lift."""
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
        state.ok_since or at,
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


def promotion_entry(by: str, reason: str, at: str) -> PromotionEntry:
    """Check a promotion's who, why and when before any ledger is touched."""
    try:
        return PromotionEntry(at=at, by=by, reason=reason)
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
    state = step_promotion(state_of(cell), entry.at)
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


def observe(cell: LedgerCell | Mapping[str, Any]) -> Observation:
    """Read a cell in its JSON form (as a ledger file holds it, absent optionals left
    out); a model is read through that form. One reading for both ways in, so that a
    sealed file read without pydantic gives exactly what the full check would."""
    data = cell.model_dump(mode="json", exclude_none=True) if isinstance(cell, LedgerCell) else cell
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
    )


# --- staleness ---------------------------------------------------------------------------


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


# --- writing -------------------------------------------------------------------------------


def render_ledger(ledger: Ledger) -> bytes:
    """A ledger's bytes: JSON, which is also YAML, so any YAML tool still reads it and a
    JSON parser reads it much faster. Keys in model order; absent optionals left out;
    a fresh ``seal`` last (see :func:`seal_of`), whatever seal the model held."""
    from petrova.output import to_json_bytes

    document = ledger.model_dump(mode="json", exclude_none=True, exclude={"seal"})
    document["seal"] = seal_of(document)
    return to_json_bytes(document)


def write_ledger(path: Path, ledger: Ledger, catalogue: Catalogue) -> WriteVerb:
    """Write atomically, after reading back what is about to be written.

    The caller holds ``petrova.lock.file_lock(path)``. A ledger that would not load
    is never written: the old file stays.
    """
    data = render_ledger(ledger)
    shown = str(path)
    parse_ledger(parse_yaml(decode_text(data, shown), shown), catalogue, slug=ledger.slug)
    return write_atomic(path, data)
