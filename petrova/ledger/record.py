"""Feeding the probe ledger: ``petrova state record`` and ``petrova state promote``.

Every outcome is checked (known repo and integration, outcome in the enum, an RFC 3339
time that is not in the future and not older than the cell's newest entry) before
anything is written. A batch (``--from FILE``, JSON lines) is all or nothing: every
ledger it touches is locked, re-read under the lock, updated in memory, and only
written when every line was accepted, so two probes reporting at once never lose an
outcome and a bad line never leaves half a batch behind.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from petrova.clock import now as clock_now
from petrova.documents.catalogue import Catalogue
from petrova.documents.registry import LoadedRegistry
from petrova.errors import (
    DuplicateJsonKey,
    Location,
    NothingToPromote,
    OutcomeInvalid,
    OutcomeOutOfOrder,
    OutputError,
    PetrovaError,
    ProbeInputInvalid,
    Problem,
    PromoteNotRecovered,
    RepoNotInRegistry,
    TimestampInFuture,
    TimestampInvalid,
    YamlInvalid,
)
from petrova.files import json_strict
from petrova.files.disk import WriteVerb, confined, decode_text, make_folder
from petrova.files.lock import file_lock
from petrova.ledger.promotions import append_promotion, promotions_path, read_promotions
from petrova.ledger.rules import (
    DEMOTION,
    FUTURE_SKEW,
    apply_outcome,
    apply_promotion,
    newest_at,
    newest_conclusive,
    promotion_entry,
)
from petrova.ledger.store import (
    empty_ledger,
    ledger_path,
    load_ledger,
    merge_ledger,
    write_ledger,
)
from petrova.models import (
    HistoryEntry,
    HumanPromotion,
    Ledger,
    LedgerCell,
    Outcome,
    ProbeEntry,
    PromotionEntry,
    format_timestamp,
    parse_timestamp,
)

OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]
#: The keys of one ``--from`` line; the first three are required.
LINE_FIELDS = ("slug", "integration", "outcome", "at", "detail", "evidence_sha")
REQUIRED_LINE_FIELDS = LINE_FIELDS[:3]
#: How a command-line request names its fields in messages.
ARGV_LABELS = {
    "slug": "SLUG",
    "integration": "INTEGRATION",
    "outcome": "OUTCOME",
    "at": "--at",
    "detail": "--detail",
    "evidence_sha": "--evidence-sha",
}
_SHOWN_SLUGS = 20


@dataclass(frozen=True)
class ProbeRequest:
    """One validated outcome, waiting to be applied to its cell."""

    slug: str
    integration: str
    entry: ProbeEntry
    #: Where its time came from (``--at``, or ``FILE:LINE: at``), for ordering errors.
    location: Location
    #: The integration id as given, when it was a legacy id.
    legacy_id: str | None = None


@dataclass(frozen=True)
class CellChange:
    slug: str
    integration: str
    entry: HistoryEntry
    before: LedgerCell
    after: LedgerCell


@dataclass(frozen=True)
class Written:
    path: Path
    verb: WriteVerb


@dataclass(frozen=True)
class AlreadyObserved:
    """An outcome not recorded: its cell holds one from the same run window (``seen_at``)."""

    slug: str
    integration: str
    at: str
    seen_at: str


@dataclass(frozen=True)
class Recorded:
    changes: tuple[CellChange, ...]
    written: tuple[Written, ...]
    #: Outcomes left out by the run window (``record(window=...)``).
    already: tuple[AlreadyObserved, ...] = ()


def seen_in_window(cell: LedgerCell, entry: ProbeEntry, window: timedelta) -> str | None:
    """When ``cell`` already holds an outcome from ``entry``'s run window, that outcome's
    time; else ``None`` (record ``entry``).

    One observation per cell per window: an outcome less than ``window`` older than
    ``entry`` counts, unless it was ``unreachable`` and ``entry`` is conclusive (a re-run
    that could look, after one that could not, is recorded). So overlapping or repeated
    runs never double an outcome, and two ``failing`` a second apart never demote.
    """
    at = parse_timestamp(entry.at)
    for old in reversed(cell.history):
        if not isinstance(old, ProbeEntry):
            continue
        old_at = parse_timestamp(old.at)
        if at - old_at >= window:
            return None
        if entry.outcome == "unreachable" or old.outcome != "unreachable":
            return old.at
    return None


def clock(now: str | None) -> datetime:
    """``--now`` when given (tests, replays), else :func:`petrova.clock.now`."""
    return clock_now(now)


def make_request(
    loaded: LoadedRegistry,
    fields: Mapping[str, str | None],
    *,
    now: datetime,
    where: Location | None = None,
    labels: Mapping[str, str] = ARGV_LABELS,
) -> ProbeRequest:
    """Check one outcome against the registry, the catalogue and the clock.

    Raises the first problem found, as its own error class, located at ``where``
    with the field named as the user wrote it (``labels``).
    """

    def at_field(name: str) -> Location:
        return (where or Location()).with_field(labels.get(name, name))

    slug = fields.get("slug") or ""
    if loaded.entry(slug) is None:
        raise RepoNotInRegistry(
            f"{slug!r} is not in the registry {loaded.path}; known: {_known_slugs(loaded)}",
            location=at_field("slug"),
        )
    given_id = fields.get("integration") or ""
    integration = loaded.catalogue.require(given_id, location=at_field("integration"))
    outcome = fields.get("outcome")
    if outcome not in OUTCOMES:
        raise OutcomeInvalid(
            f"{outcome!r} is not a probe outcome; valid: {', '.join(OUTCOMES)}",
            location=at_field("outcome"),
        )
    at = check_time(fields.get("at"), now=now, where=at_field("at"))
    try:
        entry = ProbeEntry(
            at=at,
            outcome=outcome,
            detail=fields.get("detail"),
            evidence_sha=fields.get("evidence_sha"),
        )
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        name = str(err["loc"][0]) if err["loc"] else "entry"
        hint = " (7 to 64 lowercase hex digits)" if name == "evidence_sha" else ""
        raise ProbeInputInvalid(f"{err['msg']}{hint}", location=at_field(name)) from None
    legacy = given_id if given_id != integration else None
    return ProbeRequest(slug, integration, entry, at_field("at"), legacy)


def check_time(value: str | None, *, now: datetime, where: Location) -> str:
    """An outcome's time: RFC 3339, not later than ``now``; ``now`` when not given."""
    if value is None:
        return format_timestamp(now)
    try:
        moment = parse_timestamp(value)
    except ValueError as exc:
        raise TimestampInvalid(str(exc), location=where) from None
    if moment > now:
        raise TimestampInFuture(
            f"{value} is later than now ({format_timestamp(now)}); record what a probe saw, "
            "after it saw it",
            location=where,
        )
    return format_timestamp(moment)


def guard_real_clock(
    times: Sequence[tuple[str, Location]], *, real_now: datetime, allowed: bool
) -> None:
    """Refuse outcomes later than the machine's clock (beyond :data:`FUTURE_SKEW`).

    ``--now`` and ``SOURCE_DATE_EPOCH`` move petrova's clock, not the world's: a replay a
    week ahead would leave the real ledger with entries newer than every real probe for
    a week (``OUTCOME_OUT_OF_ORDER``) and a future ``last_verified_at`` on the dashboard.
    ``allowed``: a scratch state directory, or ``--force``.
    """
    if allowed:
        return
    limit = real_now + FUTURE_SKEW
    problems = [
        Problem(
            f"{at} is later than the machine's clock ({format_timestamp(real_now)}) by more "
            f"than {int(FUTURE_SKEW.total_seconds() // 60)} minutes; a replay ahead of time "
            "belongs in a scratch ledger (--state-dir DIR, not the registry's state/), or "
            "pass --force knowingly",
            where,
        )
        for at, where in times
        if parse_timestamp(at) > limit
    ]
    if problems:
        raise TimestampInFuture(
            f"{len(problems)} outcome(s) in the future by the machine's clock; nothing was "
            "recorded",
            problems=problems,
        )


def read_batch(
    raw: bytes, display: str, loaded: LoadedRegistry, *, now: datetime
) -> list[ProbeRequest]:
    """Parse and check a JSON-lines batch; any bad line refuses the whole batch.

    One JSON object per line with ``slug``, ``integration``, ``outcome`` and optionally
    ``at`` (default: now), ``detail``, ``evidence_sha``. Blank lines are skipped.
    """
    try:
        text = decode_text(raw, display)
    except YamlInvalid as exc:
        raise ProbeInputInvalid(exc.message, problems=exc.problems) from None
    problems: list[Problem] = []
    requests: list[ProbeRequest] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = Location(display, number)
        try:
            fields = _line_fields(line, where)
            requests.append(make_request(loaded, fields, now=now, where=where, labels={}))
        except PetrovaError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ProbeInputInvalid(
            f"{len(problems)} bad line(s) in {display}; nothing was recorded",
            problems=problems,
        )
    return requests


def _line_fields(line: str, where: Location) -> dict[str, str | None]:
    try:
        data: Any = json_strict.loads(line)
    except DuplicateJsonKey as exc:
        raise ProbeInputInvalid(str(exc), location=where) from None
    except json.JSONDecodeError as exc:
        raise ProbeInputInvalid(
            f"not JSON: {exc.msg}", location=Location(where.file, where.line, exc.colno)
        ) from None
    except (ValueError, RecursionError):  # a number of 4300+ digits, nesting too deep
        raise ProbeInputInvalid(
            "not a probe outcome: a number too long or nesting too deep to read",
            location=where,
        ) from None
    if not isinstance(data, dict):
        raise ProbeInputInvalid(
            "each line must be a JSON object with " + ", ".join(REQUIRED_LINE_FIELDS),
            location=where,
        )
    unknown = [k for k in data if k not in LINE_FIELDS]
    if unknown:
        raise ProbeInputInvalid(
            f"unknown field; allowed: {', '.join(LINE_FIELDS)}",
            location=where.with_field(unknown[0]),
        )
    missing = [k for k in REQUIRED_LINE_FIELDS if k not in data]
    if missing:
        raise ProbeInputInvalid(
            f"missing required field {', '.join(repr(m) for m in missing)}", location=where
        )
    for key, value in data.items():
        if not isinstance(value, str) and not (value is None and key not in REQUIRED_LINE_FIELDS):
            raise ProbeInputInvalid(
                f"{json.dumps(value)} is not a string", location=where.with_field(key)
            )
    return data


def _known_slugs(loaded: LoadedRegistry) -> str:
    slugs = [r.slug for r in loaded.registry.repos]
    shown = ", ".join(slugs[:_SHOWN_SLUGS])
    return shown + (f" and {len(slugs) - _SHOWN_SLUGS} more" if len(slugs) > _SHOWN_SLUGS else "")


def record(
    loaded: LoadedRegistry,
    state_dir: Path,
    requests: Sequence[ProbeRequest],
    *,
    wait: float,
    window: timedelta | None = None,
) -> Recorded:
    """Append every outcome to its cell, all or nothing, under the ledgers' locks.

    ``window``: leave out an outcome whose cell already holds one from the same run
    window (:func:`seen_in_window`); ``probe --record`` passes its ``--window``.
    """
    if not requests:
        return Recorded((), ())
    slugs = sorted({r.slug for r in requests})
    already: list[AlreadyObserved] = []
    with _locked(state_dir, slugs, wait=wait):
        # A promotion made while this batch was being probed (later than its oldest
        # outcome) waits for the next read, so that it never makes the batch out of order.
        until = {s: min(r.entry.at for r in requests if r.slug == s) for s in slugs}
        ledgers = {s: _read(loaded.catalogue, state_dir, s, until=until[s]) for s in slugs}
        changes: list[CellChange] = []
        problems: list[Problem] = []
        for request in requests:
            ledger = ledgers[request.slug]
            before = ledger.integrations.get(request.integration, LedgerCell())
            seen = seen_in_window(before, request.entry, window) if window else None
            if seen is not None:
                already.append(
                    AlreadyObserved(request.slug, request.integration, request.entry.at, seen)
                )
                continue
            newest = newest_at(before)
            if newest is not None and parse_timestamp(request.entry.at) < newest:
                problems.append(
                    Problem(
                        f"{request.slug} {request.integration}: {request.entry.at} is older "
                        f"than the newest entry ({format_timestamp(newest)}); outcomes are "
                        "recorded in time order, so report it with a later --at or drop it",
                        request.location,
                    )
                )
                continue
            after = apply_outcome(before, request.entry)
            ledgers[request.slug] = _with_cell(ledger, request.integration, after, loaded)
            changes.append(
                CellChange(request.slug, request.integration, request.entry, before, after)
            )
        if problems:
            raise OutcomeOutOfOrder(
                f"{len(problems)} outcome(s) older than what the ledger holds; nothing was "
                "recorded",
                problems=problems,
            )
        changed = sorted({c.slug for c in changes})
        written = tuple(_write(loaded.catalogue, state_dir, ledgers[s]) for s in changed)
    return Recorded(tuple(changes), written, tuple(already))


def promote(
    loaded: LoadedRegistry,
    state_dir: Path,
    *,
    slug: str,
    integration: str,
    by: str,
    reason: str,
    now: datetime,
    wait: float,
    override: bool = False,
) -> Recorded:
    """Lift one cell to ``ok`` on a human's word, recorded with who and why.

    Written to ``state/promotions/<slug>.yaml``, the humans' file, never to the ledger
    the daily job rewrites (SPEC §12). Refused (``PROMOTE_NOT_RECOVERED``) while the
    cell's newest conclusive outcome is not ``ok``, unless ``override``: then it is
    recorded as an override, and green time waits for the next ``ok`` outcome.
    """
    request_fields = {"slug": slug, "integration": integration, "outcome": "ok"}
    checked = make_request(loaded, request_fields, now=now)
    slug, integration = checked.slug, checked.integration
    entry = promotion_entry(by, reason, format_timestamp(now), override=override)
    ledger_path(state_dir, slug)  # the slug is safe to make a file name of
    target = promotions_path(state_dir, slug)
    confined(state_dir, target.relative_to(state_dir))  # never written through a link
    _promotion_of(loaded, state_dir, slug, integration, entry, now=now)  # refused: no trace
    make_folder(target.parent)
    with file_lock(target, wait=wait):
        before, after = _promotion_of(loaded, state_dir, slug, integration, entry, now=now)
        item = HumanPromotion(
            integration=integration,
            at=entry.at,
            by=entry.by,
            reason=entry.reason,
            override=entry.override,
        )
        verb = append_promotion(target, item, loaded.catalogue, slug=slug)
    written = Written(target, verb)
    return Recorded((CellChange(slug, integration, entry, before, after),), (written,))


def _promotion_of(
    loaded: LoadedRegistry,
    state_dir: Path,
    slug: str,
    integration: str,
    entry: PromotionEntry,
    *,
    now: datetime,
) -> tuple[LedgerCell, LedgerCell]:
    """The cell before and after the promotion, as the ledger and the humans' file say
    now; every refusal of :func:`promote` is raised here."""
    ledger = _read(loaded.catalogue, state_dir, slug)
    before = ledger.integrations.get(integration)
    if before is None:
        raise NothingToPromote(
            f"{slug} {integration}: nothing has been observed yet "
            f"({ledger_path(state_dir, slug)} has no entry for it)"
        )
    newest = newest_at(before)
    if newest is not None and now < newest:
        raise OutcomeOutOfOrder(
            f"{slug} {integration}: the newest entry is at {format_timestamp(newest)}, "
            f"after now ({format_timestamp(now)}); check the clock or --now",
            location=Location(field="--now"),
        )
    try:
        after = apply_promotion(before, entry)
    except NothingToPromote as exc:
        raise NothingToPromote(f"{slug} {integration}: {exc.message}") from None
    seen = newest_conclusive([e.model_dump(mode="json") for e in before.history])
    if seen != "ok" and not entry.override:
        raise PromoteNotRecovered(
            f"{slug} {integration}: the newest conclusive probe outcome is "
            f"{seen or 'none yet'}, not ok; a promotion follows an observed recovery. "
            "Wait for a probe to see ok (`petrova probe --record`), or record an "
            "override with --override --reason TEXT (the dot turns ok, marked as an "
            "override, and green time starts at the next ok outcome)"
        )
    return before, after


@contextlib.contextmanager
def _locked(state_dir: Path, slugs: Sequence[str], *, wait: float) -> Any:
    """Hold every named ledger's lock, taken in slug order so two batches never deadlock."""
    try:
        state_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the state directory: {exc.strerror}",
            location=Location(str(state_dir)),
        ) from None
    with contextlib.ExitStack() as stack:
        for slug in sorted(slugs):
            stack.enter_context(file_lock(ledger_path(state_dir, slug), wait=wait))
        yield


def _read(catalogue: Catalogue, state_dir: Path, slug: str, *, until: str | None = None) -> Ledger:
    """The ledger with the humans' promotions merged (those up to ``until`` when given)."""
    path = ledger_path(state_dir, slug)
    confined(state_dir, Path(path.name))  # a linked ledger is someone else's file: refused
    try:
        ledger = load_ledger(path, catalogue, slug=slug)
    except FileNotFoundError:
        return empty_ledger(slug)
    promoted = read_promotions(promotions_path(state_dir, slug), catalogue, slug=slug)
    if until is not None:
        promoted = {i: [p for p in ps if p.at <= until] for i, ps in promoted.items()}
    return merge_ledger(ledger, promoted) if promoted else ledger


def _with_cell(
    ledger: Ledger, integration: str, cell: LedgerCell, loaded: LoadedRegistry
) -> Ledger:
    cells = {**ledger.integrations, integration: cell}
    ordered = {i: cells[i] for i in loaded.catalogue.ids if i in cells}
    return ledger.model_copy(update={"integrations": ordered})


def _write(catalogue: Catalogue, state_dir: Path, ledger: Ledger) -> Written:
    path = ledger_path(state_dir, ledger.slug)
    return Written(path, write_ledger(path, ledger, catalogue))


def describe(change: CellChange) -> str:
    """One line for people: what was recorded and what it did to the cell."""
    before, after = change.before, change.after
    head = f"{change.slug} {change.integration}: "
    if isinstance(change.entry, ProbeEntry):
        head += f"{change.entry.outcome} at {change.entry.at}: "
    else:
        verb = "overridden" if change.entry.override else "promoted"
        head += f"{verb} by {change.entry.by} at {change.entry.at}: "
    if before.current_status != after.current_status:
        text = f"{before.current_status} -> {after.current_status}"
    else:
        text = f"stays {after.current_status}"
    if after.streak and after.current_status in DEMOTION:
        limit, lower = DEMOTION[after.current_status]
        text += f" ({after.streak} of {limit} non-ok outcomes toward {lower})"
    if after.needs_human:
        text += (
            f"; needs a human: petrova state promote {change.slug} {change.integration} "
            "--by human:NAME --reason TEXT"
        )
    return head + text


def change_as_dict(change: CellChange) -> dict[str, Any]:
    after = change.after
    return {
        "slug": change.slug,
        "integration": change.integration,
        "entry": change.entry.model_dump(mode="json", exclude_none=True),
        "before": change.before.current_status,
        "status": after.current_status,
        "status_since": after.status_since,
        "last_verified_at": after.last_verified_at,
        "ok_since": after.ok_since,
        "needs_human": after.needs_human,
        "streak": after.streak,
    }
