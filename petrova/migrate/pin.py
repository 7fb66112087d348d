"""``petrova registry pin`` (SPEC §3): record a merged contract in ``registry.yaml``.

The registry is a human-owned file with comments and a layout people chose, so the pin
is a splice, not a re-dump: the new text goes in at the composed nodes' marks and every
byte outside the lines that change stays as it was. The result is loaded again with the
registry's own loader (and compared, entry by entry, with what was meant) before it may
replace the file.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from petrova.documents.catalogue import Catalogue
from petrova.documents.contract import LoadedContract
from petrova.documents.registry import LoadedRegistry, load_registry
from petrova.errors import (
    ApplicabilityConflict,
    ContractInvalid,
    Location,
    PetrovaError,
    PinEditFailed,
    Problem,
)
from petrova.files.disk import decode_text
from petrova.files.yaml_strict import node_span, parse_yaml
from petrova.models import (
    REGISTRY_KEYS,
    Applicability,
    ApplicabilityDetail,
    RepoEntry,
    applicability_value,
)

_BOM = "\ufeff"
#: Where new keys go: the registry's own field order (the order SPEC §3 shows).
KEY_ORDER: tuple[str, ...] = tuple(RepoEntry.model_fields)


@dataclass(frozen=True)
class PinPlan:
    slug: str
    sha: str
    old_sha: str | None
    #: Applicability keys the registry lacks, filled from the contract, in catalogue order.
    added: dict[str, Applicability]
    before: bytes
    after: bytes

    @property
    def stale(self) -> bool:
        return self.old_sha != self.sha or bool(self.added)


# --- what the pin means -----------------------------------------------------------------


def conflicts(loaded: LoadedRegistry, entry: RepoEntry, contract: LoadedContract) -> list[Problem]:
    """``wired`` in the contract where the registry says not applicable: refused."""
    index = loaded.entry_index(entry.slug)
    raw_app = loaded.document.data["repos"][index].get("integrations_applicability") or {}
    problems: list[Problem] = []
    for iid, cell in contract.contract.integrations.items():
        item = entry.integrations_applicability.get(iid)
        if cell.status != "wired" or item is None or applicability_value(item) != "not_applicable":
            continue
        key = next((k for k in raw_app if loaded.catalogue.resolve(k) == iid), iid)
        where = contract.document.locate(("integrations", iid, "status"))
        problems.append(
            Problem(
                f"{entry.slug}: {iid} is not_applicable here, but {where} declares it wired; "
                "change the registry (by pull request) or the contract before pinning",
                loaded.document.locate(("repos", index, "integrations_applicability", key)),
            )
        )
    return problems


def applicability_from_contract(
    catalogue: Catalogue, entry: RepoEntry, contract: LoadedContract
) -> dict[str, Applicability]:
    """Keys the registry lacks: ``not_applicable`` keeps its paperwork, the rest are required."""
    added: dict[str, Applicability] = {}
    for iid in catalogue.ids:
        if iid in entry.integrations_applicability:
            continue
        cell = contract.contract.integrations.get(iid)
        if cell is not None and cell.status == "not_applicable":
            added[iid] = ApplicabilityDetail(
                value="not_applicable", review_by=cell.review_by, reason=cell.not_applicable_reason
            )
        else:
            added[iid] = "required"
    return added


def plan_pin(loaded: LoadedRegistry, raw: bytes, slug: str, contract: LoadedContract) -> PinPlan:
    """The pin as a before/after pair of registry bytes; raises on a contradiction."""
    entry = loaded.entry(slug)
    if entry is None:  # pragma: no cover - callers look the entry up first
        raise KeyError(slug)
    if contract.contract.slug != slug:
        raise ContractInvalid(
            f"this contract is for {contract.contract.slug!r}, not {slug!r}",
            location=contract.document.locate(("slug",)),
        )
    problems = conflicts(loaded, entry, contract)
    if problems:
        raise ApplicabilityConflict(
            f"{len(problems)} integration(s) contradict the registry", problems=problems
        )
    added = applicability_from_contract(loaded.catalogue, entry, contract)
    if entry.contract_sha == contract.sha and not added:
        return PinPlan(slug, contract.sha, entry.contract_sha, added, raw, raw)
    after = splice(raw, loaded.entry_index(slug), sha=contract.sha, added=added)
    return PinPlan(slug, contract.sha, entry.contract_sha, added, raw, after)


def load_edited(after: bytes, loaded: LoadedRegistry) -> LoadedRegistry:
    """The edited registry text, loaded as a registry, or ``PIN_EDIT_FAILED``: the splice
    of ``pin`` and ``fill-applicability`` is checked before anything is written."""
    with tempfile.TemporaryDirectory(prefix="petrova-edit-") as tmp:
        scratch = Path(tmp) / loaded.path.name
        scratch.write_bytes(after)
        try:
            return load_registry(scratch, loaded.catalogue)
        except PetrovaError as exc:
            raise PinEditFailed(
                "the edited registry does not load; nothing was written (this is a bug: "
                f"please report it, and edit by hand meanwhile): {exc.render()}",
                location=Location(str(loaded.path)),
            ) from None


def verify(plan: PinPlan, loaded: LoadedRegistry) -> None:
    """Load the edited text as the registry it must be, or refuse to write it."""
    again = load_edited(plan.after, loaded)
    want = []
    for repo in loaded.registry.repos:
        if repo.slug == plan.slug:
            app = {**repo.integrations_applicability, **plan.added}
            repo = repo.model_copy(
                update={"contract_sha": plan.sha, "integrations_applicability": app}
            )
        want.append(repo)
    if list(again.registry.repos) != want:
        raise PinEditFailed(
            "the edited registry does not say what the pin meant; nothing was written "
            "(this is a bug: please report it, and pin by hand meanwhile)",
            location=Location(str(loaded.path)),
        )


# --- the splice ---------------------------------------------------------------------------


def _plain_or_quoted(text: str) -> str:
    """``text`` as a YAML scalar that reads back as that same string."""
    try:
        if parse_yaml(text, "<scalar>").data == text and text.strip() == text:
            return text
    except PetrovaError:
        pass
    return json.dumps(text, ensure_ascii=False)


def _value_text(item: Applicability) -> str:
    if isinstance(item, str):
        return _plain_or_quoted(item)
    parts = [f"value: {_plain_or_quoted(item.value)}"]
    if item.review_by is not None:
        parts.append(f"review_by: {json.dumps(item.review_by)}")
    if item.reason is not None:
        parts.append(f"reason: {json.dumps(item.reason, ensure_ascii=False)}")
    return "{" + ", ".join(parts) + "}"


def _flow_mapping(items: dict[str, Applicability]) -> str:
    return (
        "{" + ", ".join(f"{_plain_or_quoted(k)}: {_value_text(v)}" for k, v in items.items()) + "}"
    )


def _find(mapping: MappingNode, key: str) -> tuple[ScalarNode, Node] | None:
    for key_node, value_node in mapping.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def _last_end(node: Node) -> int:
    """Where the last character of a node's content is, past any block collection's tail.

    A block mapping's end mark sits at the next token, after trailing blank lines and
    comments; its last scalar's end does not.
    """
    if isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
        last = node.value[-1]
        return _last_end(last[1] if isinstance(last, tuple) else last)
    return node_span(node)[1]


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _after_line(text: str, index: int) -> int:
    """The start of the line after the one holding ``index`` (or the end of the text)."""
    if index > 0 and text[index - 1] == "\n":
        return index
    newline = text.find("\n", index)
    return len(text) if newline < 0 else newline + 1


def _starts_line(text: str, node: Node) -> bool:
    start = node.start_mark.index
    return text[_line_start(text, start) : start].strip() == ""


def _above_comments(text: str, index: int, indent: int) -> int:
    """Move a line-start insertion point above the comments that introduce that line."""
    while index > 0:
        previous = _line_start(text, index - 1)
        line = text[previous : index - 1]
        if line.strip().startswith("#") and len(line) - len(line.lstrip(" ")) == indent:
            index = previous
        else:
            break
    return index


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


def _apply(text: str, edits: Iterable[_Edit]) -> str:
    # Later edits first, so earlier offsets stay valid; equal starts keep their order.
    ordered = sorted(enumerate(edits), key=lambda pair: (pair[1].start, pair[0]), reverse=True)
    for _, edit in ordered:
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text


def _replace_value(text: str, value: Node, new: str) -> _Edit:
    start, end = node_span(value)
    if start == end and text[start - 1 : start] == ":":
        new = " " + new
    return _Edit(start, end, new)


def splice(raw: bytes, index: int, *, sha: str, added: dict[str, Applicability]) -> bytes:
    """Set ``repos[index]``'s contract_sha and add applicability keys, touching nothing else."""
    return splice_entries(raw, {index: (sha, added)})


def splice_entries(
    raw: bytes, changes: dict[int, tuple[str | None, dict[str, Applicability]]]
) -> bytes:
    """For each ``repos[index]``: set contract_sha (unless None) and add applicability
    keys, all on one parse of the file (a fleet-wide fill stays linear), nothing else."""
    shown = "registry.yaml"
    text = decode_text(raw, shown)
    bom = _BOM if raw.startswith(_BOM.encode()) else ""
    doc = parse_yaml(text, shown, string_keys=REGISTRY_KEYS.strings)  # a sha of digits
    assert isinstance(doc.node, MappingNode)
    repos = _find(doc.node, "repos")
    assert repos is not None and isinstance(repos[1], SequenceNode)
    nl = "\r\n" if "\r\n" in text else "\n"
    edits: list[_Edit] = []
    for index, (sha, added) in changes.items():
        entry = repos[1].value[index]
        assert isinstance(entry, MappingNode)
        edits += _entry_edits(text, entry, sha=sha, added=added, nl=nl)
    return (bom + _apply(text, edits)).encode("utf-8")


def _entry_edits(
    text: str, entry: MappingNode, *, sha: str | None, added: dict[str, Applicability], nl: str
) -> list[_Edit]:
    edits: list[_Edit] = []
    new_keys: dict[str, str] = {}  # key -> its value text (flow) for keys the entry lacks
    block_values: dict[str, list[str]] = {}  # key -> lines under it, for block entries

    if sha is not None:
        sha_text = _plain_or_quoted(sha)
        existing_sha = _find(entry, "contract_sha")
        if existing_sha is not None:
            edits.append(_replace_value(text, existing_sha[1], sha_text))
        else:
            new_keys["contract_sha"] = sha_text

    if added:
        existing_app = _find(entry, "integrations_applicability")
        if existing_app is None:
            new_keys["integrations_applicability"] = _flow_mapping(added)
            block_values["integrations_applicability"] = [
                f"{_plain_or_quoted(k)}: {_value_text(v)}" for k, v in added.items()
            ]
        else:
            edits.append(_extend_applicability(text, existing_app[1], added, nl))

    if new_keys:
        edits += _insert_keys(text, entry, new_keys, block_values, nl)
    return edits


def _extend_applicability(text: str, app: Node, added: dict[str, Applicability], nl: str) -> _Edit:
    pairs = [f"{_plain_or_quoted(k)}: {_value_text(v)}" for k, v in added.items()]
    if isinstance(app, MappingNode) and app.value and not app.flow_style:
        first_key = app.value[0][0]
        indent = " " * first_key.start_mark.column
        at = _after_line(text, _last_end(app))
        lead = "" if at == 0 or text[at - 1] == "\n" else nl
        return _Edit(at, at, lead + "".join(f"{indent}{p}{nl}" for p in pairs))
    if isinstance(app, MappingNode) and app.value:  # flow: {ares: required, ...}
        at = _last_end(app.value[-1][1])
        return _Edit(at, at, "".join(f", {p}" for p in pairs))
    if isinstance(app, MappingNode):  # {}
        start, end = node_span(app)
        return _Edit(start, end, "{" + ", ".join(pairs) + "}")
    # null (empty, ~ or null): a flow mapping in its place keeps the line where it is
    return _replace_value(text, app, "{" + ", ".join(pairs) + "}")


def _insert_keys(
    text: str,
    entry: MappingNode,
    new_keys: dict[str, str],
    block_values: dict[str, list[str]],
    nl: str,
) -> list[_Edit]:
    if entry.flow_style:
        at = _last_end(entry.value[-1][1]) if entry.value else node_span(entry)[0] + 1
        sep = ", " if entry.value else ""
        return [_Edit(at, at, sep + ", ".join(f"{k}: {v}" for k, v in new_keys.items()))]
    column = entry.value[0][0].start_mark.column
    indent = " " * column
    child = " " * (column + 2)
    # One edit per insertion point, so keys that land together keep their order and
    # share one leading newline at the end of a file that lacks its last one.
    grouped: dict[int, str] = {}
    for key, flow_value in new_keys.items():
        if key in block_values:
            lines = f"{indent}{key}:{nl}" + "".join(
                f"{child}{line}{nl}" for line in block_values[key]
            )
        else:
            lines = f"{indent}{key}: {flow_value}{nl}"
        rank = KEY_ORDER.index(key)
        anchor = next(
            (
                k
                for k, _ in entry.value
                if isinstance(k, ScalarNode)
                and k.value in KEY_ORDER
                and KEY_ORDER.index(k.value) > rank
                and _starts_line(text, k)
            ),
            None,
        )
        if anchor is not None:
            at = _above_comments(text, _line_start(text, anchor.start_mark.index), column)
        else:
            at = _after_line(text, _last_end(entry))
        grouped[at] = grouped.get(at, "") + lines
    return [
        _Edit(at, at, ("" if at == 0 or text[at - 1] == "\n" else nl) + lines)
        for at, lines in grouped.items()
    ]
