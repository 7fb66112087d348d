"""The pure rules of `petrova notify`: conditions, digests and transitions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from petrova.models import Snapshot, SnapshotTotals
from petrova.notify.conditions import (
    CellView,
    FleetView,
    Outcome,
    cell_transition,
    conditions,
    count_sync_failures,
)


def _cell(status: str, *, human: bool = False, history: tuple[Outcome, ...] = ()) -> CellView:
    return CellView("kahn-hq", "ares", 2, status, human, "2026-11-02T06:00:00Z", history)


def _view(*cells: CellView) -> FleetView:
    snap = Snapshot(
        generated_at="2026-11-26T07:00:00Z",
        generator="petrova test",
        integration_ids=["ares"],
        totals=SnapshotTotals(repos=1, migrated=1),
        warnings=[],
        rows=[],
    )
    return FleetView(snap, cells)


def test_the_same_failure_on_a_new_day_keeps_the_digest() -> None:
    day3 = (Outcome("2026-11-03T06:00:00Z", "failing", "gone"),)
    day4 = (*day3, Outcome("2026-11-04T06:00:00Z", "failing", "gone"))
    day5 = (*day4, Outcome("2026-11-05T06:00:00Z", "failing", "moved"))
    (a,) = conditions(_view(_cell("failing", history=day3)))
    (b,) = conditions(_view(_cell("failing", history=day4)))
    (c,) = conditions(_view(_cell("failing", history=day5)))
    assert a.key == b.key == c.key == "unhealthy/kahn-hq/ares"
    assert a.digest == b.digest != c.digest


def test_a_recovery_awaiting_a_human_is_one_condition_with_the_promote_command() -> None:
    (only,) = conditions(_view(_cell("failing", human=True)))
    assert only.kind == "awaiting_promotion"
    assert only.command is not None and only.command.startswith(
        "petrova state promote kahn-hq ares"
    )


def test_healthy_and_pending_cells_need_no_one() -> None:
    assert conditions(_view(_cell("ok"), _cell("pending"), _cell("not_applicable"))) == []


def test_transitions() -> None:
    assert cell_transition(_cell("ok"), None) is not None  # remembered...
    assert cell_transition(_cell("ok"), None).text == ""  # type: ignore[union-attr]  # ...not told
    demoted = cell_transition(_cell("degraded"), "ok")
    assert demoted is not None and "(demoted)" in demoted.text
    assert cell_transition(_cell("degraded"), "degraded") is None
    waiting = cell_transition(_cell("degraded", human=True), "degraded")
    assert waiting is not None and "awaiting a human" in waiting.text
    back = cell_transition(_cell("ok"), "degraded+human")
    assert back is not None and "promoted" in back.text
    assert cell_transition(_cell("failing"), "degraded").text.endswith("(demoted)")  # type: ignore[union-attr]


@given(st.lists(st.tuples(st.sampled_from(["ok", "failed"]), st.integers(0, 5)), max_size=30))
def test_sync_failures_count_runs_not_re_reads(runs: list[tuple[str, int]]) -> None:
    """Reading the same manifest record again never counts again; ok resets."""
    state = None
    expected = 0
    last: tuple[str, str] | None = None
    for i, (status, repeats) in enumerate(runs):
        at = f"2026-11-{(i % 28) + 1:02d}T{i % 24:02d}:00:00Z"
        if (status, at) != last:
            expected = expected + 1 if status == "failed" else 0
        last = (status, at)
        for _ in range(repeats + 1):
            state = count_sync_failures(state, status=status, synced_at=at)
        assert state["failed_runs"] == expected
