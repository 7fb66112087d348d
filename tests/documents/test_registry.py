"""The registry loader: every rejection with its exact message, and schema parity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from petrova.documents.catalogue import load_catalogue
from petrova.documents.registry import load_registry
from petrova.errors import RegistryInvalid, RegistryNotFound
from petrova.files.yaml_strict import load_yaml_file
from tests.conftest import CATALOGUE, ROOT, TESTS, Fleet, Petrova

EXAMPLES = TESTS / "examples" / "registry"
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))
VALID = sorted((EXAMPLES / "valid").glob("*.yaml"))

#: Invalid examples that need more than a JSON Schema can say (YAML-level rules, or
#: rules across entries). Everything else must be rejected by registry.schema.json too.
BEYOND_SCHEMA = {
    "duplicate_key",
    "duplicate_slug",
    "duplicate_url",
    "non_string_key",
    "not_utf8",
    "two_control_planes",
    "yaml_syntax",
}


@pytest.mark.parametrize("example", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_registry_exact_error(example: Path, petrova_inprocess: Petrova) -> None:
    expected = example.with_suffix(".expected").read_text()
    run = petrova_inprocess("registry", "validate", "--registry", example.name, cwd=example.parent)
    assert run.exit_code == 2
    assert run.stdout == ""
    assert run.stderr == expected
    assert run.stderr.startswith("petrova: REGISTRY_INVALID: ")
    assert f"{example.name}:" in run.stderr  # names the file, and the line after it
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("name", ["bad_contract_sha", "duplicate_key", "unknown_integration"])
def test_invalid_registry_through_console_script(name: str, petrova_subprocess: Petrova) -> None:
    example = EXAMPLES / "invalid" / f"{name}.yaml"
    run = petrova_subprocess("registry", "validate", "--registry", example.name, cwd=example.parent)
    assert run.exit_code == 2
    assert run.stderr == example.with_suffix(".expected").read_text()


@pytest.mark.parametrize("example", VALID, ids=[p.stem for p in VALID])
def test_valid_registry(example: Path, petrova: Petrova) -> None:
    run = petrova("registry", "validate", "--json", "--registry", str(example))
    assert run.exit_code == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["valid"] is True


def test_dates_and_yes_stay_strings() -> None:
    loaded = load_registry(
        EXAMPLES / "valid" / "migrated_flow_and_block.yaml", load_catalogue(CATALOGUE)
    )
    kahn = loaded.registry.repos[0]
    assert kahn.added == "2026-04-29"
    assert kahn.notes == "yes"
    assert kahn.default_branch == "trunk"
    assert loaded.registry.repos[1].profile == "standard"  # default


def _schema_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "contracts" / "registry.schema.json").read_text())
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@pytest.mark.parametrize("example", VALID, ids=[p.stem for p in VALID])
def test_schema_accepts_what_the_loader_accepts(example: Path) -> None:
    load_registry(example, load_catalogue(CATALOGUE))  # the loader accepts it ...
    data = load_yaml_file(example).data
    assert list(_schema_validator().iter_errors(data)) == []  # ... and so does the schema


@pytest.mark.parametrize(
    "example",
    [p for p in INVALID if p.stem not in BEYOND_SCHEMA],
    ids=[p.stem for p in INVALID if p.stem not in BEYOND_SCHEMA],
)
def test_schema_rejects_what_the_loader_rejects(example: Path) -> None:
    data = load_yaml_file(example).data
    assert list(_schema_validator().iter_errors(data)) != []
    with pytest.raises(RegistryInvalid):
        load_registry(example, load_catalogue(CATALOGUE))


def test_missing_registry(tmp_path: Path, petrova: Petrova) -> None:
    run = petrova("registry", "validate", "--registry", str(tmp_path / "nope.yaml"))
    assert run.exit_code == 2
    assert run.stderr.startswith("petrova: REGISTRY_NOT_FOUND: ")
    assert "nope.yaml" in run.stderr


def test_registry_from_environment(fleet: Fleet, petrova: Petrova) -> None:
    run = petrova("registry", "list", "--json", env={"PETROVA_REGISTRY": str(fleet.registry)})
    assert run.exit_code == 0, run.stderr
    assert [r["slug"] for r in json.loads(run.stdout)] == [
        "petrova-codes",
        "kahn-hq",
        "stratt-hq",
        "choco-hq",
        "devarno-cloud",
        "traceo-mcp-server",
        "grace-hq",
    ]


def test_default_registry_is_cwd(fleet: Fleet, petrova: Petrova) -> None:
    run = petrova("registry", "validate", cwd=fleet.root)
    assert run.exit_code == 0, run.stderr
    assert run.stdout == "registry.yaml: valid: 7 repos, 1 migrated, 0 warnings\n"


def test_many_problems_reported_at_once(fleet: Fleet, petrova: Petrova) -> None:
    text = fleet.registry.read_text()
    text = text.replace("tier: 2\n", "tier: zero\n", 1).replace(
        "role: experimental", "role: lab", 1
    )
    fleet.registry.write_text(text)
    run = petrova("registry", "validate", *fleet.args())
    assert run.exit_code == 2
    first, *rest = run.stderr.splitlines()
    assert first == "petrova: REGISTRY_INVALID: 2 problem(s) in the registry"
    assert "repos[1].tier: 'zero'" in rest[0]
    assert "repos[3].role: 'lab'" in rest[1]


def test_overdue_review_is_a_warning(fleet: Fleet, petrova: Petrova) -> None:
    fleet.registry.write_text(fleet.registry.read_text().replace("2027-04-30", "2026-01-01", 1))
    run = petrova("registry", "validate", *fleet.args())
    assert run.exit_code == 0
    assert "warning: REVIEW_OVERDUE: " in run.stderr
    assert "repos[0].integrations_applicability.ares.review_by" in run.stderr


def test_legacy_id_is_accepted_with_a_warning(fleet: Fleet, petrova: Petrova) -> None:
    schema = json.loads(fleet.catalogue.read_text())
    schema["$defs"]["integration_lore_cairnet"]["x-legacy-ids"] = ["lore"]
    fleet.catalogue.write_text(json.dumps(schema))
    fleet.registry.write_text(
        fleet.registry.read_text().replace("      lore_cairnet:", "      lore:")
    )
    run = petrova("registry", "validate", "--json", *fleet.args())
    assert run.exit_code == 0, run.stderr
    [warning] = json.loads(run.stdout)["warnings"]
    assert warning["code"] == "LEGACY_INTEGRATION_ID"
    assert "'lore' was renamed to 'lore_cairnet'" in warning["message"]


def test_validate_json_on_error(tmp_path: Path, petrova: Petrova) -> None:
    bad = tmp_path / "registry.yaml"
    shutil.copy(EXAMPLES / "invalid" / "bad_contract_sha.yaml", bad)
    run = petrova("registry", "validate", "--json", "--registry", str(bad))
    assert run.exit_code == 2
    report = json.loads(run.stdout)
    assert report["valid"] is False
    assert report["error"]["code"] == "REGISTRY_INVALID"
    [problem] = report["error"]["problems"]
    assert (problem["line"], problem["column"], problem["field"]) == (
        7,
        19,
        "repos[0].contract_sha",
    )


def test_show(fleet: Fleet, petrova: Petrova) -> None:
    run = petrova("registry", "show", "petrova-codes", *fleet.args())
    assert run.exit_code == 0
    assert "role:            control-plane" in run.stdout
    assert (
        "  ares           not_applicable (the control plane runs its own CI; review by "
        "2027-04-30)   [ARES (CI/CD)]" in run.stdout
    )
    data = json.loads(petrova("registry", "show", "kahn-hq", "--json", *fleet.args()).stdout)
    assert data["slug"] == "kahn-hq" and data["migrated"] is False and data["tier"] == 2


def test_show_unknown_slug(fleet: Fleet, petrova: Petrova) -> None:
    run = petrova("registry", "show", "kahn", *fleet.args())
    assert run.exit_code == 2
    assert run.stderr.startswith("petrova: REPO_NOT_IN_REGISTRY: no repo 'kahn' in ")
    assert "did you mean kahn-hq?" in run.stderr


def test_list_table(fleet: Fleet, petrova: Petrova) -> None:
    run = petrova("registry", "list", *fleet.args())
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["slug", "tier", "role", "profile", "contract_sha", "url"]
    assert lines[2].split()[:5] == ["petrova-codes", "1", "control-plane", "strict", "5442defd6b27"]
    assert len(lines) == 2 + 7


def test_missing_catalogue(fleet: Fleet, petrova: Petrova) -> None:
    run = petrova(
        "registry", "validate", *fleet.args(), "--catalogue", str(fleet.root / "missing.json")
    )
    assert run.exit_code == 2
    assert run.stderr.startswith("petrova: CATALOGUE_NOT_FOUND: ")


def test_load_registry_not_found(tmp_path: Path) -> None:
    with pytest.raises(RegistryNotFound):
        load_registry(tmp_path / "registry.yaml", load_catalogue(CATALOGUE))
