"""Reading a snapshot back from disk: an archived ``fleet.json`` looked at later.

A snapshot file is checked against the published snapshot schema specialised by the
*snapshot's own* integration ids, not the current catalogue's: a snapshot taken before
an integration was renamed or added is still a valid snapshot of its day, and must
still render. The catalogue only lends titles to the ids it still knows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import ValidationError

from petrova.documents.catalogue import Catalogue, Integration
from petrova.documents.schemas import snapshot_schema
from petrova.errors import Location, PetrovaError, Problem, SnapshotInvalid, SnapshotUnreadable
from petrova.files import json_strict
from petrova.files.disk import decode_text, read_as
from petrova.files.yaml_strict import FieldPath, parse_yaml, render_field_path
from petrova.models import FleetSnapshot, Snapshot

_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_PROBLEMS = 20


@dataclass(frozen=True)
class LoadedSnapshot:
    path: str
    #: The same typed result ``petrova snapshot`` derives, read back.
    snapshot: FleetSnapshot
    #: Column titles: the catalogue's title for the ids it knows, else the id itself.
    titles: dict[str, str]


def parse_snapshot_json(text: str, shown: str) -> Any:
    """Strict JSON (``files.json_strict``: no duplicate keys, no NaN/Infinity) that a page
    can carry; errors carry line and column."""
    try:
        document = json_strict.loads(text, allow_nan=False)
    except json.JSONDecodeError as exc:
        raise SnapshotUnreadable(
            f"not valid JSON: {exc.msg}; expected a snapshot written by `petrova snapshot`",
            location=Location(shown, exc.lineno, exc.colno),
        ) from None
    except ValueError as exc:
        raise SnapshotUnreadable(f"not valid JSON: {exc}", location=Location(shown)) from None
    except RecursionError:
        raise SnapshotUnreadable("nesting is too deep to read", location=Location(shown)) from None
    # A \ud800 escape or a 20-digit number is valid JSON that no UTF-8 page and no
    # 64-bit reader (orjson, the dashboards) can carry: refuse it here, by name.
    for value in _scalars(document):
        if isinstance(value, str) and _SURROGATE.search(value):
            raise SnapshotUnreadable(
                "a string holds a lone UTF-16 surrogate escape (such as \\ud800), "
                "which is not text",
                location=Location(shown),
            )
        if isinstance(value, int) and not -(2**63) <= value < 2**64:
            raise SnapshotUnreadable(
                f"a number of {len(str(abs(value)))} digits does not fit in 64 bits",
                location=Location(shown),
            )
    return document


_SURROGATE = re.compile("[\ud800-\udfff]")


def _scalars(document: Any) -> Iterator[Any]:
    """Every scalar value and key, without recursion (the depth is the file's to choose)."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield from node.keys()
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        else:
            yield node


def _snapshot_ids(document: dict[str, Any], catalogue: Catalogue) -> tuple[str, ...]:
    """The ids the document says it has, when they are well-formed; else the catalogue's."""
    ids = document.get("integration_ids")
    if (
        isinstance(ids, list)
        and ids
        and all(isinstance(i, str) and _ID_RE.fullmatch(i) for i in ids)
        and len(set(ids)) == len(ids)
    ):
        return tuple(ids)
    return catalogue.ids


def view_catalogue(ids: tuple[str, ...], catalogue: Catalogue) -> Catalogue:
    """The catalogue as this snapshot saw it: its ids, with titles where still known."""
    known = {i.id: i for i in catalogue.integrations}
    integrations = tuple(known.get(i) or Integration(i, i, "", (), {}, ()) for i in ids)
    return Catalogue(path=catalogue.path, schema=catalogue.schema, integrations=integrations)


def _locator(text: str, shown: str) -> Callable[[FieldPath], Location]:
    """Line and column of a field, best effort: JSON is YAML, and the YAML loader keeps marks."""
    try:
        doc = parse_yaml(text, shown)
    except PetrovaError:  # only used to point at lines; the JSON itself was valid
        return lambda path: Location(shown, field=render_field_path(path) or None)
    return lambda path: doc.locate(path)


def check_snapshot_document(
    document: Any, *, text: str, shown: str, catalogue: Catalogue
) -> Snapshot:
    """Validate a parsed snapshot against the published schema and the model."""
    if not isinstance(document, dict):
        raise SnapshotInvalid(
            f"expected a JSON object (a snapshot), found {type(document).__name__}",
            location=Location(shown),
        )
    view = view_catalogue(_snapshot_ids(document, catalogue), catalogue)
    errors = sorted(
        Draft202012Validator(snapshot_schema(view)).iter_errors(document),
        key=lambda e: [
            (0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in e.absolute_path
        ],
    )
    if errors:
        locate = _locator(text, shown)
        problems = [
            Problem(e.message, locate(list(e.absolute_path))) for e in errors[:_MAX_PROBLEMS]
        ]
        more = len(errors) - len(problems)
        raise SnapshotInvalid(
            f"{shown} is not a snapshot matching contracts/snapshot.schema.json"
            + (f" ({more} more problem(s) not shown)" if more else ""),
            problems=problems,
        )
    try:
        return Snapshot.model_validate(document)
    except ValidationError as exc:  # pragma: no cover - the schema is generated from the model
        locate = _locator(text, shown)
        problems = [
            Problem(err["msg"], locate([p for p in err["loc"] if isinstance(p, str | int)]))
            for err in exc.errors()[:_MAX_PROBLEMS]
        ]
        raise SnapshotInvalid(f"{shown} is not a valid snapshot", problems=problems) from None


def read_snapshot(
    path: Path, catalogue: Catalogue, *, display: str | None = None
) -> LoadedSnapshot:
    """Read, parse and validate a snapshot file; every failure is an exit-2 error."""
    shown = display or str(path)
    raw = read_as(
        path,
        SnapshotUnreadable,
        what="the snapshot",
        missing="snapshot file not found; write one with `petrova snapshot -o fleet.json`",
        directory="is a directory; pass the snapshot's JSON file",
        display=shown,
    )
    # No BOM: JSON has none (RFC 8259), and petrova never writes one.
    text = decode_text(
        raw, shown, error=SnapshotUnreadable, hint="a snapshot is UTF-8 JSON", bom=False
    )
    document = parse_snapshot_json(text, shown)
    snapshot = check_snapshot_document(document, text=text, shown=shown, catalogue=catalogue)
    view = view_catalogue(tuple(snapshot.integration_ids), catalogue)
    titles = {i.id: i.title for i in view.integrations}
    return LoadedSnapshot(shown, FleetSnapshot.from_model(snapshot), titles)
