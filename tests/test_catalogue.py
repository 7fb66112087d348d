"""The catalogue is the single source of integration ids, titles and evidence shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from petrova.catalogue import find_catalogue, load_catalogue, parse_catalogue
from petrova.errors import CatalogueInvalid, CatalogueNotFound
from tests.conftest import CATALOGUE


def test_shipped_catalogue() -> None:
    catalogue = load_catalogue(CATALOGUE)
    assert catalogue.ids == ("ares", "traceo", "crumb", "lore_cairnet")
    assert [i.title for i in catalogue.integrations] == [
        "ARES (CI/CD)",
        "Traceo",
        "CRUMB",
        "LORE+CAIRNET",
    ]
    traceo = catalogue.get("traceo")
    assert traceo.required_fields == ("baseline_id", "vtm_path")
    assert [f.name for f in traceo.fields if not f.required] == [
        "traceo_endpoint",
        "mermaid_validated",
        "mermaid_diagram_count",
        "mermaid_validated_at",
    ]
    assert catalogue.get("crumb").required_fields == (
        "content_path",
        "project_prefix",
        "card_count",
    )
    lore = catalogue.get("lore_cairnet")
    assert lore.required_fields == ("lore_collection_slug", "cairnet_agent_id")
    assert catalogue.get("ares").required_fields == ("org_or_repo_scope",)


def _copy(tmp_path: Path, edit: object) -> Path:
    schema = json.loads(CATALOGUE.read_text())
    edit(schema)  # type: ignore[operator]
    path = tmp_path / "contract.schema.json"
    path.write_text(json.dumps(schema))
    return path


def test_rename_and_add_are_schema_edits(tmp_path: Path) -> None:
    def edit(schema: dict) -> None:  # type: ignore[type-arg]
        props = schema["properties"]["integrations"]["properties"]
        cell = props.pop("lore_cairnet")
        cell["properties"]["evidence"]["$ref"] = "#/$defs/integration_rocky"
        props["rocky"] = cell
        props["eva"] = {
            "$ref": "#/$defs/cell",
            "properties": {"evidence": {"$ref": "#/$defs/integration_eva"}},
        }
        rocky = schema["$defs"].pop("integration_lore_cairnet")
        rocky["title"] = "ROCKY"
        rocky["x-legacy-ids"] = ["lore_cairnet"]
        schema["$defs"]["integration_rocky"] = rocky
        schema["$defs"]["integration_eva"] = {"title": "EVA", "type": "object"}

    catalogue = load_catalogue(_copy(tmp_path, edit))
    assert catalogue.ids == ("ares", "traceo", "crumb", "rocky", "eva")
    assert catalogue.resolve("lore_cairnet") == "rocky"
    assert catalogue.resolve("rocky") == "rocky"
    assert catalogue.resolve("jenkins") is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s["$defs"].pop("integration_crumb"), "integration 'crumb' has no evidence"),
        (lambda s: s["$defs"]["integration_crumb"].pop("title"), "needs a non-empty 'title'"),
        (lambda s: s["properties"].pop("integrations"), "must list at least one"),
        (
            lambda s: s["$defs"]["integration_crumb"].update({"x-legacy-ids": ["ares"]}),
            "claimed by both",
        ),
        (lambda s: s.update({"type": 12}), "not a valid JSON Schema 2020-12"),
    ],
)
def test_invalid_catalogue(tmp_path: Path, edit: object, message: str) -> None:
    with pytest.raises(CatalogueInvalid, match=message):
        load_catalogue(_copy(tmp_path, edit))


def test_catalogue_not_json(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"a": 1,\n  oops}')
    with pytest.raises(CatalogueInvalid) as info:
        load_catalogue(path)
    assert info.value.location.line == 2


def test_catalogue_not_an_object() -> None:
    with pytest.raises(CatalogueInvalid):
        parse_catalogue([], "x.json")


def test_find_catalogue_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PETROVA_CATALOGUE", raising=False)
    registry = tmp_path / "registry.yaml"
    explicit = tmp_path / "explicit.json"
    assert find_catalogue(explicit, registry) == explicit
    beside = tmp_path / "contracts" / "contract.schema.json"
    beside.parent.mkdir()
    beside.write_text("{}")
    assert find_catalogue(None, registry) == beside
    monkeypatch.setenv("PETROVA_CATALOGUE", str(explicit))
    assert find_catalogue(None, registry) == explicit
    monkeypatch.delenv("PETROVA_CATALOGUE")
    bundled = find_catalogue(None, tmp_path / "elsewhere" / "registry.yaml")
    assert bundled.read_bytes() == CATALOGUE.read_bytes()


def test_missing_catalogue(tmp_path: Path) -> None:
    with pytest.raises(CatalogueNotFound):
        load_catalogue(tmp_path / "none.json")
