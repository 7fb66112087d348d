"""The gate fails closed, and green time counts from the dot (SPEC §11, issue: the gate
cannot be fooled)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Fleet, Petrova
from tests.tierfleet import (
    PINNED,
    all_ok,
    batch,
    day,
    epoch,
    fleet_args,
    migrate_tier2,
    state_args,
    write_batch,
)


@pytest.fixture
def tier2(fleet: Fleet) -> Fleet:
    migrate_tier2(fleet)
    return fleet


def _record(petrova: Petrova, fleet: Fleet, name: str, text: str, at: str) -> None:
    path = write_batch(fleet, name, text)
    run = petrova("state", "record", "--from", str(path), "--now", at, *state_args(fleet))
    assert run.exit_code == 0, run.stderr


def _week(petrova: Petrova, fleet: Fleet, first: int = 0, days: int = 8) -> None:
    for n in range(first, first + days):
        _record(petrova, fleet, f"day{n}", all_ok(day(n)), day(n, 0.1))


def _gate_json(petrova: Petrova, fleet: Fleet, at: str, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    run = petrova("rollout", "gate", "2", "--json", "--now", at, *args)
    return run.exit_code, json.loads(run.stdout) if run.stdout else {}


def test_green_after_a_week_of_ok_against_the_pinned_contract(
    tier2: Fleet, petrova: Petrova
) -> None:
    _week(petrova, tier2)
    code, doc = _gate_json(petrova, tier2, day(7, 0.1), *fleet_args(tier2))
    assert code == 0 and doc["green"] is True and doc["holds"] == []


def test_without_a_workspace_the_gate_refuses_instead_of_guessing(
    tier2: Fleet, petrova: Petrova
) -> None:
    _week(petrova, tier2)
    run = petrova("rollout", "gate", "2", "--now", day(7, 0.1), *state_args(tier2))
    assert run.exit_code == 2
    assert "petrova: USAGE_ERROR: --workspace: tier 2 has migrated repos (kahn-hq, stratt-hq)" in (
        run.stderr
    )
    assert "petrova sync" in run.stderr
    # tier 1 holds only the control plane, read from the registry's own repo: no workspace
    assert petrova("rollout", "gate", "1", *state_args(tier2)).exit_code == 0


def test_an_unreadable_contract_holds_the_tier(tier2: Fleet, petrova: Petrova) -> None:
    _week(petrova, tier2)
    (tier2.workspace / "kahn-hq" / ".petrova" / "contract.yaml").unlink()
    code, doc = _gate_json(petrova, tier2, day(7, 0.1), *fleet_args(tier2))
    assert code == 1
    [hold] = [h for h in doc["holds"] if h["slug"] == "kahn-hq"]
    assert hold["reason"] == "contract_unknown"
    assert "contract file not found" in hold["message"]


def test_a_drifted_contract_holds_the_tier(tier2: Fleet, petrova: Petrova) -> None:
    _week(petrova, tier2)
    contract = tier2.workspace / "stratt-hq" / ".petrova" / "contract.yaml"
    contract.write_text(contract.read_text() + "# edited after the pin\n")
    code, doc = _gate_json(petrova, tier2, day(7, 0.1), *fleet_args(tier2))
    assert code == 1
    [hold] = [h for h in doc["holds"] if h["slug"] == "stratt-hq"]
    assert hold["reason"] == "contract_drift"
    assert PINNED["stratt-hq"] in hold["message"]


def test_an_unreadable_ledger_holds_the_tier(tier2: Fleet, petrova: Petrova) -> None:
    _week(petrova, tier2)
    (tier2.state_dir / "kahn-hq.yaml").write_text("{not: [json")
    code, doc = _gate_json(petrova, tier2, day(7, 0.1), *fleet_args(tier2))
    assert code == 1
    assert "ledger_unreadable" in {h["reason"] for h in doc["holds"]}


def test_ok_under_an_earlier_contract_does_not_count(tier2: Fleet, petrova: Petrova) -> None:
    """A week of ok outcomes checked against another contract (the one that still said
    pending) is observation, not a green dot: the window starts at the first ok checked
    against the pinned contract."""
    old = dict.fromkeys(PINNED, "0123456789ab")
    for n in range(7):
        lines = [json.loads(line) for line in all_ok(day(n)).splitlines()]
        for line in lines:
            line["evidence_sha"] = old[line["slug"]]
        _record(petrova, tier2, f"old{n}", batch(lines), day(n, 0.1))
    _week(petrova, tier2, first=7, days=1)  # day 7: the first ok against the pin
    code, doc = _gate_json(petrova, tier2, day(7, 0.1), *fleet_args(tier2))
    assert code == 1
    assert {h["reason"] for h in doc["holds"]} == {"too_young"}
    assert {h["since"] for h in doc["holds"]} == {day(7)}
    assert doc["green_at"] == day(14)
    _week(petrova, tier2, first=8, days=7)
    assert _gate_json(petrova, tier2, day(14, 0.1), *fleet_args(tier2))[0] == 0


def test_ok_without_evidence_sha_does_not_count(tier2: Fleet, petrova: Petrova) -> None:
    for n in range(8):
        lines = [json.loads(line) for line in all_ok(day(n)).splitlines()]
        for line in lines:
            del line["evidence_sha"]
        _record(petrova, tier2, f"bare{n}", batch(lines), day(n, 0.1))
    code, doc = _gate_json(petrova, tier2, day(7, 0.1), *fleet_args(tier2))
    assert code == 1
    assert {h["reason"] for h in doc["holds"]} == {"run_broken"}
    assert "pinned contract" in doc["holds"][0]["message"]
    assert doc["green_at"] is None


def test_the_hold_says_when_the_tier_can_be_green(tier2: Fleet, petrova: Petrova) -> None:
    _week(petrova, tier2, days=3)
    run = petrova("rollout", "gate", "2", "--now", day(2, 0.1), *fleet_args(tier2))
    assert run.exit_code == 1
    assert f"; green at {day(7)} at the earliest\n" in run.stdout.splitlines(keepends=True)[0]


def test_the_snapshot_the_table_and_the_page_show_each_gate(tier2: Fleet, petrova: Petrova) -> None:
    _week(petrova, tier2, days=3)
    env = {"SOURCE_DATE_EPOCH": epoch(2, 0.1)}
    run = petrova("snapshot", *fleet_args(tier2), env=env)
    assert run.exit_code == 0, run.stderr
    gates = {g["tier"]: g for g in json.loads(run.stdout)["gates"]}
    assert gates[1]["green"] is True
    assert (gates[2]["green"], gates[2]["green_at"]) == (False, day(7))
    table = petrova("snapshot", "--format", "table", *fleet_args(tier2), env=env).stdout
    at = day(2, 0.1)
    assert f"tier 1: green for the 7-day window at {at} (nothing applicable)\n" in table
    held = f"tier 2: held back at {at} (6 hold(s), 7-day window); green at {day(7)} at the earliest"
    assert f"{held}\n  held: kahn-hq ares: ok since {day(0)}" in table
    page = petrova("snapshot", "--format", "html", *fleet_args(tier2), env=env).stdout
    assert '<section id="gates"><h2>Rollout gates</h2>' in page
    assert '<li class="gate gate-held" data-tier="2">' in page
