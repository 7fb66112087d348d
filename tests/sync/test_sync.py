"""``petrova sync`` with real git against real bare repositories on disk.

The registry keeps its real ``https://github.com/...`` urls; git's own
``url.<base>.insteadOf`` (set in the environment) sends them to bare repos in tmp_path.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from petrova.sync.workspace import read_manifest
from tests.conftest import FIXTURE_FLEET, Fleet, Petrova
from tests.ingest_server import Servers, answer
from tests.syncfleet import Remotes, contract_text, git

KAHN = "https://github.com/kahn-hq/kahn"
STRATT = "https://github.com/stratt-hq/stratt"
CHOCO = "https://github.com/choco-hq/choco"
VTM = "docs/spec/vtm.md"


def probe_catalogue(fleet: Fleet) -> None:
    """The fleet's catalogue with a file probe on traceo's ``vtm_path`` (as the probe
    issue adds it), so a clone must also hold the VTM."""
    schema = json.loads(fleet.catalogue.read_text())
    schema["$defs"]["integration_traceo"]["x-probe"] = {
        "checks": [{"id": "vtm", "kind": "file", "path_field": "vtm_path", "fail": "failing"}]
    }
    fleet.catalogue.write_text(json.dumps(schema, indent=2))


def keep_only(fleet: Fleet, slugs: set[str]) -> None:
    """Cut the fixture registry down to ``slugs`` (the control plane stays)."""
    text = fleet.registry.read_text()
    head, *entries = text.split("\n  - slug: ")
    kept = [e for e in entries if e.split("\n")[0] in slugs | {"petrova-codes"}]
    fleet.registry.write_text("\n  - slug: ".join([head, *kept]))


@pytest.fixture
def remotes(tmp_path: Path) -> Remotes:
    return Remotes(tmp_path / "git")


@pytest.fixture
def synced(fleet: Fleet, remotes: Remotes) -> Fleet:
    """kahn-hq with a contract and a VTM, stratt-hq not migrated yet (no contract)."""
    probe_catalogue(fleet)
    keep_only(fleet, {"kahn-hq", "stratt-hq"})
    remotes.publish(
        KAHN,
        {
            ".petrova/contract.yaml": contract_text("kahn-hq"),
            VTM: "# VTM\n",
            "README.md": "kahn\n",
            "src/main.py": "print('not checked out')\n",
        },
    )
    remotes.publish(STRATT, {"README.md": "stratt\n"})
    return fleet


def sync(petrova: Petrova, fleet: Fleet, remotes: Remotes, *extra: str, env=None):  # type: ignore[no-untyped-def]
    return petrova(
        "sync",
        *fleet.args("--workspace", str(fleet.workspace)),
        *extra,
        env={**remotes.env(), **(env or {})},
    )


def files_in(clone: Path) -> set[str]:
    return {
        str(p.relative_to(clone))
        for p in clone.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(clone).parts
    }


def test_first_sync_clones_only_what_is_read(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    run = sync(petrova_inprocess, synced, remotes)
    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")
    kahn = synced.workspace / "kahn-hq"
    assert files_in(kahn) == {".petrova/contract.yaml", VTM}
    assert (kahn / ".petrova/contract.yaml").read_text() == contract_text("kahn-hq")
    assert files_in(synced.workspace / "stratt-hq") == set()
    # shallow and blobless: one commit, and no blob of the files left out
    assert (kahn / ".git" / "shallow").is_file()
    missing = git(kahn, "rev-list", "--objects", "--missing=print", "HEAD")
    assert any(line.startswith("?") for line in missing.splitlines())
    records = read_manifest(synced.workspace)
    head = git(remotes.bare(KAHN), "rev-parse", "main").strip()
    assert records["kahn-hq"].commit == head
    assert records["kahn-hq"].status == "ok"
    assert records["kahn-hq"].synced_at == "2026-11-26T07:00:00Z"
    assert records["stratt-hq"].status == "ok"
    # the control plane is not cloned: its contract is the registry's own
    assert not (synced.workspace / "petrova-codes").exists()
    assert records["petrova-codes"].commit is None  # the fleet copy is no git checkout


def test_json_output_has_one_row_per_repo(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    run = sync(petrova_inprocess, synced, remotes, "--json")
    assert run.exit_code == 0
    rows = json.loads(run.stdout)["repos"]
    assert [(r["slug"], r["action"]) for r in rows] == [
        ("petrova-codes", "read"),
        ("kahn-hq", "cloned"),
        ("stratt-hq", "cloned"),
    ]
    again = json.loads(sync(petrova_inprocess, synced, remotes, "--json").stdout)
    assert [r["action"] for r in again["repos"]] == ["read", "unchanged", "unchanged"]


def test_a_merged_change_reaches_the_next_sync(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    assert sync(petrova_inprocess, synced, remotes).exit_code == 0
    kahn = synced.workspace / "kahn-hq"
    vtm_before = (kahn / VTM).stat()
    new = contract_text("kahn-hq").replace("bl-7", "bl-8")
    head = remotes.publish(KAHN, {".petrova/contract.yaml": new, "src/main.py": "changed\n"})
    run = sync(petrova_inprocess, synced, remotes)
    assert (run.exit_code, run.stderr) == (0, "")
    assert (kahn / ".petrova/contract.yaml").read_text() == new
    vtm_after = (kahn / VTM).stat()
    assert (vtm_after.st_ino, vtm_after.st_mtime_ns) == (vtm_before.st_ino, vtm_before.st_mtime_ns)
    assert read_manifest(synced.workspace)["kahn-hq"].commit == head
    assert files_in(kahn) == {".petrova/contract.yaml", VTM}


def test_a_new_probe_path_is_checked_out_when_the_contract_names_it(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    assert sync(petrova_inprocess, synced, remotes).exit_code == 0
    remotes.publish(
        KAHN,
        {
            ".petrova/contract.yaml": contract_text("kahn-hq", "spec/VTM [v2].md"),
            "spec/VTM [v2].md": "v2",
        },
    )
    assert sync(petrova_inprocess, synced, remotes).exit_code == 0
    assert files_in(synced.workspace / "kahn-hq") == {".petrova/contract.yaml", "spec/VTM [v2].md"}


def test_an_unsafe_probe_path_is_a_warning_and_nothing_outside_is_read(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    remotes.publish(KAHN, {".petrova/contract.yaml": contract_text("kahn-hq", "../../etc/passwd")})
    run = sync(petrova_inprocess, synced, remotes)
    assert run.exit_code == 1
    assert "SYNC_PROBE_PATH_UNSAFE: kahn-hq: " in run.stderr
    assert "'../../etc/passwd' leaves the repo" in run.stderr
    assert files_in(synced.workspace / "kahn-hq") == {".petrova/contract.yaml"}
    assert read_manifest(synced.workspace)["stratt-hq"].status == "ok"


def test_failures_are_warnings_and_the_rest_is_synced(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes, ingest: Servers
) -> None:
    """A missing repo, one whose server refuses us, and a branch that is gone, among good
    ones: one warning line each, every good repo synced, exit 1."""
    synced.registry.write_text((FIXTURE_FLEET / "registry.yaml").read_text())
    keep_only(synced, {"kahn-hq", "stratt-hq", "choco-hq", "grace-hq", "devarno-cloud"})
    refusing = ingest(answer(401, headers={"WWW-Authenticate": 'Basic realm="git"'}))
    text = synced.registry.read_text()
    text = text.replace(
        "url: https://github.com/devarno-cloud/devarno-cloud\n    default_branch: main",
        "url: https://github.com/devarno-cloud/devarno-cloud\n    default_branch: trunk",
    )
    synced.registry.write_text(text)
    remotes.publish("https://github.com/devarno-cloud/devarno-cloud", {"README": "x"})
    env = remotes.env()
    env.update(
        {
            "GIT_CONFIG_COUNT": "2",
            "GIT_CONFIG_KEY_1": f"url.{refusing.base}/.insteadOf",
            "GIT_CONFIG_VALUE_1": "https://github.com/grace-hq/",
        }
    )
    run = sync(petrova_inprocess, synced, remotes, env=env)
    assert run.exit_code == 1
    lines = run.stderr.splitlines()
    assert len(lines) == 4, run.stderr
    assert lines[0].startswith(
        "petrova: warning: SYNC_FAILED: choco-hq: https://github.com/choco-hq/choco: "
    )
    assert lines[1].startswith("petrova: warning: SYNC_BRANCH_MISSING: devarno-cloud: "), lines[1]
    assert lines[2].startswith("petrova: warning: SYNC_AUTH_FAILED: grace-hq: "), lines[2]
    assert lines[3] == (
        "petrova: SYNC_FAILED: 3 of 6 repos not synced (warnings above); the others are up to date"
    )
    assert (synced.workspace / "kahn-hq/.petrova/contract.yaml").is_file()
    records = read_manifest(synced.workspace)
    assert {s: r.status for s, r in records.items()} == {
        "petrova-codes": "ok",
        "kahn-hq": "ok",
        "stratt-hq": "ok",
        "choco-hq": "failed",
        "devarno-cloud": "failed",
        "grace-hq": "failed",
    }
    assert records["grace-hq"].code == "SYNC_AUTH_FAILED"
    assert records["choco-hq"].commit is None
    assert not (synced.workspace / "choco-hq").exists()
    assert [p.name for p in (synced.workspace / ".petrova-sync.d").iterdir() if p.is_dir()] == []


def test_a_migrated_repo_without_its_contract_fails(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    contract = synced.write("c.yaml", contract_text("kahn-hq"))
    pin = petrova_inprocess(
        "registry", "pin", "kahn-hq", "--contract", str(contract), *synced.args()
    )
    assert pin.exit_code == 0, pin.stderr
    remotes.publish(KAHN, {".petrova/contract.yaml": None})
    run = sync(petrova_inprocess, synced, remotes)
    assert run.exit_code == 1
    assert "SYNC_NO_CONTRACT: kahn-hq: " in run.stderr
    record = read_manifest(synced.workspace)["kahn-hq"]
    assert (record.status, record.code) == ("failed", "SYNC_NO_CONTRACT")
    assert record.commit == git(remotes.bare(KAHN), "rev-parse", "main").strip()


def test_a_clone_of_another_origin_is_refused_and_left_alone(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    assert sync(petrova_inprocess, synced, remotes).exit_code == 0
    kahn = synced.workspace / "kahn-hq"
    before = git(kahn, "rev-parse", "HEAD")
    remotes.publish("https://github.com/kahn-hq/kahn-next", {"README": "moved"})
    synced.registry.write_text(
        synced.registry.read_text().replace(f"url: {KAHN}\n", f"url: {KAHN}-next\n")
    )
    run = sync(petrova_inprocess, synced, remotes)
    assert run.exit_code == 1
    assert (
        f"SYNC_ORIGIN_MISMATCH: kahn-hq: {kahn}: its origin is {KAHN}, not the registry's "
        f"{KAHN}-next" in run.stderr
    )
    assert git(kahn, "rev-parse", "HEAD") == before
    assert (kahn / ".petrova/contract.yaml").read_text() == contract_text("kahn-hq")
    record = read_manifest(synced.workspace)["kahn-hq"]
    assert (record.status, record.code, record.commit) == (
        "failed",
        "SYNC_ORIGIN_MISMATCH",
        before.strip(),
    )


def test_a_folder_that_is_not_a_clone_is_refused(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    mine = synced.workspace / "kahn-hq"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    run = sync(petrova_inprocess, synced, remotes)
    assert run.exit_code == 1
    assert "SYNC_NOT_A_CLONE: kahn-hq: " in run.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_slug_that_left_the_registry_keeps_its_clone(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    assert sync(petrova_inprocess, synced, remotes).exit_code == 0
    keep_only(synced, {"kahn-hq"})
    run = sync(petrova_inprocess, synced, remotes)
    assert run.exit_code == 0
    assert run.stderr == (
        f"petrova: warning: SYNC_NOT_IN_REGISTRY: stratt-hq: {synced.workspace / 'stratt-hq'} "
        "is not a registry repo (it left the registry?); left as it is, remove it when it is "
        "no longer needed\n"
    )
    assert (synced.workspace / "stratt-hq" / ".git").is_dir()


def test_named_slugs_and_shards_sync_only_their_share(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    run = sync(petrova_inprocess, synced, remotes, "stratt-hq")
    assert run.exit_code == 0
    assert set(read_manifest(synced.workspace)) == {"stratt-hq"}
    assert not (synced.workspace / "kahn-hq").exists()
    unknown = sync(petrova_inprocess, synced, remotes, "nope-hq")
    assert unknown.exit_code == 2
    assert "REPO_NOT_IN_REGISTRY" in unknown.stderr
    for shard in ("1/2", "2/2"):
        assert sync(petrova_inprocess, synced, remotes, "--shard", shard).exit_code == 0
    assert set(read_manifest(synced.workspace)) == {"petrova-codes", "kahn-hq", "stratt-hq"}


def test_after_a_sync_the_snapshot_reads_every_migrated_contract(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    contract = synced.write("c.yaml", contract_text("kahn-hq"))
    assert (
        petrova_inprocess(
            "registry", "pin", "kahn-hq", "--contract", str(contract), *synced.args()
        ).exit_code
        == 0
    )
    assert sync(petrova_inprocess, synced, remotes).exit_code == 0

    def warnings() -> set[tuple[str, str]]:
        run = petrova_inprocess("snapshot", *synced.args("--workspace", str(synced.workspace)))
        return {(w["slug"], w["code"]) for w in json.loads(run.stdout)["warnings"]}

    assert not {w for w in warnings() if w[1] == "CONTRACT_UNREADABLE"}
    assert ("kahn-hq", "CONTRACT_SHA_DRIFT") not in warnings()
    remotes.publish(
        KAHN, {".petrova/contract.yaml": contract_text("kahn-hq").replace("bl-7", "bl-9")}
    )
    assert sync(petrova_inprocess, synced, remotes).exit_code == 0
    assert ("kahn-hq", "CONTRACT_SHA_DRIFT") in warnings()


def test_usage_errors(petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes) -> None:
    no_workspace = petrova_inprocess("sync", *synced.args(), env=remotes.env())
    assert no_workspace.exit_code == 2
    assert "--workspace DIR or set PETROVA_WORKSPACE" in no_workspace.stderr
    bad_env = sync(petrova_inprocess, synced, remotes, "--token-env", "A;rm -rf /")
    assert bad_env.exit_code == 2
    assert "is not an environment variable name" in bad_env.stderr
    both = sync(petrova_inprocess, synced, remotes, "--self", "kahn-hq")
    assert both.exit_code == 2
    assert not synced.workspace.exists()


def test_workspace_from_the_environment(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    run = petrova_inprocess(
        "sync", *synced.args(), env={**remotes.env(), "PETROVA_WORKSPACE": str(synced.workspace)}
    )
    assert run.exit_code == 0
    assert (synced.workspace / "kahn-hq" / ".petrova" / "contract.yaml").is_file()


def test_old_workflow_clones_are_taken_over(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    """A clone the workflow's shell loop made (cone-mode sparse, .petrova only) is reused."""
    synced.workspace.mkdir()
    import subprocess

    env = {**os.environ, **remotes.env()}
    subprocess.run(
        [
            "git",
            "clone",
            "-q",
            "--depth",
            "1",
            "--branch",
            "main",
            "--filter=blob:none",
            "--sparse",
            KAHN,
            str(synced.workspace / "kahn-hq"),
        ],
        check=True,
        env=env,
    )
    subprocess.run(
        ["git", "-C", str(synced.workspace / "kahn-hq"), "sparse-checkout", "set", ".petrova"],
        check=True,
        env=env,
    )
    run = sync(petrova_inprocess, synced, remotes, "--json")
    assert run.exit_code == 0, run.stderr
    assert files_in(synced.workspace / "kahn-hq") == {".petrova/contract.yaml", VTM}
    shutil.rmtree(synced.workspace)


@pytest.mark.parametrize(
    "text",
    ['{"format": 1, "repos": []}', '{"format": 1, "repos": {}, "repos": {}}'],
    ids=["repos-not-an-object", "a-key-twice"],
)
def test_a_malformed_manifest_stops_the_sync(
    petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes, text: str
) -> None:
    synced.workspace.mkdir()
    (synced.workspace / ".petrova-sync.json").write_text(text)
    run = sync(petrova_inprocess, synced, remotes)
    assert run.exit_code == 2
    assert "SYNC_MANIFEST_INVALID" in run.stderr
    assert not (synced.workspace / "kahn-hq").exists()


def test_a_relative_workspace(petrova_inprocess: Petrova, synced: Fleet, remotes: Remotes) -> None:
    run = petrova_inprocess(
        "sync", "--registry", "registry.yaml", "--workspace", "ws", cwd=synced.root,
        env=remotes.env(),
    )  # fmt: skip
    assert (run.exit_code, run.stderr) == (0, "")
    assert (synced.root / "ws" / "kahn-hq" / ".petrova" / "contract.yaml").is_file()


def test_no_git_on_path(petrova_inprocess: Petrova, synced: Fleet, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    run = petrova_inprocess(
        "sync", *synced.args("--workspace", str(synced.workspace)), env={"PATH": str(empty)}
    )
    assert run.exit_code == 2
    assert "no git on PATH" in run.stderr
