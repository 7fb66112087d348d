"""`petrova notify` against a fake GitHub and a local chat sink, driven through the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, Petrova
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


def notify(
    petrova: Petrova, fleet: Fleet, at: str, environ: dict[str, str], *extra: str
) -> Any:
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
    assert awaiting["state"] == "open"
    assert "`petrova state promote kahn-hq ares --by human:YOUR-NAME" in awaiting["body"]
    assert chat_messages(sink)[-1].startswith("ares on kahn\\-hq: probes see a recovery")

    promoted = petrova(
        "state", "promote", "kahn-hq", "ares", "--by", "human:ada", "--reason", "fixed",
        "--now", day(5, 2), *state_args(tier2),
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


def test_reminders_follow_the_backoff(
    tier2: Fleet, petrova: Petrova, github: FakeGitHub
) -> None:
    e = env(github)
    _degrade_kahn_ares(petrova, tier2)
    assert notify(petrova, tier2, day(2, 1), e).exit_code == 0
    number = cell_issue(github, "unhealthy/kahn-hq/ares")["number"]
    reminded = []
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
