"""JSON Schemas generated from the models, specialised by the catalogue.

Nothing here is kept by hand: ``petrova contracts generate`` writes these into
``contracts/`` and a test fails when the checked-in copies differ.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from petrova.documents.catalogue import Catalogue
from petrova.errors import Location, Problem, SnapshotInvalid
from petrova.models import Ledger, Registry, Snapshot

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "https://petrova.codes/contracts/"


def _clean(node: Any) -> Any:
    """Drop pydantic's ``default: null`` on keys that are left out rather than nulled."""
    if isinstance(node, dict):
        out = {k: _clean(v) for k, v in node.items()}
        if out.get("default", 0) is None and "anyOf" not in out:
            out.pop("default")
        return out
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _header(name: str, title: str, description: str) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": BASE_ID + name,
        "title": title,
        "description": description,
    }


def snapshot_schema(catalogue: Catalogue) -> dict[str, Any]:
    # Validation mode: the wrap serializers only drop unset optional keys, which that
    # mode already describes (they are simply not required).
    body: dict[str, Any] = _clean(Snapshot.model_json_schema(mode="validation"))
    ids = list(catalogue.ids)
    body.pop("title", None)
    body["properties"]["integration_ids"] = {
        "description": "The catalogue's integration ids, in catalogue order.",
        "type": "array",
        "items": {"enum": ids},
        "uniqueItems": True,
    }
    row = body["$defs"]["SnapshotRow"]
    row["properties"]["integrations"] = {
        "description": "Present exactly when the repo has migrated (contract_sha set); "
        "absent, never null, before that.",
        "type": "object",
        "properties": {i: {"$ref": "#/$defs/SnapshotCell"} for i in ids},
        "required": ids,
        "additionalProperties": False,
    }
    return (
        _header(
            "snapshot.schema.json",
            "petrova fleet snapshot",
            "The dashboard JSON written by `petrova snapshot`. Within a schema_version major, "
            "fields are only ever added.",
        )
        | body
    )


def registry_schema(catalogue: Catalogue) -> dict[str, Any]:
    body: dict[str, Any] = _clean(Registry.model_json_schema(mode="validation"))
    body.pop("title", None)
    names = list(catalogue.ids) + [x for i in catalogue.integrations for x in i.legacy_ids]
    entry = body["$defs"]["RepoEntry"]
    entry["properties"]["integrations_applicability"]["propertyNames"] = {"enum": names}
    return (
        _header(
            "registry.schema.json",
            "petrova fleet registry",
            "registry.yaml: every governed repo, its role, tier, pinned contract_sha and "
            "per-integration applicability. petrova checks more than this schema can say "
            "(unique slugs and urls, full applicability once migrated).",
        )
        | body
    )


def state_schema(catalogue: Catalogue) -> dict[str, Any]:
    body: dict[str, Any] = _clean(Ledger.model_json_schema(mode="validation"))
    body.pop("title", None)
    names = list(catalogue.ids) + [x for i in catalogue.integrations for x in i.legacy_ids]
    body["properties"]["integrations"]["propertyNames"] = {"enum": names}
    return (
        _header(
            "state.schema.json",
            "petrova probe ledger",
            "state/<slug>.yaml: what probes observed, written only by petrova (demote-only).",
        )
        | body
    )


@cache
def _snapshot_validators(
    catalogue: Catalogue,
) -> tuple[Callable[[Any], bool], Draft202012Validator]:
    import jsonschema_rs  # only the commands that write a snapshot pay for it

    from petrova.documents.validation import whole_string_validator

    schema = snapshot_schema(catalogue)
    return jsonschema_rs.validator_for(schema).is_valid, whole_string_validator(schema)


def check_snapshot(document: Any, catalogue: Catalogue) -> None:
    """Refuse to emit a snapshot that breaks its own published schema.

    A compiled validator says yes or no quickly (10,000 rows in about 0.01 s, against
    several seconds for jsonschema); only a "no" pays for jsonschema's detailed errors.
    """
    fast, detailed = _snapshot_validators(catalogue)
    if fast(document):
        return
    errors = list(detailed.iter_errors(document))
    problems = [
        Problem(e.message, Location("snapshot", field="/".join(map(str, e.absolute_path))))
        for e in errors[:20]
    ] or [Problem("the compiled schema rejected the document", Location("snapshot"))]
    raise SnapshotInvalid(
        "the snapshot does not match contracts/snapshot.schema.json; this is a bug in "
        "petrova, nothing was written",
        problems=problems,
    )
