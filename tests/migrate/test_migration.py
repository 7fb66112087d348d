"""The Tier 2+ migration path end to end: real console script, real git (issue 3's Done-when).

bootstrap phase 6 in the consumer clone -> a PR with only the contract -> registry pin
-> the next snapshot shows the repo's integrations. Then the catalogue changes that the
real fleet made (a fifth integration, a rename) go through the same path with no code
change.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.catalogue_edits import add_integration, rename_integration
from tests.conftest import Fleet, Run, git_status, run_subprocess
from tests.migrate.test_pin import changed_old_lines, entry_lines

KAHN_ORIGIN = "git@github.com:kahn-hq/kahn.git"


@pytest.fixture
def kahn(fleet: Fleet, git_repo: Callable[..., Path]) -> Path:
    """The operator's clone of kahn-hq, where the snapshot looks: <workspace>/kahn-hq."""
    return git_repo(
        fleet.workspace / "kahn-hq",
        {"README.md": "kahn\n", "src/app.py": "pass\n"},
        origin=KAHN_ORIGIN,
    )


def merge(repo: Path) -> None:
    """The contract's pull request merges: the clone's default branch has it."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (
        ["add", ".petrova/contract.yaml"],
        ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "c"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)


def petrova(fleet: Fleet, *args: str, cwd: Path | None = None) -> Run:
    """The installed console script, run from the control-plane repo like an operator."""
    return run_subprocess(
        *args, cwd=cwd or fleet.root, env={"PETROVA_WORKSPACE": str(fleet.workspace)}
    )


def contract_cells(repo: Path) -> dict[str, Any]:
    data = yaml.safe_load((repo / ".petrova" / "contract.yaml").read_text())
    cells: dict[str, Any] = data["integrations"]
    return cells


def snapshot_rows(fleet: Fleet, *extra: str) -> dict[str, dict[str, Any]]:
    run = petrova(fleet, "snapshot", *extra)
    assert run.exit_code == 0, run.stderr
    return {row["slug"]: row for row in json.loads(run.stdout)["rows"]}


def test_bootstrap_pin_snapshot(fleet: Fleet, kahn: Path) -> None:
    # Phase 6 straight away, from inside the consumer clone, no checkpoint at all.
    run = petrova(
        fleet, "bootstrap", "--defaults", "--resume", "--phase", "6", *fleet.args(), cwd=kahn
    )
    assert run.exit_code == 0, run.stderr
    assert git_status(kahn) == "?? .petrova/contract.yaml\n"
    sha = run.stdout.splitlines()[0].removeprefix("contract_sha: ")
    assert len(sha) == 12

    again = petrova(
        fleet, "bootstrap", "--defaults", "--resume", "--phase", "6", *fleet.args(), cwd=kahn
    )
    assert again.exit_code == 0, again.stderr
    assert "unchanged" in again.stderr
    assert again.stdout.splitlines()[0] == f"contract_sha: {sha}"
    assert git_status(kahn) == "?? .petrova/contract.yaml\n"

    # The PR merges; the operator pins from the control-plane repo.
    merge(kahn)
    before = fleet.registry.read_text()
    assert "integrations" not in snapshot_rows(fleet)["kahn-hq"]
    pin = petrova(fleet, "registry", "pin", "kahn-hq")
    assert pin.exit_code == 0, pin.stderr
    after = fleet.registry.read_text()
    assert set(changed_old_lines(before, after)) <= set(entry_lines(before, "kahn-hq"))
    assert f"    contract_sha: {sha}\n" in after
    assert petrova(fleet, "registry", "pin", "kahn-hq", "--check").exit_code == 0

    rows = snapshot_rows(fleet)
    assert set(rows["kahn-hq"]["integrations"]) == {"ares", "traceo", "crumb", "lore_cairnet"}
    assert {c["status"] for c in rows["kahn-hq"]["integrations"].values()} == {"pending"}
    assert rows["kahn-hq"]["contract_sha"] == sha
    assert "integrations" in rows["petrova-codes"]
    assert all("integrations" not in rows[s] for s in rows if s not in ("kahn-hq", "petrova-codes"))


def test_the_printed_pin_command_runs_as_printed(fleet: Fleet, kahn: Path) -> None:
    run = petrova(fleet, "bootstrap", "--defaults", "--repo", str(kahn))
    assert run.exit_code == 0, run.stderr
    command = run.stdout.splitlines()[1].removeprefix("next: ")
    assert command == f"petrova registry pin kahn-hq --repo {kahn}"
    merge(kahn)
    # The operator's clone fetched the merge: origin/main is the merged commit.
    subprocess.run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], cwd=kahn, check=True)
    argv = shlex.split(command)
    assert argv[0] == "petrova"
    pinned = petrova(fleet, *argv[1:])
    assert pinned.exit_code == 0, pinned.stderr
    assert petrova(fleet, "registry", "pin", "kahn-hq", "--check").exit_code == 0


def test_a_fifth_integration_is_added_as_pending(fleet: Fleet, kahn: Path, tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        "integrations:\n  traceo: {status: wired, evidence: {baseline_id: bl-7, vtm_path: v.md}}\n"
    )
    first = petrova(fleet, "bootstrap", "--repo", str(kahn), "--answers", str(answers))
    assert first.exit_code == 0, first.stderr
    old_cells = contract_cells(kahn)
    old_text = (kahn / ".petrova" / "contract.yaml").read_text()

    catalogue = add_integration(fleet.catalogue, "eva", "EVA", tmp_path / "catalogue.json")
    # The same catalogue PR gives migrated repos their applicability for the new id.
    fleet.registry.write_text(
        fleet.registry.read_text().replace(
            '      lore_cairnet: {value: not_applicable, review_by: "2027-04-30", '
            'reason: "emits no LORE stones"}\n',
            '      lore_cairnet: {value: not_applicable, review_by: "2027-04-30", '
            'reason: "emits no LORE stones"}\n'
            '      eva: {value: not_applicable, review_by: "2027-04-30", '
            'reason: "nothing to watch"}\n',
        )
    )
    run = petrova(
        fleet,
        "bootstrap",
        "--repo",
        str(kahn),
        "--resume",
        "--phase",
        "6",
        "--catalogue",
        str(catalogue),
    )
    assert run.exit_code == 0, run.stderr
    assert "note: eva is new in the catalogue; added as pending" in run.stderr
    assert contract_cells(kahn) == {**old_cells, "eva": {"status": "pending"}}
    assert (
        kahn / ".petrova" / "contract.yaml"
    ).read_text() == old_text + "  eva:\n    status: pending\n"
    assert "--catalogue" in run.stdout
    again = petrova(
        fleet, "bootstrap", "--repo", str(kahn), "--resume", "--catalogue", str(catalogue)
    )
    assert "unchanged" in again.stderr

    merge(kahn)
    pin = petrova(fleet, "registry", "pin", "kahn-hq", "--catalogue", str(catalogue))
    assert pin.exit_code == 0, pin.stderr
    assert "      eva: required\n" in fleet.registry.read_text()
    rows = snapshot_rows(fleet, "--catalogue", str(catalogue))
    assert rows["kahn-hq"]["integrations"]["eva"]["status"] == "pending"
    assert rows["kahn-hq"]["integrations"]["traceo"]["declared"] == "wired"


def test_renaming_lore_cairnet_to_rocky_needs_no_code_change(
    fleet: Fleet, kahn: Path, tmp_path: Path
) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        "integrations:\n"
        "  lore_cairnet:\n"
        "    status: wired\n"
        "    evidence: {lore_collection_slug: kahn, cairnet_agent_id: agent-7}\n"
    )
    assert (
        petrova(fleet, "bootstrap", "--repo", str(kahn), "--answers", str(answers)).exit_code == 0
    )
    merge(kahn)
    assert petrova(fleet, "registry", "pin", "kahn-hq").exit_code == 0
    evidence = contract_cells(kahn)["lore_cairnet"]

    catalogue = rename_integration(fleet.catalogue, "lore_cairnet", "rocky", tmp_path / "c.json")
    env_catalogue = ("--catalogue", str(catalogue))
    # The old contract still validates; the old registry keys still load (with a warning).
    check = petrova(
        fleet, "contract", "validate", *env_catalogue, str(kahn / ".petrova/contract.yaml")
    )
    assert check.exit_code == 0, check.stderr
    assert "'lore_cairnet' was renamed to 'rocky'" in check.stderr
    assert petrova(fleet, "registry", "validate", *env_catalogue).exit_code == 0
    rows = snapshot_rows(fleet, *env_catalogue)
    assert rows["kahn-hq"]["integrations"]["rocky"]["declared"] == "wired"

    # Phase 6 moves the contract to the new id and keeps the wired evidence.
    run = petrova(
        fleet, "bootstrap", "--repo", str(kahn), "--resume", "--phase", "6", *env_catalogue
    )
    assert run.exit_code == 0, run.stderr
    cells = contract_cells(kahn)
    assert "lore_cairnet" not in cells
    assert cells["rocky"] == evidence
    assert list(cells) == ["ares", "traceo", "crumb", "rocky"]
    # The pin follows the new bytes; the registry's old key counts as the new id.
    merge(kahn)
    assert petrova(fleet, "registry", "pin", "kahn-hq", "--check", *env_catalogue).exit_code == 1
    pin = petrova(fleet, "registry", "pin", "kahn-hq", *env_catalogue)
    assert pin.exit_code == 0, pin.stderr
    assert "applicability added" not in pin.stderr
    rows = snapshot_rows(fleet, *env_catalogue)
    assert rows["kahn-hq"]["integrations"]["rocky"]["declared"] == "wired"
    assert rows["petrova-codes"]["integrations"]["rocky"]["status"] == "not_applicable"
