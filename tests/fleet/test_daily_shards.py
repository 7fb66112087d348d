"""The sharded daily, as a GitHub Actions matrix runs it: N ``petrova daily --shard K/N``
processes started together against one bare control-plane remote, then ``--final``.

Every shard's commit lands, no ledger is lost or doubled, and the final snapshot is
byte-identical to one runner's given the same observations (the suite's fixed clock).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from petrova.documents.shard import Shard
from petrova.errors import StateNotPushed, SyncManifestInvalid
from petrova.files.disk import sha12
from petrova.fleet.shards import merge_bundles, push_until, shard_ledgers, write_bundle
from petrova.sync.workspace import read_manifest
from tests.conftest import (
    FIXED_NOW,
    PETROVA_BIN,
    Fleet,
    Petrova,
    Spawn,
    _clean_env,
    run_inprocess,
)
from tests.sync.test_sync import keep_only, probe_catalogue
from tests.syncfleet import Remotes, contract_text, git

SHARDS = 4
REPOS = 14
IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@e",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@e",
}


def slugs() -> list[str]:
    return [f"team-{i:02d}" for i in range(REPOS)]


@pytest.fixture
def matrix(fleet: Fleet, tmp_path: Path) -> tuple[Fleet, Remotes, Path]:
    """A control plane of REPOS consumers (every third has no VTM: its probe fails), the
    consumers as bare repos, and the control plane as a bare 'origin'."""
    remotes = Remotes(tmp_path / "git")
    probe_catalogue(fleet)
    keep_only(fleet, set())
    entries = []
    for i, slug in enumerate(slugs()):
        url = f"https://github.com/{slug}/{slug}"
        contract = contract_text(slug)
        files: dict[str, str | None] = {".petrova/contract.yaml": contract, "README.md": "x\n"}
        if i % 3:
            files["docs/spec/vtm.md"] = "# VTM\n"
        remotes.publish(url, files)
        entries.append(
            f"\n  - slug: {slug}\n    url: {url}\n    default_branch: main\n"
            "    role: production\n    tier: 2\n"
            f"    contract_sha: {sha12(contract.encode())}\n"
            "    integrations_applicability: {ares: required, traceo: required, "
            "crumb: required, lore_cairnet: required}\n"
        )
    with fleet.registry.open("a") as out:
        out.write("".join(entries))
    origin = tmp_path / "origin.git"
    (fleet.root / ".gitignore").write_text("workspace/\nfleet.json\n")
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(fleet.root, "init", "-q", "-b", "main")
    git(fleet.root, "add", "-A")
    git(fleet.root, "commit", "-q", "-m", "control plane")
    git(fleet.root, "push", "-q", str(origin), "main")
    return fleet, remotes, origin


def checkout(origin: Path, where: Path) -> Path:
    git(where.parent, "clone", "-q", str(origin), str(where))
    return where


def start_daily(
    spawn: Spawn, root: Path, remotes: Remotes, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return spawn(
        [str(PETROVA_BIN), "daily", "--registry", str(root / "registry.yaml"), *args],
        cwd=root,
        env=_clean_env({**remotes.env(), **(env or {})}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    out, err = proc.communicate(timeout=300)
    assert out == b""
    return proc.returncode, err.decode()


def test_n_shards_then_final_give_one_runners_snapshot(
    matrix: tuple[Fleet, Remotes, Path], tmp_path: Path, spawn: Spawn
) -> None:
    _fleet, remotes, origin = matrix
    # one runner, on a copy of the same origin, for the bytes to compare with
    one_origin = tmp_path / "one.git"
    git(tmp_path, "clone", "-q", "--bare", str(origin), str(one_origin))
    one = checkout(one_origin, tmp_path / "one")
    proc = start_daily(
        spawn, one, remotes, "--no-self-update", "-o", str(one / "fleet.json"),
        "--workspace", str(one / "workspace"), "--commit-state", "--push",
    )  # fmt: skip
    assert finish(proc) == (0, "")

    # the matrix: N shards started together, each in its own checkout and workspace
    bundles = tmp_path / "bundles"
    running = []
    for k in range(1, SHARDS + 1):
        root = checkout(origin, tmp_path / f"shard-{k}")
        shard = ["--shard", f"{k}/{SHARDS}", "--bundle", str(bundles / f"shard-{k}")]
        where = ["--workspace", str(root / "workspace")]
        push = ["--commit-state", "--push"]
        running.append(start_daily(spawn, root, remotes, "--no-self-update", *shard, *where, *push))
    for proc in running:
        assert finish(proc) == (0, "")

    # every shard's commit landed, each with only its own repos' ledgers
    subjects = git(origin, "log", "--format=%s", "main").splitlines()
    shard_commits = [s for s in subjects if "(shard " in s]
    owners = {k: [s for s in slugs() if Shard(k, SHARDS).holds(s)] for k in range(1, 5)}
    assert len(shard_commits) == sum(1 for held in owners.values() if held)
    for line in git(origin, "log", "--format=%H %s", "main").splitlines():
        sha, _, subject = line.partition(" ")
        if "(shard " not in subject:
            continue
        k = int(subject.split("(shard ")[1].split("/")[0])
        changed = git(origin, "show", "--name-only", "--format=", sha).split()
        assert sorted(changed) == [f"state/{s}.yaml" for s in sorted(owners[k])]
    # no ledger lost or doubled: one per repo, each with one outcome
    tree = git(origin, "ls-tree", "--name-only", "main", "state/").split()
    assert sorted(t for t in tree if t != "state/petrova-codes.yaml") == sorted(
        f"state/{s}.yaml" for s in slugs()
    )
    for slug in slugs():
        ledger = yaml.safe_load(git(origin, "show", f"main:state/{slug}.yaml"))
        assert len(ledger["integrations"]["traceo"]["history"]) == 1, slug

    # the final job: a fresh checkout of what the shards pushed, their bundles, no sync
    final = checkout(origin, tmp_path / "final")
    proc = start_daily(
        spawn, final, remotes, "--no-self-update", "--final", "--from-shards", str(bundles),
        "-o", str(final / "fleet.json"), "--workspace", str(final / "workspace"),
        "--commit-state", "--push",
        env={"GIT_CONFIG_KEY_0": "url.file:///nonexistent/.insteadOf"},  # no git remote works
    )  # fmt: skip
    assert finish(proc) == (0, "")
    assert not any((final / "workspace" / s / ".git").exists() for s in slugs())
    snapshot = (final / "fleet.json").read_bytes()
    assert snapshot == (one / "fleet.json").read_bytes()
    document = json.loads(snapshot)
    rows = {r["slug"]: r["integrations"]["traceo"] for r in document["rows"]}
    assert rows["team-00"]["observed"] == "failing"  # observed, not assumed: it has no VTM
    assert rows["team-01"]["observed"] == "ok"
    assert document["warnings"] == []
    assert read_manifest(final / "workspace").keys() == {*slugs(), "petrova-codes"}
    # the final job committed its run record, and nothing else
    changed = git(origin, "show", "--name-only", "--format=", "main").split()
    assert changed == ["state/runs/daily.json"]

    # the next day: fresh checkouts hold that record, each shard rewrites it in its work
    # tree (a tracked file, changed) and still pushes only its ledgers, rebased as needed
    next_day = {"SOURCE_DATE_EPOCH": str(int(FIXED_NOW.timestamp()) + 86400)}
    running = []
    for k in range(1, SHARDS + 1):
        root = checkout(origin, tmp_path / f"day2-shard-{k}")
        shard = ["--shard", f"{k}/{SHARDS}", "--workspace", str(root / "workspace")]
        push = ["--commit-state", "--push"]
        running.append(
            start_daily(spawn, root, remotes, "--no-self-update", *shard, *push, env=next_day)
        )
    for proc in running:
        assert finish(proc) == (0, "")
    subjects = git(origin, "log", "--format=%s", "main").splitlines()
    assert sum("(shard " in s for s in subjects) == 2 * len(shard_commits)
    for slug in slugs():
        ledger = yaml.safe_load(git(origin, "show", f"main:state/{slug}.yaml"))
        assert len(ledger["integrations"]["traceo"]["history"]) == 2, slug
    record = json.loads(git(origin, "show", "main:state/runs/daily.json"))
    assert "shards" in json.dumps(record)  # the final job's, untouched by the shards


def test_shard_options_are_checked_together(petrova: Petrova, fleet: Fleet, tmp_path: Path) -> None:
    ws = ["--workspace", str(tmp_path / "ws")]
    cases = [
        (["--shard", "1/4", "--final", "-o", "f.json"], "--final runs once"),
        (["--shard", "1/4", "-o", "f.json"], "a shard makes no snapshot"),
        (["--bundle", str(tmp_path / "b"), "-o", "f.json"], "--bundle goes with --shard"),
        (["--from-shards", str(tmp_path), "-o", "f.json"], "--from-shards goes with --final"),
        ([], "-o FILE is required"),
        (
            ["--shard", "1/4", "--commit-state", "--push", "--push-branch", "state"],
            "--push-branch does not go with --shard",
        ),
        (["--shard", "5/4"], "is not K/N"),
    ]
    for extra, words in cases:
        run = petrova("daily", *fleet.args(*ws), *extra)
        assert run.exit_code == 2, (extra, run.stderr)
        assert words in run.stderr, (extra, run.stderr)


def test_shard_ledgers_are_only_the_shards(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    for slug in slugs():
        (state / f"{slug}.yaml").write_text("{}\n")
    (state / ".lock.yaml").write_text("")
    shard = Shard(2, SHARDS)
    got = shard_ledgers(state, ["state/gone-repo.yaml"], "state", shard)
    expected = [s for s in [*slugs(), "gone-repo"] if shard.holds(s)]
    assert got == [f":(literal)state/{s}.yaml" for s in sorted(expected)]


def test_a_bundle_carries_only_the_contracts_and_keeps_links_as_links(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    from petrova.sync.workspace import SyncRecord, update_manifest

    records = []
    for slug in slugs()[:6]:
        clone = workspace / slug
        (clone / ".petrova").mkdir(parents=True)
        (clone / ".petrova" / "contract.yaml").write_text(contract_text(slug))
        (clone / "README.md").write_text("not carried\n")
        records.append((slug, SyncRecord("u", "main", "a" * 40, "2026-11-26T07:00:00Z", "ok")))
    (workspace / "team-00" / ".petrova" / "contract.yaml").unlink()
    (workspace / "team-00" / ".petrova" / "contract.yaml").symlink_to("/etc/passwd")
    update_manifest(workspace, records)
    bundles = tmp_path / "bundles"
    for k in (1, 2):
        write_bundle(workspace, bundles / f"shard-{k}", Shard(k, 2))
    carried = sorted(str(p.relative_to(bundles)) for p in bundles.rglob("*") if p.is_file())
    assert not any("README" in c for c in carried)
    target = tmp_path / "final-ws"
    report = merge_bundles(bundles, target)
    assert report.repos == 6
    assert read_manifest(target) == read_manifest(workspace)
    link = target / "team-00" / ".petrova" / "contract.yaml"
    assert link.is_symlink() and str(link.readlink()) == "/etc/passwd"
    for slug in slugs()[1:6]:
        assert (target / slug / ".petrova" / "contract.yaml").read_text() == contract_text(slug)
    with pytest.raises(SyncManifestInvalid, match="no shard bundle"):
        merge_bundles(tmp_path / "ws" / "team-01", target)


def test_many_pushers_at_once_all_land(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight clones commit a file each and push at once: jittered retries until the
    deadline land every commit (a fixed three attempts would not)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(origin), str(seed))
    (seed / "README").write_text("x\n")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "seed")
    git(seed, "push", "-q", "origin", "main")
    clones = []
    for i in range(8):
        clone = checkout(origin, tmp_path / f"c{i}")
        (clone / f"f{i}.yaml").write_text(f"{i}\n")
        git(clone, "add", "-A")
        git(clone, "commit", "-qm", f"state: {i}")
        clones.append(clone)
    attempts: list[int] = []
    errors: list[BaseException] = []

    def push(clone: Path) -> None:
        try:
            attempts.append(push_until(clone, "main", identity=IDENTITY, deadline=120))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(c,)) for c in clones]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert git(origin, "rev-list", "--count", "main").strip() == "9"
    files = git(origin, "ls-tree", "--name-only", "main").split()
    assert sorted(files) == sorted(["README", *(f"f{i}.yaml" for i in range(8))])
    assert max(attempts) > 1  # they did collide


def test_a_push_that_never_succeeds_stops_at_its_deadline(tmp_path: Path) -> None:
    clone = tmp_path / "c"
    git(tmp_path, "init", "-q", "-b", "main", str(clone))
    (clone / "f").write_text("x\n")
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "x")
    git(clone, "remote", "add", "origin", str(tmp_path / "missing.git"))
    slept: list[float] = []
    with pytest.raises(StateNotPushed, match=r"did not succeed within 0s \(1 attempts\)"):
        push_until(clone, "main", identity=IDENTITY, deadline=0, sleep=slept.append)
    assert slept == []


# --- a shard spends only its share of the rate limit -----------------------------------------


def test_the_budget_gives_a_shard_its_share_of_what_is_left() -> None:
    from petrova.net.http import Answer
    from petrova.probe.github import Budget, BudgetSpent

    budget = Budget(shares=4)

    def answer(remaining: int, status: int = 200) -> Answer:
        headers = {"x-ratelimit-remaining": str(remaining), "x-ratelimit-reset": "1900000000"}
        return Answer(status, "", headers, b"[]")

    spent = 0
    with pytest.raises(BudgetSpent, match=r"share of the GitHub rate limit is spent \(1/4"):
        for remaining in range(99, 0, -1):  # GitHub counts down as the others spend too
            with budget.ask():
                budget.update(answer(remaining))
            spent += 1
    assert budget.allowance == 25  # (99 left + 1 spent) // 4
    assert spent == 25
    single = Budget()
    for remaining in range(99, 50, -1):
        with single.ask():
            single.update(answer(remaining))
    assert single.allowance is None  # one runner: the whole budget, as before
    assert single.counted == 49


def test_shards_probing_at_once_share_the_budget_and_never_see_403(
    fleet: Fleet, tmp_path: Path, spawn: Spawn
) -> None:
    from tests.fake_github import FakeGitHub
    from tests.fake_services import FakeService, make_certificate
    from tests.probe.test_probe import World

    github = FakeGitHub(limit=30)
    cert = make_certificate(tmp_path)
    service = FakeService({}, tls=cert)
    fleet.workspace.mkdir()
    try:
        world = World(fleet, run_inprocess, github, service, cert[0])
        names = [f"hq-{i:02d}" for i in range(24)]  # 48 requests wanted, 30 left
        for slug in names:
            world.add_repo(slug, {"ares": world.evidence(slug, "ares")})
        running = []
        for k in range(1, SHARDS + 1):
            argv = [
                str(PETROVA_BIN), "probe", *fleet.args(), "--workspace", str(fleet.workspace),
                "--cache-dir", str(tmp_path / f"cache-{k}"), "--shard", f"{k}/{SHARDS}",
                "--json", "--jobs", "4",
            ]  # fmt: skip
            running.append(
                spawn(
                    argv,
                    env=_clean_env(world.env),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
        documents = []
        for proc in running:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode in (0, 1), err
            documents.append(json.loads(out))
    finally:
        service.close()
        github.close()
    assert not [r for r in github.requests if r.status == 403]
    assert github.counted() <= 30
    left = [c for d in documents for c in d["left_for_next_run"]]
    assert left and all("share of the GitHub rate limit" in c["reason"] for c in left)
    probed = [o for d in documents for o in d["outcomes"]]
    assert probed and all(o["outcome"] == "ok" for o in probed)
    assert len(probed) + len(left) == len(names)
