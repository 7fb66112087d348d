"""Consumer contracts (SPEC §4): read, check against the catalogue, and write deterministically.

The catalogue *is* the contract's JSON Schema, so validation is jsonschema over the
parsed YAML, with each error walked back to its line. Legacy integration ids are
mapped to current ones on read, so a catalogue rename never strands a contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from petrova.documents.catalogue import Catalogue
from petrova.documents.validation import jsonschema_problems, pydantic_problems
from petrova.errors import (
    ContractInvalid,
    ContractNotFound,
    EvidenceInvalid,
    PetrovaError,
    YamlInvalid,
)
from petrova.files.disk import StrPath, clone_root, decode_text, read_as, sha12
from petrova.files.yaml_fast import fast_parse
from petrova.files.yaml_strict import YamlDocument, parse_yaml
from petrova.models import Contract, ContractCell

CONTRACT_RELPATH = Path(".petrova") / "contract.yaml"
HEADER = (
    "# petrova consumer contract: this repo's declared integration intent.\n"
    "# Written by `petrova bootstrap` phase 6; change it by pull request.\n"
    "# Its sha256 (first 12 hex digits) is pinned in the fleet registry.\n"
)


@dataclass(frozen=True)
class LoadedContract:
    path: str
    raw: bytes
    sha: str
    contract: Contract
    text: str
    #: Legacy ids that were mapped, as (old, new).
    renamed: tuple[tuple[str, str], ...]
    string_keys: frozenset[str] = frozenset()

    @cached_property
    def document(self) -> YamlDocument:
        """The composed YAML, for line numbers; parsed on first use."""
        return parse_yaml(self.text, self.path, string_keys=self.string_keys)


def load_contract(
    path: StrPath,
    catalogue: Catalogue,
    *,
    display: str | None = None,
    root: StrPath | None = None,
    limit: int | None = None,
) -> LoadedContract:
    """Read and validate a contract; every failure is a :class:`PetrovaError`.

    A contract sits in a consumer clone, which petrova does not control: no link below
    the clone's root (the nearest folder with ``.git``) is followed, on any path that
    leads here, so a clone cannot make petrova pin or quote a file outside it.
    ``root``: the clone's root when the caller knows it (the snapshot does), else found.
    ``limit``: the input limit, when a caller reading many files has looked it up once.
    """
    shown = display or str(path)
    raw = read_as(
        path,
        ContractNotFound,
        what="the contract",
        missing="contract file not found",
        directory="is a directory, not a contract file",
        display=shown,
        root=root if root is not None else clone_root(Path(path)),
        limit=limit,
    )
    try:
        text = decode_text(raw, shown)
    except YamlInvalid as exc:
        raise ContractInvalid(exc.message, problems=exc.problems) from None
    return _parse_contract(raw, text, catalogue, shown)


def load_contract_bytes(raw: bytes, catalogue: Catalogue, *, display: str) -> LoadedContract:
    """A contract read from somewhere other than a file (a git object): same checks."""
    try:
        text = decode_text(raw, display)
    except YamlInvalid as exc:
        raise ContractInvalid(exc.message, problems=exc.problems) from None
    return _parse_contract(raw, text, catalogue, display)


def _parse_contract(raw: bytes, text: str, catalogue: Catalogue, shown: str) -> LoadedContract:
    fast = _fast_contract(text, catalogue)
    if fast is not None:
        contract, renamed = fast
        return LoadedContract(
            shown, raw, sha12(raw), contract, text, renamed, catalogue.contract_keys.strings
        )
    try:
        doc = parse_yaml(text, shown, string_keys=catalogue.contract_keys.strings)
    except YamlInvalid as exc:
        raise ContractInvalid(exc.message, problems=exc.problems) from None
    contract, renamed = validate_contract_document(doc, catalogue)
    return LoadedContract(
        shown, raw, sha12(raw), contract, text, renamed, catalogue.contract_keys.strings
    )


def _fast_contract(
    text: str, catalogue: Catalogue
) -> tuple[Contract, tuple[tuple[str, str], ...]] | None:
    """The contract when the fast parser and validator accept it; ``None`` to go slow."""
    data = fast_parse(text, catalogue.contract_keys)
    if not isinstance(data, dict):
        return None
    data, renamed = _canonical_ids(data, catalogue)
    if not catalogue.fast_contract_check(data):
        return None
    try:
        return Contract.model_validate(data), renamed
    except ValidationError:
        return None


def validate_contract_document(
    doc: YamlDocument, catalogue: Catalogue
) -> tuple[Contract, tuple[tuple[str, str], ...]]:
    data, renamed = _canonical_ids(doc.data, catalogue)
    errors = list(catalogue.contract_validator.iter_errors(data))
    if errors:
        problems = jsonschema_problems(errors, _renamed_doc(doc, data))
        all_evidence = all(
            len(e.absolute_path) >= 3 and e.absolute_path[2] == "evidence" for e in errors
        )
        error_type: type[PetrovaError] = EvidenceInvalid if all_evidence else ContractInvalid
        raise error_type(f"{len(problems)} problem(s) in the contract", problems=problems)
    try:
        contract = Contract.model_validate(data)
    except ValidationError as exc:  # the schema and the model disagree: still the user's file
        problems = pydantic_problems(exc, doc)
        raise ContractInvalid(
            f"{len(problems)} problem(s) in the contract", problems=problems
        ) from None
    return contract, renamed


def _renamed_doc(doc: YamlDocument, data: Any) -> YamlDocument:
    return doc if data is doc.data else YamlDocument(doc.path, data, doc.node)


def _canonical_ids(data: Any, catalogue: Catalogue) -> tuple[Any, tuple[tuple[str, str], ...]]:
    if not isinstance(data, dict) or not isinstance(data.get("integrations"), dict):
        return data, ()
    cells, renamed = catalogue.canonical_keys(data["integrations"])
    if not renamed:
        return data, ()
    return {**data, "integrations": cells}, renamed


def cell_as_dict(cell: ContractCell, catalogue: Catalogue, integration_id: str) -> dict[str, Any]:
    """A cell in the fixed key order the file uses; evidence in catalogue field order."""
    out: dict[str, Any] = {"status": cell.status}
    if cell.evidence is not None:
        order = [f.name for f in catalogue.get(integration_id).fields]
        known = [k for k in order if k in cell.evidence]
        out["evidence"] = {k: cell.evidence[k] for k in known} | {
            k: cell.evidence[k] for k in sorted(cell.evidence) if k not in order
        }
    if cell.not_applicable_reason is not None:
        out["not_applicable_reason"] = cell.not_applicable_reason
    if cell.review_by is not None:
        out["review_by"] = cell.review_by
    return out


def render_contract(contract: Contract, catalogue: Catalogue) -> bytes:
    """The file's bytes: same contract, same bytes, so the pinned sha is stable."""
    ordered_ids = [i for i in catalogue.ids if i in contract.integrations] + sorted(
        i for i in contract.integrations if i not in catalogue.ids
    )
    body = {
        "schema_version": contract.schema_version,
        "slug": contract.slug,
        "contract_committers": list(contract.contract_committers),
        "integrations": {
            i: cell_as_dict(contract.integrations[i], catalogue, i) for i in ordered_ids
        },
    }
    text = yaml.dump(
        body,
        Dumper=yaml.SafeDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
        indent=2,
    )
    return (HEADER + text).encode("utf-8")


def check_rendered(data: bytes, catalogue: Catalogue, display: str) -> Contract:
    """Re-read what we are about to write: never write a contract we could not load."""
    doc = parse_yaml(
        decode_text(data, display), display, string_keys=catalogue.contract_keys.strings
    )
    contract, _ = validate_contract_document(doc, catalogue)
    return contract
