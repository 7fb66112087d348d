"""JSON Schemas generated from the models, specialised by the catalogue.

Nothing here is kept by hand: ``petrova contracts generate`` writes these into
``contracts/`` and a test fails when the checked-in copies differ.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

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


#: The keywords of JSON Schema 2020-12 (core, applicator, unevaluated, validation,
#: meta-data, format-annotation, content). Anything else in a schema is an annotation
#: that changes no verdict, and a validator in strict mode (Ajv's default) refuses it.
_KEYWORDS = """
    $schema $id $ref $anchor $dynamicRef $dynamicAnchor $vocabulary $comment $defs
    allOf anyOf oneOf not if then else dependentSchemas prefixItems items contains
    properties patternProperties additionalProperties propertyNames
    unevaluatedItems unevaluatedProperties
    type const enum multipleOf maximum exclusiveMaximum minimum exclusiveMinimum
    maxLength minLength pattern maxItems minItems uniqueItems maxContains minContains
    maxProperties minProperties required dependentRequired
    title description default deprecated readOnly writeOnly examples
    format contentEncoding contentMediaType contentSchema
"""
KEYWORDS_2020_12 = frozenset(_KEYWORDS.split())
_ONE = "not if then else items contains additionalProperties propertyNames unevaluatedItems"
_ONE_SCHEMA = (*_ONE.split(), "unevaluatedProperties", "contentSchema")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_MAPS = ("$defs", "properties", "patternProperties", "dependentSchemas")
_OBJECT = """properties patternProperties additionalProperties propertyNames
    unevaluatedProperties required dependentRequired dependentSchemas minProperties maxProperties"""
_OBJECT_KEYWORDS = frozenset(_OBJECT.split())


def subschemas(node: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each schema object directly inside ``node``, with its JSON pointer step.

    Walks keywords, never data: a property *named* ``x-foo`` or ``additionalProperties``
    is a key of ``properties``, not a keyword, and an ``enum`` value is never a schema.
    """
    for key in _ONE_SCHEMA:
        if isinstance(node.get(key), dict):
            yield key, node[key]
    for key in _SCHEMA_LISTS:
        for i, sub in enumerate(node.get(key) or ()):
            if isinstance(sub, dict):
                yield f"{key}/{i}", sub
    for key in _SCHEMA_MAPS:
        for name, sub in (node.get(key) or {}).items():
            if isinstance(sub, dict):
                yield f"{key}/{name}", sub


def _local_type(node: dict[str, Any], root: dict[str, Any]) -> Any:
    """The ``type`` a schema pins, looking through one chain of local ``$ref``s."""
    seen: set[str] = set()
    while "type" not in node and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/$defs/") or ref in seen:
            return None
        seen.add(ref)
        node = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
    return node.get("type")


def _strict_copy(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """``node`` with only 2020-12 keywords, and the ``type`` a strict validator wants.

    Each branch of an ``allOf`` beside one that pins ``type: object`` gets the same
    ``type`` when it uses object keywords: the instance is an object either way, so
    the verdict is the same, and Ajv's strict types (which do not look through a
    ``$ref``) stop warning.
    """
    out = {k: v for k, v in node.items() if k in KEYWORDS_2020_12}
    for key in _ONE_SCHEMA:
        if isinstance(out.get(key), dict):
            out[key] = _strict_copy(out[key], root)
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {
                k: _strict_copy(v, root) if isinstance(v, dict) else v for k, v in out[key].items()
            }
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_strict_copy(v, root) if isinstance(v, dict) else v for v in out[key]]
    branches = out.get("allOf")
    if isinstance(branches, list) and any(
        isinstance(b, dict) and _local_type(b, root) == "object" for b in branches
    ):
        out["allOf"] = [
            {"type": "object"} | b
            if isinstance(b, dict)
            and "type" not in b
            and "$ref" not in b
            and any(k in b for k in _OBJECT_KEYWORDS)
            else b
            for b in branches
        ]
    return out


def consumer_catalogue_schema(catalogue: Catalogue) -> dict[str, Any]:
    """The catalogue as a contract schema that any 2020-12 validator compiles as it is.

    petrova's own annotations (``x-legacy-ids``, ``x-probe``) are left out: they change
    no verdict, and Ajv's strict mode (its default) refuses unknown keywords. A legacy
    id is accepted as a key, with its current id's schema, but not beside that id,
    because petrova renames it before it validates and refuses the pair.
    """
    schema = _strict_copy(catalogue.schema, catalogue.schema)
    cells = schema["properties"]["integrations"]
    legacy = {name: i.id for i in catalogue.integrations for name in i.legacy_ids}
    if legacy:
        props = cells["properties"]
        for name, current in legacy.items():
            props[name] = copy.deepcopy(props[current])
        cells["dependentSchemas"] = {
            name: {"not": {"required": [current]}} for name, current in legacy.items()
        }
    return schema | {
        "$id": BASE_ID + "contract.consumer.schema.json",
        "description": "Generated from contract.schema.json by `petrova contracts generate` "
        "for JavaScript consumers (Ajv with its defaults): the same verdict on every "
        "contract, without petrova's own annotations (x-legacy-ids, x-probe), which "
        "strict validators refuse. Do not edit: edit the catalogue and regenerate. "
        + str(catalogue.schema.get("description", "")),
    }


def _open_objects(node: dict[str, Any]) -> None:
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    for _, sub in subschemas(node):
        _open_objects(sub)


def open_snapshot_schema(catalogue: Catalogue) -> dict[str, Any]:
    """The snapshot as a consumer must read it to survive petrova's next release.

    Within schema major 1 petrova only adds (optional fields, integrations), so this
    variant of :func:`snapshot_schema` lets every object carry keys it does not name,
    reads any ``1.x`` ``schema_version`` and any integration id, and expects no
    particular id (a catalogue rename drops one). An unknown id's cell is still a cell.
    The generated zod module (``contracts/snapshot.zod.ts``) is this schema.
    """
    schema = copy.deepcopy(snapshot_schema(catalogue))
    _open_objects(schema)
    props = schema["properties"]
    props["schema_version"] = {
        "description": "1.x: within major 1, fields are only ever added.",
        "type": "string",
        "pattern": "^1\\.[0-9]+$",
    }
    props["integration_ids"]["items"] = {"type": "string"}
    cells = schema["$defs"]["SnapshotRow"]["properties"]["integrations"]
    cells.pop("required", None)
    cells["additionalProperties"] = {"$ref": "#/$defs/SnapshotCell"}
    return schema


class _SnapshotChecks(NamedTuple):
    """Compiled yes/no checks of the snapshot schema, split at its cells."""

    #: The document with every cell left open (``SnapshotCell`` accepts anything).
    rest: Callable[[Any], bool]
    #: One cell against ``SnapshotCell``.
    cell: Callable[[Any], bool]


@cache
def _fast_snapshot_checks(catalogue: Catalogue) -> _SnapshotChecks:
    import jsonschema_rs  # only the commands that write a snapshot pay for it

    schema = snapshot_schema(catalogue)
    defs = schema["$defs"]
    open_cells = schema | {"$defs": defs | {"SnapshotCell": True}}
    one_cell = {"$schema": SCHEMA_DIALECT, "$defs": defs, "$ref": "#/$defs/SnapshotCell"}
    return _SnapshotChecks(
        jsonschema_rs.validator_for(open_cells).is_valid,
        jsonschema_rs.validator_for(one_cell).is_valid,
    )


def _distinct_cells(document: Any) -> list[Any] | None:
    """Each cell object of the document once (by identity); ``None`` when the document
    is not shaped so far as to hold them where the schema puts them (then it is invalid)."""
    cells: dict[int, Any] = {}
    try:
        for row in document["rows"]:
            if "integrations" in row:
                row_cells = row["integrations"].values()
                cells.update(zip(map(id, row_cells), row_cells, strict=True))
    except (AttributeError, KeyError, TypeError):
        return None
    return list(cells.values())


@cache
def snapshot_validator(catalogue: Catalogue) -> Draft202012Validator:
    """The detailed validator of the snapshot schema (jsonschema: slow, says why)."""
    from petrova.documents.validation import whole_string_validator

    return whole_string_validator(snapshot_schema(catalogue))


def check_snapshot(document: Any, catalogue: Catalogue) -> None:
    """Refuse to emit a snapshot that breaks its own published schema.

    A compiled validator says yes or no quickly (10,000 rows in about 0.01 s, against
    several seconds for jsonschema); only a "no" pays for jsonschema's detailed errors.

    The yes is split at the cells, for the same verdict with less work: the document
    against the schema with ``SnapshotCell`` left open, and each distinct cell object
    once against ``SnapshotCell`` (the only way the schema reaches a cell). The
    document :func:`~petrova.render.formats.snapshot_document` makes shares one dict
    among equal cells, so a fleet's 40,000 cells are a few hundred objects to check.
    """
    checks = _fast_snapshot_checks(catalogue)
    cells = _distinct_cells(document)
    if cells is not None and checks.rest(document) and all(map(checks.cell, cells)):
        return  # jsonschema is not even imported
    errors = list(snapshot_validator(catalogue).iter_errors(document))
    problems = [
        Problem(e.message, Location("snapshot", field="/".join(map(str, e.absolute_path))))
        for e in errors[:20]
    ] or [Problem("the compiled schema rejected the document", Location("snapshot"))]
    raise SnapshotInvalid(
        "the snapshot does not match contracts/snapshot.schema.json; this is a bug in "
        "petrova, nothing was written",
        problems=problems,
    )
