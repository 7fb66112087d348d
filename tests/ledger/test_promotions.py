"""Humans in the loop (SPEC §12): promotions in the humans' file, merged by time; a
promotion follows an observed recovery; an override; what restarts the gate's window."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from petrova.clock import MACHINE_ENV
from petrova.ledger.merge import merge_promotions
from petrova.ledger.rules import apply_outcome, check_cell
from petrova.ledger.window import green_window
from petrova.models import LedgerCell, ProbeEntry, PromotionEntry
from tests.conftest import Fleet, Petrova
from tests.tierfleet import PINNED, all_ok, day, epoch, fleet_args, migrate_tier2, write_batch

SHA = "abcdef123456"


def _ok(at: str, sha: str | None = SHA) -> dict[str, Any]:
    return {"at": at, "outcome": "ok", **({"evidence_sha": sha} if sha else {})}


def _out(at: str, outcome: str) -> dict[str, Any]:
    return {"at": at, "outcome": outcome}


# --- the window rule: exactly SPEC §12's list ---------------------------------------------


def test_an_unbroken_run_counts_from_its_first_ok() -> None:
    history = [_ok(day(0)), _ok(day(1)), _ok(day(2))]
    assert green_window(history, pin=SHA) == (day(0), None, None)


def test_unreachable_neither_counts_nor_breaks_the_run() -> None:
    history = [_ok(day(0)), _out(day(1), "unreachable"), _ok(day(2))]
    assert green_window(history, pin=SHA).start == day(0)
    assert green_window([_out(day(0), "unreachable")], pin=SHA).start is None


def test_a_conclusive_non_ok_outcome_restarts_it() -> None:
    for outcome in ("degraded", "failing", "not_applicable"):
        history = [_ok(day(0)), _out(day(1), outcome), _ok(day(2))]
        assert green_window(history, pin=SHA) == (day(2), "not_ok", day(1))


def test_a_contract_change_restarts_it() -> None:
    history = [_ok(day(0), "0123456789ab"), _ok(day(1)), _ok(day(2))]
    assert green_window(history, pin=SHA) == (day(1), "contract_change", day(0))
    assert green_window([_ok(day(0), None)], pin=SHA) == (None, "contract_change", day(0))


def test_a_promotion_restarts_it_and_counts_from_itself() -> None:
    promotion = {"at": day(1, 1), "promoted_to": "ok", "by": "human:ada", "reason": "r"}
    history = [_out(day(0), "failing"), _ok(day(1)), promotion, _ok(day(2))]
    assert green_window(history, pin=SHA) == (day(1, 1), "promotion", day(1, 1))


def test_an_override_restarts_it_and_counts_from_the_next_ok() -> None:
    override = {"at": day(1), "by": "human:ada", "reason": "r", "override": True}
    assert green_window([_out(day(0), "failing"), override], pin=SHA) == (None, "override", day(1))
    history = [_out(day(0), "failing"), override, _ok(day(2))]
    assert green_window(history, pin=SHA) == (day(2), "override", day(1))


def test_a_gap_longer_than_the_staleness_window_restarts_it() -> None:
    history = [_ok(day(0)), _ok(day(4)), _ok(day(5))]  # 96 hours without a conclusion
    assert green_window(history, pin=SHA) == (day(4), "gap", day(4))
    missed = [_ok(day(0)), _out(day(1), "unreachable"), _ok(day(2))]  # a 48-hour gap
    assert green_window(missed, pin=SHA).start == day(0)
    assert green_window(history, pin=SHA, stale_after=timedelta(days=5)).start == day(0)


# --- promotions merged by time ---------------------------------------------------------------


def _cell(*entries: tuple[str, str]) -> LedgerCell:
    cell = LedgerCell()
    for at, outcome in entries:
        cell = apply_outcome(cell, ProbeEntry(at=at, outcome=outcome, evidence_sha=SHA))
    return cell


def _promotion(at: str, *, override: bool = False) -> PromotionEntry:
    return PromotionEntry(at=at, by="human:ada", reason="seen ok", override=override or None)


def test_a_promotion_made_before_a_bot_run_applies_at_its_time() -> None:
    # ok, failing x2 (degraded), ok (needs a human); the human promotes at day 3 07:30;
    # the bot records day 4 before the promotion reaches it.
    cell = _cell(
        (day(0), "ok"), (day(1), "failing"), (day(2), "failing"), (day(3), "ok"), (day(4), "ok")
    )
    assert (cell.current_status, cell.needs_human) == ("degraded", True)
    merged = merge_promotions(cell, [_promotion(day(3, 0.5))])
    assert (merged.current_status, merged.needs_human) == ("ok", False)
    assert merged.ok_since == day(3, 0.5)
    assert merged.status_since == day(3, 0.5)
    assert [e.at for e in merged.history][-2:] == [day(3, 0.5), day(4)]
    checked, problems = check_cell(merged)  # what the bot writes is a ledger that loads
    assert problems == [] and checked == merged
    # merging again changes nothing: the ledger holds it now
    assert merge_promotions(merged, [_promotion(day(3, 0.5))]) is merged


def test_a_promotion_the_outcomes_since_have_overtaken_still_lets_them_demote() -> None:
    cell = _cell((day(0), "ok"), (day(1), "failing"), (day(2), "failing"), (day(3), "ok"))
    cell = _cell(*[(e.at, e.outcome) for e in cell.history if isinstance(e, ProbeEntry)],
                 (day(4), "failing"), (day(5), "failing"))  # fmt: skip
    merged = merge_promotions(cell, [_promotion(day(3, 0.5))])
    assert merged.current_status == "degraded"  # promoted, then two bad outcomes again
    assert merged.status_since == day(5)


def test_an_override_lifts_the_dot_but_starts_no_green_time() -> None:
    cell = _cell((day(0), "ok"), (day(1), "failing"), (day(2), "failing"))
    merged = merge_promotions(cell, [_promotion(day(2, 1), override=True)])
    assert (merged.current_status, merged.ok_since) == ("ok", None)
    after = apply_outcome(merged, ProbeEntry(at=day(3), outcome="ok", evidence_sha=SHA))
    assert after.ok_since == day(3)


def test_a_promotion_older_than_the_kept_history_or_redundant_changes_nothing() -> None:
    cell = _cell((day(1), "ok"), (day(2), "ok"))
    assert merge_promotions(cell, [_promotion(day(0))]) is cell
    redundant = merge_promotions(cell, [_promotion(day(1, 1))])  # already ok: refused
    assert redundant.history == cell.history and redundant.current_status == "ok"


@given(
    outcomes=st.lists(
        st.sampled_from(["ok", "degraded", "failing", "unreachable", "not_applicable"]),
        min_size=1,
        max_size=30,
    ),
    where=st.integers(min_value=0, max_value=29),
    override=st.booleans(),
)
def test_a_merged_cell_is_always_a_ledger_the_full_check_accepts(
    outcomes: list[str], where: int, override: bool
) -> None:
    cell = _cell(*[(day(n), o) for n, o in enumerate(outcomes)])
    merged = merge_promotions(
        cell, [_promotion(day(min(where, len(outcomes)), 0.5), override=override)]
    )
    checked, problems = check_cell(merged)
    assert problems == []
    assert checked == merged


# --- through the CLI: refusal, override, the humans' file -----------------------------------


@pytest.fixture
def tier2(fleet: Fleet) -> Fleet:
    migrate_tier2(fleet)
    return fleet


def _day(petrova: Petrova, fleet: Fleet, n: int, **overrides: str) -> None:
    parsed = {tuple(k.replace("_", "-", 1).split("__")): v for k, v in overrides.items()}
    path = write_batch(fleet, f"day{n}", all_ok(day(n), overrides=parsed))  # type: ignore[arg-type]
    run = petrova(
        "state", "record", "--from", str(path), "--now", day(n, 0.1), *fleet.args(),
        env=_machine_at(day(n, 0.1)),
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr


def _machine_at(moment: str) -> dict[str, str]:
    """The machine's clock at ``moment`` as well as petrova's: the story happens on its
    days, it is no replay, so the future-timestamp guard runs as it does on the cron host
    (no ``--force``) and would refuse an outcome or promotion ahead of that day."""
    when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return {MACHINE_ENV: str(int(when.timestamp()))}


def _promote(petrova: Petrova, fleet: Fleet, at: str, *extra: str) -> Any:
    return petrova(
        "state", "promote", "kahn-hq", "ares", "--by", "human:ada", "--reason", "looked",
        "--now", at, *extra, *fleet.args(), env=_machine_at(at),
    )  # fmt: skip


def _ares(petrova: Petrova, fleet: Fleet, at_epoch: str) -> dict[str, Any]:
    snap = petrova("snapshot", *fleet_args(fleet), env={"SOURCE_DATE_EPOCH": at_epoch})
    assert snap.exit_code == 0, snap.stderr
    cell: dict[str, Any] = json.loads(snap.stdout)["rows"][1]["integrations"]["ares"]
    return cell


def test_a_promotion_ahead_of_the_machines_clock_is_refused(tier2: Fleet, petrova: Petrova) -> None:
    """Without --force the real guard runs: a promotion dated day 4 on a machine at day 3."""
    _day(petrova, tier2, 0)
    for n in (1, 2):
        _day(petrova, tier2, n, kahn_hq__ares="failing")
    _day(petrova, tier2, 3)
    run = petrova(
        "state", "promote", "kahn-hq", "ares", "--by", "human:ada", "--reason", "looked",
        "--now", day(4), *tier2.args(), env=_machine_at(day(3, 1)),
    )  # fmt: skip
    assert run.exit_code == 2, run.stderr
    assert "TIMESTAMP_IN_FUTURE" in run.stderr
    assert not (tier2.state_dir / "promotions" / "kahn-hq.yaml").exists()
    assert _promote(petrova, tier2, day(3, 1)).exit_code == 0  # on day 3 it is taken


def test_promote_is_refused_while_the_newest_outcome_is_not_ok(
    tier2: Fleet, petrova: Petrova
) -> None:
    _day(petrova, tier2, 0)
    for n in (1, 2, 3):
        _day(petrova, tier2, n, kahn_hq__ares="failing")
    ledger_before = (tier2.state_dir / "kahn-hq.yaml").read_bytes()
    run = _promote(petrova, tier2, day(3, 1))
    assert run.exit_code == 2
    assert "PROMOTE_NOT_RECOVERED" in run.stderr
    assert "newest conclusive probe outcome is failing, not ok" in run.stderr
    assert not (tier2.state_dir / "promotions").joinpath("kahn-hq.yaml").exists()
    assert (tier2.state_dir / "kahn-hq.yaml").read_bytes() == ledger_before
    assert _ares(petrova, tier2, epoch(3, 2))["status"] == "degraded"


def test_an_override_is_recorded_shown_and_counts_from_the_next_ok(
    tier2: Fleet, petrova: Petrova, tmp_path: Path
) -> None:
    _day(petrova, tier2, 0)
    for n in (1, 2):
        _day(petrova, tier2, n, kahn_hq__ares="failing")
    ledger_before = (tier2.state_dir / "kahn-hq.yaml").read_bytes()
    run = _promote(petrova, tier2, day(2, 1), "--override")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith("kahn-hq ares: overridden by human:ada at 2026-11-03T07:00:00Z")
    assert "commit it as yourself: git add" in run.stderr
    assert (tier2.state_dir / "kahn-hq.yaml").read_bytes() == ledger_before  # the bot's file
    text = (tier2.state_dir / "promotions" / "kahn-hq.yaml").read_text()
    assert text.endswith('    reason: "looked"\n    override: true\n')
    cell = _ares(petrova, tier2, epoch(2, 2))
    assert cell["status"] == "ok"
    assert cell["override"] == {"at": day(2, 1), "by": "human:ada", "reason": "looked"}
    table = petrova(
        "snapshot", "--format", "table", *fleet_args(tier2), env={"SOURCE_DATE_EPOCH": epoch(2, 2)}
    ).stdout
    assert "ok*" in table and "* = kahn-hq ares: ok on an override by human:ada" in table
    gate = petrova("rollout", "gate", "2", "--now", day(2, 2), *fleet_args(tier2)).stdout
    assert (
        "held: kahn-hq ares: ok, but the dot's green time has not started: the window was "
        f"restarted at {day(2, 1)} by an override" in gate
    )
    status = petrova("rollout", "status", "--now", day(2, 2), *fleet_args(tier2)).stdout
    assert "ok*" in status and "* = ok on a human's override, not yet observed ok" in status
    _day(petrova, tier2, 3)  # probes see ok: the override is no longer what the dot stands on
    assert "override" not in _ares(petrova, tier2, epoch(3, 1))
    gate = petrova("rollout", "gate", "2", "--now", day(3, 1), *fleet_args(tier2)).stdout
    assert f"kahn-hq ares: ok since {day(3)}, 0d 1h of 7d (window restarted at" in gate


def test_a_second_promotion_is_appended_and_old_bytes_kept(tier2: Fleet, petrova: Petrova) -> None:
    _day(petrova, tier2, 0)
    for n in (1, 2):
        _day(petrova, tier2, n, kahn_hq__ares="failing")
    _day(petrova, tier2, 3)
    assert _promote(petrova, tier2, day(3, 1)).exit_code == 0
    path = tier2.state_dir / "promotions" / "kahn-hq.yaml"
    first = path.read_bytes()
    for n in (4, 5):
        _day(petrova, tier2, n, kahn_hq__ares="failing")
    _day(petrova, tier2, 6)
    assert _promote(petrova, tier2, day(6, 1)).exit_code == 0
    second = path.read_bytes()
    assert second.startswith(first)
    assert second[len(first) :].decode() == (
        '  - integration: "ares"\n    at: "2026-11-07T07:00:00Z"\n'
        '    by: "human:ada"\n    reason: "looked"\n'
    )


def test_a_broken_promotions_file_is_named_at_its_line(tier2: Fleet, petrova: Petrova) -> None:
    _day(petrova, tier2, 0)
    path = tier2.state_dir / "promotions" / "kahn-hq.yaml"
    path.parent.mkdir()
    path.write_text(
        "schema_version: 1\nslug: kahn-hq\npromotions:\n"
        '  - integration: nope\n    at: "2026-11-01T07:00:00Z"\n    by: human:ada\n'
        "    reason: x\n"
    )
    run = petrova("snapshot", *fleet_args(tier2), env={"SOURCE_DATE_EPOCH": epoch(0, 1)})
    warnings = {w["code"]: w["message"] for w in json.loads(run.stdout)["warnings"]}
    assert "promotions/kahn-hq.yaml:4" in warnings["STATE_UNREADABLE"]
    assert "'nope' is not an integration id" in warnings["STATE_UNREADABLE"]
    assert PINNED  # the tier-2 fleet is pinned: the unreadable ledger holds its gate


def test_once_the_ledger_holds_a_promotion_the_humans_file_changes_nothing(
    tier2: Fleet, petrova: Petrova
) -> None:
    """The bot's next write copies the promotion; from then on the sealed ledger alone
    gives the same snapshot, and the humans' file is not merged twice."""
    _day(petrova, tier2, 0)
    for n in (1, 2):
        _day(petrova, tier2, n, kahn_hq__ares="failing")
    _day(petrova, tier2, 3)
    assert _promote(petrova, tier2, day(3, 1)).exit_code == 0
    pending = petrova("snapshot", *fleet_args(tier2), env={"SOURCE_DATE_EPOCH": epoch(3, 2)})
    _day(petrova, tier2, 4)  # the bot writes the ledger: the promotion is copied into it
    ledger = json.loads((tier2.state_dir / "kahn-hq.yaml").read_bytes())
    assert sum("by" in e for e in ledger["integrations"]["ares"]["history"]) == 1
    both = petrova("snapshot", *fleet_args(tier2), env={"SOURCE_DATE_EPOCH": epoch(4, 1)})
    (tier2.state_dir / "promotions" / "kahn-hq.yaml").rename(tier2.root / "aside.yaml")
    alone = petrova("snapshot", *fleet_args(tier2), env={"SOURCE_DATE_EPOCH": epoch(4, 1)})
    assert both.stdout == alone.stdout
    assert json.loads(pending.stdout)["rows"][1]["integrations"]["ares"]["status"] == "ok"


def test_a_promotion_made_while_the_probes_ran_never_refuses_their_batch(
    tier2: Fleet, petrova: Petrova
) -> None:
    _day(petrova, tier2, 0)
    for n in (1, 2):
        _day(petrova, tier2, n, kahn_hq__ares="failing")
    _day(petrova, tier2, 3)
    assert _promote(petrova, tier2, day(4, 0.2)).exit_code == 0  # 07:12, during the run
    _day(petrova, tier2, 4)  # outcomes observed at 07:00, recorded at 07:06
    ledger = json.loads((tier2.state_dir / "kahn-hq.yaml").read_bytes())
    assert "by" not in ledger["integrations"]["ares"]["history"][-1]  # not copied yet
    cell = _ares(petrova, tier2, epoch(4, 1))
    assert cell["status"] == "ok" and "needs_human" not in cell  # but applied, in order


def test_a_linked_promotions_folder_is_refused(
    tier2: Fleet, petrova: Petrova, tmp_path: Path
) -> None:
    _day(petrova, tier2, 0)
    for n in (1, 2):
        _day(petrova, tier2, n, kahn_hq__ares="failing")
    _day(petrova, tier2, 3)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tier2.state_dir / "promotions").symlink_to(elsewhere)
    run = _promote(petrova, tier2, day(3, 1))
    assert run.exit_code == 2 and "UNSAFE_PATH" in run.stderr
    assert list(elsewhere.iterdir()) == []
    snap = petrova("snapshot", *fleet_args(tier2), env={"SOURCE_DATE_EPOCH": epoch(3, 2)})
    codes = {w["code"] for w in json.loads(snap.stdout)["warnings"] if w["slug"] == "kahn-hq"}
    assert "STATE_UNREADABLE" in codes  # a linked folder is never read either


def test_a_linked_promotions_file_is_refused_and_the_other_repos_read_as_usual(
    tier2: Fleet, petrova: Petrova, tmp_path: Path
) -> None:
    """The snapshot lists the promotions folder once: a repo whose file is there is still
    read the careful way (a link refused), and a repo without one reads no file."""
    _day(petrova, tier2, 0)
    before = petrova("snapshot", *fleet_args(tier2), env={"SOURCE_DATE_EPOCH": epoch(0, 1)})
    target = tmp_path / "promotions.yaml"
    target.write_text("schema_version: 1\nslug: kahn-hq\npromotions: []\n")
    (tier2.state_dir / "promotions").mkdir()
    (tier2.state_dir / "promotions" / "kahn-hq.yaml").symlink_to(target)
    snap = petrova("snapshot", *fleet_args(tier2), env={"SOURCE_DATE_EPOCH": epoch(0, 1)})
    by_slug: dict[str, set[str]] = {}
    for w in json.loads(snap.stdout)["warnings"]:
        by_slug.setdefault(w["slug"], set()).add(w["code"])
    assert "STATE_UNREADABLE" in by_slug["kahn-hq"]
    rows = {r["slug"]: r for r in json.loads(snap.stdout)["rows"]}
    old = {r["slug"]: r for r in json.loads(before.stdout)["rows"]}
    others = [slug for slug in rows if slug != "kahn-hq"]
    assert others and all(rows[s] == old[s] for s in others)
