"""`petrova rollout`: scripted weeks of probe outcomes, driven through the CLI."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Fleet, Petrova
from tests.tierfleet import (
    all_ok,
    day,
    epoch,
    fleet_args,
    migrate_tier2,
    state_args,
    write_batch,
)


def _record_day(petrova: Petrova, fleet: Fleet, n: int, **overrides: str) -> None:
    """Every applicable tier-2 cell reports at 06:00 on day ``n``; ``slug__integration=x``
    overrides one outcome."""
    parsed: dict[tuple[str, str], str] = {}
    for key, outcome in overrides.items():
        slug, integration = key.split("__")
        parsed[slug.replace("_", "-"), integration] = outcome
    path = write_batch(fleet, f"day{n}", all_ok(day(n), overrides=parsed))
    run = petrova("state", "record", "--from", str(path), "--now", day(n, 0.1), *state_args(fleet))
    assert run.exit_code == 0, run.stderr


def _gate(petrova: Petrova, fleet: Fleet, at: str, *extra: str) -> tuple[int, str, str]:
    run = petrova("rollout", "gate", "2", "--now", at, *fleet_args(fleet, *extra))
    return run.exit_code, run.stdout, run.stderr


@pytest.fixture
def tier2(fleet: Fleet) -> Fleet:
    migrate_tier2(fleet)
    return fleet


def test_scripted_week_gate_closed_on_day_6_open_on_day_7(tier2: Fleet, petrova: Petrova) -> None:
    run = petrova
    for n in range(7):
        _record_day(run, tier2, n)
    code, out, err = _gate(run, tier2, day(6, 0.1))
    assert code == 1
    assert out.startswith("tier 2: held back at 2026-11-07T06:06:00Z (6 hold(s), 7-day window)")
    assert (
        "  held: kahn-hq ares: ok since 2026-11-01T06:00:00Z, 6d 0h of 7d; "
        "green at 2026-11-08T06:00:00Z if every outcome until then is ok\n" in out
    )
    assert err.startswith(
        "petrova: GATE_CLOSED: tier 2 is not green for 7 days: kahn-hq ares: ok since "
        "2026-11-01T06:00:00Z"
    )
    assert "(and 5 more)" in err
    # one second short of seven days is still closed; seven days is open
    assert _gate(run, tier2, day(7, -1 / 3600))[0] == 1
    _record_day(run, tier2, 7)
    code, out, err = _gate(run, tier2, day(7, 0.1))
    assert (code, err) == (0, "")
    assert out == (
        "tier 2: green for the 7-day window at 2026-11-08T06:06:00Z "
        "(ok since 2026-11-01T06:00:00Z)\n"
    )
    # a longer window is not met yet
    assert _gate(run, tier2, day(7, 0.1), "--days", "8")[0] == 1


def test_one_failing_outcome_on_day_5_resets_the_streak(tier2: Fleet, petrova: Petrova) -> None:
    run = petrova
    for n in range(8):
        if n == 5:
            _record_day(run, tier2, n, kahn_hq__traceo="failing")
        else:
            _record_day(run, tier2, n)
    snap = json.loads(
        run(
            "snapshot",
            *fleet_args(tier2),
            env={"SOURCE_DATE_EPOCH": epoch(7, 1)},
        ).stdout
    )
    traceo = snap["rows"][1]["integrations"]["traceo"]
    assert traceo["status"] == "ok"  # one non-ok outcome does not demote
    code, out, _ = _gate(run, tier2, day(7, 1))
    assert code == 1
    [held] = [line for line in out.splitlines() if "held:" in line]
    assert held == (
        "  held: kahn-hq traceo: ok since 2026-11-07T06:00:00Z, 1d 1h of 7d (window "
        "restarted at 2026-11-06T06:00:00Z by a non-ok outcome); "
        "green at 2026-11-14T06:00:00Z if every outcome until then is ok"
    )
    for n in range(8, 14):
        _record_day(run, tier2, n)
    assert _gate(run, tier2, day(12, 23))[0] == 1
    assert _gate(run, tier2, day(13, 0.1))[0] == 0


def test_unreachable_neither_demotes_nor_breaks_the_run(tier2: Fleet, petrova: Petrova) -> None:
    """SPEC §12: one 503 day neither counts nor restarts the window."""
    run = petrova
    for n in range(8):
        if n == 3:
            _record_day(run, tier2, n, stratt_hq__ares="unreachable")
        else:
            _record_day(run, tier2, n)
        if n == 3:
            code, out, _ = _gate(run, tier2, day(3, 1))
            assert code == 1
            assert (
                "  held: stratt-hq ares: ok since 2026-11-01T06:00:00Z, 3d 1h of 7d; "
                "green at 2026-11-08T06:00:00Z if every outcome until then is ok" in out
            )
    status = json.loads(
        run("rollout", "status", "--json", "--now", day(7, 1), *fleet_args(tier2)).stdout
    )
    [tier2_view] = [t for t in status["tiers"] if t["tier"] == 2]
    stratt = tier2_view["repos"][1]
    assert stratt["cells"]["ares"] == {
        "status": "ok",  # never demoted
        "applicable": True,
        "needs_human": False,
        "ok_since": "2026-11-01T06:00:00Z",  # the unreachable day did not restart it
    }
    assert tier2_view["holds"] == []
    assert _gate(run, tier2, day(7, 0.1))[0] == 0


def test_a_gap_longer_than_the_staleness_window_restarts_the_run(
    tier2: Fleet, petrova: Petrova
) -> None:
    run = petrova
    for n in (0, 1, 2, 6, 7, 8, 9):  # days 3-5 missed: 96 hours without an outcome
        _record_day(run, tier2, n)
    code, out, _ = _gate(run, tier2, day(9, 1))
    assert code == 1
    assert (
        "  held: kahn-hq ares: ok since 2026-11-07T06:00:00Z, 3d 1h of 7d (window restarted "
        "at 2026-11-07T06:00:00Z by no conclusive outcome for longer than the staleness "
        "window); green at 2026-11-14T06:00:00Z if every outcome until then is ok" in out
    )


def test_recovery_after_failing_waits_for_promote(tier2: Fleet, petrova: Petrova) -> None:
    run = petrova
    _record_day(run, tier2, 0)
    for n in range(1, 6):
        _record_day(run, tier2, n, kahn_hq__ares="failing")
    _record_day(run, tier2, 6)  # the probe sees ares working again

    def kahn_ares(at_epoch: str) -> dict[str, object]:
        snap = run("snapshot", *fleet_args(tier2), env={"SOURCE_DATE_EPOCH": at_epoch})
        assert snap.exit_code == 0, snap.stderr
        return json.loads(snap.stdout)["rows"][1]["integrations"]["ares"]  # type: ignore[no-any-return]

    cell = kahn_ares(epoch(6, 1))
    assert (cell["status"], cell["needs_human"]) == ("failing", True)
    code, out, _ = _gate(run, tier2, day(6, 1))
    assert code == 1
    assert (
        "  held: kahn-hq ares: failing since 2026-11-06T06:00:00Z; the newest outcome "
        "disagrees and waits for a human (petrova state promote kahn-hq ares ...)" in out
    )
    _record_day(run, tier2, 7)  # more ok outcomes: still failing
    assert kahn_ares(epoch(7, 1))["status"] == "failing"

    promoted = run(
        "state",
        "promote",
        "kahn-hq",
        "ares",
        "--by",
        "human:ada",
        "--reason",
        "token rotated; probe green twice",
        "--now",
        day(7, 2),
        *state_args(tier2),
    )
    assert promoted.exit_code == 0, promoted.stderr
    assert promoted.stdout == (
        "kahn-hq ares: promoted by human:ada at 2026-11-08T08:00:00Z: failing -> ok\n"
    )
    cell = kahn_ares(epoch(7, 3))
    assert cell["status"] == "ok"
    assert "needs_human" not in cell
    # the humans' file holds it; the bot's ledger copies it at its next write
    assert (
        (tier2.state_dir / "promotions" / "kahn-hq.yaml")
        .read_text()
        .endswith(
            '  - integration: "ares"\n'
            '    at: "2026-11-08T08:00:00Z"\n'
            '    by: "human:ada"\n'
            '    reason: "token rotated; probe green twice"\n'
        )
    )
    _record_day(run, tier2, 8)
    ledger = json.loads((tier2.state_dir / "kahn-hq.yaml").read_text())
    assert ledger["integrations"]["ares"]["history"][-2] == {
        "at": "2026-11-08T08:00:00Z",
        "promoted_to": "ok",
        "by": "human:ada",
        "reason": "token rotated; probe green twice",
    }
    # the gate's clock starts at the promotion, not at the first ok the probe saw
    for n in range(9, 15):
        _record_day(run, tier2, n)
    assert _gate(run, tier2, day(14, 1.99))[0] == 1
    assert _gate(run, tier2, day(14, 2))[0] == 0


def test_status_table_and_json(tier2: Fleet, petrova: Petrova) -> None:
    for n in range(3):
        _record_day(petrova, tier2, n, stratt_hq__crumb="degraded")
    run = petrova("rollout", "status", "--now", day(2, 1), *fleet_args(tier2))
    assert run.exit_code == 0, run.stderr
    assert run.stderr == ""
    assert run.stdout.splitlines()[:14] == [
        "tier 1: green for the 7-day window at 2026-11-03T07:00:00Z (nothing applicable)",
        "slug           migrated  ares  traceo  crumb  lore_cairnet  green",
        "-------------  --------  ----  ------  -----  ------------  -----",
        "petrova-codes  yes       n/a   n/a     n/a    n/a           yes",
        "",
        "tier 2: held back at 2026-11-03T07:00:00Z (6 hold(s), 7-day window)",
        "slug       migrated  ares  traceo  crumb     lore_cairnet  green",
        "---------  --------  ----  ------  --------  ------------  -----",
        "kahn-hq    yes       ok    ok      ok        n/a           no",
        "stratt-hq  yes       ok    n/a     degraded  ok            no",
        "  held: kahn-hq ares: ok since 2026-11-01T06:00:00Z, 2d 1h of 7d; green at "
        "2026-11-08T06:00:00Z if every outcome until then is ok",
        "  held: kahn-hq traceo: ok since 2026-11-01T06:00:00Z, 2d 1h of 7d; green at "
        "2026-11-08T06:00:00Z if every outcome until then is ok",
        "  held: kahn-hq crumb: ok since 2026-11-01T06:00:00Z, 2d 1h of 7d; green at "
        "2026-11-08T06:00:00Z if every outcome until then is ok",
        "  held: stratt-hq ares: ok since 2026-11-01T06:00:00Z, 2d 1h of 7d; green at "
        "2026-11-08T06:00:00Z if every outcome until then is ok",
    ]
    assert "  held: stratt-hq crumb: degraded since 2026-11-01T06:00:00Z" in run.stdout
    assert "  held: choco-hq: not migrated (no contract_sha in the registry)" in run.stdout

    data = json.loads(
        petrova("rollout", "status", "--json", "--now", day(2, 1), *fleet_args(tier2)).stdout
    )
    assert (data["now"], data["days"]) == ("2026-11-03T07:00:00Z", 7)
    assert [(t["tier"], t["green"]) for t in data["tiers"]] == [(1, True), (2, False), (3, False)]
    [crumb_hold] = [h for h in data["tiers"][1]["holds"] if h["status"] == "degraded"]
    assert crumb_hold == {
        "slug": "stratt-hq",
        "integration": "crumb",
        "reason": "not_ok",
        "status": "degraded",
        "since": "2026-11-01T06:00:00Z",
        "green_at": None,
        "message": "stratt-hq crumb: degraded since 2026-11-01T06:00:00Z",
    }
    assert data["tiers"][1]["repos"][1]["cells"]["traceo"]["applicable"] is False


def test_pending_and_stale_hold_back_not_applicable_never(
    tier2: Fleet, petrova_inprocess: Petrova
) -> None:
    run = petrova_inprocess
    contract = tier2.workspace / "kahn-hq" / ".petrova" / "contract.yaml"
    for n in range(8):
        _record_day(run, tier2, n)
    assert _gate(run, tier2, day(7, 1))[0] == 0
    # stale: no conclusive outcome for longer than --stale-after
    code, out, _ = _gate(run, tier2, day(10, 7))
    assert code == 1
    assert (
        "  held: kahn-hq ares: stale, no conclusive probe outcome since 2026-11-08T06:00:00Z" in out
    )
    assert _gate(run, tier2, day(10, 7), "--stale-after", "5d")[0] == 0
    # declared pending in the contract (the pin drifts: a warning, but intent still counts)
    contract.write_text(contract.read_text().replace("status: wired", "status: pending", 1))
    code, out, err = _gate(run, tier2, day(7, 1))
    assert code == 1
    assert "  held: kahn-hq ares: pending, declared pending in the contract" in out
    assert "warning: CONTRACT_SHA_DRIFT [kahn-hq]" in err


def test_corrupt_ledger_holds_its_tier_back(tier2: Fleet, petrova_inprocess: Petrova) -> None:
    for n in range(8):
        _record_day(petrova_inprocess, tier2, n)
    (tier2.state_dir / "stratt-hq.yaml").write_text("{not: [yaml\n")
    code, out, err = _gate(petrova_inprocess, tier2, day(7, 1))
    assert code == 1
    assert "warning: STATE_UNREADABLE [stratt-hq]: STATE_INVALID: " in err
    assert "  held: stratt-hq ares: pending, nothing observed yet" in out


def test_tier_1_control_plane_is_green(fleet: Fleet, petrova: Petrova) -> None:
    run = petrova("rollout", "gate", "1", "--now", day(0), *fleet.args())
    assert run.exit_code == 0
    assert run.stdout == (
        "tier 1: green for the 7-day window at 2026-11-01T06:00:00Z (nothing applicable)\n"
    )
    held = petrova("rollout", "gate", "3", "--json", "--now", day(0), *fleet.args())
    assert held.exit_code == 1
    data = json.loads(held.stdout)
    assert (data["tier"], data["green"]) == (3, False)
    assert [h["reason"] for h in data["holds"]] == ["not_migrated"] * 4


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["gate", "9"], "TIER_UNKNOWN", "no repo in the registry has tier 9; tiers: 1, 2, 3"),
        (["gate", "2", "--now", "tomorrow"], "TIMESTAMP_INVALID", "--now: 'tomorrow'"),
        (["status", "--now", "2026-11-01"], "TIMESTAMP_INVALID", "is not an RFC 3339"),
    ],
)
def test_bad_input(fleet: Fleet, petrova: Petrova, args: list[str], code: str, needle: str) -> None:
    run = petrova("rollout", *args, *fleet.args())
    assert run.exit_code == 2
    assert run.stderr.startswith(f"petrova: {code}: ")
    assert needle in run.stderr
    assert run.stdout == ""


def test_bad_days(fleet: Fleet, petrova: Petrova) -> None:
    run = petrova("rollout", "gate", "2", "--days", "0", *fleet.args())
    assert run.exit_code == 2
    assert "--days" in run.stderr


def test_status_marks_cells_waiting_for_a_human(tier2: Fleet, petrova_inprocess: Petrova) -> None:
    for n in range(4):
        outcome = "failing" if n in (1, 2) else "ok"
        _record_day(petrova_inprocess, tier2, n, kahn_hq__ares=outcome)
    run = petrova_inprocess("rollout", "status", "--now", day(3, 1), *fleet_args(tier2))
    assert "kahn-hq    yes       degraded!  ok" in run.stdout
    assert run.stdout.endswith("! = the newest outcome waits for a human: petrova state promote\n")
