"""Ledger files (``state/<slug>.yaml``): read, check, seal and write.

Every read for the snapshot and the gate merges the humans' promotions
(``state/promotions/<slug>.yaml``) into the bot's ledger by time; see
:mod:`petrova.ledger.merge`.

A ledger ends with a seal (sha256 over the rules' version and its canonical JSON); when
the seal holds, a read builds the observations straight from the JSON, and when it does
not, the ledger gets the full check (:func:`petrova.ledger.rules.check_cell`), so a hand
edit is still ``STATE_INVALID`` at its line.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Container, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from petrova.documents.catalogue import Catalogue
from petrova.documents.validation import MAX_PROBLEMS, pydantic_problems
from petrova.errors import (
    Location,
    Problem,
    StateInvalid,
    UnsafePath,
    YamlInvalid,
)
from petrova.files.disk import StrPath, WriteVerb, decode_text, read_as, write_atomic
from petrova.files.json_strict import orjson_unique, to_json_bytes
from petrova.files.yaml_strict import YamlDocument, parse_yaml
from petrova.ledger.merge import merge_promotions, promotion_key
from petrova.ledger.promotions import PROMOTIONS_DIR, promotions_path, read_promotions
from petrova.ledger.rules import Observation, check_cell, observe
from petrova.models import (
    LEDGER_KEYS,
    Ledger,
    LedgerCell,
    PromotionEntry,
    is_slug,
)

#: The fields the rules derive, in the order a mismatch is reported.
#: What a seal vouches for: that the rules of this version derived the fields. Bump it
#: whenever the rules change, so that ledgers sealed by the old rules are checked in full.
SEAL_DOMAIN = b"petrova-ledger-rules-1\0"


def ledger_path(state_dir: Path, slug: str) -> Path:
    """``state_dir/<slug>.yaml``; a file name is never made from an unchecked slug."""
    return Path(ledger_name(state_dir, slug))


def ledger_name(state_dir: StrPath, slug: str) -> str:
    """:func:`ledger_path` as a string, for the snapshot's loop over every ledger."""
    if not is_slug(slug):
        raise UnsafePath(
            f"{slug!r} is not a kebab-case slug (lowercase letters and digits separated by "
            "single hyphens, e.g. kahn-hq), so it names no ledger",
            location=Location(str(state_dir)),
        )
    return os.path.join(state_dir, f"{slug}.yaml")  # noqa: PTH118


def empty_ledger(slug: str) -> Ledger:
    return Ledger(schema_version=1, slug=slug)


def load_ledger(path: Path, catalogue: Catalogue, *, slug: str) -> Ledger:
    """Read one ledger; ``FileNotFoundError`` passes through (a missing ledger is normal).

    Always the full check, seal or not: this is what a write starts from.
    """
    shown = str(path)
    return _parse_raw(_read_raw(path, shown), shown, catalogue, slug=slug)


def promotion_names(state_dir: StrPath) -> frozenset[str] | None:
    """The names in ``state_dir/promotions`` when it is a plain folder, none when it is
    absent; ``None`` (ask each read) for anything else, such as a link, which each read
    then refuses as it always did.

    One listing for a whole fleet instead of a failed open, two link checks and a few
    path objects per repo: most repos have no promotions file.
    """
    folder = os.path.join(state_dir, PROMOTIONS_DIR)  # noqa: PTH118
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return None
        return frozenset(os.listdir(folder))  # noqa: PTH208
    except FileNotFoundError:
        return frozenset()
    except OSError:
        return None


def read_observations(
    path: StrPath,
    catalogue: Catalogue,
    *,
    slug: str,
    promotions: Container[str] | None = None,
    limit: int | None = None,
) -> dict[str, Observation]:
    """What the snapshot and the gate need of one ledger, by integration in catalogue order.

    A ledger whose seal holds is read straight from its JSON, without pydantic and
    without replaying its history; any other goes through :func:`load_ledger`'s full
    check, which reports each problem at its line. ``FileNotFoundError`` passes through.
    ``promotions`` is :func:`promotion_names` of the ledger's folder, listed once by a
    caller that reads many ledgers; a repo whose file is not there has no promotions.
    ``limit``: the input limit, looked up once by such a caller.
    """
    shown = str(path)
    raw = _read_raw(path, shown, limit)
    if promotions is not None and f"{slug}.yaml" not in promotions:
        promoted = {}
    else:
        promoted = read_promotions(promotions_path(Path(path).parent, slug), catalogue, slug=slug)
    cells = _sealed_cells(raw, catalogue, slug=slug)
    if promoted and (cells is None or _any_pending_safe(cells, promoted)):
        # a human's promotion the ledger does not hold yet, merged by time: the full reading
        ledger = merge_ledger(_parse_raw(raw, shown, catalogue, slug=slug), promoted)
        return {i: observe(cell) for i, cell in ledger.integrations.items()}
    if cells is not None:
        try:
            return {i: observe(cells[i]) for i in catalogue.ids if i in cells}
        except (AttributeError, KeyError, TypeError):
            pass  # a matching seal over shapes petrova never writes: the full check says
    ledger = _parse_raw(raw, shown, catalogue, slug=slug)
    return {i: observe(cell) for i, cell in ledger.integrations.items()}


def merge_ledger(ledger: Ledger, promoted: Mapping[str, Sequence[PromotionEntry]]) -> Ledger:
    """The ledger with the humans' promotions merged into each cell by time (SPEC §12)."""
    cells = {
        i: merge_promotions(cell, promoted.get(i, ())) for i, cell in ledger.integrations.items()
    }
    return ledger.model_copy(update={"integrations": cells})


def _any_pending_safe(
    cells: Mapping[str, Any], promoted: Mapping[str, Sequence[PromotionEntry]]
) -> bool:
    try:
        return _any_pending(cells, promoted)
    except (AttributeError, KeyError, TypeError):
        return True  # shapes petrova never writes: the full check says what is wrong


def _any_pending(
    cells: Mapping[str, Any], promoted: Mapping[str, Sequence[PromotionEntry]]
) -> bool:
    """Whether a sealed ledger's JSON cells lack a promotion the humans' file holds
    (the cheap question; :func:`petrova.ledger.merge.pending_promotions` is the rule)."""
    for integration, entries in promoted.items():
        history = cells.get(integration, {}).get("history") or []
        if not history:
            continue
        known = {
            (e.get("at"), e.get("by"), e.get("reason"), bool(e.get("override")))
            for e in history
            if "by" in e
        }
        first = history[0].get("at", "")
        if any(promotion_key(p) not in known and p.at >= first for p in entries):
            return True
    return False


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
        data = orjson_unique(raw)
    except ValueError:  # not JSON, or a key twice: the full check says where
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
        or not cells.keys() <= catalogue.current_ids
        or seal_of(data) != seal
    ):
        return None
    return cells


def _read_raw(path: StrPath, shown: str, limit: int | None = None) -> bytes:
    """A ledger's bytes; a missing ledger is normal, so ``FileNotFoundError`` passes."""
    return read_as(
        path,
        StateInvalid,
        what="the ledger",
        missing=None,
        directory="is a directory, not a ledger file",
        display=shown,
        follow=False,
        limit=limit,
    )


def _parse_raw(raw: bytes, shown: str, catalogue: Catalogue, *, slug: str) -> Ledger:
    """Ledgers petrova wrote are JSON, read by a JSON parser (about 30x faster than YAML);
    anything else, and any ledger with a problem, is read by the strict YAML loader so
    that problems point at their lines."""
    if raw[:1] == b"{":
        try:
            data = orjson_unique(raw)
            return parse_ledger(YamlDocument(shown, data, None), catalogue, slug=slug)
        except (ValueError, StateInvalid):
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
    renamed, pairs = catalogue.canonical_keys(data["integrations"])
    raw_keys = {str(key): key for key in renamed}
    raw_keys.update({current: legacy for legacy, current in pairs})
    return {**data, "integrations": renamed}, raw_keys


def render_ledger(ledger: Ledger) -> bytes:
    """A ledger's bytes: JSON, which is also YAML, so any YAML tool still reads it and a
    JSON parser reads it much faster. Keys in model order; absent optionals left out;
    a fresh ``seal`` last (see :func:`seal_of`), whatever seal the model held."""
    document = ledger.model_dump(mode="json", exclude_none=True, exclude={"seal"})
    document["seal"] = seal_of(document)
    return to_json_bytes(document)


def write_ledger(path: Path, ledger: Ledger, catalogue: Catalogue) -> WriteVerb:
    """Write atomically, after reading back what is about to be written.

    The caller holds ``petrova.files.lock.file_lock(path)``. A ledger that would not load
    is never written: the old file stays.
    """
    data = render_ledger(ledger)
    shown = str(path)
    parse_ledger(parse_yaml(decode_text(data, shown), shown), catalogue, slug=ledger.slug)
    return write_atomic(path, data)
