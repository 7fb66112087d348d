"""``petrova probe``: the shipped probes against a fake GitHub and fake services on 127.0.0.1,
over clones of local bare repos, with the outcomes fed to the real ledger."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from petrova.files.disk import sha12
from tests.catalogue_edits import add_integration
from tests.conftest import FIXED_NOW, Fleet, Petrova, Run, make_git_repo
from tests.fake_github import FakeGitHub
from tests.fake_services import TRICKLE, FakeService, make_certificate

IDS = ("ares", "traceo", "crumb", "lore_cairnet")
PEBBLE = "pebble-secret-7f3a"
FILES = {
    "README.md": "a consumer repo\n",
    "docs/vtm.md": "# VTM\n",
    "content/cards/one.md": "1\n",
    "content/cards/two.md": "2\n",
    "content/cards/deep/three.md": "3\n",
    "content/cards/notes.txt": "not a card\n",
}


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


class World:
    """A control-plane fleet, consumer repos synced into its workspace, and the fakes."""

    def __init__(
        self,
        fleet: Fleet,
        petrova: Petrova,
        github: FakeGitHub,
        service: FakeService,
        cert: Path,
    ) -> None:
        self.fleet = fleet
        self.petrova = petrova
        self.github = github
        self.service = service
        self.cache = fleet.root / "cache"
        self.bare = fleet.root.parent / "bare"
        self.env = {
            "GITHUB_API_URL": github.url,
            "GITHUB_TOKEN": github.token,
            "PETROVA_PEBBLE_TOKEN": PEBBLE,
            "PETROVA_LORE_CAIRNET_URL": service.base,
            "SSL_CERT_FILE": str(cert),
        }

    def evidence(self, slug: str, integration: str) -> dict[str, Any]:
        base = self.service.base
        return {
            "ares": {"org_or_repo_scope": f"{slug}/{slug}"},
            "traceo": {
                "baseline_id": "bl-7",
                "vtm_path": "docs/vtm.md",
                "traceo_endpoint": f"{base}/traceo/{slug}",
            },
            "crumb": {
                "content_path": "content/cards",
                "project_prefix": "KHN",
                "card_count": 3,
                "last_generated_at": "2026-11-20T09:00:00Z",
            },
            "lore_cairnet": {
                "lore_collection_slug": slug,
                "cairnet_agent_id": f"agent-{slug}",
                "cairnet_stones_endpoint": f"{base}/cairnet/stones",
            },
        }[integration]

    def add_repo(
        self,
        slug: str,
        cells: Mapping[str, Any] | None = None,
        *,
        files: Mapping[str, str] = FILES,
        hook: bool = True,
    ) -> str:
        """A consumer repo: contract and files committed to a bare repo, cloned into the
        workspace as ``petrova sync`` leaves it, and registered with its contract pinned.

        ``cells`` maps an id to its evidence, ``"pending"`` or ``"na"``; by default every
        shipped integration is wired with evidence that the fakes answer well.
        """
        if cells is None:
            cells = {i: self.evidence(slug, i) for i in IDS}
        contract = _contract(slug, cells)
        work = make_git_repo(self.fleet.root.parent / "src" / slug, {**files, **contract})
        bare = self.bare / f"{slug}.git"
        _git("clone", "-q", "--bare", str(work), str(bare))
        _git("clone", "-q", "--depth", "1", bare.as_uri(), str(self.fleet.workspace / slug))
        sha = sha12(contract[".petrova/contract.yaml"].encode())
        applicability = ", ".join(f"{i}: required" for i in _ids(self.fleet))
        with self.fleet.registry.open("a") as out:
            out.write(
                f"\n  - slug: {slug}\n    url: https://github.com/{slug}/{slug}\n"
                "    default_branch: main\n    role: production\n    tier: 2\n"
                f"    contract_sha: {sha}\n"
                f"    integrations_applicability: {{{applicability}}}\n"
            )
        if hook and "ares" in cells:
            self.github.add_hook(f"{slug}/{slug}")
        self.service.routes.update(
            {
                f"/traceo/{slug}": 200,
                "/cairnet/stones": 200,
                f"/cairnet/agents/agent-{slug}": 200,
            }
        )
        return sha

    def probe(self, *args: str, env: Mapping[str, str | None] | None = None) -> Run:
        full: dict[str, Any] = {**self.env, **(env or {})}
        return self.petrova(
            "probe",
            *self.fleet.args(),
            "--workspace",
            str(self.fleet.workspace),
            "--cache-dir",
            str(self.cache),
            *args,
            env=full,
        )

    def outcomes(self, *args: str, env: Mapping[str, str | None] | None = None) -> dict[str, Any]:
        """``{"slug integration": line}`` of one run (which must print only lines)."""
        run = self.probe(*args, env=env)
        assert run.exit_code in (0, 1), run.stderr
        lines = [json.loads(line) for line in run.stdout.splitlines()]
        return {f"{o['slug']} {o['integration']}": o for o in lines}


def _ids(fleet: Fleet) -> list[str]:
    schema = json.loads(fleet.catalogue.read_text())
    return list(schema["properties"]["integrations"]["properties"])


def _contract(slug: str, cells: Mapping[str, Any]) -> dict[str, str]:
    integrations: dict[str, Any] = {}
    for iid, value in cells.items():
        if value == "pending":
            integrations[iid] = {"status": "pending"}
        elif value == "na":
            integrations[iid] = {
                "status": "not_applicable",
                "not_applicable_reason": "not here",
                "review_by": "2027-06-01",
            }
        else:
            integrations[iid] = {"status": "wired", "evidence": value}
    doc = {"schema_version": 1, "slug": slug, "integrations": integrations}
    return {".petrova/contract.yaml": yaml.safe_dump(doc, sort_keys=False)}


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)


@pytest.fixture
def world(
    fleet: Fleet, petrova_inprocess: Petrova, certificate: tuple[Path, Path]
) -> Iterator[World]:
    github = FakeGitHub()
    service = FakeService({}, tls=certificate)
    fleet.workspace.mkdir()
    try:
        yield World(fleet, petrova_inprocess, github, service, certificate[0])
    finally:
        service.close()
        github.close()


# --- every outcome of every shipped probe ---------------------------------------------------


def test_all_green_prints_what_state_record_takes(world: World) -> None:
    sha = world.add_repo("alpha-hq")
    run = world.probe()
    assert run.exit_code == 0, run.stderr
    assert run.stderr == ""
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(o["slug"], o["integration"], o["outcome"]) for o in lines] == [
        ("alpha-hq", i, "ok") for i in IDS
    ]
    assert {o["evidence_sha"] for o in lines} == {sha}
    assert {o["at"] for o in lines} == {"2026-11-26T07:00:00Z"}
    assert all(len(o["detail"]) <= 200 for o in lines)
    # the lines go straight into the ledger
    recorded = world.petrova(
        "state", "record", "--from", "-", *world.fleet.args(), input=run.stdout
    )
    assert recorded.exit_code == 0, recorded.stderr
    ledger = yaml.safe_load((world.fleet.state_dir / "alpha-hq.yaml").read_text())
    assert {i: c["current_status"] for i, c in ledger["integrations"].items()} == dict.fromkeys(
        IDS, "ok"
    )
    # the pebble token travelled, in the header only
    agent = world.service.seen("/cairnet/agents/agent-alpha-hq")
    assert agent[0].headers["Authorization"] == f"Bearer {PEBBLE}"
    assert PEBBLE not in run.stdout


def test_ares_outcomes(world: World) -> None:
    for slug in ("no-hook", "inactive", "bad-delivery", "no-delivery", "org-wide"):
        evidence = {"org_or_repo_scope": "orgwide" if slug == "org-wide" else f"{slug}/{slug}"}
        world.add_repo(slug, {"ares": evidence}, hook=False)
    world.github.add_hook("no-hook/no-hook", url="https://elsewhere.example/hook")
    world.github.add_hook("inactive/inactive", active=False)
    world.github.add_hook("bad-delivery/bad-delivery", delivery=502)
    world.github.add_hook("no-delivery/no-delivery", delivery=None)
    world.github.add_hook("orgwide")
    got = world.outcomes("--integration", "ares")
    assert {k: v["outcome"] for k, v in got.items()} == {
        "no-hook ares": "failing",
        "inactive ares": "failing",
        "bad-delivery ares": "degraded",
        "no-delivery ares": "degraded",
        "org-wide ares": "ok",
    }
    assert "no webhook to ares.devarno.cloud" in got["no-hook ares"]["detail"]
    assert "inactive" in got["inactive ares"]["detail"]
    assert "answered 502" in got["bad-delivery ares"]["detail"]
    assert any(r.path.startswith("/orgs/orgwide/hooks") for r in world.github.requests)


def test_traceo_outcomes(world: World) -> None:
    base = world.service.base
    ok = world.evidence("ok", "traceo")
    world.add_repo("ok", {"traceo": ok})
    world.add_repo("no-vtm", {"traceo": {**world.evidence("no-vtm", "traceo"), "vtm_path": "x.md"}})
    world.add_repo("gone", {"traceo": {**ok, "traceo_endpoint": f"{base}/traceo/gone-404"}})
    world.add_repo("no-endpoint", {"traceo": {"baseline_id": "b", "vtm_path": "docs/vtm.md"}})
    world.add_repo("down", {"traceo": {**ok, "traceo_endpoint": f"{base}/traceo/down"}})
    world.service.routes["/traceo/down"] = 503
    got = world.outcomes()
    assert {k: v["outcome"] for k, v in got.items()} == {
        "ok traceo": "ok",
        "no-vtm traceo": "failing",
        "gone traceo": "degraded",
        "no-endpoint traceo": "ok",
        "down traceo": "unreachable",
    }
    assert got["no-vtm traceo"]["detail"] == "vtm: x.md is not in the repo"
    assert "answered 404" in got["gone traceo"]["detail"]
    assert "answered 503" in got["down traceo"]["detail"]


def test_crumb_outcomes(world: World) -> None:
    good = world.evidence("x", "crumb")
    world.add_repo("ok", {"crumb": good})
    world.add_repo("no-content", {"crumb": {**good, "content_path": "cards"}})
    world.add_repo("miscount", {"crumb": {**good, "card_count": 5}})
    world.add_repo("old", {"crumb": {**good, "last_generated_at": "2026-09-01T00:00:00Z"}})
    undated = {k: v for k, v in good.items() if k != "last_generated_at"}
    world.add_repo("undated", {"crumb": undated})
    got = world.outcomes()
    assert {k: v["outcome"] for k, v in got.items()} == {
        "ok crumb": "ok",
        "no-content crumb": "failing",
        "miscount crumb": "degraded",
        "old crumb": "degraded",
        "undated crumb": "ok",
    }
    assert "holds 3" in got["miscount crumb"]["detail"]
    assert "card_count says 5" in got["miscount crumb"]["detail"]
    assert "86 days old" in got["old crumb"]["detail"]


def test_lore_cairnet_outcomes(world: World) -> None:
    world.add_repo("ok", {"lore_cairnet": world.evidence("ok", "lore_cairnet")})
    stray = world.evidence("stray", "lore_cairnet")
    world.add_repo("stray", {"lore_cairnet": {**stray, "cairnet_agent_id": "nobody"}})
    got = world.outcomes()
    assert got["ok lore_cairnet"]["outcome"] == "ok"
    assert got["stray lore_cairnet"]["outcome"] == "failing"
    assert "answered 404" in got["stray lore_cairnet"]["detail"]


def test_missing_token_is_unreachable_never_failing(world: World) -> None:
    world.add_repo("alpha-hq")
    run = world.probe(env={"PETROVA_PEBBLE_TOKEN": None, "GITHUB_TOKEN": None})
    assert run.exit_code == 1
    got = {o["integration"]: o for o in map(json.loads, run.stdout.splitlines())}
    assert got["lore_cairnet"]["outcome"] == "unreachable"
    assert got["lore_cairnet"]["detail"] == (
        "stones: PETROVA_PEBBLE_TOKEN not set; agent: PETROVA_PEBBLE_TOKEN not set"
    )
    assert got["ares"]["outcome"] == "unreachable"
    assert got["ares"]["detail"] == "webhook: GITHUB_TOKEN not set"
    assert got["traceo"]["outcome"] == "ok"
    assert "PROBES_INCOMPLETE" in run.stderr
    assert "2 cell(s) unreachable" in run.stderr
    assert world.github.requests == []


def test_token_never_sent_in_clear_or_to_another_host(world: World) -> None:
    world.add_repo("alpha-hq", {"lore_cairnet": world.evidence("alpha-hq", "lore_cairnet")})
    got = world.outcomes(env={"PETROVA_LORE_CAIRNET_URL": "http://cairnet.example"})
    detail = got["alpha-hq lore_cairnet"]["detail"]
    assert got["alpha-hq lore_cairnet"]["outcome"] == "unreachable"
    assert "will not send PETROVA_PEBBLE_TOKEN to 127.0.0.1" in detail
    assert "clear text over http:// to cairnet.example" in detail
    assert world.service.requests == []


def test_not_applicable_and_pending_cells_are_not_probed(world: World) -> None:
    world.add_repo(
        "alpha-hq",
        {"ares": "pending", "traceo": "na", "crumb": world.evidence("alpha-hq", "crumb")},
        hook=False,
    )
    dry = world.probe("--dry-run")
    assert dry.exit_code == 0
    assert "probe alpha-hq crumb (last verified never)" in dry.stdout
    assert "skip  alpha-hq ares: declared pending" in dry.stdout
    assert "skip  alpha-hq traceo: declared not_applicable" in dry.stdout
    assert "skip  alpha-hq lore_cairnet: not in the contract" in dry.stdout
    assert "skip  petrova-codes ares: not applicable by the registry" in dry.stdout
    assert not world.github.requests and not world.service.requests
    got = world.outcomes()
    assert list(got) == ["alpha-hq crumb"]


def test_a_repo_not_synced_is_reported_and_fails_the_run(world: World) -> None:
    world.add_repo("alpha-hq")
    subprocess.run(["rm", "-rf", str(world.fleet.workspace / "alpha-hq")], check=True)
    run = world.probe()
    assert run.exit_code == 1
    assert run.stdout == ""
    assert "CONTRACT_NOT_FOUND" not in run.stdout
    assert "1 repo(s) whose contract could not be read: alpha-hq" in run.stderr


# --- the deadline ----------------------------------------------------------------------------


def test_a_trickling_server_is_cut_off_at_the_deadline(world: World) -> None:
    world.add_repo("slow", {"traceo": world.evidence("slow", "traceo")})
    world.service.routes["/traceo/slow"] = TRICKLE
    got = world.outcomes("--timeout", "1")
    assert got["slow traceo"]["outcome"] == "unreachable"
    # cut off by the deadline (or, if a byte is late, by the socket's own timeout)
    assert "answer within 1s" in got["slow traceo"]["detail"]


# --- ETags -----------------------------------------------------------------------------------


def test_second_run_asks_with_etags_and_records_the_same_from_304s(world: World) -> None:
    for slug in ("alpha-hq", "beta-hq"):
        world.add_repo(slug, {"ares": world.evidence(slug, "ares")})
    first = world.probe("--record")
    assert (first.exit_code, first.stdout, first.stderr) == (0, "", "")
    counted = world.github.counted()
    assert counted == 4
    etags = json.loads((world.cache / "probe-etags.json").read_text())
    assert world.github.token not in json.dumps(etags)
    assert "hooks/github" not in json.dumps(etags)  # the host only, never the hook's URL
    before = len(world.github.requests)
    second = world.probe("--json")
    assert second.exit_code == 0
    again = world.github.requests[before:]
    assert len(again) == 4
    assert all("if-none-match" in r.headers and r.status == 304 for r in again)
    assert world.github.counted() == counted
    document = json.loads(second.stdout)
    assert document["github"] == {"requests": 4, "not_modified": 4, "rate_limit_remaining": 4996}
    assert [o["outcome"] for o in document["outcomes"]] == ["ok", "ok"]
    ledger = yaml.safe_load((world.fleet.state_dir / "alpha-hq.yaml").read_text())
    assert (
        ledger["integrations"]["ares"]["history"][-1]["detail"] == document["outcomes"][0]["detail"]
    )
    # a change on GitHub's side is seen: the answer is new, so it counts
    hook = world.github.hooks["alpha-hq/alpha-hq"][0]["id"]
    world.github.set_delivery(hook, 500)
    third = world.outcomes()
    assert third["alpha-hq ares"]["outcome"] == "degraded"


def test_a_corrupt_etag_cache_is_ignored_and_replaced(world: World) -> None:
    world.add_repo("alpha-hq", {"ares": world.evidence("alpha-hq", "ares")})
    world.cache.mkdir()
    (world.cache / "probe-etags.json").write_text("{not json")
    got = world.outcomes()
    assert got["alpha-hq ares"]["outcome"] == "ok"
    assert json.loads((world.cache / "probe-etags.json").read_text())["version"] == 1


# --- the rate limit --------------------------------------------------------------------------


def test_rate_limit_spent_midway_leaves_the_freshest_cells(world: World) -> None:
    slugs = ["aa", "bb", "cc", "dd"]
    for slug in slugs:
        world.add_repo(slug, {"ares": world.evidence(slug, "ares")})
    # bb was observed longest ago, then dd, then aa; cc never
    for slug, at in (("bb", "2026-11-20"), ("dd", "2026-11-22"), ("aa", "2026-11-24")):
        recorded = world.petrova(
            "state", "record", slug, "ares", "ok", "--at", f"{at}T07:00:00Z", *world.fleet.args()
        )
        assert recorded.exit_code == 0, recorded.stderr
    world.github.remaining = 5  # two probes' worth, and one request more
    run = world.probe("--jobs", "1", "--record", "--json")
    assert run.exit_code == 1
    document = json.loads(run.stdout)
    assert [o["slug"] for o in document["outcomes"]] == ["cc", "bb"]
    assert [(c["slug"], c["last_verified_at"]) for c in document["left_for_next_run"]] == [
        ("dd", "2026-11-22T07:00:00Z"),
        ("aa", "2026-11-24T07:00:00Z"),
    ]
    assert "left for the next run: dd ares" in run.stderr
    assert "2 left for the next run by the GitHub rate limit: dd ares, aa ares" in run.stderr
    assert not any(r.status == 403 for r in world.github.requests)
    # no outcome for the cells left over: their ledgers are untouched
    dd = yaml.safe_load((world.fleet.state_dir / "dd.yaml").read_text())
    assert len(dd["integrations"]["ares"]["history"]) == 1


# --- the catalogue is the code -----------------------------------------------------------------


def test_a_fifth_integration_is_probed_with_catalogue_data_only(world: World) -> None:
    catalogue = world.fleet.catalogue
    add_integration(catalogue, "eva", "EVA", catalogue)
    schema = json.loads(catalogue.read_text())
    eva = schema["$defs"]["integration_eva"]
    eva["properties"]["eva_manifest"] = {"type": "string", "minLength": 1}
    eva["x-probe"] = {
        "checks": [
            {"id": "manifest", "kind": "file", "path_field": "eva_manifest"},
            {
                "id": "project",
                "kind": "http",
                "url": "/eva/projects/{eva_project}",
                "base_url_env": "PETROVA_EVA_URL",
                "fail": "degraded",
            },
        ]
    }
    catalogue.write_text(json.dumps(schema))
    world.fleet.write(
        "registry.yaml",
        world.fleet.registry.read_text().replace(
            "lore_cairnet: {value: not_applicable",
            'eva: {value: not_applicable, review_by: "2027-04-30", reason: "n/a"}\n'
            "      lore_cairnet: {value: not_applicable",
        ),
    )
    good = {"eva_project": "p one", "eva_manifest": "docs/vtm.md"}
    world.add_repo("seen", {"eva": good})
    world.add_repo("elsewhere", {"eva": {**good, "eva_project": "p two"}})
    world.add_repo("absent", {"eva": {**good, "eva_manifest": "eva.toml"}})
    world.service.routes["/eva/projects/p%20one"] = 200
    got = world.outcomes(env={"PETROVA_EVA_URL": world.service.base})
    assert {k: v["outcome"] for k, v in got.items()} == {
        "seen eva": "ok",
        "elsewhere eva": "degraded",
        "absent eva": "failing",
    }


def test_a_bad_x_probe_is_catalogue_invalid_naming_the_field(world: World) -> None:
    schema = json.loads(world.fleet.catalogue.read_text())
    schema["$defs"]["integration_traceo"]["x-probe"]["checks"][0]["path_field"] = "nope"
    world.fleet.catalogue.write_text(json.dumps(schema))
    run = world.probe()
    assert run.exit_code == 2
    assert "CATALOGUE_INVALID" in run.stderr
    assert "$defs.integration_traceo.x-probe.checks[0]" in run.stderr
    assert "'nope' is not in the integration's evidence" in run.stderr
    schema["$defs"]["integration_traceo"]["x-probe"]["checks"][0]["kind"] = "ftp"
    world.fleet.catalogue.write_text(json.dumps(schema))
    run = world.probe()
    assert run.exit_code == 2
    assert "x-probe.checks[0].kind" in run.stderr


# --- usage ---------------------------------------------------------------------------------------


def test_slugs_and_integration_narrow_the_run(world: World) -> None:
    world.add_repo("alpha-hq")
    world.add_repo("beta-hq")
    got = world.outcomes("beta-hq", "--integration", "crumb")
    assert list(got) == ["beta-hq crumb"]


def test_bad_usage_exits_2(world: World) -> None:
    world.add_repo("alpha-hq")
    unknown = world.probe("nobody")
    assert unknown.exit_code == 2
    assert "REPO_NOT_IN_REGISTRY" in unknown.stderr
    bad_id = world.probe("--integration", "nope")
    assert bad_id.exit_code == 2
    assert "INTEGRATION_UNKNOWN" in bad_id.stderr
    no_workspace = world.petrova("probe", *world.fleet.args(), env=world.env)
    assert no_workspace.exit_code == 2
    assert "PETROVA_WORKSPACE" in no_workspace.stderr


def test_record_is_silent_unattended_and_demotes_by_the_rules(world: World) -> None:
    world.add_repo("alpha-hq", {"traceo": world.evidence("alpha-hq", "traceo")})
    first = world.probe("--record")
    assert (first.exit_code, first.stdout, first.stderr) == (0, "", "")
    world.service.routes["/traceo/alpha-hq"] = 404
    for day in (1, 2):  # one run a day: a run within --window of the last adds nothing
        later = str(int(FIXED_NOW.timestamp()) + day * 86400)
        run = world.probe("--record", env={"SOURCE_DATE_EPOCH": later})
        assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")
    ledger = yaml.safe_load((world.fleet.state_dir / "alpha-hq.yaml").read_text())
    cell = ledger["integrations"]["traceo"]
    assert cell["current_status"] == "degraded"
    assert [h["outcome"] for h in cell["history"]] == ["ok", "degraded", "degraded"]


def test_many_jobs_never_ask_past_the_budget(world: World) -> None:
    slugs = [f"r{i}" for i in range(8)]
    for slug in slugs:
        world.add_repo(slug, {"ares": world.evidence(slug, "ares")})
    world.github.remaining = 7
    run = world.probe("--jobs", "16", "--json")
    assert run.exit_code == 1
    document = json.loads(run.stdout)
    probed = {o["slug"] for o in document["outcomes"]}
    left = {c["slug"] for c in document["left_for_next_run"]}
    assert probed | left == set(slugs) and not probed & left
    assert 1 <= len(probed) <= 3
    assert all(o["outcome"] == "ok" for o in document["outcomes"])
    assert not any(r.status == 403 for r in world.github.requests)
    assert world.github.remaining >= 0


def test_unattended_record_of_a_blind_probe_says_one_line_and_exits_1(world: World) -> None:
    world.add_repo("alpha-hq", {"lore_cairnet": world.evidence("alpha-hq", "lore_cairnet")})
    run = world.probe("--record", env={"PETROVA_PEBBLE_TOKEN": None})
    assert run.exit_code == 1
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        "petrova: PROBES_INCOMPLETE: 1 cell(s) unreachable: alpha-hq lore_cairnet"
    ]
    ledger = yaml.safe_load((world.fleet.state_dir / "alpha-hq.yaml").read_text())
    [entry] = ledger["integrations"]["lore_cairnet"]["history"]
    assert entry["outcome"] == "unreachable"
    assert entry["detail"].startswith("stones: PETROVA_PEBBLE_TOKEN not set")
    assert ledger["integrations"]["lore_cairnet"]["current_status"] == "pending"


def test_a_token_echoed_by_a_server_never_reaches_a_detail(world: World) -> None:
    # the stones endpoint is on the service's host, but answers at a path that includes
    # whatever it was given; the detail names host and status only, and is scrubbed
    evidence = world.evidence("alpha-hq", "lore_cairnet")
    evidence["cairnet_agent_id"] = PEBBLE
    world.add_repo("alpha-hq", {"lore_cairnet": evidence})
    got = world.outcomes()
    line = json.dumps(got["alpha-hq lore_cairnet"])
    assert PEBBLE not in line
    assert got["alpha-hq lore_cairnet"]["outcome"] == "failing"


def test_shards_split_the_fleet_without_overlap(world: World) -> None:
    slugs = [f"s{i}" for i in range(6)]
    for slug in slugs:
        world.add_repo(slug, {"crumb": world.evidence(slug, "crumb")})
    first = world.outcomes("--shard", "1/2")
    second = world.outcomes("--shard", "2/2")
    assert not set(first) & set(second)
    assert {k.split()[0] for k in (*first, *second)} == set(slugs)


def test_the_catalogue_exposes_each_probe_and_the_paths_a_clone_needs() -> None:
    from petrova.documents.catalogue import load_catalogue
    from tests.conftest import CATALOGUE

    catalogue = load_catalogue(CATALOGUE)
    kinds = {i.id: [c.kind for c in i.probe.checks] for i in catalogue.integrations if i.probe}
    assert kinds == {
        "ares": ["github_webhook"],
        "traceo": ["file", "http"],
        "crumb": ["file", "age"],
        "lore_cairnet": ["http", "http"],
    }
    crumb = catalogue.get("crumb").probe
    assert crumb is not None
    assert crumb.file_paths({"content_path": "content/cards", "card_count": 3}) == (
        ("content_path", "content/cards"),
    )
    raw = catalogue.get("traceo").evidence_schema["x-probe"]["checks"][0]
    assert (raw["kind"], raw["path_field"]) == ("file", "vtm_path")


def test_a_fifo_in_place_of_the_etag_cache_is_ignored_not_waited_on(world: World) -> None:
    """Cache files are inputs too: a FIFO there must not hang the run (hostile input 3)."""
    world.add_repo("fifo-hq")
    world.cache.mkdir()
    os.mkfifo(world.cache / "probe-etags.json")
    run = world.probe()
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[0])["outcome"] == "ok"
