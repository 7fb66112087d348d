"""Generated artefacts match the code, and this repo's own contract matches its pin."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from petrova.documents.catalogue import load_catalogue
from petrova.documents.registry import load_registry
from petrova.files.disk import sha12
from petrova.fleet.artefacts import ALL_STATUSES_DIR as ALL_STATUSES
from petrova.fleet.artefacts import SPINE_DIR as SPINE
from tests.conftest import CATALOGUE, ROOT, Petrova


def test_checked_in_artefacts_are_current(petrova: Petrova) -> None:
    run = petrova("contracts", "generate", "--check", "--root", str(ROOT))
    assert run.exit_code == 0, run.stderr
    assert run.stderr.count("identical") == 7


def _project_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(ROOT / "contracts", root / "contracts")
    return root


def test_stale_artefact_fails_the_check_and_one_command_fixes_it(
    tmp_path: Path, petrova: Petrova
) -> None:
    root = _project_copy(tmp_path)
    fixture = root / "contracts" / "fixtures" / "snapshot-with-integrations.json"
    fixture.write_text(fixture.read_text().replace('"tier": 2', '"tier": 9'))
    (root / "contracts" / "state.schema.json").unlink()
    run = petrova("contracts", "generate", "--check", "--root", str(root))
    assert run.exit_code == 1
    assert "    stale  contracts/fixtures/snapshot-with-integrations.json" in run.stderr
    assert "  missing  contracts/state.schema.json" in run.stderr
    assert "run `make artefacts`" in run.stderr
    assert petrova("contracts", "generate", "--root", str(root)).exit_code == 0
    assert (
        fixture.read_bytes()
        == (ROOT / "contracts/fixtures/snapshot-with-integrations.json").read_bytes()
    )
    assert petrova("contracts", "generate", "--check", "--root", str(root)).exit_code == 0


def test_catalogue_change_flows_into_the_schemas(tmp_path: Path, petrova: Petrova) -> None:
    """Adding an integration is a catalogue edit; the artefacts follow with one command."""
    root = _project_copy(tmp_path)
    catalogue = root / "contracts" / "contract.schema.json"
    schema = json.loads(catalogue.read_text())
    schema["properties"]["integrations"]["properties"]["eva"] = {
        "$ref": "#/$defs/cell",
        "properties": {"evidence": {"$ref": "#/$defs/integration_eva"}},
    }
    schema["$defs"]["integration_eva"] = {"title": "EVA", "type": "object"}
    catalogue.write_text(json.dumps(schema, indent=2))
    # every migrated entry states applicability for every id: a data edit in the same PR
    for registry in (root / SPINE / "registry.yaml", root / ALL_STATUSES / "registry.yaml"):
        registry.write_text(
            re.sub(
                r"(?m)^(      lore_cairnet: .*)$", r"\1\n      eva: optional", registry.read_text()
            )
        )
    assert petrova("contracts", "generate", "--root", str(root)).exit_code == 0
    snapshot_schema = json.loads((root / "contracts" / "snapshot.schema.json").read_text())
    cells = snapshot_schema["$defs"]["SnapshotRow"]["properties"]["integrations"]
    assert cells["required"] == ["ares", "traceo", "crumb", "lore_cairnet", "eva"]
    fixture = json.loads((root / "contracts/fixtures/snapshot-with-integrations.json").read_text())
    assert list(fixture["rows"][0]["integrations"]) == [
        "ares",
        "traceo",
        "crumb",
        "lore_cairnet",
        "eva",
    ]
    # the control plane's contract predates eva: nothing declared yet, so pending
    eva = fixture["rows"][0]["integrations"]["eva"]
    assert (eva["applicability"], eva["declared"], eva["status"]) == ("optional", None, "pending")
    assert [w["code"] for w in fixture["warnings"]] == ["CONTRACT_INCOMPLETE", "STATE_MISSING"]
    assert "does not declare eva yet" in fixture["warnings"][0]["message"]
    # the dashboards' module types the new id, and the consumer catalogue accepts it
    module = (root / "contracts" / "snapshot.zod.ts").read_text()
    ids = '["ares", "traceo", "crumb", "lore_cairnet", "eva"]'
    assert f"export const INTEGRATION_IDS = {ids} as const;" in module
    assert "    eva: IntegrationCellSchema.optional(),\n" in module
    assert '  eva: "EVA",\n' in module
    consumer = json.loads((root / "contracts" / "contract.consumer.schema.json").read_text())
    assert list(consumer["properties"]["integrations"]["properties"]) == [
        "ares",
        "traceo",
        "crumb",
        "lore_cairnet",
        "eva",
    ]


def test_shipped_registry_pins_the_control_planes_own_contract() -> None:
    """The shipped registry (read on purpose here) pins this repo's .petrova/contract.yaml.

    Stays true whatever else operators pin: CI fails only when the self-pin drifts.
    """
    loaded = load_registry(ROOT / "registry.yaml", load_catalogue(CATALOGUE))
    entry = loaded.entry("petrova-codes")
    assert entry is not None and entry.role == "control-plane"
    assert entry.contract_sha == sha12((ROOT / ".petrova" / "contract.yaml").read_bytes())


def test_pinning_a_repo_in_the_live_registry_leaves_the_consumers_fixture_alone(
    tmp_path: Path, petrova: Petrova
) -> None:
    """An operator's registry PR (tier 2: pin kahn-hq) must not turn `--check` red."""
    root = _project_copy(tmp_path)
    shutil.copy(ROOT / "registry.yaml", root / "registry.yaml")
    (root / "registry.yaml").write_text(
        (root / "registry.yaml").read_text().replace("slug: kahn-hq", "slug: kahn-hq\n    notes: x")
    )
    run = petrova("contracts", "generate", "--check", "--root", str(root))
    assert run.exit_code == 0, run.stderr
