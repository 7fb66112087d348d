"""The pure parts of sync: which paths a clone holds, and the workspace's manifest."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from petrova.documents.catalogue import Catalogue, load_catalogue
from petrova.errors import ProbePathUnsafe, SyncManifestInvalid
from petrova.models import Contract
from petrova.sync.paths import probe_paths, sparse_patterns
from petrova.sync.workspace import (
    SyncRecord,
    read_manifest,
    render_manifest,
    update_manifest,
)
from tests.conftest import CATALOGUE


def catalogue_with_probes(tmp_path: Path, *, probes: bool = True) -> Catalogue:
    """The shipped catalogue (its ``file`` checks read traceo's ``vtm_path`` and crumb's
    ``content_path``), crumb once called ``cards``; without ``probes``, no ``x-probe``."""
    schema: dict[str, Any] = json.loads(CATALOGUE.read_text())
    schema["$defs"]["integration_crumb"]["x-legacy-ids"] = ["cards"]
    if not probes:
        for definition in schema["$defs"].values():
            definition.pop("x-probe", None)
    path = tmp_path / "contract.schema.json"
    path.write_text(json.dumps(schema))
    return load_catalogue(path)


def contract(**cells: dict[str, Any]) -> Contract:
    return Contract.model_validate({"schema_version": 1, "slug": "kahn-hq", "integrations": cells})


WIRED_TRACEO = {"status": "wired", "evidence": {"baseline_id": "b", "vtm_path": "docs/vtm.md"}}
WIRED_CRUMB = {
    "status": "wired",
    "evidence": {"content_path": "content/cards/", "project_prefix": "K", "card_count": 3},
}


def test_probe_paths_of_wired_integrations(tmp_path: Path) -> None:
    catalogue = catalogue_with_probes(tmp_path)
    assert probe_paths(catalogue, contract(traceo=WIRED_TRACEO, crumb=WIRED_CRUMB)) == [
        "content/cards",
        "docs/vtm.md",
    ]
    assert probe_paths(catalogue, contract(cards=WIRED_CRUMB)) == ["content/cards"]


@pytest.mark.parametrize(
    "cell",
    [
        {"status": "pending", "evidence": {"vtm_path": "docs/vtm.md"}},
        {"status": "not_applicable", "not_applicable_reason": "x", "review_by": "2027-01-01"},
        {"status": "wired", "evidence": {"baseline_id": "b"}},
        {"status": "wired"},
    ],
)
def test_no_path_without_wired_evidence(cell: dict[str, Any], tmp_path: Path) -> None:
    assert probe_paths(catalogue_with_probes(tmp_path), contract(traceo=cell)) == []


def test_no_x_probe_no_paths(tmp_path: Path) -> None:
    catalogue = catalogue_with_probes(tmp_path, probes=False)
    assert probe_paths(catalogue, contract(traceo=WIRED_TRACEO)) == []


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/etc/passwd", "is absolute"),
        ("../secrets", "leaves the repo"),
        ("docs/../../x", "leaves the repo"),
        ("docs//vtm.md", "leaves the repo"),
        ("./docs", "leaves the repo"),
        (".git/config", "is inside .git"),
        ("docs\\vtm.md", "backslash"),
        ("docs/vtm.md\n/README", "control character"),
        ("", "is empty"),
    ],
)
def test_unsafe_paths_are_refused_and_the_safe_ones_kept(
    path: str, why: str, tmp_path: Path
) -> None:
    bad = {"status": "wired", "evidence": {"baseline_id": "b", "vtm_path": path}}
    with pytest.raises(ProbePathUnsafe, match=why) as caught:
        probe_paths(catalogue_with_probes(tmp_path), contract(traceo=bad, crumb=WIRED_CRUMB))
    assert caught.value.safe == ["content/cards"]
    assert caught.value.code == "SYNC_PROBE_PATH_UNSAFE"


def test_sparse_patterns_match_exactly_the_named_paths(tmp_path: Path) -> None:
    """Checked with git itself: each path matches, a look-alike does not."""
    names = ["docs/vtm [v1].md", "a*b", "#notes", "!bang", "sp ace "]
    patterns = sparse_patterns(names)
    (tmp_path / ".gitignore").write_text(patterns)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    probes = [*names, "docs/vtm 1.md", "aXb", ".petrova/contract.yaml", "x/.petrova/c"]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=tmp_path,
        input="\n".join(probes) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.splitlines() == [*names, ".petrova/contract.yaml"]


RECORD = SyncRecord(
    url="https://github.com/kahn-hq/kahn",
    branch="main",
    commit="a" * 40,
    synced_at="2026-11-26T07:00:00Z",
    status="ok",
)


def test_manifest_round_trip_and_merge(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) == {}
    update_manifest(tmp_path, [("kahn-hq", RECORD)])
    failed = SyncRecord(RECORD.url, "main", None, RECORD.synced_at, "failed", "SYNC_FAILED", "x")
    update_manifest(tmp_path, [("grace-hq", failed)])
    assert read_manifest(tmp_path) == {"kahn-hq": RECORD, "grace-hq": failed}
    text = (tmp_path / ".petrova-sync.json").read_bytes()
    assert text == render_manifest({"grace-hq": failed, "kahn-hq": RECORD})
    assert list(json.loads(text)["repos"]) == ["grace-hq", "kahn-hq"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("{", "is not JSON"),
        ('{"format": 2, "repos": {}}', "format"),
        ('{"format": 1}', "repos"),
        ('{"format": 1, "repos": {"k": []}}', "repos.k: is not an object"),
        ('{"format": 1, "repos": {"k": {"url": "u"}}}', "needs exactly the fields"),
    ],
)
def test_a_malformed_manifest_is_refused(tmp_path: Path, text: str, where: str) -> None:
    (tmp_path / ".petrova-sync.json").write_text(text)
    with pytest.raises(SyncManifestInvalid, match=where) as caught:
        read_manifest(tmp_path)
    assert str(tmp_path / ".petrova-sync.json") in caught.value.render()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("commit", "abc"),
        ("status", "fine"),
        ("synced_at", "yesterday"),
        ("code", "lower"),
        ("url", ""),
    ],
)
def test_a_bad_field_is_named(tmp_path: Path, field: str, value: str) -> None:
    entry = {**RECORD.as_json(), field: value}
    (tmp_path / ".petrova-sync.json").write_text(
        json.dumps({"format": 1, "repos": {"kahn-hq": entry}})
    )
    with pytest.raises(SyncManifestInvalid, match=f"repos.kahn-hq.{field}"):
        read_manifest(tmp_path)
