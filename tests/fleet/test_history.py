"""``petrova history``: a cell's life read back from the commits of its ledger."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from petrova.fleet.history import Version, human_promotions, merged, transitions
from tests.conftest import Fleet, Petrova

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "petrova-bot",
    "GIT_AUTHOR_EMAIL": "bot@example.org",
    "GIT_COMMITTER_NAME": "petrova-bot",
    "GIT_COMMITTER_EMAIL": "bot@example.org",
}
SHA_A = "a" * 12
SHA_B = "b" * 12


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def plane(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    git(fleet.root, "init", "-q", "-b", "main")
    git(fleet.root, "add", "-A")
    git(fleet.root, "commit", "-q", "-m", "fleet")
    return fleet


def day(petrova: Petrova, fleet: Fleet, n: int, outcome: str, *extra: str) -> str:
    """One daily run: an outcome for kahn-hq's ares, committed as the bot does."""
    run = petrova(
        "state",
        "record",
        "kahn-hq",
        "ares",
        outcome,
        "--at",
        f"2025-10-{n:02d}T06:00:00Z",
        *extra,
        *fleet.args(),
    )
    assert run.exit_code == 0, run.stderr
    return commit(fleet, f"state: day {n}")


def commit(fleet: Fleet, message: str) -> str:
    git(fleet.root, "add", "-A", "state")
    git(fleet.root, "commit", "-q", "-m", message)
    return git(fleet.root, "rev-parse", "HEAD")


def test_a_cells_whole_life_comes_back_from_git(plane: Fleet, petrova: Petrova) -> None:
    fleet = plane
    c1 = day(petrova, fleet, 1, "ok", "--evidence-sha", SHA_A)
    day(petrova, fleet, 2, "ok", "--evidence-sha", SHA_A)
    day(petrova, fleet, 3, "failing", "--detail", "no deploy key")
    c4 = day(petrova, fleet, 4, "failing", "--detail", "still no key")
    c5 = day(petrova, fleet, 5, "ok", "--evidence-sha", SHA_A, "--detail", "key is back")
    run = petrova(
        "state",
        "promote",
        "kahn-hq",
        "ares",
        "--by",
        "human:ana",
        "--reason",
        "checked the key",
        "--now",
        "2025-10-05T09:00:00Z",
        *fleet.args(),
    )
    assert run.exit_code == 0, run.stderr
    c6 = commit(fleet, "promote")
    c7 = day(petrova, fleet, 7, "ok", "--evidence-sha", SHA_B)
    # another cell changes meanwhile: not ares's history
    run = petrova(
        "state", "record", "kahn-hq", "crumb", "ok", "--at", "2025-10-08T06:00:00Z", *fleet.args()
    )
    assert run.exit_code == 0, run.stderr
    commit(fleet, "crumb")

    run = petrova("history", "kahn-hq", "ares", "--json", *fleet.args())
    assert run.exit_code == 0, run.stderr
    document = json.loads(run.stdout)
    assert document["slug"] == "kahn-hq"
    assert document["integration"] == "ares"
    found = [
        {k: v for k, v in t.items() if v is not None and k != "integration"}
        for t in document["transitions"]
    ]
    assert found == [
        {"at": "2025-10-01T06:00:00Z", "commit": c1, "kind": "appeared", "after": "ok"},
        {"at": "2025-10-01T06:00:00Z", "commit": c1, "kind": "contract", "after": SHA_A},
        {
            "at": "2025-10-04T06:00:00Z",
            "commit": c4,
            "kind": "status",
            "before": "ok",
            "after": "degraded",
            "detail": "still no key",
        },
        {
            "at": "2025-10-05T06:00:00Z",
            "commit": c5,
            "kind": "needs_human",
            "before": "false",
            "after": "true",
        },
        # The promotion is committed in the humans' file at c6 (SPEC §12: a human never
        # writes the ledger); the ledger shows it, at its time, from the bot's next
        # write (c7), and history tells it once, at the ledger's commit.
        {
            "at": "2025-10-05T09:00:00Z",
            "commit": c7,
            "kind": "promotion",
            "after": "ok",
            "by": "human:ana",
            "detail": "checked the key",
        },
        # the rest of what c7's ledger shows (one commit, so in the order history reads it)
        {
            "at": "2025-10-07T06:00:00Z",
            "commit": c7,
            "kind": "contract",
            "before": SHA_A,
            "after": SHA_B,
        },
        {
            "at": "2025-10-05T09:00:00Z",
            "commit": c7,
            "kind": "status",
            "before": "degraded",
            "after": "ok",
        },
        {
            "at": "2025-10-07T06:00:00Z",
            "commit": c7,
            "kind": "needs_human",
            "before": "true",
            "after": "false",
        },
    ]

    since = petrova("history", "kahn-hq", "ares", "--json", "--since", "2025-10-05", *fleet.args())
    assert [t["commit"] for t in json.loads(since.stdout)["transitions"]] == [c5, c7, c7, c7, c7]
    assert c6 != c7

    text = petrova("history", "kahn-hq", "ares", *fleet.args())
    assert text.exit_code == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["at", "commit", "integration", "what"]
    assert lines[4].split(None, 3)[3] == "status ok -> degraded (still no key)"
    assert "promoted to ok by human:ana: checked the key" in text.stdout

    both = petrova("history", "kahn-hq", "--json", *fleet.args())
    cells = {t["integration"] for t in json.loads(both.stdout)["transitions"]}
    assert cells == {"ares", "crumb"}


def test_an_unreadable_version_is_reported_and_skipped(plane: Fleet, petrova: Petrova) -> None:
    fleet = plane
    day(petrova, fleet, 1, "ok")
    ledger = fleet.state_dir / "kahn-hq.yaml"
    good = ledger.read_bytes()
    ledger.write_text("{broken: [")
    bad = commit(fleet, "a bad hand edit")
    ledger.write_bytes(good)
    commit(fleet, "undo")
    run = petrova("history", "kahn-hq", "--json", *fleet.args())
    assert run.exit_code == 0, run.stderr
    kinds = [(t["kind"], t["commit"]) for t in json.loads(run.stdout)["transitions"]]
    assert kinds == [("appeared", kinds[0][1]), ("unreadable", bad)]


def test_bad_requests_are_clear_errors(plane: Fleet, petrova: Petrova, tmp_path: Path) -> None:
    fleet = plane
    run = petrova("history", "kahn-hq", *fleet.args())
    assert run.exit_code == 2
    assert "LEDGER_HISTORY_MISSING" in run.stderr
    day(petrova, fleet, 1, "ok")
    run = petrova("history", "kahn-hq", "rocky", *fleet.args())
    assert run.exit_code == 2
    assert "INTEGRATION_UNKNOWN" in run.stderr
    run = petrova("history", "kahn-hq", "--since", "last week", *fleet.args())
    assert run.exit_code == 2
    assert "--since" in run.stderr
    run = petrova("history", "../etc", *fleet.args())
    assert run.exit_code == 2
    assert "UNSAFE_PATH" in run.stderr
    outside = tmp_path / "loose-state"
    outside.mkdir()
    run = petrova("history", "kahn-hq", "--state-dir", str(outside), *fleet.args())
    assert run.exit_code == 2
    assert "NOT_A_GIT_REPO" in run.stderr
    assert "Traceback" not in run.stderr


def test_legacy_ids_and_removed_cells_keep_one_story() -> None:
    def version(n: int, cells: dict[str, object]) -> Version:
        doc = {"schema_version": 1, "slug": "x", "integrations": cells}
        return Version(f"{n:040x}", f"2025-01-0{n}T00:00:00Z", json.dumps(doc).encode())

    old = {"current_status": "ok", "history": [{"at": "2025-01-01T06:00:00Z", "outcome": "ok"}]}
    found = transitions(
        [version(1, {"cairn": old}), version(2, {"lore": old}), version(3, {})],
        rename=lambda name: "lore" if name == "cairn" else name,
    )
    assert [(t.integration, t.kind) for t in found] == [("lore", "appeared"), ("lore", "removed")]


def test_the_humans_promotions_file_is_read_from_the_same_commits(
    plane: Fleet, petrova: Petrova
) -> None:
    """``state/promotions/<slug>.yaml`` (appended by people, merged into the ledger by the
    daily): a promotion the ledger already shows is told once, an override it does not
    yet show is told from the humans' file."""
    fleet = plane
    day(petrova, fleet, 1, "ok")
    day(petrova, fleet, 2, "failing")
    day(petrova, fleet, 3, "failing")
    humans = fleet.state_dir / "promotions" / "kahn-hq.yaml"
    humans.parent.mkdir()
    humans.write_text(
        "schema_version: 1\nslug: kahn-hq\npromotions:\n"
        "  - integration: ares\n    at: '2025-10-03T09:00:00Z'\n    by: human:ana\n"
        "    reason: deploy key rotated\n    override: true\n"
    )
    override = commit(fleet, "ana overrides ares")
    humans.write_text(
        humans.read_text()
        + "  - integration: crumb\n    at: '2025-10-04T09:00:00Z'\n    by: human:bo\n"
        "    reason: checked by hand\n"
    )
    second = commit(fleet, "bo promotes crumb")
    run = petrova("history", "kahn-hq", "--json", *fleet.args())
    assert run.exit_code == 0, run.stderr
    found = [
        (t["integration"], t["kind"], t["at"], t["by"], t["commit"])
        for t in json.loads(run.stdout)["transitions"]
        if t["kind"] in ("promotion", "override")
    ]
    assert found == [
        ("ares", "override", "2025-10-03T09:00:00Z", "human:ana", override),
        ("crumb", "promotion", "2025-10-04T09:00:00Z", "human:bo", second),
    ]
    only = petrova("history", "kahn-hq", "ares", *fleet.args())
    assert "overridden to ok by human:ana without an observed recovery: deploy key rotated" in (
        only.stdout
    )
    assert "crumb" not in only.stdout


def test_a_promotion_in_both_the_ledger_and_the_humans_file_is_told_once() -> None:
    promotion = {"at": "2025-01-02T09:00:00Z", "by": "human:ana", "reason": "ok again"}
    cell = {
        "current_status": "ok",
        "history": [{"at": "2025-01-01T06:00:00Z", "outcome": "ok"}, promotion],
    }
    ledger = Version(
        "1" * 40, "2025-01-02T10:00:00Z", json.dumps({"integrations": {"ares": cell}}).encode()
    )
    humans = Version(
        "2" * 40,
        "2025-01-02T09:30:00Z",
        json.dumps({"promotions": [{"integration": "ares", **promotion}]}).encode(),
    )
    found = merged(transitions([ledger]), human_promotions([humans]))
    assert [(t.kind, t.commit[0]) for t in found] == [("appeared", "1"), ("promotion", "1")]
