"""The generators of the consumers' artefacts, in Python: what the zod module says, and what
it refuses to guess (tests/render/test_zod_with_node.py runs the results with tsc, zod, Ajv)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from petrova import models
from petrova.documents import schemas
from petrova.documents.catalogue import load_catalogue, parse_catalogue
from petrova.documents.schemas import consumer_catalogue_schema, open_snapshot_schema
from petrova.fleet.artefacts import _zod_bytes
from petrova.render.zod import ZodUnsupported, zod_module
from tests.catalogue_edits import rename_integration
from tests.conftest import CATALOGUE, ROOT, Petrova


def _module(schema: dict[str, Any]) -> str:
    return zod_module(schema, document="Doc", renamed={}, integrations=[("ares", "ARES")])


def test_the_module_imports_only_zod_and_is_the_same_bytes_every_time() -> None:
    catalogue = load_catalogue(CATALOGUE)
    text = _zod_bytes(catalogue).decode()
    assert _zod_bytes(catalogue).decode() == text
    assert re.findall(r"(?m)^import .*$", text) == ['import { z } from "zod";']
    assert "require(" not in text
    for name in ("IntegrationCell", "StatusRow", "Snapshot"):
        assert f"export const {name}Schema = " in text
        assert f"export type {name} = z.infer<typeof {name}Schema>;" in text
    # known ids typed (and optional: a rename must not break an old dashboard), others cells
    assert "    ares: IntegrationCellSchema.optional(),\n" in text
    assert "}).catchall(IntegrationCellSchema).optional()," in text


def test_the_module_follows_the_snapshot_schema_field_for_field() -> None:
    """Every property of every model in the snapshot schema is in the module, so a field
    cannot be added to one and missed in the other."""
    catalogue = load_catalogue(CATALOGUE)
    schema = open_snapshot_schema(catalogue)
    text = _zod_bytes(catalogue).decode()
    blocks = dict(re.findall(r"(?ms)^export const (\w+)Schema = (.*?)^export type", text))
    renamed = {"SnapshotCell": "IntegrationCell", "SnapshotRow": "StatusRow"}
    for def_name, node in [*schema["$defs"].items(), ("Snapshot", schema)]:
        block = blocks[renamed.get(def_name, def_name)]
        keys = re.findall(r"(?m)^  (\w+): ", block)
        assert keys == list(node["properties"]), def_name


def test_a_keyword_it_cannot_translate_stops_the_generation_at_its_pointer(
    monkeypatch: pytest.MonkeyPatch, petrova: Petrova
) -> None:
    class WithTuple(models.Snapshot):
        window: tuple[str, int] | None = None

    monkeypatch.setattr(schemas, "Snapshot", WithTuple)
    run = petrova("contracts", "generate", "--check", "--root", str(ROOT))
    assert run.exit_code == 70
    assert "INTERNAL_ERROR: ZodUnsupported: #/properties/window/anyOf/0" in run.stderr
    assert "'prefixItems'" in run.stderr


@pytest.mark.parametrize(
    ("node", "pointer"),
    [
        ({"type": "object", "patternProperties": {"^a": {}}}, "#/properties/x"),
        ({"type": "string", "contentEncoding": "base64"}, "#/properties/x"),
        ({"allOf": [{"type": "string"}, {"minLength": 1}]}, "#/properties/x"),
        ({"type": ["string", "integer"]}, "#/properties/x"),
        ({"$ref": "#/$defs/Missing"}, "#/properties/x"),
    ],
)
def test_unsupported_schemas_are_refused_not_dropped(node: dict[str, Any], pointer: str) -> None:
    with pytest.raises(ZodUnsupported, match=re.escape(pointer)):
        _module({"type": "object", "properties": {"x": node}})


def test_a_recursive_model_is_refused() -> None:
    kids = {"type": "array", "items": {"$ref": "#/$defs/Node"}}
    schema = {
        "$defs": {"Node": {"type": "object", "properties": {"kids": kids}}},
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/Node"}},
    }
    with pytest.raises(ZodUnsupported, match="#/\\$defs/Node: a recursive schema"):
        _module(schema)


def test_names_and_texts_from_the_schema_cannot_break_out_of_the_module() -> None:
    schema = {
        "type": "object",
        "description": "ends a comment */ alert(1) /*",
        "properties": {
            "needs-quoting": {"type": "string", "pattern": '^a/"b"\\d$'},
            "n": {"enum": [1, "two", None]},
        },
        "required": ["n"],
    }
    text = zod_module(
        schema, document="Doc", renamed={}, integrations=[("ares", 'A "quoted" */ title')]
    )
    assert "/** ends a comment *\\/ alert(1) /* */" in text
    assert (
        '  "needs-quoting": z.string().regex(new RegExp("^a/\\"b\\"\\\\d$", "u")).optional(),'
        in text
    )
    assert '  n: z.union([z.literal(1), z.literal("two"), z.literal(null)]),' in text
    assert '  ares: "A \\"quoted\\" */ title",' in text


def test_the_consumer_catalogue_has_no_annotations_and_the_same_shape(tmp_path: Path) -> None:
    catalogue = load_catalogue(CATALOGUE)
    raw = json.loads(CATALOGUE.read_text())
    raw["$defs"]["integration_ares"]["properties"]["x-note"] = {"type": "string"}
    raw["$defs"]["integration_ares"]["x-owner"] = "ares team"
    edited = parse_catalogue(raw, "edited")
    consumer = consumer_catalogue_schema(edited)
    text = json.dumps(consumer)
    assert '"x-legacy-ids"' not in text and '"x-probe"' not in text and '"x-owner"' not in text
    # a property *named* x-note is data of `properties`, not a keyword: kept
    assert "x-note" in consumer["$defs"]["integration_ares"]["properties"]
    assert consumer["$id"].endswith("/contract.consumer.schema.json")
    ares = consumer["properties"]["integrations"]["properties"]["ares"]["allOf"]
    assert ares[0] == {"$ref": "#/$defs/cell"}
    assert ares[1]["type"] == "object"  # beside a $ref to an object: same verdict, no warning
    assert consumer["$defs"]["cell"] == catalogue.schema["$defs"]["cell"]
    assert consumer_catalogue_schema(catalogue) == json.loads(
        (ROOT / "contracts" / "contract.consumer.schema.json").read_text()
    )


def test_the_consumer_catalogue_accepts_a_legacy_id_but_not_beside_its_new_one(
    tmp_path: Path,
) -> None:
    renamed = load_catalogue(
        rename_integration(CATALOGUE, "lore_cairnet", "rocky", tmp_path / "c.json")
    )
    cells = consumer_catalogue_schema(renamed)["properties"]["integrations"]
    assert cells["properties"]["lore_cairnet"] == cells["properties"]["rocky"]
    assert cells["dependentSchemas"] == {"lore_cairnet": {"not": {"required": ["rocky"]}}}
