from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from tests.catalogue_edits import rename_integration
from tests.conftest import ROOT, TESTS, Petrova

EXAMPLES = TESTS / "examples" / "contract"
VALID = sorted((EXAMPLES / "valid").glob("*.yaml"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))


def expected_error(example: Path) -> str:
    first = example.read_text().splitlines()[0]
    assert first.startswith("# expect: ")
    return "petrova: " + first.removeprefix("# expect: ").format(file=example)


@pytest.mark.parametrize("example", VALID, ids=lambda p: p.stem)
def test_valid_examples(petrova: Petrova, example: Path) -> None:
    run = petrova("contract", "validate", str(example))
    assert run.exit_code == 0, run.stderr
    sha = hashlib.sha256(example.read_bytes()).hexdigest()[:12]
    assert run.stdout == f"{example}: valid (4 integrations, contract_sha {sha})\n"
    assert run.stderr == ""


@pytest.mark.parametrize("example", INVALID, ids=lambda p: p.stem)
def test_invalid_examples_name_file_line_integration_and_field(
    petrova: Petrova, example: Path
) -> None:
    before = example.read_bytes()
    run = petrova("contract", "validate", str(example))
    assert run.exit_code == 2
    assert run.stdout == ""
    assert run.stderr == expected_error(example) + "\n"
    assert example.read_bytes() == before


def test_every_path_is_checked_and_the_worst_exit_wins(petrova: Petrova) -> None:
    run = petrova("contract", "validate", str(INVALID[0]), str(VALID[0]), str(INVALID[1]))
    assert run.exit_code == 2
    assert run.stdout.startswith(f"{VALID[0]}: valid")
    assert expected_error(INVALID[0]) in run.stderr
    assert expected_error(INVALID[1]) in run.stderr


def test_json_output(petrova: Petrova) -> None:
    run = petrova("contract", "validate", "--json", str(VALID[0]), str(INVALID[0]))
    assert run.exit_code == 2
    results = json.loads(run.stdout)
    assert [r["valid"] for r in results] == [True, False]
    assert results[0]["contract_sha"] == hashlib.sha256(VALID[0].read_bytes()).hexdigest()[:12]
    assert results[1]["error"]["code"] == expected_error(INVALID[0]).split(":")[1].strip()


def test_missing_file(petrova: Petrova, tmp_path: Path) -> None:
    run = petrova("contract", "validate", str(tmp_path / "nope.yaml"))
    assert run.exit_code == 2
    assert f"petrova: CONTRACT_NOT_FOUND: {tmp_path / 'nope.yaml'}: contract file not found" in (
        run.stderr
    )


def test_legacy_id_is_accepted_with_a_warning(petrova: Petrova, tmp_path: Path) -> None:
    catalogue = rename_integration(
        ROOT / "contracts" / "contract.schema.json", "lore_cairnet", "rocky", tmp_path / "c.json"
    )
    example = EXAMPLES / "valid" / "wired-and-pending.yaml"
    run = petrova("contract", "validate", "--catalogue", str(catalogue), str(example))
    assert run.exit_code == 0, run.stderr
    assert "LEGACY_INTEGRATION_ID" in run.stderr
    assert "'lore_cairnet' was renamed to 'rocky'" in run.stderr


def test_sha_is_what_sha256sum_prints(petrova: Petrova) -> None:
    example = VALID[0]
    run = petrova("contract", "sha", str(example))
    assert run.exit_code == 0
    assert run.stdout == hashlib.sha256(example.read_bytes()).hexdigest()[:12] + "\n"


def test_sha_of_an_invalid_contract_is_refused(petrova: Petrova) -> None:
    run = petrova("contract", "sha", str(INVALID[0]))
    assert run.exit_code == 2
    assert run.stdout == ""
    assert expected_error(INVALID[0]) in run.stderr


def test_the_control_planes_own_contract_matches_its_pin(petrova: Petrova) -> None:
    run = petrova("contract", "sha", str(ROOT / ".petrova" / "contract.yaml"))
    registry = yaml.safe_load((ROOT / "registry.yaml").read_text())
    pinned = next(r for r in registry["repos"] if r["slug"] == "petrova-codes")["contract_sha"]
    assert run.stdout.strip() == pinned


def test_pre_commit_hook_validates_the_contract() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "petrova-contract"]
    assert hook["entry"] == "petrova contract validate"
    assert hook["language"] == "python"
    import re

    assert re.search(hook["files"], ".petrova/contract.yaml")
    assert not re.search(hook["files"], "docs/contract.yaml")
