"""Hostile input, round three: one consumer never stops the fleet's probes, crafted
evidence never turns a dot green, the ETag cache, clone size limits, one observation per
cell per run window, one contract reader, ``-o`` and the sync manifest, branch names,
sync locks and corrupt clones (docs/HOSTILE_INPUT.md, "Round three").

Real git with local bare repos, real loopback servers (the fakes of tests/), the CLI run
as a user runs it: each test asserts exit codes, ledgers, clones and files.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from petrova.documents.probe_spec import path_problem, segment_problem
from petrova.documents.registry import branch_name_problem
from petrova.files.lock import file_lock
from petrova.probe import kinds
from petrova.probe.github import CACHE_FILE
from petrova.probe.urls import UrlRefused, safe_url
from petrova.sync.paths import unsafe_reason
from petrova.sync.workspace import MANIFEST_NAME, read_manifest
from tests.conftest import FIXED_NOW, PETROVA_BIN, SUITE_ENV, Fleet, Petrova, Spawn
from tests.probe import test_probe
from tests.probe.test_probe import IDS, World
from tests.sync import test_sync
from tests.sync.test_sync import KAHN, VTM, sync
from tests.syncfleet import Remotes, contract_text, git

# the probe tests' world (a fleet, its workspace, a fake GitHub and fake services)
certificate = test_probe.certificate
world = test_probe.world

GOOD = "good-hq"
BAD = "bad-hq"


def ledger(world: World, slug: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((world.fleet.state_dir / f"{slug}.yaml").read_text())
    return data


def outcomes_of(world: World, slug: str, integration: str) -> list[str]:
    cell = ledger(world, slug)["integrations"].get(integration, {"history": []})
    return [h["outcome"] for h in cell["history"]]


def record_all(world: World, *extra: str, env: dict[str, str | None] | None = None) -> Any:
    run = world.probe("--record", "--json", *extra, env=env)
    assert run.exit_code in (0, 1), run.stderr
    return json.loads(run.stdout)


def with_evidence(world: World, slug: str, integration: str, **changed: Any) -> dict[str, Any]:
    evidence = world.evidence(slug, integration)
    evidence.update(changed)
    return evidence


# --- 1. one consumer never stops the fleet's probes ------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("https://traceo..example.com/x", "empty label"),
        ("https://.example.com/x", "empty label"),
        ("https://xn--/x", "label"),
        ("https://-bad.example.com/x", "label"),
        ("https://" + "a" * 64 + ".example.com/x", "label"),
        ("https://host.example:99999/x", "not a usable URL"),
        ("https://[::1/x", "not a usable URL"),
        ("https://user:pw@host.example/x", "credentials"),
        ("https://host.example/a\\b", "backslash"),
    ],
)
def test_an_endpoint_that_is_no_url_fails_its_cell_and_the_fleet_is_recorded(
    world: World, endpoint: str, why: str
) -> None:
    world.add_repo(GOOD)
    world.add_repo(BAD, {"traceo": with_evidence(world, BAD, "traceo", traceo_endpoint=endpoint)})
    document = record_all(world)
    got = {(o["slug"], o["integration"]): o for o in document["outcomes"]}
    assert got[(BAD, "traceo")]["outcome"] == "failing"
    assert why in got[(BAD, "traceo")]["detail"]
    assert [got[(GOOD, i)]["outcome"] for i in IDS] == ["ok"] * 4
    assert outcomes_of(world, GOOD, "crumb") == ["ok"]
    assert outcomes_of(world, BAD, "traceo") == ["failing"]


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("/vérif", "/v%C3%A9rif"),
        ("/ünï/cödé", "/%C3%BCn%C3%AF/c%C3%B6d%C3%A9"),
        ("/a%zz", "/a%25zz"),
        ("/ok?q=é", "/ok?q=%C3%A9"),
        ("/日本", "/%E6%97%A5%E6%9C%AC"),
    ],
)
def test_a_non_ascii_endpoint_path_is_sent_encoded(world: World, path: str, sent: str) -> None:
    world.add_repo(GOOD)
    endpoint = world.service.base + path
    world.add_repo(BAD, {"traceo": with_evidence(world, BAD, "traceo", traceo_endpoint=endpoint)})
    world.service.routes[sent.split("?")[0]] = 200
    got = world.outcomes()
    assert got[f"{BAD} traceo"]["outcome"] == "ok", got[f"{BAD} traceo"]
    assert world.service.seen(sent)
    assert got[f"{GOOD} lore_cairnet"]["outcome"] == "ok"


def _deep(levels: int) -> dict[str, str]:
    folder = "/".join(["d"] * levels)
    return {"README.md": "x\n", f"content/{folder}/card.md": "deep\n", "docs/vtm.md": "# VTM\n"}


def _dig(top: Path, levels: int, *, remove: bool = False) -> None:
    """``top/d/d/…`` ``levels`` deep with a card at the bottom, made (or removed) one
    folder at a time through file descriptors: the whole path is longer than the
    system's limit for one path, and a recursive walk would hit Python's."""
    fds = [os.open(top, os.O_RDONLY)]
    try:
        for _ in range(levels):
            if not remove:
                os.mkdir("d", dir_fd=fds[-1])
            fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
        if remove:
            os.unlink("card.md", dir_fd=fds[-1])
            for parent in reversed(fds[:-1]):
                os.rmdir("d", dir_fd=parent)
        else:
            fd = os.open("card.md", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fds[-1])
            os.write(fd, b"deep\n")
            os.close(fd)
    finally:
        for fd in fds:
            os.close(fd)


@pytest.mark.parametrize(
    ("levels", "files", "bound", "why"),
    [
        (1_100, None, None, "deeper than 64 levels"),
        (None, _deep(kinds.MAX_DEPTH + 1), None, "deeper than 64 levels"),
        (None, {f"content/c{i:02}.md": "x\n" for i in range(30)}, 20, "more than 20 entries"),
    ],
)
def test_a_folder_too_deep_or_too_wide_is_a_bounded_walk(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    levels: int | None,
    files: dict[str, str] | None,
    bound: int | None,
    why: str,
) -> None:
    if bound is not None:
        monkeypatch.setattr(kinds, "MAX_COUNTED", bound)
    world.add_repo(GOOD)
    crumb = with_evidence(world, BAD, "crumb", content_path="content", card_count=1)
    world.add_repo(BAD, {"crumb": crumb}, files=files or {"content/README": "x\n"})
    content = world.fleet.workspace / BAD / "content"
    if levels is not None:
        _dig(content, levels)
    try:
        document = record_all(world)
    finally:
        if levels is not None:
            _dig(content, levels, remove=True)
    got = {(o["slug"], o["integration"]): o for o in document["outcomes"]}
    assert got[(BAD, "crumb")]["outcome"] == "degraded"
    assert why in got[(BAD, "crumb")]["detail"]
    assert "the count is unknown" in got[(BAD, "crumb")]["detail"]
    assert outcomes_of(world, GOOD, "crumb") == ["ok"]


def test_a_check_folder_at_the_depth_limit_is_counted(world: World) -> None:
    crumb = with_evidence(world, GOOD, "crumb", content_path="content", card_count=1)
    world.add_repo(GOOD, {"crumb": crumb}, files=_deep(kinds.MAX_DEPTH - 1))
    assert world.outcomes()[f"{GOOD} crumb"]["outcome"] == "ok"


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("file", RuntimeError("a bug")),
        ("http", UnicodeEncodeError("latin-1", "é", 0, 1, "no")),
        ("github_webhook", KeyError("id")),
        ("age", RecursionError()),
        ("file", OSError(36, "File name too long")),
    ],
)
def test_whatever_a_check_raises_stays_in_its_cell(
    world: World, monkeypatch: pytest.MonkeyPatch, kind: str, error: Exception
) -> None:
    def broken(check: Any, cell: Any) -> Any:
        if cell.slug == BAD:
            raise error
        return real(check, cell)

    real = kinds.KINDS[kind]
    monkeypatch.setitem(kinds.KINDS, kind, broken)
    world.add_repo(GOOD)
    world.add_repo(BAD)
    run = world.probe("--record", "--json")
    assert run.exit_code == 1, run.stderr  # PROBES_INCOMPLETE, never 70
    document = json.loads(run.stdout)
    bad = [o for o in document["outcomes"] if o["slug"] == BAD]
    hit = {"file": ("traceo", "crumb"), "http": ("traceo", "lore_cairnet")}.get(
        kind, ("ares",) if kind == "github_webhook" else ("crumb",)
    )
    for outcome in bad:
        if outcome["integration"] in hit:
            assert outcome["outcome"] == "unreachable", outcome
            assert "could not run" in outcome["detail"]
    assert {o["integration"] for o in bad} == set(IDS)
    assert [outcomes_of(world, GOOD, i) for i in IDS] == [["ok"]] * 4


# --- 3. a corrupt ETag cache is ignored, never fatal ------------------------------------------


def _corrupt(entries: dict[str, list[Any]], how: str) -> Any:
    hooks = next(u for u in entries if u.split("?")[0].endswith("/hooks"))
    deliveries = next(u for u in entries if u.split("?")[0].endswith("/deliveries"))
    etag = entries[hooks][0]
    changed = {k: list(v) for k, v in entries.items()}
    if how == "hooks-strings":
        changed[hooks][1] = ["not", "a", "hook"]
    elif how == "hooks-missing-key":
        changed[hooks][1] = [{"id": 101}]
    elif how == "hooks-id-text":
        changed[hooks][1] = [{"id": "101", "active": True, "host": "ares.devarno.cloud"}]
    elif how == "hooks-object":
        changed[hooks][1] = {"id": 101}
    elif how == "deliveries-text":
        changed[deliveries][1] = ["200"]
    elif how == "deliveries-bool":
        changed[deliveries][1] = [True]
    elif how == "etag-newline":
        changed[hooks][0] = etag + "\r\nX-Evil: 1"
    elif how == "etag-not-latin-1":
        changed[hooks][0] = '"€tag"'
    elif how == "etag-number":
        changed[hooks][0] = 7
    elif how == "entry-short":
        changed[hooks] = [etag]
    elif how == "entries-list":
        return {"version": 1, "entries": [1, 2]}
    elif how == "top-list":
        return [1, 2, 3]
    return {"version": 1, "entries": changed}


@pytest.mark.parametrize(
    "how",
    [
        "hooks-strings",
        "hooks-missing-key",
        "hooks-id-text",
        "hooks-object",
        "deliveries-text",
        "deliveries-bool",
        "etag-newline",
        "etag-not-latin-1",
        "etag-number",
        "entry-short",
        "entries-list",
        "top-list",
    ],
)
def test_a_corrupt_etag_cache_entry_is_dropped_and_the_cache_rewritten(
    world: World, how: str
) -> None:
    world.add_repo(GOOD, {"ares": world.evidence(GOOD, "ares")})
    assert world.probe().exit_code == 0
    path = world.cache / CACHE_FILE
    good = json.loads(path.read_text())
    path.write_text(json.dumps(_corrupt(good["entries"], how), ensure_ascii=False))
    run = world.probe()
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["outcome"] == "ok"
    saved = json.loads(path.read_text())
    assert saved == good  # every bad entry dropped, the good ones asked again and kept
    again = world.probe()
    assert again.exit_code == 0
    assert world.github.requests[-1].status == 304


def test_the_cache_is_saved_when_a_check_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(check: Any, cell: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setitem(kinds.KINDS, "file", broken)
    world.add_repo(GOOD)
    world.cache.mkdir()
    (world.cache / CACHE_FILE).write_text('{"version": 1, "entries": {"x": ["\\"e\\"", 1]}}')
    assert world.probe().exit_code == 1
    saved = json.loads((world.cache / CACHE_FILE).read_text())
    assert "x" not in saved["entries"] and len(saved["entries"]) == 2


# --- 5. crafted evidence never turns a dot green ---------------------------------------------


@pytest.mark.parametrize(
    "agent", [".", "..", "%2e", "%2E%2e", ".%2e", "%252e%252e", "a/..", "a\\b", "..%2f.."]
)
def test_a_dot_agent_id_is_refused_before_any_request(world: World, agent: str) -> None:
    evidence = with_evidence(world, BAD, "lore_cairnet", cairnet_agent_id=agent)
    world.add_repo(BAD, {"lore_cairnet": evidence})
    world.service.routes["/cairnet/agents"] = 200  # the collection answers 2xx
    world.service.routes["/cairnet"] = 200
    got = world.outcomes()[f"{BAD} lore_cairnet"]
    assert got["outcome"] == "failing"
    assert "cairnet_agent_id" in got["detail"]
    assert not [r for r in world.service.requests if r.path.startswith("/cairnet/agents")]


@pytest.mark.parametrize(
    "vtm",
    [
        ".git/HEAD",
        ".git/config",
        ".GIT/HEAD",
        ".petrova/contract.yaml",
        ".petrova",
        "./docs/vtm.md",
        "docs/./vtm.md",
        "docs/../docs/vtm.md",
        "%2e%2e/x",
        "docs/%2e%2e/docs/vtm.md",
        "/etc/passwd",
        "docs\\vtm.md",
        "docs//vtm.md",
        "sub/.git/HEAD",
        "%2egit/HEAD",
    ],
)
def test_a_vtm_path_sync_refuses_the_probe_refuses_too(world: World, vtm: str) -> None:
    assert unsafe_reason(vtm) is not None  # sync: SYNC_PROBE_PATH_UNSAFE
    assert unsafe_reason(vtm) == path_problem(vtm)  # one rule
    evidence = with_evidence(world, BAD, "traceo", vtm_path=vtm)
    del evidence["traceo_endpoint"]
    world.add_repo(BAD, {"traceo": evidence})
    got = world.outcomes()[f"{BAD} traceo"]
    assert got["outcome"] == "failing", got
    assert "not a path a probe may look at" in got["detail"]


@pytest.mark.parametrize("scope", [".", "..", "org/..", "./repo", "%2e%2e", "o/r/x", "o/%2e"])
def test_an_ares_scope_with_dot_segments_asks_github_nothing(world: World, scope: str) -> None:
    world.add_repo(BAD, {"ares": {"org_or_repo_scope": scope}})
    got = world.outcomes()[f"{BAD} ares"]
    assert got["outcome"] == "failing"
    assert "is not an org or org/repo" in got["detail"]
    assert world.github.requests == []


@pytest.mark.parametrize(
    ("generated", "outcome"),
    [
        ("2026-11-26T07:10:00Z", "degraded"),  # ten minutes ahead
        ("2026-11-27T08:00:00+01:00", "degraded"),
        ("2027-01-01T00:00:00Z", "degraded"),
        ("2099-12-31T23:59:59Z", "degraded"),
        ("2026-11-26T07:04:00Z", "ok"),  # within the clocks' skew
        ("2026-11-26T07:00:00Z", "ok"),
        ("2026-11-20T09:00:00Z", "ok"),
    ],
)
def test_a_generation_time_in_the_future_is_not_fresh(
    world: World, generated: str, outcome: str
) -> None:
    crumb = with_evidence(world, BAD, "crumb", last_generated_at=generated)
    world.add_repo(BAD, {"crumb": crumb})
    got = world.outcomes()[f"{BAD} crumb"]
    assert got["outcome"] == outcome, got
    if outcome == "degraded":
        assert "in the future" in got["detail"]


@pytest.mark.parametrize(
    "segment", ["", ".", "..", "%2e", "%2E%2E", "%252e", "a/b", "a%2fb", "a\\b", "a\x00b", "\x1b"]
)
def test_the_segment_rule_refuses_every_spelling_of_another_folder(segment: str) -> None:
    assert segment_problem(segment) is not None
    if "/" not in segment:  # a slash in a path is a separator, not a segment's
        assert path_problem(f"docs/{segment}/x") is not None


@pytest.mark.parametrize("segment", ["agent-7", "a.b", "...", "v1.2", "é", "a%20b", "%41"])
def test_the_segment_rule_keeps_ordinary_names(segment: str) -> None:
    assert segment_problem(segment) is None
    assert path_problem(f"docs/{segment}") is None


# --- 7. one observation per cell per run window ----------------------------------------------


def _at(hours: float) -> dict[str, str | None]:
    return {"SOURCE_DATE_EPOCH": str(int(FIXED_NOW.timestamp() + hours * 3600))}


@pytest.mark.parametrize(
    ("later", "extra", "count"),
    [
        (0, (), 1),  # the same moment again
        (1, (), 1),  # a re-run after a failed publish
        (11.9, (), 1),
        (12, (), 2),  # the next window
        (24, (), 2),  # the next day
        (1, ("--window", "0.5"), 2),
        (0, ("--window", "0"), 2),  # 0: every outcome
    ],
)
def test_a_rerun_within_the_window_adds_no_outcome(
    world: World, later: float, extra: tuple[str, ...], count: int
) -> None:
    world.add_repo(GOOD, {"traceo": world.evidence(GOOD, "traceo")})
    world.service.routes[f"/traceo/{GOOD}"] = 404  # failing: twice would demote
    first = world.probe("--record", *extra, env=_at(0))
    assert first.exit_code == 0, first.stderr
    second = world.probe("--record", "--json", *extra, env=_at(later))
    assert second.exit_code == 0, second.stderr
    assert len(outcomes_of(world, GOOD, "traceo")) == count
    document = json.loads(second.stdout)
    assert len(document["already_observed"]) == 2 - count
    assert len(document["recorded"]) == count - 1


def test_the_window_is_read_from_the_environment(world: World) -> None:
    world.add_repo(GOOD, {"crumb": world.evidence(GOOD, "crumb")})
    for hours in (0, 2, 4):
        run = world.probe("--record", env={**_at(hours), "PETROVA_PROBE_WINDOW_HOURS": "1"})
        assert run.exit_code == 0
    assert outcomes_of(world, GOOD, "crumb") == ["ok"] * 3


def test_a_conclusive_rerun_after_an_unreachable_one_is_recorded(world: World) -> None:
    world.add_repo(GOOD, {"lore_cairnet": world.evidence(GOOD, "lore_cairnet")})
    blind = world.probe("--record", env={**_at(0), "PETROVA_PEBBLE_TOKEN": None})
    assert blind.exit_code == 1
    assert world.probe("--record", env=_at(1)).exit_code == 0
    assert world.probe("--record", env=_at(2)).exit_code == 0
    blind_again = world.probe("--record", env={**_at(3), "PETROVA_PEBBLE_TOKEN": None})
    assert blind_again.exit_code == 1
    assert outcomes_of(world, GOOD, "lore_cairnet") == ["unreachable", "ok"]


def test_an_overlapping_probe_waits_for_the_run_lock(world: World) -> None:
    world.add_repo(GOOD, {"crumb": world.evidence(GOOD, "crumb")})
    world.fleet.state_dir.mkdir()
    with file_lock(world.fleet.state_dir / "probe", wait=1):
        run = world.probe("--record", "--wait", "0.2")
    assert run.exit_code == 75, run.stderr
    assert "LOCK_TIMEOUT" in run.stderr
    assert not (world.fleet.state_dir / f"{GOOD}.yaml").exists()
    # without --record nothing is written, so nothing is locked
    with file_lock(world.fleet.state_dir / "probe", wait=1):
        assert world.probe().exit_code == 0


def test_two_probes_at_once_record_one_outcome_per_cell(world: World, spawn: Spawn) -> None:
    for slug in ("one-hq", "two-hq", "three-hq"):
        world.add_repo(slug, {"crumb": world.evidence(slug, "crumb")})
    env = {**os.environ, **SUITE_ENV, **world.env}
    argv = [
        str(PETROVA_BIN),
        "probe",
        "--record",
        *world.fleet.args(),
        "--workspace",
        str(world.fleet.workspace),
        "--cache-dir",
        str(world.cache),
    ]
    runs = [spawn(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    for proc in runs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    for slug in ("one-hq", "two-hq", "three-hq"):
        assert outcomes_of(world, slug, "crumb") == ["ok"]


def test_an_overlapping_daily_waits_and_changes_nothing(fleet: Fleet, petrova: Petrova) -> None:
    fleet.state_dir.mkdir()
    output = fleet.root / "fleet.json"
    with file_lock(fleet.state_dir / "daily", wait=1):
        run = petrova(
            "daily",
            *fleet.args(),
            "--workspace",
            str(fleet.workspace),
            "-o",
            str(output),
            "--no-self-update",
            "--wait",
            "0.2",
        )
    assert run.exit_code == 75, run.stderr
    assert not output.exists() and not fleet.workspace.exists()


# --- 8. probes plan only from contracts the snapshot accepts ----------------------------------


@pytest.mark.parametrize("case", ["other-registry-slug", "unknown-slug", "other-repo-remote"])
def test_a_contract_the_snapshot_refuses_is_not_probed(
    world: World, petrova: Petrova, case: str
) -> None:
    world.add_repo(GOOD)
    world.add_repo(BAD)
    clone = world.fleet.workspace / BAD
    if case == "other-repo-remote":
        # the url now serves another repo: its clone holds that repo's contract
        subprocess.run(["rm", "-rf", str(clone)], check=True)
        git(world.fleet.root, "clone", "-q", (world.bare / f"{GOOD}.git").as_uri(), str(clone))
    else:
        other = GOOD if case == "other-registry-slug" else "nobody-hq"
        contract = clone / ".petrova" / "contract.yaml"
        contract.write_text(contract.read_text().replace(f"slug: {BAD}", f"slug: {other}"))
    run = world.probe("--json")
    assert run.exit_code == 1
    document = json.loads(run.stdout)
    assert {o["slug"] for o in document["outcomes"]} == {GOOD}
    [reason] = [s["reason"] for s in document["not_probed"] if s["slug"] == BAD]
    assert "CONTRACT_UNREADABLE" in reason and "the contract is for slug" in reason
    snap = petrova("snapshot", *world.fleet.args(), "--workspace", str(world.fleet.workspace))
    warnings = json.loads(snap.stdout)["warnings"]
    assert any(w["slug"] == BAD and w["code"] == "CONTRACT_UNREADABLE" for w in warnings)


def test_a_linked_contract_is_refused_by_both(world: World) -> None:
    world.add_repo(GOOD)
    world.add_repo(BAD)
    folder = world.fleet.workspace / BAD / ".petrova"
    real = world.fleet.root / "elsewhere"
    folder.rename(real)
    folder.symlink_to(real)
    document = json.loads(world.probe("--json").stdout)
    assert {o["slug"] for o in document["outcomes"]} == {GOOD}
    [reason] = [s["reason"] for s in document["not_probed"] if s["slug"] == BAD]
    assert "UNSAFE_PATH" in reason


# --- sync: the fleet's clones ----------------------------------------------------------------

synced = test_sync.synced
remotes = test_sync.remotes


def _stratt_synced(fleet: Fleet) -> None:
    record = read_manifest(fleet.workspace)["stratt-hq"]
    assert (record.status, record.code) == ("ok", None)
    assert (fleet.workspace / "stratt-hq" / ".git").is_dir()


# --- 6. a checkout has a size limit ------------------------------------------------------------

_MANY = {f".petrova/notes/n{i:02}.md": "x\n" for i in range(30)}


@pytest.mark.parametrize(
    ("files", "env", "why"),
    [
        (_MANY, {"PETROVA_MAX_CLONE_FILES": "20"}, "more than 20 files"),
        (
            {".petrova/blob.bin": "x" * 300_000},
            {"PETROVA_MAX_CLONE_BYTES": "200000"},
            "more than 200000 bytes",
        ),
        ({VTM: "x" * 300_000}, {"PETROVA_MAX_CLONE_BYTES": "200000"}, "more than 200000 bytes"),
        (
            {
                ".petrova/contract.yaml": contract_text("kahn-hq", "docs/spec"),
                **{f"docs/spec/part{i:02}.md": "x\n" for i in range(30)},
            },
            {"PETROVA_MAX_CLONE_FILES": "25"},
            "more than 25 files",
        ),
    ],
)
def test_a_clone_past_the_limits_is_not_kept_and_the_rest_is_synced(
    petrova: Petrova,
    synced: Fleet,
    remotes: Remotes,
    files: dict[str, str],
    env: dict[str, str],
    why: str,
) -> None:
    remotes.publish(KAHN, files)
    run = sync(petrova, synced, remotes, env=env)
    assert run.exit_code == 1
    assert "SYNC_CLONE_TOO_LARGE: kahn-hq: " in run.stderr and why in run.stderr
    assert not (synced.workspace / "kahn-hq").exists()
    record = read_manifest(synced.workspace)["kahn-hq"]
    assert (record.status, record.code, record.commit) == ("failed", "SYNC_CLONE_TOO_LARGE", None)
    _stratt_synced(synced)
    scratch = synced.workspace / ".petrova-sync.d"
    assert [p.name for p in scratch.iterdir() if p.is_dir()] == []


def test_a_clone_that_grows_past_the_limits_is_removed(
    petrova: Petrova, synced: Fleet, remotes: Remotes
) -> None:
    env = {"PETROVA_MAX_CLONE_FILES": "20"}
    assert sync(petrova, synced, remotes, env=env).exit_code == 0
    assert (synced.workspace / "kahn-hq" / ".petrova" / "contract.yaml").is_file()
    remotes.publish(KAHN, _MANY)
    run = sync(petrova, synced, remotes, env=env)
    assert run.exit_code == 1
    assert "SYNC_CLONE_TOO_LARGE: kahn-hq: " in run.stderr
    assert not (synced.workspace / "kahn-hq").exists()
    # the limits raised, the next sync clones it again
    assert sync(petrova, synced, remotes, env={"PETROVA_MAX_CLONE_FILES": "50"}).exit_code == 0
    assert (synced.workspace / "kahn-hq" / ".petrova" / "notes" / "n29.md").is_file()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PETROVA_MAX_CLONE_FILES", "many"),
        ("PETROVA_MAX_CLONE_FILES", "0"),
        ("PETROVA_MAX_CLONE_BYTES", "-5"),
        ("PETROVA_MAX_CLONE_BYTES", "1e6"),
    ],
)
def test_a_bad_limit_is_a_usage_error_before_any_clone(
    petrova: Petrova, synced: Fleet, remotes: Remotes, name: str, value: str
) -> None:
    run = sync(petrova, synced, remotes, env={name: value})
    assert run.exit_code == 2
    assert f"USAGE_ERROR: {name}={value!r} is not a positive whole number" in run.stderr
    assert not synced.workspace.exists()


# --- 11. a planted lock link fails one repo; a corrupt clone is named so ------------------------


@pytest.mark.parametrize("planted", ["dangling-link", "link-to-file", "folder"])
def test_a_planted_sync_lock_fails_that_repo_only(
    petrova: Petrova, synced: Fleet, remotes: Remotes, tmp_path: Path, planted: str
) -> None:
    scratch = synced.workspace / ".petrova-sync.d"
    scratch.mkdir(parents=True)
    lock = scratch / ".kahn-hq.lock"
    victim = tmp_path / "victim.txt"
    if planted == "folder":
        lock.mkdir()
    else:
        if planted == "link-to-file":
            victim.write_text("keep me\n")
        lock.symlink_to(victim)
    run = sync(petrova, synced, remotes)
    assert run.exit_code == 1
    assert "SYNC_LOCK_UNUSABLE: kahn-hq: " in run.stderr
    assert not (synced.workspace / "kahn-hq").exists()
    assert read_manifest(synced.workspace)["kahn-hq"].code == "SYNC_LOCK_UNUSABLE"
    _stratt_synced(synced)
    if planted == "link-to-file":
        assert victim.read_text() == "keep me\n"
    else:
        assert not victim.exists()


def _corrupt_clone(clone: Path, how: str) -> None:
    git_dir = clone / ".git"
    if how == "head-deleted":
        (git_dir / "HEAD").unlink()
    elif how == "config-garbage":
        (git_dir / "config").write_text("[[[ this is not git config\n")
    elif how == "git-emptied":
        subprocess.run(["rm", "-rf", str(git_dir)], check=True)
        git_dir.mkdir()
    elif how == "objects-folder-gone":
        subprocess.run(["rm", "-rf", str(git_dir / "objects"), str(git_dir / "refs")], check=True)


@pytest.mark.parametrize(
    "how", ["head-deleted", "config-garbage", "git-emptied", "objects-folder-gone"]
)
def test_a_corrupt_clone_is_named_as_corrupt(
    petrova: Petrova, synced: Fleet, remotes: Remotes, how: str
) -> None:
    assert sync(petrova, synced, remotes).exit_code == 0
    clone = synced.workspace / "kahn-hq"
    _corrupt_clone(clone, how)
    run = sync(petrova, synced, remotes)
    assert run.exit_code == 1
    assert "SYNC_CLONE_CORRUPT: kahn-hq: " in run.stderr
    assert "is a damaged clone" in run.stderr
    assert "no origin" not in run.stderr
    assert (clone / ".petrova" / "contract.yaml").is_file()  # left as it is
    record = read_manifest(synced.workspace)["kahn-hq"]
    assert (record.status, record.code, record.commit) == ("failed", "SYNC_CLONE_CORRUPT", None)
    _stratt_synced(synced)


# --- 11. default_branch as git checks branch names -----------------------------------------------

BAD_BRANCHES = [
    "*",
    "a\nb",
    "a\x07",
    "a:b",
    "..",
    "-x",
    "HEAD",
    "a..b",
    "a b",
    "x.lock",
    "a/x.lock/b",
    "a/",
    "/a",
    ".hidden",
    "x/.y",
    "a//b",
    "a@{1}",
    "feat~1",
    "a^",
    "a?",
    "a[",
    "a\\b",
    "a.",
    "a\x7f",
    "@",
]
GOOD_BRANCHES = ["main", "feature/x-1", "release-2.0", "vérif", "x@y", "a.b/c", "v1..x"[:2]]


@pytest.mark.parametrize("branch", BAD_BRANCHES)
def test_a_default_branch_git_would_refuse_is_refused_at_its_line(
    petrova: Petrova, fleet: Fleet, branch: str
) -> None:
    text = fleet.registry.read_text()
    old = "url: https://github.com/kahn-hq/kahn\n    default_branch: main\n"
    assert old in text
    line = text[: text.index(old)].count("\n") + 2
    fleet.registry.write_text(
        text.replace(
            old, f"url: https://github.com/kahn-hq/kahn\n    default_branch: {json.dumps(branch)}\n"
        )
    )
    run = petrova("registry", "validate", *fleet.args())
    assert run.exit_code == 2, run.stderr
    assert "REGISTRY_INVALID" in run.stderr
    assert f"registry.yaml:{line}:" in run.stderr
    assert "default_branch" in run.stderr and "not a branch name git accepts" in run.stderr


@pytest.mark.parametrize("branch", [b for b in BAD_BRANCHES + GOOD_BRANCHES if b != "@"])
def test_the_branch_rule_agrees_with_git(branch: str) -> None:
    # ("@" is refused here though `git check-ref-format --branch @` names the current branch)
    verdict = subprocess.run(
        ["git", "check-ref-format", "--branch", branch], capture_output=True, check=False
    )
    assert (branch_name_problem(branch) is None) == (verdict.returncode == 0)


# --- 10. -o never names the sync manifest ---------------------------------------------------------


@pytest.mark.parametrize("target", ["manifest", "hard-link", "manifest-new", "scratch"])
def test_snapshot_o_never_writes_the_sync_manifest(
    petrova: Petrova, synced: Fleet, remotes: Remotes, target: str
) -> None:
    manifest = synced.workspace / MANIFEST_NAME
    if target != "manifest-new":
        assert sync(petrova, synced, remotes).exit_code == 0
    else:
        synced.workspace.mkdir()
    hard = synced.root / "fleet.json"
    if target == "hard-link":
        os.link(manifest, hard)
    output = {
        "manifest": manifest,
        "hard-link": hard,
        "manifest-new": manifest,
        "scratch": synced.workspace / ".petrova-sync.d" / "fleet.json",
    }[target]
    before = manifest.read_bytes() if manifest.exists() else None
    listed = sorted(p.name for p in output.parent.iterdir()) if output.parent.is_dir() else []
    run = petrova("snapshot", *synced.args("--workspace", str(synced.workspace)), "-o", str(output))
    assert run.exit_code == 2, run.stderr
    assert "OUTPUT_IS_INPUT" in run.stderr
    assert (manifest.read_bytes() if manifest.exists() else None) == before
    after = sorted(p.name for p in output.parent.iterdir()) if output.parent.is_dir() else []
    assert after == listed  # not even a lock file made beside it


def test_render_and_daily_o_never_write_a_sync_manifest(
    petrova: Petrova, synced: Fleet, remotes: Remotes, tmp_path: Path
) -> None:
    assert sync(petrova, synced, remotes).exit_code == 0
    manifest = synced.workspace / MANIFEST_NAME
    before = manifest.read_bytes()
    document = tmp_path / "fleet.json"
    made = petrova(
        "snapshot", *synced.args("--workspace", str(synced.workspace)), "-o", str(document)
    )
    assert made.exit_code == 0, made.stderr
    render = petrova("render", str(document), "-o", str(manifest))
    assert render.exit_code == 2 and "OUTPUT_IS_INPUT" in render.stderr
    daily = petrova(
        "daily",
        *synced.args("--workspace", str(synced.workspace)),
        "-o",
        str(manifest),
        "--no-self-update",
        env=remotes.env(),
    )
    assert daily.exit_code == 2 and "OUTPUT_IS_INPUT" in daily.stderr
    assert manifest.read_bytes() == before


def test_a_daily_run_again_after_a_failed_publish_records_one_outcome_per_cell(
    world: World, ingest: Any, tmp_path: Path
) -> None:
    """The whole daily, twice, as an operator re-runs it when the publish failed: the second
    run's probe step adds nothing to any cell."""
    from tests.ingest_server import answer

    world.add_repo(GOOD)
    refusing = ingest(answer(400))  # refused, not retried
    env: dict[str, str | None] = {
        **world.env,
        "PETROVA_INGEST_TOKEN": "ingest-token-1234",
        # the sync step must not reach the network: every registry url fails at once
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.file://{tmp_path}/nowhere/.insteadOf",
        "GIT_CONFIG_VALUE_0": "https://github.com/",
        "PETROVA_CACHE_DIR": str(world.cache),
    }
    argv = [
        "daily",
        *world.fleet.args(),
        "--workspace",
        str(world.fleet.workspace),
        "-o",
        str(world.fleet.root / "fleet.json"),
        "--publish",
        f"{refusing.base}/ingest",
        "--no-self-update",
    ]
    for _ in range(2):
        run = world.petrova(*argv, env=env)
        assert run.exit_code == 1, run.stderr  # the publish failed
        assert "snapshot" in run.stderr
    assert [outcomes_of(world, GOOD, i) for i in IDS] == [["ok"]] * 4


# --- the pure rules, by property ------------------------------------------------------------

_URLISH = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda scheme, host, path: f"{scheme}://{host}{path}",
        st.sampled_from(["http", "https", "HTTPS", "ftp", ""]),
        st.one_of(
            st.text(max_size=30),
            st.from_regex(
                r"[a-zé0-9-]{1,12}(\.[a-zü0-9-]{0,12}){0,3}(:[0-9]{1,6})?", fullmatch=True
            ),
        ),
        st.one_of(
            st.text(max_size=40), st.from_regex(r"(/[^/]{0,8}){0,4}(\?.{0,8})?", fullmatch=True)
        ),
    ),
)


@given(_URLISH)
@settings(max_examples=400, deadline=None)
def test_safe_url_gives_one_sendable_ascii_url_or_says_why_not(text: str) -> None:
    try:
        url = safe_url(text)
    except UrlRefused as exc:
        assert exc.reason and "\n" not in exc.reason
        return
    assert url.isascii() and url.isprintable() and " " not in url
    assert url.split("://")[0] in ("http", "https")
    assert safe_url(url) == url  # what is sent is already safe: one spelling


@given(st.text(max_size=60))
@settings(max_examples=400, deadline=None)
def test_a_path_the_rule_accepts_stays_in_the_clone_and_off_git(path: str) -> None:
    if path_problem(path) is not None:
        return
    joined = os.path.normpath(os.path.join("clone", path))  # noqa: PTH118
    assert joined.startswith("clone/") or joined == "clone"
    parts = [p.casefold() for p in joined.split("/")[1:]]
    assert ".git" not in parts and (not parts or parts[0] != ".petrova")
    assert all(ord(ch) >= 32 for ch in path) and "\\" not in path


@pytest.mark.parametrize("which", ["registry", "catalogue", "ledger", "manifest-name"])
def test_daily_refuses_o_onto_an_input_before_any_step(
    petrova: Petrova, fleet: Fleet, which: str
) -> None:
    fleet.write("state/kahn-hq.yaml", "not read\n")
    output = {
        "registry": fleet.registry,
        "catalogue": fleet.catalogue,
        "ledger": fleet.state_dir / "kahn-hq.yaml",
        "manifest-name": fleet.root / "elsewhere" / MANIFEST_NAME,
    }[which]
    before = output.read_bytes() if output.exists() else None
    run = petrova("daily", *fleet.args("--workspace", str(fleet.workspace)), "-o", str(output))
    assert run.exit_code == 2, run.stderr
    assert "OUTPUT_IS_INPUT" in run.stderr
    assert not fleet.workspace.exists()  # no step ran
    assert (output.read_bytes() if output.exists() else None) == before
