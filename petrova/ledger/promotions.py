"""``state/promotions/<slug>.yaml``: the file humans write, one per repo, append-only.

Humans and the bot never write the same file (SPEC §12): ``petrova state promote``
appends here, the daily job never writes here, and every read of the ledger merges these
entries by time (:mod:`petrova.ledger.merge`). An append keeps the file's bytes as they
were and adds the new entry's lines at the end, so a PR of a promotion is a few added
lines that merge cleanly with anything the bot did meanwhile.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from petrova.documents.catalogue import Catalogue
from petrova.documents.validation import pydantic_problems
from petrova.errors import Problem, StateInvalid, UnsafePath, YamlInvalid
from petrova.files.disk import WriteVerb, confined, decode_text, read_as, write_atomic
from petrova.files.yaml_strict import YamlDocument, parse_yaml
from petrova.models import PROMOTIONS_KEYS, HumanPromotion, PromotionEntry, PromotionsFile

#: The folder beside the ledgers that only humans (through ``state promote``) write.
PROMOTIONS_DIR = "promotions"

_HEADER = """\
# Human promotions of {slug}: appended by `petrova state promote`, merged into the
# ledger state/{slug}.yaml by every read. Humans own this file; the daily job never
# writes it. Append-only: commit it as yourself (or open a PR), never edit old entries.
schema_version: 1
slug: {slug}
promotions:
"""


def promotions_path(state_dir: Path, slug: str) -> Path:
    """``state_dir/promotions/<slug>.yaml`` (``slug`` is checked by the ledger's path)."""
    return state_dir / PROMOTIONS_DIR / f"{slug}.yaml"


def read_promotions(
    path: Path, catalogue: Catalogue, *, slug: str
) -> dict[str, list[PromotionEntry]]:
    """Each integration's promotions in the file, as ledger entries; ``{}`` when absent.

    A file that does not load is ``STATE_INVALID`` at its line: a ledger read that
    cannot know whether a human promoted a cell must not guess.
    """
    try:
        confined(path.parent.parent, Path(path.parent.name, path.name))  # a link: refused
        raw = read_as(
            path,
            StateInvalid,
            what="the promotions",
            missing=None,
            display=str(path),
            follow=False,
        )
    except FileNotFoundError:
        return {}
    except UnsafePath as exc:
        raise StateInvalid(exc.message, location=exc.location) from None
    parsed = _parse(decode_text(raw, str(path)), str(path), catalogue, slug=slug)
    found: dict[str, list[PromotionEntry]] = {}
    for item in parsed.promotions:
        integration = catalogue.resolve(item.integration) or item.integration
        found.setdefault(integration, []).append(as_entry(item))
    return found


def as_entry(item: HumanPromotion) -> PromotionEntry:
    return PromotionEntry(at=item.at, by=item.by, reason=item.reason, override=item.override)


def _parse(text: str, shown: str, catalogue: Catalogue, *, slug: str) -> PromotionsFile:
    try:
        doc = parse_yaml(text, shown, string_keys=PROMOTIONS_KEYS.strings)
    except YamlInvalid as exc:
        raise StateInvalid(exc.message, problems=exc.problems) from None
    return _check(doc, catalogue, slug=slug)


def _check(doc: YamlDocument, catalogue: Catalogue, *, slug: str) -> PromotionsFile:
    try:
        parsed = PromotionsFile.model_validate(doc.data)
    except ValidationError as exc:
        found = pydantic_problems(exc, doc)
        raise StateInvalid(f"{len(found)} problem(s) in the promotions", problems=found) from None
    problems: list[Problem] = []
    if parsed.slug != slug:
        problems.append(
            Problem(
                f"says slug {parsed.slug!r} but is the file for {slug!r}", doc.locate(("slug",))
            )
        )
    for index, item in enumerate(parsed.promotions):
        if catalogue.resolve(item.integration) is None:
            problems.append(
                Problem(
                    f"{item.integration!r} is not an integration id in the catalogue; "
                    f"allowed: {', '.join(catalogue.ids)}",
                    doc.locate(("promotions", index, "integration")),
                )
            )
    if problems:
        raise StateInvalid(f"{len(problems)} problem(s) in the promotions", problems=problems)
    return parsed


def entry_text(item: HumanPromotion) -> str:
    """One entry as the lines appended: strings JSON-quoted, which YAML reads the same."""
    lines = [
        f"  - integration: {json.dumps(item.integration)}",
        f"    at: {json.dumps(item.at)}",
        f"    by: {json.dumps(item.by)}",
        f"    reason: {json.dumps(item.reason)}",
    ]
    if item.override:
        lines.append("    override: true")
    return "\n".join(lines) + "\n"


def append_promotion(
    path: Path, item: HumanPromotion, catalogue: Catalogue, *, slug: str
) -> WriteVerb:
    """Add one entry at the end of the file (created with its header when absent).

    The file's own bytes are kept; the result must load and hold exactly the old entries
    and the new one before it replaces the file. A file laid out so that an append would
    not say that (a hand edit in another style) is written afresh from its entries.
    The caller holds the file's lock.
    """
    shown = str(path)
    try:
        old_text = decode_text(
            read_as(path, StateInvalid, what="the promotions", missing=None, follow=False),
            shown,
        )
        old = _parse(old_text, shown, catalogue, slug=slug).promotions
    except FileNotFoundError:
        old_text, old = _HEADER.format(slug=slug), []
    if old_text and not old_text.endswith("\n"):
        old_text += "\n"
    wanted = [*old, item]
    text = old_text + entry_text(item)
    try:
        fits = _parse(text, shown, catalogue, slug=slug).promotions == wanted
    except StateInvalid:
        fits = False
    if not fits:
        text = _HEADER.format(slug=slug) + "".join(entry_text(p) for p in wanted)
        _parse(text, shown, catalogue, slug=slug)  # what is written always loads
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateInvalid(f"cannot create {path.parent}: {exc.strerror}") from None
    return write_atomic(path, text.encode())
