"""The benchmark harness keeps working (CI runs it small; it never judges time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_harness_runs_at_200_repos(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--sizes",
            "200",
            "young-200",
            "--repeat",
            "1",
            "--results",
            str(results),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(results.read_text())
    assert [(r["shape"], r["n"]) for r in report["results"]] == [("mature", 200), ("young", 200)]
    for size in report["results"]:
        assert size["identical_output"] is True  # fast and straightforward agree to the byte
        assert size["parse floor"]["seconds"] > 0 and size["snapshot"]["vs_floor"] > 0
        for name in ("snapshot", "registry validate", "rollout status"):
            assert size[name]["ratio"] > 0
            assert size[name]["straightforward"]["peak_mb"] > 0
    assert "| 200 | `snapshot` |" in proc.stdout
    assert "| young-200 | `snapshot` |" in proc.stdout
    assert report["machine"]["cpus"] >= 1


def test_generated_fleet_loads(tmp_path: Path) -> None:
    from benchmarks.fleetgen import generate
    from petrova.documents.catalogue import load_catalogue
    from petrova.documents.registry import load_registry

    generate(tmp_path / "fleet", 30)
    loaded = load_registry(
        tmp_path / "fleet" / "registry.yaml",
        load_catalogue(tmp_path / "fleet" / "contracts" / "contract.schema.json"),
    )
    assert len(loaded.registry.repos) == 30
    ledgers = list((tmp_path / "fleet" / "state").glob("*.yaml"))
    assert ledgers and all(p.read_bytes().startswith(b"{") for p in ledgers)


def test_a_young_fleet_has_the_issue_shape(tmp_path: Path) -> None:
    """Three outcomes per wired cell, about a quarter pending and a quarter not applicable,
    every outcome against the pinned contract; it loads and snapshots without warnings."""
    from benchmarks.fleetgen import NOW, generate
    from petrova.documents.catalogue import load_catalogue
    from petrova.documents.registry import load_registry
    from petrova.fleet.snapshot import make_snapshot

    root = tmp_path / "fleet"
    generate(root, 200, shape="young")
    catalogue = load_catalogue(root / "contracts" / "contract.schema.json")
    made = make_snapshot(
        root / "registry.yaml",
        catalogue,
        state_dir=root / "state",
        workspace=root / "workspace",
        now=NOW,
    )
    assert made.snapshot.warnings == ()
    cells = [c for r in made.snapshot.rows[1:] if r.integrations for c in r.integrations.values()]
    declared = [c.declared for c in cells]
    assert 0.2 < declared.count("pending") / len(cells) < 0.3
    assert 0.2 < declared.count("not_applicable") / len(cells) < 0.3
    loaded = load_registry(root / "registry.yaml", catalogue)
    for entry in loaded.registry.repos[1:]:
        if entry.contract_sha is None:
            continue
        ledger = json.loads((root / "state" / f"{entry.slug}.yaml").read_text())
        for cell in ledger["integrations"].values():
            assert len(cell["history"]) == 3
            assert {h["evidence_sha"] for h in cell["history"]} == {entry.contract_sha}
