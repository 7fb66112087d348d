"""`petrova notify` against a fake GitHub and a local chat sink, driven through the CLI."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, Petrova, Spawn
from tests.fake_github import FakeGitHub
from tests.ingest_server import Answer, IngestServer, Seen
from tests.tierfleet import all_ok, day, fleet_args, migrate_tier2, state_args, write_batch

TOKEN = "ghp_notifytesttoken0123456789"
ISSUES = "devarno-cloud/petrova-codes"  # the control plane's own repo: the default


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(token=TOKEN)
    yield fake
    fake.close()


def ok_sink(server: IngestServer, seen: Seen) -> Answer:
    return Answer(200, b"{}")


@pytest.fixture
def sink() -> Iterator[IngestServer]:
    server = IngestServer(ok_sink)
    yield server
    server.close()


@pytest.fixture
def tier2(fleet: Fleet) -> Fleet:
    migrate_tier2(fleet)
    return fleet


def env(github: FakeGitHub, sink: IngestServer | None = None) -> dict[str, str]:
    out = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.url}
    if sink is not None:
        out["PETROVA_NOTIFY_URLS"] = f"json://127.0.0.1:{sink.port}/chat"
    return out


def record_day(petrova: Petrova, fleet: Fleet, n: int, **overrides: str) -> None:
    parsed: dict[tuple[str, str], str] = {}
    for key, outcome in overrides.items():
        slug, integration = key.split("__")
        parsed[slug.replace("_", "-"), integration] = outcome
    path = write_batch(fleet, f"day{n}", all_ok(day(n), overrides=parsed))
    run = petrova("state", "record", "--from", str(path), "--now", day(n, 0.1), *state_args(fleet))
    assert run.exit_code == 0, run.stderr


def record(petrova: Petrova, fleet: Fleet, lines: list[dict[str, Any]], at: str) -> None:
    path = write_batch(fleet, f"extra-{at}", "".join(json.dumps(x) + "\n" for x in lines))
    run = petrova("state", "record", "--from", str(path), "--now", at, *state_args(fleet))
    assert run.exit_code == 0, run.stderr


def record_with(
    petrova: Petrova, fleet: Fleet, n: int, outcome: str, detail: str | None = None
) -> None:
    """Day ``n``: every cell ok but kahn-hq's ares, which says ``outcome`` (``detail``)."""
    lines = [json.loads(x) for x in all_ok(day(n)).splitlines()]
    for line in lines:
        if (line["slug"], line["integration"]) == ("kahn-hq", "ares"):
            line["outcome"] = outcome
            if detail is not None:
                line["detail"] = detail
    record(petrova, fleet, lines, day(n, 0.1))


def notify(petrova: Petrova, fleet: Fleet, at: str, environ: dict[str, str], *extra: str) -> Any:
    run = petrova("notify", "--now", at, *extra, *fleet_args(fleet), env=environ)
    return run


def petrova_issues(github: FakeGitHub) -> list[dict[str, Any]]:
    return [i for i in github.issues(ISSUES) if "<!-- petrova:key=" in i["body"]]


def cell_issue(github: FakeGitHub, key: str) -> dict[str, Any]:
    found = [i for i in github.issues(ISSUES) if f"petrova:key={key} " in i["body"]]
    assert len(found) == 1, [i["title"] for i in github.issues(ISSUES)]
    return found[0]


def chat_messages(sink: IngestServer) -> list[str]:
    return [json.loads(r.body)["message"] for r in sink.requests if r.method == "POST"]


def test_a_demotion_opens_one_issue_and_re_runs_send_nothing(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub, sink: IngestServer
) -> None:
    e = env(github, sink)
    record_day(petrova, tier2, 0)
    record_day(petrova, tier2, 1, kahn_hq__ares="failing")
    record_day(petrova, tier2, 2, kahn_hq__ares="failing")  # two non-ok: degraded
    run = notify(petrova, tier2, day(2, 1), e)
    assert run.exit_code == 0, run.stderr
    assert run.stdout == "" and run.stderr == ""  # unattended and all told: quiet
    issue = cell_issue(github, "unhealthy/kahn-hq/ares")
    assert issue["title"] == "petrova: kahn-hq · ares: unhealthy"
    assert issue["state"] == "open"
    assert "**What is wrong:** ares on kahn\\-hq is degraded." in issue["body"]
    assert [lb["name"] for lb in issue["labels"]] == ["petrova"]
    # one condition issue and the tracking issue; one chat message for the demotion
    assert len(petrova_issues(github)) == 2
    assert chat_messages(sink) == ["ares on kahn\\-hq: ok → degraded (demoted)"]
    changes = len(github.mutations)
    for _ in range(10):
        again = notify(petrova, tier2, day(2, 1), e)
        assert again.exit_code == 0, again.stderr
    assert len(github.mutations) == changes  # nothing changed anything
    assert len(chat_messages(sink)) == 1
    # the state beside the ledgers says what was told
    told = json.loads((tier2.state_dir / "notify" / "repos" / "kahn-hq.json").read_text())
    assert told["issues"]["unhealthy/kahn-hq/ares"]["number"] == issue["number"]


def _degrade_kahn_ares(petrova: Petrova, fleet: Fleet) -> None:
    record_day(petrova, fleet, 0)
    record_day(petrova, fleet, 1, kahn_hq__ares="failing")
    record_day(petrova, fleet, 2, kahn_hq__ares="failing")


def _mutations(github: FakeGitHub, since: int) -> list[tuple[str, str]]:
    return [(m.method, m.path) for m in github.mutations[since:]]


def test_a_new_detail_edits_once_and_a_promotion_closes(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub, sink: IngestServer
) -> None:
    e = env(github, sink)
    _degrade_kahn_ares(petrova, tier2)
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    issue = cell_issue(github, "unhealthy/kahn-hq/ares")
    number = issue["number"]
    before = len(github.mutations)
    record_with(petrova, tier2, 3, "degraded", "latest delivery answered 502")
    assert notify(petrova, tier2, day(3, 1), e).exit_code == 0
    assert _mutations(github, before) == [("PATCH", f"/repos/{ISSUES}/issues/{number}")]
    assert "latest delivery answered 502" in cell_issue(github, "unhealthy/kahn-hq/ares")["body"]
    # the same detail again the next day: no edit
    before = len(github.mutations)
    record_with(petrova, tier2, 4, "degraded", "latest delivery answered 502")
    assert notify(petrova, tier2, day(4, 1), e).exit_code == 0
    assert _mutations(github, before) == []

    # the probes see ares working again: the dot stays, a human is asked to promote
    record_with(petrova, tier2, 5, "ok")
    before = len(github.mutations)
    assert notify(petrova, tier2, day(5, 1), e).exit_code == 0
    unhealthy = cell_issue(github, "unhealthy/kahn-hq/ares")
    assert unhealthy["state"] == "closed"
    assert "**Cleared:**" in unhealthy["body"]
    awaiting = cell_issue(github, "awaiting_promotion/kahn-hq/ares")
    assert f"a human's promotion (see #{awaiting['number']})" in unhealthy["body"]
    assert awaiting["state"] == "open"
    assert "`petrova state promote kahn-hq ares --by human:YOUR-NAME" in awaiting["body"]
    assert chat_messages(sink)[-1].startswith("ares on kahn\\-hq: probes see a recovery")

    promoted = petrova(
        "state",
        "promote",
        "kahn-hq",
        "ares",
        "--by",
        "human:ada",
        "--reason",
        "fixed",
        "--now",
        day(5, 2),
        *state_args(tier2),
    )
    assert promoted.exit_code == 0, promoted.stderr
    assert notify(petrova, tier2, day(5, 3), e).exit_code == 0
    awaiting = cell_issue(github, "awaiting_promotion/kahn-hq/ares")
    assert awaiting["state"] == "closed"
    assert "no longer awaits a promotion" in awaiting["body"]
    assert chat_messages(sink)[-1] == "ares on kahn\\-hq: degraded → ok (promoted or overridden)"
    # closed stays closed, and quiet
    before = len(github.mutations)
    assert notify(petrova, tier2, day(5, 3), e).exit_code == 0
    assert _mutations(github, before) == []


def test_reminders_follow_the_backoff(tier2: Fleet, petrova: Petrova, github: FakeGitHub) -> None:
    e = env(github)
    _degrade_kahn_ares(petrova, tier2)
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    number = cell_issue(github, "unhealthy/kahn-hq/ares")["number"]
    reminded: list[int] = []
    for n in range(3, 40):
        # the clock moves a day at a time (SOURCE_DATE_EPOCH as under faketime)
        run = petrova("notify", *fleet_args(tier2), env={**e, "SOURCE_DATE_EPOCH": epoch_of(n)})
        assert run.exit_code == 0, run.stderr
        if len(github.comments(ISSUES, number)) > len(reminded):
            reminded.append(n - 2)  # days since the issue opened (day 2)
    assert reminded == [3, 7, 14, 28]
    bodies = [c["body"] for c in github.comments(ISSUES, number)]
    assert bodies[0] == "Still open after 3 days."


def test_reminders_are_configurable(tier2: Fleet, petrova: Petrova, github: FakeGitHub) -> None:
    e = {**env(github), "PETROVA_NOTIFY_REMIND": "1,2"}
    _degrade_kahn_ares(petrova, tier2)
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    number = cell_issue(github, "unhealthy/kahn-hq/ares")["number"]
    for n in range(3, 8):
        assert notify(petrova, tier2, day(n, 1), e).exit_code == 0
    assert len(github.comments(ISSUES, number)) == 2
    bad = notify(petrova, tier2, day(8, 1), e, "--remind-after", "soon")
    assert bad.exit_code == 2 and "USAGE_ERROR" in bad.stderr


def epoch_of(n: int) -> str:
    from tests.tierfleet import epoch

    return epoch(n, 1)


def test_a_gate_opening_sends_one_message_and_edits_the_tracking_issue_once(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub, sink: IngestServer
) -> None:
    e = env(github, sink)
    for n in range(7):
        record_day(petrova, tier2, n)
    assert notify(petrova, tier2, day(6, 1), e).exit_code == 0
    tracking = [i for i in github.issues(ISSUES) if i["title"] == "petrova: fleet status"]
    assert len(tracking) == 1
    assert "**Tier 2**: gate closed; green at the earliest 2026\\-11\\-08" in tracking[0]["body"]
    assert chat_messages(sink) == []  # a gate seen the first time is remembered, not news
    assert notify(petrova, tier2, day(6, 2), e).exit_code == 0
    before = len(github.mutations)
    record_day(petrova, tier2, 7)
    assert notify(petrova, tier2, day(7, 1), e).exit_code == 0
    assert _mutations(github, before) == [
        ("PATCH", f"/repos/{ISSUES}/issues/{tracking[0]['number']}")
    ]
    assert "**Tier 2**: gate open, green since 2026\\-11\\-01" in github.issues(ISSUES)[0]["body"]
    assert chat_messages(sink) == [
        "tier 2's gate opened: green for 7 days (since 2026-11-01T06:00:00Z)"
    ]
    for _ in range(3):
        assert notify(petrova, tier2, day(7, 1), e).exit_code == 0
    assert len(chat_messages(sink)) == 1
    assert _mutations(github, before) == [
        ("PATCH", f"/repos/{ISSUES}/issues/{tracking[0]['number']}")
    ]
    # a failing outcome closes the gate again: one message
    record_day(petrova, tier2, 8, stratt_hq__crumb="failing")
    assert notify(petrova, tier2, day(8, 1), e).exit_code == 0
    assert chat_messages(sink)[1:] == ["tier 2's gate closed (1 hold)"]


def test_dry_run_says_what_it_would_do_and_sends_nothing(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub, sink: IngestServer
) -> None:
    e = env(github, sink)
    _degrade_kahn_ares(petrova, tier2)
    run = notify(petrova, tier2, day(2, 1), e, "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert github.mutations == [] and sink.requests == []
    assert not (tier2.state_dir / "notify" / "repos").exists()
    assert f"would open {ISSUES}: petrova: kahn-hq · ares: unhealthy\n" in run.stdout
    assert f"would open {ISSUES}: petrova: fleet status\n" in run.stdout
    assert "would send chat #1: ares on kahn\\-hq: ok → degraded (demoted)\n" in run.stdout
    as_json = notify(petrova, tier2, day(2, 1), e, "--dry-run", "--json")
    verbs = [a["verb"] for a in json.loads(as_json.stdout)["actions"]]
    assert verbs == ["label", "open", "open", "send"]
    # for real now; then a dry run has nothing to say
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    assert notify(petrova, tier2, day(2, 1), e, "--dry-run").stdout == "nothing to tell\n"


def test_the_token_goes_nowhere_but_the_authorization_header(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub, sink: IngestServer
) -> None:
    e = env(github, sink)
    _degrade_kahn_ares(petrova, tier2)
    runs = [notify(petrova, tier2, day(2, 1), e), notify(petrova, tier2, day(2, 1), e, "--json")]
    for seen in github.requests:
        assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert github.mutations
    for m in github.mutations:
        assert TOKEN.encode() not in m.raw
    for r in sink.requests:
        assert TOKEN.encode() not in r.body and TOKEN not in json.dumps(r.headers)
    for run in runs:
        assert TOKEN not in run.stdout + run.stderr
    for path in tier2.root.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    import os

    cache = Path(os.environ["XDG_CACHE_HOME"])
    for path in cache.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_hand_edited_issues_keep_working_and_unmarked_ones_are_never_touched(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub
) -> None:
    e = env(github)
    # a person's issue with petrova's label but no marker, and one that quotes a marker
    theirs = github.add_issue(
        ISSUES, title="petrova: kahn-hq · ares: unhealthy", body="mine", labels=("petrova",)
    )
    _degrade_kahn_ares(petrova, tier2)
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    issue = cell_issue(github, "unhealthy/kahn-hq/ares")
    assert issue["number"] != theirs
    number = issue["number"]
    # someone adds a note above and below petrova's section, and breaks nothing else
    github.repo(ISSUES).issues[number]["body"] = (
        "Owner: @ada\n\n" + issue["body"] + "\n\nSee the runbook."
    )
    before = len(github.mutations)
    record_with(petrova, tier2, 3, "degraded", "a new detail")
    assert notify(petrova, tier2, day(3, 1), e).exit_code == 0
    body = github.repo(ISSUES).issues[number]["body"]
    assert body.startswith("Owner: @ada\n\n<!-- petrova:key=unhealthy/kahn-hq/ares ")
    assert body.endswith("\n\nSee the runbook.")
    assert "a new detail" in body and body.count("<!-- petrova:key=") == 1
    # someone deletes the end marker: petrova's section comes back first, the rest kept
    github.repo(ISSUES).issues[number]["body"] = body.replace("<!-- petrova:end -->", "")
    record_with(petrova, tier2, 4, "degraded", "another detail")
    assert notify(petrova, tier2, day(4, 1), e).exit_code == 0
    body = github.repo(ISSUES).issues[number]["body"]
    assert body.startswith("<!-- petrova:key=unhealthy/kahn-hq/ares ")
    assert body.count("<!-- petrova:begin -->") == body.count("<!-- petrova:end -->") == 1
    assert "See the runbook." in body and "another detail" in body
    assert len(petrova_issues(github)) == 2  # never a duplicate
    assert github.repo(ISSUES).issues[theirs]["body"] == "mine"
    touched = {m.path for m in github.mutations}
    assert f"/repos/{ISSUES}/issues/{theirs}" not in touched
    # someone takes the label off: found again by number and marker, never doubled
    github.repo(ISSUES).issues[number]["labels"] = []
    record_with(petrova, tier2, 5, "degraded", "a third detail")
    assert notify(petrova, tier2, day(5, 1), e).exit_code == 0
    assert "a third detail" in github.repo(ISSUES).issues[number]["body"]
    assert len(petrova_issues(github)) == 2
    github.repo(ISSUES).issues[number]["labels"] = [{"name": "petrova"}]
    # state lost (a fresh checkout): the issue is found again by its marker, not reopened
    import shutil

    shutil.rmtree(tier2.state_dir / "notify")
    before = len(github.mutations)
    assert notify(petrova, tier2, day(5, 1), e).exit_code == 0
    assert _mutations(github, before) == []


def test_a_person_closing_an_issue_is_respected_until_the_condition_clears(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub
) -> None:
    e = env(github)
    _degrade_kahn_ares(petrova, tier2)
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    number = cell_issue(github, "unhealthy/kahn-hq/ares")["number"]
    github.repo(ISSUES).issues[number]["state"] = "closed"
    before = len(github.mutations)
    record_with(petrova, tier2, 3, "degraded", "changed")
    assert notify(petrova, tier2, day(3, 1), e).exit_code == 0
    assert [m for m in _mutations(github, before) if m[1].endswith(f"/{number}")] == []


# --- the pin PR ---------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> str:
    import os
    import subprocess

    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"},
    ).stdout


@pytest.fixture
def plane(fleet: Fleet, tmp_path: Path) -> tuple[Fleet, Path]:
    """The fleet as a control-plane checkout with a bare remote; kahn-hq's contract merged
    in its workspace clone, not pinned yet."""
    from tests.conftest import make_git_repo
    from tests.tierfleet import contract_text

    remote = tmp_path / "remote.git"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    _git(fleet.root, "init", "-q", "-b", "main")
    (fleet.root / ".gitignore").write_text("workspace/\nstate/notify/.*\n")
    _git(fleet.root, "add", "-A")
    _git(fleet.root, "commit", "-q", "-m", "control plane")
    _git(fleet.root, "remote", "add", "origin", str(remote))
    _git(fleet.root, "push", "-q", "origin", "main")
    make_git_repo(fleet.workspace / "kahn-hq", {".petrova/contract.yaml": contract_text("kahn-hq")})
    return fleet, remote


def test_a_merged_contract_gets_one_pin_pr_that_follows_it_and_closes_when_pinned(
    plane: tuple[Fleet, Path], petrova: Petrova, github: FakeGitHub
) -> None:
    from petrova.files.disk import sha12

    fleet, remote = plane
    e = env(github)
    clone = fleet.workspace / "kahn-hq"
    first_sha = sha12((clone / ".petrova/contract.yaml").read_bytes())
    registry_before = fleet.registry.read_bytes()
    head_before = _git(fleet.root, "rev-parse", "HEAD")
    run = notify(petrova, fleet, day(2), e)
    assert run.exit_code == 0, run.stderr
    # the operator's checkout is as it was: same HEAD, same files, same index
    assert fleet.registry.read_bytes() == registry_before
    assert _git(fleet.root, "rev-parse", "HEAD") == head_before
    assert _git(fleet.root, "status", "--porcelain", "--", ".", ":!state") == ""
    branch = "petrova/pin-kahn-hq"
    assert _git(remote, "diff", "--name-only", "main", branch) == "registry.yaml\n"
    # exactly what `petrova registry pin` writes
    pinned = petrova(
        "registry", "pin", "kahn-hq", "--workspace", str(fleet.workspace), *fleet.args()
    )
    assert pinned.exit_code == 0, pinned.stderr
    assert _git(remote, "show", f"{branch}:registry.yaml") == fleet.registry.read_text()
    _git(fleet.root, "checkout", "--", "registry.yaml")
    pulls = github.issues(ISSUES, pulls=True)
    assert len(pulls) == 1
    pr = pulls[0]
    assert pr["head"] == {"ref": branch} and pr["base"] == {"ref": "main"}
    assert pr["title"] == f"registry: pin kahn-hq at {first_sha}"
    commit = _git(clone, "rev-parse", "HEAD").strip()
    assert commit in pr["body"].replace("\\", "") and first_sha in pr["body"]
    assert "applicability added: ares: required" in pr["body"].replace("\\", "")
    unpinned = cell_issue(github, "unpinned/kahn-hq/-")
    assert f"Review and merge the pin pull request #{pr['number']}" in unpinned["body"].replace(
        "\\", ""
    ).replace("\u2060", "")

    # nothing new: nothing pushed, nothing changed
    before = len(github.mutations)
    tip = _git(remote, "rev-parse", branch)
    assert notify(petrova, fleet, day(2), e).exit_code == 0
    assert _mutations(github, before) == [] and _git(remote, "rev-parse", branch) == tip

    # the contract moves: the branch follows (force-pushed), the PR is edited, not doubled
    text = (clone / ".petrova/contract.yaml").read_text().replace("bl-1", "bl-2")
    (clone / ".petrova/contract.yaml").write_text(text)
    _git(clone, "commit", "-qam", "baseline 2")
    second_sha = sha12(text.encode())
    before = len(github.mutations)
    dry = notify(petrova, fleet, day(3), e, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert f"would push {branch}: kahn-hq at {second_sha}\n" in dry.stdout
    assert (
        f"would edit-pr PR #{pr['number']}: registry: pin kahn-hq at {second_sha}\n" in dry.stdout
    )
    assert _git(remote, "rev-parse", branch) == tip and github.mutations[before:] == []
    assert notify(petrova, fleet, day(3), e).exit_code == 0
    assert ("PATCH", f"/repos/{ISSUES}/pulls/{pr['number']}") in _mutations(github, before)
    assert len(github.issues(ISSUES, pulls=True)) == 1
    assert (
        github.repo(ISSUES).issues[pr["number"]]["title"]
        == f"registry: pin kahn-hq at {second_sha}"
    )
    assert f"contract_sha: {second_sha}" in _git(remote, "show", f"{branch}:registry.yaml")
    assert _git(remote, "rev-list", "--count", f"main..{branch}") == "1\n"

    # someone else's registry PR lands (another entry): the branch follows main, the PR
    # stays as it is; a state commit (registry unchanged) moves nothing
    (fleet.root / "state" / "x.txt").write_text("x")
    _git(fleet.root, "add", "state/x.txt")
    _git(fleet.root, "commit", "-qm", "state")
    _git(fleet.root, "push", "-q", "origin", "main")
    tip = _git(remote, "rev-parse", branch)
    before = len(github.mutations)
    assert notify(petrova, fleet, day(3, 1), e).exit_code == 0
    assert _git(remote, "rev-parse", branch) == tip and _mutations(github, before) == []
    registry = fleet.registry.read_text().replace(
        "slug: stratt-hq\n", "slug: stratt-hq\n    notes: reviewed\n", 1
    )
    fleet.registry.write_text(registry)
    _git(fleet.root, "commit", "-qam", "a note on stratt-hq")
    _git(fleet.root, "push", "-q", "origin", "main")
    assert notify(petrova, fleet, day(3, 2), e).exit_code == 0
    assert _mutations(github, before) == []
    assert _git(remote, "rev-list", "--count", f"main..{branch}") == "1\n"
    assert _git(remote, "rev-list", "--count", f"{branch}..main") == "0\n"
    assert _git(remote, "diff", "--name-only", "main", branch) == "registry.yaml\n"

    # the pin lands by hand: the PR is closed (not merged), the issue too
    pinned = petrova(
        "registry", "pin", "kahn-hq", "--workspace", str(fleet.workspace), *fleet.args()
    )
    assert pinned.exit_code == 0, pinned.stderr
    _git(fleet.root, "commit", "-qam", "pin kahn-hq by hand")
    _git(fleet.root, "push", "-q", "origin", "main")
    assert notify(petrova, fleet, day(4), e).exit_code == 0
    assert github.repo(ISSUES).issues[pr["number"]]["state"] == "closed"
    assert cell_issue(github, "unpinned/kahn-hq/-")["state"] == "closed"
    before = len(github.mutations)
    assert notify(petrova, fleet, day(4), e).exit_code == 0
    assert _mutations(github, before) == []


# --- overlapping runs and shards ----------------------------------------------------------


def test_two_overlapping_runs_send_nothing_twice(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub, sink: IngestServer, spawn: Spawn
) -> None:
    import subprocess

    from tests.conftest import PETROVA_BIN, _clean_env

    e = env(github, sink)
    _degrade_kahn_ares(petrova, tier2)
    record_day(petrova, tier2, 3, stratt_hq__crumb="failing")
    record_day(petrova, tier2, 4, stratt_hq__crumb="failing", kahn_hq__ares="failing")
    argv = [str(PETROVA_BIN), "notify", "--now", day(4, 1), *fleet_args(tier2)]
    procs = [
        spawn(argv, env=_clean_env(e), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    opened = [m for m in github.mutations if m.method == "POST" and m.path.endswith("/issues")]
    titles = sorted(m.body["title"] for m in opened)
    assert titles == [
        "petrova: fleet status",
        "petrova: kahn-hq · ares: unhealthy",
        "petrova: stratt-hq · crumb: unhealthy",
    ]
    assert sorted(chat_messages(sink)) == [
        "ares on kahn\\-hq: ok → degraded (demoted)",
        "crumb on stratt\\-hq: ok → degraded (demoted)",
    ]


def test_two_shards_each_tell_their_own_repos_once(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub, sink: IngestServer
) -> None:
    from petrova.documents.shard import parse_shard

    e = env(github, sink)
    record_day(petrova, tier2, 0)
    for n in (1, 2):
        record_day(petrova, tier2, n, kahn_hq__ares="failing", stratt_hq__crumb="failing")
    shards = ["1/2", "2/2"]
    owner = {s: [x for x in ("kahn-hq", "stratt-hq") if parse_shard(s).holds(x)] for s in shards}
    assert sorted(owner["1/2"] + owner["2/2"]) == ["kahn-hq", "stratt-hq"]
    slugs = ["petrova-codes", "kahn-hq", "stratt-hq", "choco-hq", "devarno-cloud"]
    slugs += ["traceo-mcp-server", "grace-hq"]
    folder = tier2.state_dir / "notify" / "repos"
    for turn in range(2):  # each shard twice, in turn
        for shard in shards:
            run = notify(petrova, tier2, day(2, 1), e, "--shard", shard)
            assert run.exit_code == 0, run.stderr
            if turn == 0 and shard == "1/2":  # a shard writes only its own repos' files
                held = sorted(f"{s}.json" for s in slugs if parse_shard("1/2").holds(s))
                assert sorted(p.name for p in folder.iterdir()) == held
    opened = [m for m in github.mutations if m.method == "POST" and m.path.endswith("/issues")]
    assert len(opened) == 3  # two cells and one tracking issue
    assert len(chat_messages(sink)) == 2
    # and a whole-fleet run afterwards finds everything told already
    before = len(github.mutations)
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    assert _mutations(github, before) == [] and len(chat_messages(sink)) == 2


# --- manners: rate limits, failed sends ---------------------------------------------------


def test_a_secondary_rate_limit_stops_github_work_and_the_rest_waits(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub
) -> None:
    e = env(github)
    record_day(petrova, tier2, 0)
    for n in (1, 2):
        record_day(petrova, tier2, n, kahn_hq__ares="failing", stratt_hq__crumb="failing")
    github.repo(ISSUES).labels.add("petrova")
    github.secondary_limit = 1
    run = notify(petrova, tier2, day(2, 1), e)
    assert run.exit_code == 1
    assert "NOTIFY_INCOMPLETE" in run.stderr and "rate limited" in run.stderr
    writes = [s for s in github.requests if s.status == 403]
    assert len(writes) == 1  # it stopped at the first refusal
    assert petrova_issues(github) == []
    run = notify(petrova, tier2, day(2, 1), e)
    assert run.exit_code == 0, run.stderr
    assert len(petrova_issues(github)) == 3


def test_reads_use_etags_and_a_spent_budget_waits(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub
) -> None:
    e = env(github)
    _degrade_kahn_ares(petrova, tier2)
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0  # learns the list's new ETag
    seen = len(github.requests)
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    reads = github.requests[seen:]
    assert reads and all(r.status == 304 for r in reads)  # nothing new: no budget spent
    github.remaining = 0
    record_with(petrova, tier2, 3, "degraded", "new")
    run = notify(petrova, tier2, day(3, 1), e)
    assert run.exit_code == 1 and "rate" in run.stderr


def failing_sink(server: IngestServer, seen: Seen) -> Answer:
    return Answer(500 if server.count() <= 1 else 200, b"{}")


def test_a_failed_send_warns_and_is_retried_next_run(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub
) -> None:
    server = IngestServer(failing_sink)
    try:
        e = env(github, server)
        _degrade_kahn_ares(petrova, tier2)
        run = notify(petrova, tier2, day(2, 1), e)
        assert run.exit_code == 1
        assert "chat: notification URL #1 did not accept the message" in run.stderr
        assert f"127.0.0.1:{server.port}" not in run.stderr  # a URL may hold a secret
        assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
        assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
        assert chat_messages(server) == ["ares on kahn\\-hq: ok → degraded (demoted)"] * 2
    finally:
        server.close()


def test_nothing_configured_means_nothing_done(tier2: Fleet, petrova: Petrova) -> None:
    _degrade_kahn_ares(petrova, tier2)
    run = notify(petrova, tier2, day(2, 1), {})
    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")


def test_hostile_details_are_inert_in_issues_and_chat(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub, sink: IngestServer
) -> None:
    e = env(github, sink)
    hostile = "@org/team fixes #1 --> <img src=x> [x](https://evil.example) ![i](y)"
    record_day(petrova, tier2, 0)
    record_with(petrova, tier2, 1, "failing", hostile)
    record_with(petrova, tier2, 2, "failing", hostile)
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    body = cell_issue(github, "unhealthy/kahn-hq/ares")["body"]
    assert "@org" not in body and "#1" not in body and "<img" not in body
    assert "](" not in body and "https://" not in body
    assert body.count("-->") == 3  # the key marker, begin and end: nothing else closes
    for message in chat_messages(sink):
        assert "@org" not in message and "<img" not in message


# --- the daily ----------------------------------------------------------------------------


def test_the_daily_notifies_after_the_snapshot_and_keeps_what_it_told(
    plane: tuple[Fleet, Path], petrova: Petrova, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.tierfleet import migrate_tier2

    fleet, remote = plane
    migrate_tier2(fleet)
    _git(fleet.root, "commit", "-qam", "tier 2 migrated")
    _git(fleet.root, "push", "-q", "origin", "main")
    _degrade_kahn_ares(petrova, fleet)
    e = {**env(github), "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    run = petrova(
        "daily",
        "-o",
        str(fleet.root / "fleet.json"),
        "--no-self-update",
        "--commit-state",
        "--push",
        *fleet_args(fleet),
        env={**e, "SOURCE_DATE_EPOCH": epoch_of(2)},
    )
    # sync fails (the consumers have no remotes here) and warns; notify still ran
    assert run.exit_code == 0, run.stderr
    assert "notify" not in run.stderr
    assert cell_issue(github, "unhealthy/kahn-hq/ares")["state"] == "open"
    kept = _git(remote, "ls-tree", "-r", "--name-only", "main")
    assert "state/notify/repos/kahn-hq.json" in kept and "state/notify/fleet.json" in kept
    assert "state/notify/.run.lock" not in kept
    # the tracking issue tells how the last daily run went (the run's own record)
    assert notify(petrova, fleet, day(2, 2), e).exit_code == 0
    [tracking] = [i for i in github.issues(ISSUES) if i["title"] == "petrova: fleet status"]
    assert "## Last daily run\n\n- completed; warned: sync" in tracking["body"]
    # a failed notify warns and fails nothing
    github.secondary_limit = 100
    record_with(petrova, fleet, 3, "degraded", "new detail")
    run = petrova(
        "daily",
        "-o",
        str(fleet.root / "fleet.json"),
        "--no-self-update",
        "--commit-state",
        *fleet_args(fleet),
        env={**e, "SOURCE_DATE_EPOCH": epoch_of(3)},
    )
    assert run.exit_code == 0, run.stderr
    assert "petrova daily: notify: exit 1, the run goes on" in run.stderr
    assert "NOTIFY_INCOMPLETE" in run.stderr


def test_a_sync_failing_on_two_runs_in_a_row_opens_one_issue_and_one_message(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub, sink: IngestServer
) -> None:
    from petrova.sync.workspace import SyncRecord, update_manifest

    e = env(github, sink)
    for n in range(3):
        record_day(petrova, tier2, n)

    def synced(at: str, status: str) -> None:
        code, message = (
            ("SYNC_AUTH_FAILED", "@ada fixes #3: auth refused")
            if status == "failed"
            else (None, None)
        )
        record = SyncRecord(
            "https://github.com/kahn-hq/kahn", "main", None, at, status, code, message
        )  # type: ignore[arg-type]
        update_manifest(tier2.workspace, [("kahn-hq", record)])

    synced(day(1), "failed")
    assert notify(petrova, tier2, day(1, 1), e).exit_code == 0
    assert notify(petrova, tier2, day(1, 2), e).exit_code == 0  # the same failed run again
    assert [i for i in petrova_issues(github) if "sync_failing" in i["body"]] == []
    synced(day(2), "failed")
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    issue = cell_issue(github, "sync_failing/kahn-hq/-")
    assert issue["title"] == "petrova: kahn-hq: sync failing"
    assert "SYNC\\_AUTH\\_FAILED" in issue["body"] and "@ada" not in issue["body"]
    assert chat_messages(sink) == ["sync of kahn\\-hq failing on 2 runs in a row"]
    synced(day(3), "ok")
    assert notify(petrova, tier2, day(3, 1), e).exit_code == 0
    assert cell_issue(github, "sync_failing/kahn-hq/-")["state"] == "closed"
    assert len(chat_messages(sink)) == 1


def test_a_pinned_clone_that_did_not_move_is_not_read_again(
    plane: tuple[Fleet, Path],
    petrova_inprocess: Petrova,
    github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from petrova.notify import pinpr
    from petrova.sync.workspace import SyncRecord, update_manifest

    fleet, _ = plane
    clone = fleet.workspace / "kahn-hq"
    commit = _git(clone, "rev-parse", "HEAD").strip()
    record = SyncRecord("https://github.com/kahn-hq/kahn", "main", commit, day(1), "ok")
    update_manifest(fleet.workspace, [("kahn-hq", record)])
    pinned = petrova_inprocess(
        "registry", "pin", "kahn-hq", "--workspace", str(fleet.workspace), *fleet.args()
    )
    assert pinned.exit_code == 0, pinned.stderr
    reads: list[str] = []
    real = pinpr.read_consumer

    def counting(entry: Any, workspace: Path, catalogue: Any) -> Any:
        if entry.slug == "kahn-hq":
            reads.append(entry.slug)
        return real(entry, workspace, catalogue)

    monkeypatch.setattr(pinpr, "read_consumer", counting)
    e = env(github)
    for _ in range(3):
        assert notify(petrova_inprocess, fleet, day(2), e).exit_code == 0
    assert reads == ["kahn-hq"]  # read once; then known pinned at that commit
    (clone / ".petrova/contract.yaml").write_text(
        (clone / ".petrova/contract.yaml").read_text().replace("bl-1", "bl-9")
    )
    _git(clone, "commit", "-qam", "moved")
    moved = SyncRecord(
        "https://github.com/kahn-hq/kahn",
        "main",
        _git(clone, "rev-parse", "HEAD").strip(),
        day(2),
        "ok",
    )
    update_manifest(fleet.workspace, [("kahn-hq", moved)])
    assert notify(petrova_inprocess, fleet, day(3), e).exit_code == 0
    assert reads == ["kahn-hq", "kahn-hq"]
    assert len(github.issues(ISSUES, pulls=True)) == 1  # and the move is proposed


def test_a_send_to_a_chat_that_never_answers_gives_up_within_its_bound() -> None:
    from petrova.notify import chat
    from tests.ingest_server import HANG

    server = IngestServer(lambda server, seen: HANG)
    try:
        target = chat.Target(1, f"json://127.0.0.1:{server.port}/chat")
        problem = chat.send(target, "hello", timeout=1)
        assert problem is not None and problem.startswith("notification URL #1")
        assert str(server.port) not in problem
        assert "127.0.0.1" not in repr(target)
    finally:
        server.close()


def test_the_token_is_sent_only_to_a_trusted_github_host(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from petrova.net.http import NoAnswer, Secret, Transport
    from petrova.notify.github import http_send

    monkeypatch.setenv("GITHUB_API_URL", github.url)
    send = http_send(token=Secret(TOKEN), transport=Transport(timeout=5))
    assert send("GET", f"{github.url}/repos/{ISSUES}/labels/petrova", {}, None).status == 404
    other = IngestServer(ok_sink)
    try:
        with pytest.raises(NoAnswer, match="not a trusted GitHub host"):
            send("GET", f"http://localhost:{other.port}/x", {}, None)
        assert other.requests == []
    finally:
        other.close()


def test_bad_options_and_a_broken_state_file_are_clear_errors(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub
) -> None:
    e = env(github)
    bad = notify(petrova, tier2, day(2), e, "--issues-repo", "not a repo")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("petrova: ISSUES_REPO_UNKNOWN: --issues-repo: 'not a repo'")
    # not JSON, and JSON with a key given twice (read strictly, like every JSON input)
    for text in ("{not json", '{"format": 1, "format": 1}'):
        broken = tier2.write("state/notify/repos/kahn-hq.json", text)
        run = notify(petrova, tier2, day(2), e)
        assert run.exit_code == 2
        assert f"NOTIFY_STATE_INVALID: {broken}" in run.stderr
        assert "git checkout" in run.stderr
    assert github.mutations == []


def test_issues_are_found_across_pages(tier2: Fleet, petrova: Petrova, github: FakeGitHub) -> None:
    e = env(github)
    github.per_page_max = 1  # every issue on its own page: the Link header is followed
    for n in range(5):
        github.add_issue(ISSUES, title=f"someone's {n}", body="x", labels=("petrova",))
    record_day(petrova, tier2, 0)
    for n in (1, 2):
        record_day(petrova, tier2, n, kahn_hq__ares="failing", stratt_hq__crumb="failing")
    for _ in range(3):
        assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    assert len(petrova_issues(github)) == 3
    paged = [r.path for r in github.requests if "page=" in r.path]
    assert paged  # pages beyond the first were asked for


def test_a_duplicate_from_a_race_is_closed_and_the_oldest_kept(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub
) -> None:
    e = env(github)
    _degrade_kahn_ares(petrova, tier2)
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    first = cell_issue(github, "unhealthy/kahn-hq/ares")
    # another host, at the same moment, opened the same issue
    twin = github.add_issue(ISSUES, title=first["title"], body=first["body"], labels=("petrova",))
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    assert github.repo(ISSUES).issues[twin]["state"] == "closed"
    assert github.comments(ISSUES, twin)[0]["body"].startswith(f"A duplicate of #{first['number']}")
    assert github.repo(ISSUES).issues[first["number"]]["state"] == "open"
    before = len(github.mutations)
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    assert _mutations(github, before) == []


def test_a_broken_etag_cache_only_means_asking_again(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    e = {**env(github), "PETROVA_CACHE_DIR": str(cache)}
    _degrade_kahn_ares(petrova, tier2)
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    kept = json.loads((cache / "notify-etags.json").read_text())
    assert kept["version"] == 1 and kept["entries"]
    for bad in ("{not json", '{"version": 1, "entries": {"u": ["no quotes", {}]}}', "[]"):
        (cache / "notify-etags.json").write_text(bad)
        before = len(github.mutations)
        assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
        assert _mutations(github, before) == []
