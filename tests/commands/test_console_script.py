"""The installed console script works: a smoke set run as real processes.

Every other CLI test runs in-process; these prove that the entry point, the lazy command
loading, the error rendering and the exit codes are the same through ``petrova`` itself.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import Fleet, Petrova


def test_version(petrova_subprocess: Petrova) -> None:
    run = petrova_subprocess("--version")
    assert run.exit_code == 0
    assert run.stdout == "petrova 0.1.0\n"


def test_help_lists_every_command_and_exit_code(petrova_subprocess: Petrova) -> None:
    run = petrova_subprocess("--help")
    assert run.exit_code == 0
    for command in ("snapshot", "registry", "state", "rollout", "bootstrap", "render"):
        assert f"\n  {command} " in run.stdout
    assert "Exit codes:" in run.stdout


def test_snapshot_of_the_fixture_fleet(fleet: Fleet, petrova_subprocess: Petrova) -> None:
    out = fleet.root / "fleet.json"
    run = petrova_subprocess("snapshot", *fleet.args("-o", str(out)))
    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")  # quiet when unattended
    doc = json.loads(out.read_bytes())
    assert doc["generated_at"] == "2026-11-26T07:00:00Z"  # the suite's fixed clock
    assert doc["rows"][0]["slug"] == "petrova-codes"


def test_bad_input_is_exit_2_with_a_code_and_no_traceback(
    fleet: Fleet, petrova_subprocess: Petrova
) -> None:
    fleet.registry.write_text(fleet.registry.read_text().replace("tier: 2", "tier: two", 1))
    run = petrova_subprocess("registry", "validate", *fleet.args())
    assert run.exit_code == 2
    assert run.stderr.startswith("petrova: REGISTRY_INVALID: ")
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("args", "code"), [(["nonsense"], 2), (["snapshot", "--format", "yaml"], 2)]
)
def test_usage_errors_exit_2(args: list[str], code: int, petrova_subprocess: Petrova) -> None:
    assert petrova_subprocess(*args).exit_code == code


def test_record_then_rollout_status(fleet: Fleet, petrova_subprocess: Petrova) -> None:
    run = petrova_subprocess(
        "state", "record", "petrova-codes", "ares", "not_applicable", *fleet.args()
    )
    assert run.exit_code == 0, run.stderr
    assert (fleet.state_dir / "petrova-codes.yaml").is_file()
    status = petrova_subprocess("rollout", "status", "--json", *fleet.args())
    assert status.exit_code == 0, status.stderr
    assert json.loads(status.stdout)["tiers"][0]["tier"] == 1
