"""The ledger's rules (hysteresis, promotion), its replay check on load, and its file format."""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import petrova.ledger.rules
import petrova.ledger.store
from petrova.documents.catalogue import Catalogue, load_catalogue
from petrova.errors import NothingToPromote, PromotionInvalid, StateInvalid
from petrova.files.yaml_strict import parse_yaml
from petrova.ledger.rules import Observation, apply_outcome, observe, observed_status, promote
from petrova.ledger.store import load_ledger, parse_ledger, read_observations, render_ledger
from petrova.models import HISTORY_LIMIT, Ledger, LedgerCell, ProbeEntry, format_timestamp
from tests.conftest import CATALOGUE, ROOT, Fleet, Petrova, examples
from tests.tierfleet import day, epoch, fleet_args, migrate_tier2, state_args

T0 = datetime(2026, 11, 1, tzinfo=UTC)
RANK = {"failing": 0, "degraded": 1, "ok": 2}
PROMOTE = "promote"
CATALOGUE_OBJ = load_catalogue(CATALOGUE)


def _at(step: int) -> str:
    return (T0 + timedelta(hours=step)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _run(events: Sequence[str]) -> list[LedgerCell]:
    """Every cell state along the way; refused promotions leave the cell as it was."""
    cell = LedgerCell()
    states = [cell]
    for step, event in enumerate(events):
        if event == PROMOTE:
            with contextlib.suppress(NothingToPromote):  # refused: the cell stays
                cell = promote(cell, "human:ada", "checked by hand", _at(step))
        else:
            cell = apply_outcome(cell, ProbeEntry(at=_at(step), outcome=event))  # type: ignore[arg-type]
        states.append(cell)
    return states


def _reference(events: Sequence[str]) -> tuple[str, bool]:
    """SPEC §6 read afresh: runs of non-ok outcomes demote (2 from ok, 3 more from
    degraded); unreachable and not_applicable neither extend nor break a run; only a
    promotion lifts. Returns (status, needs_human)."""
    status, run, flag = "pending", 0, False
    for event in events:
        if event == PROMOTE:
            if status == "pending" or (status == "ok" and not flag and run == 0):
                continue
            status, run, flag = "ok", 0, False
        elif event == "unreachable":
            continue
        elif status == "pending":
            status = event
        elif event == "ok":
            run, flag = 0, status != "ok"
        elif event == "not_applicable":
            flag = status != "not_applicable"
        elif status == "not_applicable":
            flag = True
        else:
            flag = False
            run += 1
            if (status, run) in (("ok", 2), ("degraded", 3)):
                status, run = {"ok": "degraded", "degraded": "failing"}[status], 0
            elif status == "failing":
                run = 0
    return status, flag


OUTCOME = st.sampled_from(["ok", "degraded", "failing", "unreachable", "not_applicable"])
EVENTS = st.lists(st.one_of(OUTCOME, OUTCOME, OUTCOME, st.just(PROMOTE)), max_size=45)


@settings(max_examples=examples(400), deadline=None)
@given(EVENTS)
def test_hysteresis_matches_the_reference_and_never_rises_without_a_promote(
    events: list[str],
) -> None:
    states = _run(events)
    final = states[-1]
    assert (final.current_status, final.needs_human) == _reference(events)
    for event, before, after in zip(events, states[:-1], states[1:], strict=True):
        if event == PROMOTE or before.current_status == "pending":
            continue
        if before.current_status == "not_applicable" or after.current_status == "not_applicable":
            assert after.current_status == before.current_status  # never sideways either
            continue
        assert RANK[after.current_status] <= RANK[before.current_status]
    assert len(final.history) == min(len(events) - _refused(events, states), HISTORY_LIMIT)


def _refused(events: Sequence[str], states: Sequence[LedgerCell]) -> int:
    return sum(
        1
        for event, before, after in zip(events, states[:-1], states[1:], strict=True)
        if event == PROMOTE and before == after
    )


@settings(max_examples=examples(300), deadline=None)
@given(EVENTS)
def test_every_ledger_the_rules_write_reads_back(events: list[str]) -> None:
    """The replay check accepts whatever the rules produce, capped history included."""
    cell = _run(events)[-1]
    ledger = Ledger(schema_version=1, slug="kahn-hq", integrations={"ares": cell})
    data = render_ledger(ledger)
    assert (
        parse_ledger(parse_yaml(data.decode(), "x.yaml"), CATALOGUE_OBJ, slug="kahn-hq") == ledger
    )


@settings(max_examples=examples(300), deadline=None)
@given(EVENTS.filter(lambda e: 0 < len(e) < HISTORY_LIMIT), st.sampled_from(list(RANK)))
def test_a_status_edited_by_hand_is_refused(events: list[str], forged: str) -> None:
    cell = _run(events)[-1]
    if cell.current_status == forged:
        return
    text = json.loads(
        render_ledger(Ledger(schema_version=1, slug="kahn-hq", integrations={"ares": cell}))
    )
    text["integrations"]["ares"]["current_status"] = forged
    with pytest.raises(StateInvalid):
        parse_ledger(parse_yaml(json.dumps(text), "x.yaml"), CATALOGUE_OBJ, slug="kahn-hq")


def test_demotion_steps() -> None:
    states = _run(["ok", "failing", "degraded", "failing", "failing", "degraded", "ok"])
    assert [(s.current_status, s.streak, s.needs_human) for s in states] == [
        ("pending", 0, False),
        ("ok", 0, False),
        ("ok", 1, False),
        ("degraded", 0, False),
        ("degraded", 1, False),
        ("degraded", 2, False),
        ("failing", 0, False),
        ("failing", 0, True),  # a recovery: recorded, flagged, not applied
    ]
    assert states[6].status_since == _at(5)
    assert states[7].ok_since is None


def test_ok_resets_the_streak_and_unreachable_does_not_touch_it() -> None:
    states = _run(["ok", "failing", "unreachable", "ok", "failing", "unreachable", "failing"])
    assert [s.current_status for s in states[1:]] == ["ok"] * 6 + ["degraded"]
    assert [s.streak for s in states[1:]] == [0, 1, 1, 0, 1, 1, 0]
    assert states[3].last_verified_at == _at(1)  # unreachable is not a verification
    assert [s.ok_since for s in states[1:5]] == [_at(0), None, None, _at(3)]


def test_first_outcome_sets_the_status_and_not_applicable_needs_a_human() -> None:
    for outcome in ("ok", "degraded", "failing", "not_applicable"):
        assert _run([outcome])[-1].current_status == outcome
    assert _run(["unreachable"])[-1].current_status == "pending"
    cell = _run(["ok", "not_applicable"])[-1]
    assert (cell.current_status, cell.needs_human, cell.ok_since) == ("ok", True, None)
    assert _run(["ok", "not_applicable", "ok"])[-1].needs_human is False
    assert _run(["not_applicable", "failing"])[-1].current_status == "not_applicable"
    assert _run(["not_applicable", "failing"])[-1].needs_human is True


def test_promote_rules() -> None:
    failing = _run(["ok", "failing", "failing", "failing", "failing", "failing", "ok"])[-1]
    lifted = promote(failing, "human:ada", "fixed the token", _at(10))
    assert (lifted.current_status, lifted.needs_human, lifted.streak) == ("ok", False, 0)
    assert (lifted.status_since, lifted.ok_since) == (_at(10), _at(10))
    assert lifted.last_verified_at == failing.last_verified_at  # a promotion is not a probe
    with pytest.raises(NothingToPromote, match="already ok"):
        promote(lifted, "human:ada", "again", _at(11))
    with pytest.raises(NothingToPromote, match="pending"):
        promote(LedgerCell(), "human:ada", "why", _at(1))
    with pytest.raises(PromotionInvalid) as caught:
        promote(failing, "ada", "", _at(10))
    assert [p.location.field for p in caught.value.problems] == ["--by", "--reason"]


def test_history_keeps_the_last_twenty() -> None:
    states = _run(["ok"] * 25)
    assert len(states[-1].history) == HISTORY_LIMIT
    assert states[-1].history[0].at == _at(5)
    assert states[-1].ok_since == _at(0)  # the gate's clock survives the cap


# --- reading: the replay check and its messages -------------------------------------------


def _doc(cells: dict[str, Any]) -> str:
    return json.dumps({"schema_version": 1, "slug": "kahn-hq", "integrations": cells}, indent=2)


def _load(tmp_path: Path, text: str) -> Ledger:
    path = tmp_path / "kahn-hq.yaml"
    path.write_text(text)
    return load_ledger(path, CATALOGUE_OBJ, slug="kahn-hq")


def test_ok_with_two_newer_failing_outcomes_is_refused_at_its_line(tmp_path: Path) -> None:
    text = """schema_version: 1
slug: kahn-hq
integrations:
  ares:
    current_status: ok
    last_verified_at: '2026-11-03T00:00:00Z'
    history:
      - {at: '2026-11-01T00:00:00Z', outcome: ok}
      - {at: '2026-11-02T00:00:00Z', outcome: failing}
      - {at: '2026-11-03T00:00:00Z', outcome: failing}
"""
    with pytest.raises(StateInvalid) as caught:
        _load(tmp_path, text)
    [problem] = caught.value.problems
    assert str(problem.location).endswith("kahn-hq.yaml:5:21: integrations.ares.current_status")
    assert problem.message.startswith(
        "'ok' does not follow from the recorded history, which gives 'degraded'"
    )


def test_absent_derived_fields_are_filled_from_the_history(tmp_path: Path) -> None:
    text = """schema_version: 1
slug: kahn-hq
integrations:
  ares:
    current_status: degraded
    history:
      - {at: '2026-11-01T00:00:00Z', outcome: ok}
      - {at: '2026-11-02T00:00:00Z', outcome: failing}
      - {at: '2026-11-03T00:00:00Z', outcome: degraded}
"""
    cell = _load(tmp_path, text).integrations["ares"]
    assert cell.status_since == cell.last_verified_at == "2026-11-03T00:00:00Z"
    assert (cell.streak, cell.needs_human, cell.ok_since) == (0, False, None)


@pytest.mark.parametrize(
    ("cell", "field", "message"),
    [
        (
            {"current_status": "pending", "history": [{"at": _at(0), "outcome": "ok"}]},
            "integrations.ares.current_status",
            "'pending' does not follow from the recorded history, which gives 'ok'",
        ),
        (
            {
                "current_status": "ok",
                "needs_human": True,
                "history": [{"at": _at(0), "outcome": "ok"}],
            },
            "integrations.ares.needs_human",
            "True does not follow from the recorded history, which gives False",
        ),
        (
            {"current_status": "stale"},
            "integrations.ares.current_status",
            "'stale': input should be 'pending', 'ok', 'degraded', 'failing' or 'not_applicable'",
        ),
        (
            {
                "current_status": "ok",
                "history": [{"at": _at(1), "outcome": "ok"}, {"at": _at(0), "outcome": "ok"}],
            },
            "integrations.ares.history[1].at",
            f"{_at(0)} is earlier than the entry before it ({_at(1)})",
        ),
        (
            {
                "current_status": "ok",
                "history": [{"at": _at(0), "by": "human:ada", "reason": "r"}],
            },
            "integrations.ares.history[0]",
            "a promotion cannot happen here: the cell is pending",
        ),
        (
            {"history": [{"at": _at(0), "outcome": "fine"}]},
            "integrations.ares.history[0].outcome",
            "'fine': input should be 'ok'",
        ),
        (
            {"history": [{"at": _at(0), "outcome": "ok"}] * (HISTORY_LIMIT + 1)},
            "integrations.ares.history",
            "list should have at most 20 items",
        ),
    ],
)
def test_impossible_ledgers(tmp_path: Path, cell: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(StateInvalid) as caught:
        _load(tmp_path, _doc({"ares": cell}))
    [problem] = caught.value.problems
    assert problem.location.field == field
    assert problem.location.line is not None
    assert message in problem.message


def test_capped_history_accepts_any_plausible_start(tmp_path: Path) -> None:
    # Twenty failing outcomes: the cell may have started anywhere; failing fits.
    history = [{"at": _at(i), "outcome": "failing"} for i in range(HISTORY_LIMIT)]
    cell = {"current_status": "failing", "status_since": _at(0), "history": history}
    assert _load(tmp_path, _doc({"ares": cell})).integrations["ares"].current_status == "failing"
    # ...but ok does not, whatever came before (not_applicable would have stayed).
    with pytest.raises(StateInvalid, match="which gives 'failing' or 'not_applicable'"):
        _load(tmp_path, _doc({"ares": {**cell, "current_status": "ok"}}))


def test_legacy_ids_are_mapped_and_errors_point_at_the_key_in_the_file(tmp_path: Path) -> None:
    schema = json.loads(CATALOGUE.read_text())
    schema["$defs"]["integration_lore_cairnet"]["x-legacy-ids"] = ["lore"]
    catalogue_path = tmp_path / "contract.schema.json"
    catalogue_path.write_text(json.dumps(schema))
    catalogue = load_catalogue(catalogue_path)
    good = {"history": [{"at": _at(0), "outcome": "ok"}], "current_status": "ok"}
    path = tmp_path / "kahn-hq.yaml"
    path.write_text(_doc({"lore": good}))
    ledger = load_ledger(path, catalogue, slug="kahn-hq")
    assert list(ledger.integrations) == ["lore_cairnet"]
    assert b'"lore_cairnet"' in render_ledger(ledger)
    path.write_text(_doc({"lore": {**good, "current_status": "failing"}}))
    with pytest.raises(StateInvalid) as caught:
        load_ledger(path, catalogue, slug="kahn-hq")
    assert caught.value.problems[0].location.field == "integrations.lore.current_status"
    path.write_text(_doc({"lore": {**good, "streak": -1}}))
    with pytest.raises(StateInvalid) as caught:
        load_ledger(path, catalogue, slug="kahn-hq")
    assert caught.value.problems[0].location.field == "integrations.lore.streak"


def test_fixture_ledgers_are_consistent() -> None:
    state = ROOT / "contracts" / "fixtures" / "all-statuses" / "state"
    crumb = load_ledger(state / "alpha-hq.yaml", CATALOGUE_OBJ, slug="alpha-hq").integrations[
        "crumb"
    ]
    assert (crumb.current_status, crumb.needs_human) == ("failing", True)
    assert crumb.status_since == "2026-11-25T06:00:00Z"


def test_staleness_is_measured_from_the_newest_conclusive_outcome() -> None:
    cell = _run(["ok", "unreachable"])[-1]
    window = timedelta(hours=72)
    assert observed_status(cell, now=T0 + timedelta(hours=72), stale_after=window) == "ok"
    assert observed_status(cell, now=T0 + timedelta(hours=73), stale_after=window) == "stale"
    na = _run(["not_applicable"])[-1]
    assert observed_status(na, now=T0 + timedelta(days=99), stale_after=window) == "not_applicable"


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("- just\n- a list\n", None, "a ledger must be a mapping with schema_version"),
        (
            _doc({}).replace('"kahn-hq"', '"stratt-hq"'),
            "slug",
            "ledger says slug 'stratt-hq' but is the file for 'kahn-hq'",
        ),
        (
            _doc({"jenkins": {}}),
            "integrations.jenkins",
            "'jenkins' is not an integration id in the catalogue; allowed: ares, traceo, crumb",
        ),
        (_doc({}).replace('"schema_version": 1', '"schema_version": 2'), "schema_version", "2"),
    ],
)
def test_malformed_ledgers(tmp_path: Path, text: str, field: str | None, message: str) -> None:
    with pytest.raises(StateInvalid) as caught:
        _load(tmp_path, text)
    [problem] = caught.value.problems
    assert (problem.location.field or None) == field
    assert message in problem.message


def test_a_directory_is_not_a_ledger(tmp_path: Path) -> None:
    (tmp_path / "kahn-hq.yaml").mkdir()
    with pytest.raises(StateInvalid, match="is a directory"):
        load_ledger(tmp_path / "kahn-hq.yaml", CATALOGUE_OBJ, slug="kahn-hq")


def test_fields_that_fit_only_apart_are_refused(tmp_path: Path) -> None:
    # A capped history of failing outcomes allows not_applicable (with needs_human) and
    # failing (without), but not not_applicable without needs_human.
    history = [{"at": _at(i), "outcome": "failing"} for i in range(HISTORY_LIMIT)]
    cell = {"current_status": "not_applicable", "needs_human": False, "history": history}
    with pytest.raises(StateInvalid) as caught:
        _load(tmp_path, _doc({"ares": cell}))
    [problem] = caught.value.problems
    assert problem.location.field == "integrations.ares.current_status"
    assert problem.message.startswith("these fields together do not follow")


def test_legacy_key_errors_inside_history(tmp_path: Path) -> None:
    schema = json.loads(CATALOGUE.read_text())
    schema["$defs"]["integration_lore_cairnet"]["x-legacy-ids"] = ["lore"]
    catalogue_path = tmp_path / "contract.schema.json"
    catalogue_path.write_text(json.dumps(schema))
    path = tmp_path / "kahn-hq.yaml"
    path.write_text(_doc({"lore": {"history": [{"at": "soon", "outcome": "ok"}]}}))
    with pytest.raises(StateInvalid) as caught:
        load_ledger(path, load_catalogue(catalogue_path), slug="kahn-hq")
    [problem] = caught.value.problems
    assert problem.location.field == "integrations.lore.history[0].at"
    assert problem.location.line == 8  # the "at" inside the first history entry


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    )
)
def test_timestamp_shortcut_agrees_with_parsing(moment: datetime) -> None:
    """The canonical-form shortcut accepts exactly what a full parse would keep as is."""
    text = moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    stored = ProbeEntry(at=text, outcome="ok").at
    assert stored == format_timestamp(moment.replace(microsecond=0))
    for bad in ("2026-02-30T00:00:00Z", "2026-04-31T00:00:00Z", "2026-01-01T24:00:00Z"):
        with pytest.raises(ValueError):
            ProbeEntry(at=bad, outcome="ok")
    assert ProbeEntry(at="2024-02-29T23:59:59Z", outcome="ok").at == "2024-02-29T23:59:59Z"


# --- the seal: reads that skip the replay ------------------------------------------------


def _full(path: Path, catalogue: Catalogue = CATALOGUE_OBJ, slug: str = "kahn-hq") -> Any:
    """The observations the full check gives, whatever the seal says."""
    ledger = load_ledger(path, catalogue, slug=slug)
    return {i: observe(cell) for i, cell in ledger.integrations.items()}


def _sealed(tmp_path: Path, *cells: Sequence[str]) -> Path:
    """A ledger the rules wrote: one cell per list of events, in catalogue order."""
    integrations = {
        i: _run(events)[-1] for i, events in zip(CATALOGUE_OBJ.ids, cells, strict=False)
    }
    path = tmp_path / "kahn-hq.yaml"
    ledger = Ledger(schema_version=1, slug="kahn-hq", integrations=integrations)
    path.write_bytes(render_ledger(ledger))
    return path


def _refuse_replay(*_: object) -> None:
    raise AssertionError("the history was replayed")


def _stdlib_seal(document: dict[str, Any], domain: bytes = b"petrova-ledger-rules-1\0") -> str:
    """The seal as state.schema.json describes it, computed without petrova."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(domain + canonical.encode()).hexdigest()


def test_the_seal_is_written_last_and_is_deterministic(tmp_path: Path) -> None:
    path = _sealed(tmp_path, ["ok", "failing", "degraded"], ["not_applicable"])
    data = json.loads(path.read_bytes())
    assert list(data) == ["schema_version", "slug", "integrations", "seal"]
    seal = data.pop("seal")
    assert seal == _stdlib_seal(data)
    (tmp_path / "again").mkdir()
    again = _sealed(tmp_path / "again", ["ok", "failing", "degraded"], ["not_applicable"])
    assert again.read_bytes() == path.read_bytes()
    # a seal held in memory is never written back: the bytes get a fresh one
    loaded = load_ledger(path, CATALOGUE_OBJ, slug="kahn-hq")
    assert loaded.seal is None
    forged = loaded.model_copy(update={"seal": "sha256:" + "0" * 64})
    assert render_ledger(forged) == path.read_bytes()


@settings(max_examples=examples(150), deadline=None)
@given(EVENTS, EVENTS, EVENTS)
def test_sealed_and_full_reads_observe_the_same(
    ares: list[str], traceo: list[str], crumb: list[str]
) -> None:
    """The fast path gives exactly what the full check gives, with or without the seal."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _sealed(Path(tmp), ares, traceo, crumb)
        full = _full(path)
        with mock.patch.object(petrova.ledger.store, "check_cell", _refuse_replay):
            fast = read_observations(path, CATALOGUE_OBJ, slug="kahn-hq")
        assert list(fast.items()) == list(full.items())
        assert all(isinstance(seen, Observation) for seen in fast.values())
        data = json.loads(path.read_bytes())
        del data["seal"]
        path.write_text(json.dumps(data, indent=2))
        assert list(read_observations(path, CATALOGUE_OBJ, slug="kahn-hq").items()) == list(
            full.items()
        )


def test_a_reindented_sealed_ledger_still_skips_the_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _sealed(tmp_path, ["ok", "failing"], ["degraded", PROMOTE, "unreachable"])
    expected = _full(path)
    data = json.loads(path.read_bytes())
    reordered = {key: data[key] for key in reversed(list(data))}
    path.write_text(json.dumps(reordered, indent=5, sort_keys=True) + "\n\n")
    monkeypatch.setattr(petrova.ledger.store, "check_cell", _refuse_replay)
    assert read_observations(path, CATALOGUE_OBJ, slug="kahn-hq") == expected
    del data["seal"]  # the same ledger unsealed is replayed: the patch above does bite
    path.write_text(json.dumps(data))
    with pytest.raises(AssertionError, match="replayed"):
        read_observations(path, CATALOGUE_OBJ, slug="kahn-hq")


def _count_replays(monkeypatch: pytest.MonkeyPatch) -> list[LedgerCell]:
    seen: list[LedgerCell] = []
    check = petrova.ledger.rules.check_cell

    def spy(cell: LedgerCell) -> Any:
        seen.append(cell)
        return check(cell)

    monkeypatch.setattr(petrova.ledger.store, "check_cell", spy)
    return seen


def test_a_seal_from_other_rules_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _sealed(tmp_path, ["ok"], ["failing", "failing"])
    expected = _full(path)
    data = json.loads(path.read_bytes())
    del data["seal"]
    data["seal"] = _stdlib_seal(data, b"petrova-ledger-rules-0\0")
    path.write_text(json.dumps(data))
    replayed = _count_replays(monkeypatch)
    assert read_observations(path, CATALOGUE_OBJ, slug="kahn-hq") == expected
    assert len(replayed) == 2


def test_a_consistent_hand_edit_gets_the_full_check_and_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _sealed(tmp_path, ["ok", "failing"])
    path.write_text(path.read_text().replace('"outcome": "failing"', '"outcome": "degraded"'))
    replayed = _count_replays(monkeypatch)
    [(name, seen)] = read_observations(path, CATALOGUE_OBJ, slug="kahn-hq").items()
    assert len(replayed) == 1
    assert (name, seen.current_status, seen.newest_what) == ("ares", "ok", "degraded")


def test_an_impossible_edit_under_a_stale_seal_is_refused_at_its_line(tmp_path: Path) -> None:
    path = _sealed(tmp_path, ["ok", "failing", "failing"])
    text = path.read_text()
    assert '"seal": "sha256:' in text
    path.write_text(text.replace('"current_status": "degraded"', '"current_status": "ok"'))
    with pytest.raises(StateInvalid) as caught:
        read_observations(path, CATALOGUE_OBJ, slug="kahn-hq")
    [problem] = caught.value.problems
    assert str(problem.location).endswith("kahn-hq.yaml:6:25: integrations.ares.current_status")
    assert "'ok' does not follow from the recorded history" in problem.message


def _reseal(path: Path, edit: Any) -> None:
    """Edit a ledger and seal the result, as only a deliberate forger would."""
    data = json.loads(path.read_bytes())
    del data["seal"]
    data = edit(data)
    data["seal"] = _stdlib_seal(data)
    path.write_text(json.dumps(data, indent=2))


def test_sealed_ledgers_with_old_ids_or_for_another_repo_take_the_full_path(
    tmp_path: Path,
) -> None:
    schema = json.loads(CATALOGUE.read_text())
    schema["$defs"]["integration_ares"]["x-legacy-ids"] = ["ares-old"]
    catalogue_path = tmp_path / "contract.schema.json"
    catalogue_path.write_text(json.dumps(schema))
    catalogue = load_catalogue(catalogue_path)
    path = _sealed(tmp_path, ["ok"])
    expected = _full(path)

    def rename(data: dict[str, Any]) -> dict[str, Any]:
        data["integrations"] = {"ares-old": data["integrations"]["ares"]}
        return data

    _reseal(path, rename)
    assert read_observations(path, catalogue, slug="kahn-hq") == expected
    moved = path.rename(tmp_path / "stratt-hq.yaml")
    with pytest.raises(StateInvalid) as caught:
        read_observations(moved, catalogue, slug="stratt-hq")
    assert caught.value.problems[0].location.field == "slug"


def test_a_malformed_seal_is_refused_at_its_line(tmp_path: Path) -> None:
    path = _sealed(tmp_path, ["ok"])
    path.write_text(path.read_text().replace('"sha256:', '"md5:'))
    with pytest.raises(StateInvalid) as caught:
        read_observations(path, CATALOGUE_OBJ, slug="kahn-hq")
    [problem] = caught.value.problems
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if '"seal"' in text)
    assert (problem.location.field, problem.location.line) == ("seal", line)
    assert "should match pattern" in problem.message


def test_a_sealed_shape_petrova_never_writes_falls_back_to_the_full_check(
    tmp_path: Path,
) -> None:
    path = _sealed(tmp_path, ["ok"])

    def break_cell(data: dict[str, Any]) -> dict[str, Any]:
        data["integrations"]["ares"] = ["not", "a", "cell"]
        return data

    _reseal(path, break_cell)
    with pytest.raises(StateInvalid) as caught:
        read_observations(path, CATALOGUE_OBJ, slug="kahn-hq")
    assert caught.value.problems[0].location.field == "integrations.ares"


def test_unsealed_and_missing_ledgers_read_as_before(tmp_path: Path) -> None:
    state = ROOT / "contracts" / "fixtures" / "all-statuses" / "state"
    for path in sorted(state.glob("*.yaml")):
        assert b'"seal"' not in path.read_bytes()
        slug = path.name.removesuffix(".yaml")
        assert read_observations(path, CATALOGUE_OBJ, slug=slug) == _full(path, slug=slug)
    path = tmp_path / "kahn-hq.yaml"
    path.write_text(
        "schema_version: 1\nslug: kahn-hq\nintegrations:\n  ares:\n    current_status: ok\n"
        "    history: [{at: '2026-11-01T00:00:00Z', outcome: ok}]\n"
    )
    [(name, seen)] = read_observations(path, CATALOGUE_OBJ, slug="kahn-hq").items()
    assert (name, seen.current_status, seen.ok_since) == ("ares", "ok", "2026-11-01T00:00:00Z")
    path.write_text('{"schema_version": 1, "slug": "kahn-hq", "seal": "sha256:\n')
    with pytest.raises(StateInvalid) as caught:
        read_observations(path, CATALOGUE_OBJ, slug="kahn-hq")
    assert "end of stream" in caught.value.problems[0].message
    assert caught.value.problems[0].location.line == 2
    path.unlink()
    with pytest.raises(FileNotFoundError):
        read_observations(tmp_path / "kahn-hq.yaml", CATALOGUE_OBJ, slug="kahn-hq")
    (tmp_path / "kahn-hq.yaml").mkdir()
    with pytest.raises(StateInvalid, match="is a directory"):
        read_observations(tmp_path / "kahn-hq.yaml", CATALOGUE_OBJ, slug="kahn-hq")


def test_a_hand_edit_under_the_seal_is_refused_through_the_cli(
    fleet: Fleet, petrova: Petrova
) -> None:
    migrate_tier2(fleet)
    for n, outcome in enumerate(["ok", "failing"]):
        run = petrova(
            "state", "record", "kahn-hq", "ares", outcome, "--at", day(n), "--now", day(n),
            *state_args(fleet),
        )  # fmt: skip
        assert run.exit_code == 0, run.stderr
    path = fleet.state_dir / "kahn-hq.yaml"
    text = path.read_text()
    assert '"seal": "sha256:' in text
    path.write_text(text.replace('"streak": 1', '"streak": 0'))
    line = path.read_text().splitlines().index('      "streak": 0,') + 1
    before = path.read_bytes()
    run = petrova(
        "state", "record", "kahn-hq", "ares", "ok", "--at", day(2), "--now", day(2),
        *state_args(fleet),
    )  # fmt: skip
    assert run.exit_code == 2
    assert run.stderr.startswith(
        f"petrova: STATE_INVALID: {path}:{line}:17: integrations.ares.streak: "
        "0 does not follow from the recorded history, which gives 1"
    )
    assert path.read_bytes() == before
    snap = petrova("snapshot", *fleet_args(fleet), env={"SOURCE_DATE_EPOCH": epoch(2)})
    assert snap.exit_code == 0, snap.stderr
    [warning] = [w for w in json.loads(snap.stdout)["warnings"] if w["slug"] == "kahn-hq"]
    assert warning["code"] == "STATE_UNREADABLE"
    assert f"kahn-hq.yaml:{line}:17: integrations.ares.streak" in warning["message"]
    assert path.read_bytes() == before
