"""The probe ledger ``state/<slug>.yaml`` (SPEC §6): what probes observed.

This module reads ledgers and answers "what is observed now?", staleness
included. Observation never merges into intent: the snapshot shows both.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from petrova.catalogue import Catalogue
from petrova.errors import Location, Problem, StateInvalid, YamlInvalid
from petrova.io import YamlDocument, load_yaml_file
from petrova.models import Ledger, LedgerCell, ObservedStatus, ProbeEntry, parse_timestamp
from petrova.validation import pydantic_problems

DEFAULT_STALE_AFTER = timedelta(hours=72)
CONCLUSIVE = frozenset({"ok", "degraded", "failing", "not_applicable"})


def ledger_path(state_dir: Path, slug: str) -> Path:
    return state_dir / f"{slug}.yaml"


def load_ledger(path: Path, catalogue: Catalogue, *, slug: str) -> Ledger:
    """Read one ledger; ``FileNotFoundError`` passes through (a missing ledger is normal)."""
    shown = str(path)
    try:
        doc = load_yaml_file(path, display=shown)
    except YamlInvalid as exc:
        raise StateInvalid(exc.message, problems=exc.problems) from None
    except IsADirectoryError:
        raise StateInvalid("is a directory, not a ledger file", location=Location(shown)) from None
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StateInvalid(
            f"cannot read the ledger: {exc.strerror}", location=Location(shown)
        ) from None
    return parse_ledger(doc, catalogue, slug=slug)


def parse_ledger(doc: YamlDocument, catalogue: Catalogue, *, slug: str) -> Ledger:
    data = _canonical_ids(doc.data, catalogue)
    if not isinstance(data, dict):
        raise StateInvalid(
            "a ledger must be a mapping with schema_version, slug and integrations",
            location=doc.locate(()),
        )
    try:
        ledger = Ledger.model_validate(data)
    except ValidationError as exc:
        found = pydantic_problems(exc, doc)
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
    for key in ledger.integrations:
        if key not in catalogue.ids:
            problems.append(
                Problem(
                    f"{key!r} is not an integration id in the catalogue; allowed: {allowed}",
                    doc.locate(("integrations", key)),
                )
            )
    if problems:
        raise StateInvalid(f"{len(problems)} problem(s) in the ledger", problems=problems)
    return ledger


def _canonical_ids(data: Any, catalogue: Catalogue) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get("integrations"), dict):
        return data
    cells = data["integrations"]
    renamed = {}
    for key, value in cells.items():
        current = catalogue.resolve(key) if isinstance(key, str) else None
        use = current if current is not None and current not in cells else key
        renamed[use] = value
    return {**data, "integrations": renamed}


def observed_status(cell: LedgerCell, *, now: datetime, stale_after: timedelta) -> ObservedStatus:
    """The cell's status as of ``now``: ``stale`` once probes stop concluding anything.

    A conclusive outcome older than the window, or only inconclusive (``unreachable``)
    outcomes for longer than the window, reads ``stale``; ``pending`` and
    ``not_applicable`` never go stale, there is nothing to re-verify.
    """
    status = cell.current_status
    if status in ("pending", "not_applicable", "stale"):
        return status
    newest = last_conclusive_at(cell)
    if newest is None:
        probes = [e for e in cell.history if isinstance(e, ProbeEntry)]
        if not probes:
            return status
        newest = parse_timestamp(probes[0].at)
    if now - newest > stale_after:
        return "stale"
    return status


def last_conclusive_at(cell: LedgerCell) -> datetime | None:
    if cell.last_verified_at is not None:
        return parse_timestamp(cell.last_verified_at)
    for entry in reversed(cell.history):
        if isinstance(entry, ProbeEntry) and entry.outcome in CONCLUSIVE:
            return parse_timestamp(entry.at)
    return None


def render_ledger(ledger: Ledger) -> bytes:
    """A ledger's bytes: JSON, which is also YAML, so any YAML tool still reads it and a
    JSON parser reads it much faster. Keys in model order; absent optionals left out."""
    from petrova.output import to_json_bytes

    return to_json_bytes(ledger.model_dump(mode="json", exclude_none=True))
