"""The catalogue is the single source of integration ids, titles and evidence shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from petrova.documents.catalogue import find_catalogue, load_catalogue, parse_catalogue
from petrova.errors import CatalogueInvalid, CatalogueNotFound
from tests.conftest import CATALOGUE, examples


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
        cell["allOf"][1]["properties"]["evidence"]["$ref"] = "#/$defs/integration_rocky"
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
    # eva was written with keywords beside a $ref (draft 2020-12 applies them): the
    # compiled check judges it as jsonschema does
    check = catalogue.fast_contract_check
    wired_eva = {"status": "wired", "evidence": {}}
    base = {"schema_version": 1, "slug": "a", "integrations": {}}
    assert check({**base, "integrations": {"eva": wired_eva}})
    assert not check({**base, "integrations": {"eva": {"status": "wired"}}})
    assert not catalogue.contract_validator.is_valid(
        {**base, "integrations": {"eva": {"status": "wired"}}}
    )


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


# --- the compiled validator judges contracts exactly as jsonschema does ------------

scalars = st.one_of(
    st.sampled_from(
        [
            "",
            "x",
            "2026-08-01",
            "2026-13-01",
            "2026-11-26T07:00:00Z",
            "http://a",
            "https://a/b",
            "kahn-hq",
            "Kahn",
            "linear",
            "wired",
        ]
    ),
    st.integers(-2, 3),
    st.booleans(),
    st.none(),
    st.floats(-1, 2, allow_nan=False),
)
field_names = st.sampled_from(
    [
        "org_or_repo_scope",
        "baseline_id",
        "vtm_path",
        "traceo_endpoint",
        "mermaid_validated",
        "mermaid_diagram_count",
        "mermaid_validated_at",
        "content_path",
        "project_prefix",
        "card_count",
        "lore_collection_slug",
        "cairnet_agent_id",
        "decay_policy",
        "emission_rate_30d",
        "nope",
    ]
)
cells = st.fixed_dictionaries(
    {"status": st.sampled_from(["pending", "wired", "not_applicable", "done", 3])},
    optional={
        "evidence": st.dictionaries(field_names, scalars, max_size=4),
        "not_applicable_reason": scalars,
        "review_by": scalars,
        "extra": scalars,
    },
)
contracts = st.fixed_dictionaries(
    {
        "schema_version": st.sampled_from([1, 1, 2, "1"]),
        "slug": st.sampled_from(["kahn-hq", "Kahn"]),
        "integrations": st.dictionaries(
            st.sampled_from(["ares", "traceo", "crumb", "lore_cairnet", "jenkins"]),
            cells,
            max_size=4,
        ),
    },
    optional={"contract_committers": st.sampled_from([["humans"], [], ["a", "a"]])},
)


@settings(max_examples=examples(300))
@given(contracts)
def test_fast_contract_check_agrees_with_jsonschema(contract: dict[str, Any]) -> None:
    catalogue = load_catalogue(CATALOGUE)
    slow_ok = catalogue.contract_validator.is_valid(contract)
    assert catalogue.fast_contract_check(contract) == slow_ok
