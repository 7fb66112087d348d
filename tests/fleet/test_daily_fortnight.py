"""A simulated fortnight of the daily job, end to end, on a clock moved day by day.

Real parts: the consumer is a bare git repository reached at its github.com url through
git's insteadOf; GitHub's API is a loopback fake; `petrova daily` runs each morning (its
steps are real petrova processes: sync, probe --record, snapshot). Midway a contract PR
wires Traceo and the operator pins it, the ARES webhook fails twice and recovers, and a
human promotes. The gate must open exactly when the dashboard's dots have been green for
seven days, not a second before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from petrova.files.disk import sha12
from tests.conftest import Fleet, Petrova
from tests.fake_github import FakeGitHub
from tests.syncfleet import Remotes

DAY0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
URL = "https://github.com/kahn-hq/kahn"

CONTRACT = """\
schema_version: 1
slug: kahn-hq
contract_committers: [humans]
integrations:
  ares:
    status: wired
    evidence: {{org_or_repo_scope: kahn-hq/kahn}}
  traceo: {traceo}
  crumb: {{status: not_applicable, not_applicable_reason: none, review_by: "2027-06-01"}}
  lore_cairnet: {{status: not_applicable, not_applicable_reason: none, review_by: "2027-06-01"}}
"""
PENDING = "{status: pending}"
WIRED = "{status: wired, evidence: {baseline_id: bl-1, vtm_path: docs/vtm.md}}"

REGISTRY = """\
schema_version: 1
repos:
  - slug: petrova-codes
    url: https://github.com/devarno-cloud/petrova-codes
    default_branch: main
    role: control-plane
    profile: strict
    tier: 1
    added: "2026-04-29"
    contract_sha: {self_sha}
    integrations_applicability:
      ares: {{value: not_applicable, review_by: "2027-04-30", reason: own CI}}
      traceo: {{value: not_applicable, review_by: "2027-04-30", reason: no matrix}}
      crumb: {{value: not_applicable, review_by: "2027-04-30", reason: no content}}
      lore_cairnet: {{value: not_applicable, review_by: "2027-04-30", reason: no stones}}
  - slug: kahn-hq
    url: {url}
    default_branch: main
    role: production
    profile: standard
    tier: 2
    added: "2026-04-29"
    contract_sha: {kahn_sha}
    integrations_applicability:
      ares: required
      traceo: required
      crumb: {{value: not_applicable, review_by: "2027-06-01", reason: no cards}}
      lore_cairnet: {{value: not_applicable, review_by: "2027-06-01", reason: no stones}}
"""


def at(day: float, hours: float = 0) -> datetime:
    return DAY0 + timedelta(days=day, hours=hours)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(moment: datetime) -> str:
    return str(int(moment.timestamp()))


class Fortnight:
    def __init__(self, fleet: Fleet, petrova: Petrova, remotes: Remotes, github: FakeGitHub):
        self.fleet, self.petrova, self.remotes, self.github = fleet, petrova, remotes, github
        self.env = {
            **remotes.env(),
            "GITHUB_API_URL": github.url,
            "GITHUB_TOKEN": github.token,
            "PETROVA_CACHE_DIR": str(fleet.root / "cache"),
        }
        self.head = remotes.publish(
            URL, {".petrova/contract.yaml": CONTRACT.format(traceo=PENDING)}
        )
        self_sha = sha12((fleet.root / ".petrova" / "contract.yaml").read_bytes())
        kahn_sha = sha12(CONTRACT.format(traceo=PENDING).encode())
        fleet.registry.write_text(REGISTRY.format(self_sha=self_sha, kahn_sha=kahn_sha, url=URL))
        self.hook = github.add_hook("kahn-hq/kahn")

    def run(self, *args: str, moment: datetime) -> Any:
        return self.petrova(*args, env={**self.env, "SOURCE_DATE_EPOCH": epoch(moment)})

    def daily(self, day: int) -> dict[str, Any]:
        """The 07:00 run; returns the snapshot it wrote."""
        out = self.fleet.root / "fleet.json"
        run = self.run(
            "daily",
            "--no-self-update",
            "-o",
            str(out),
            *self.fleet.args("--workspace", str(self.fleet.workspace)),
            moment=at(day),
        )
        assert run.exit_code == 0, run.stderr
        doc: dict[str, Any] = json.loads(out.read_bytes())
        return doc

    def gate(self, moment: datetime) -> tuple[int, dict[str, Any]]:
        run = self.run(
            "rollout",
            "gate",
            "2",
            "--json",
            "--now",
            stamp(moment),
            *self.fleet.args("--workspace", str(self.fleet.workspace)),
            moment=moment,
        )
        return run.exit_code, json.loads(run.stdout)


@pytest.fixture
def fortnight(fleet: Fleet, petrova: Petrova, tmp_path: Path) -> Iterator[Fortnight]:
    github = FakeGitHub()
    try:
        yield Fortnight(fleet, petrova, Remotes(tmp_path / "git"), github)
    finally:
        github.close()


def _kahn(doc: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = next(r for r in doc["rows"] if r["slug"] == "kahn-hq")
    return row


def _gate2(doc: dict[str, Any]) -> dict[str, Any]:
    gate: dict[str, Any] = next(g for g in doc["gates"] if g["tier"] == 2)
    return gate


@pytest.mark.slow  # sixteen daily runs of real processes: about a minute
def test_the_gate_opens_exactly_seven_green_days_after_the_dot_turned_green(
    fortnight: Fortnight,
) -> None:
    f = fortnight
    # Day 0: synced and probed. ARES ok; Traceo still declared pending: held.
    doc = f.daily(0)
    row = _kahn(doc)
    assert row["contract_commit"] == f.head  # which commit the contract was read at
    assert (row["integrations"]["ares"]["status"], row["integrations"]["traceo"]["status"]) == (
        "ok",
        "pending",
    )
    assert {h["reason"] for h in _gate2(doc)["holds"]} == {"pending", "too_young"}
    f.daily(1)

    # Day 2: the contract PR that wires Traceo merges; the daily run syncs it.
    f.head = f.remotes.publish(
        URL, {".petrova/contract.yaml": CONTRACT.format(traceo=WIRED), "docs/vtm.md": "# VTM\n"}
    )
    doc = f.daily(2)
    assert "CONTRACT_SHA_DRIFT" in {w["code"] for w in doc["warnings"]}
    assert "contract_drift" in {h["reason"] for h in _gate2(doc)["holds"]}
    pinned = f.run(
        "registry",
        "pin",
        "kahn-hq",
        *f.fleet.args("--workspace", str(f.fleet.workspace)),
        moment=at(2, 1),
    )
    assert pinned.exit_code == 0, pinned.stderr

    # Days 3-4: both dots ok against the new pin. Day 2's outcomes were checked against the
    # contract now pinned, so they count; the ARES oks of days 0-1 (the old contract) do not.
    for day in (3, 4):
        doc = f.daily(day)
    assert _gate2(doc)["green_at"] == stamp(at(9))

    # Days 5-6: the ARES webhook's deliveries fail; day 7 it recovers, which waits for a human.
    f.github.set_delivery(f.hook, 500)
    f.daily(5)
    doc = f.daily(6)
    assert _kahn(doc)["integrations"]["ares"]["status"] == "degraded"
    f.github.set_delivery(f.hook, 200)
    doc = f.daily(7)
    ares = _kahn(doc)["integrations"]["ares"]
    assert (ares["status"], ares.get("needs_human")) == ("degraded", True)
    assert _gate2(doc)["green"] is False

    # Day 8: the daily run, then a human promotes at 07:30: the dot is green from then.
    f.daily(8)
    promoted = f.run(
        "state",
        "promote",
        "kahn-hq",
        "ares",
        "--by",
        "human:ada",
        "--reason",
        "deliveries answered again",
        *f.fleet.args(),
        moment=at(8, 0.5),
    )
    assert promoted.exit_code == 0, promoted.stderr
    for day in range(9, 16):
        doc = f.daily(day)
    gate = _gate2(doc)
    assert (gate["green"], gate["green_at"]) == (False, stamp(at(15, 0.5)))

    # Exactly seven days after the promotion, and not a second before.
    code, held = f.gate(at(15, 0.5) - timedelta(seconds=1))
    assert code == 1 and held["green_at"] == stamp(at(15, 0.5))
    code, opened = f.gate(at(15, 0.5))
    assert code == 0 and opened["green"] is True
    assert opened["green_since"] == stamp(at(8, 0.5))

    # The ledger kept every day's observation: the history the rules needed.
    ledger = json.loads((f.fleet.state_dir / "kahn-hq.yaml").read_bytes())
    history = ledger["integrations"]["ares"]["history"]
    assert len(history) == 17  # 16 daily outcomes and the promotion
    assert {e.get("evidence_sha") for e in history if "outcome" in e} == {
        sha12(CONTRACT.format(traceo=PENDING).encode()),
        sha12(CONTRACT.format(traceo=WIRED).encode()),
    }
