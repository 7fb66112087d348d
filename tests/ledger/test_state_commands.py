"""`petrova state record` and `petrova state promote`: what probes and humans write."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from petrova.files.lock import file_lock
from tests.conftest import PETROVA_BIN, Fleet, MachineClock, Petrova, Spawn, _clean_env
from tests.tierfleet import batch, day, epoch, fleet_args, migrate_tier2, state_args

LEDGER = "state/kahn-hq.yaml"


def _files(fleet: Fleet) -> dict[str, bytes]:
    """Every non-lock file under the fleet, to assert that nothing changed."""
    return {
        str(p.relative_to(fleet.root)): p.read_bytes()
        for p in sorted(fleet.root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


@pytest.fixture(autouse=True)
def _the_machine_is_at_day_30(machine_clock: MachineClock) -> None:
    """These ledgers are written on the tier story's day 30 (``--now``), after the suite's
    fixed clock: the machine's clock is there too, or the guard would call them a replay."""
    machine_clock(day(30))


def _record(
    petrova: Petrova, fleet: Fleet, *args: str, now: str | None = None
) -> tuple[int, str, str]:
    run = petrova("state", "record", *args, "--now", now or day(30), *state_args(fleet))
    return run.exit_code, run.stdout, run.stderr


def test_record_writes_the_ledger_bytes(fleet: Fleet, petrova: Petrova) -> None:
    code, out, err = _record(
        petrova,
        fleet,
        "kahn-hq",
        "ares",
        "ok",
        "--at",
        "2026-11-01T07:00:00+01:00",
        "--detail",
        "pipeline green",
        "--evidence-sha",
        "3f9a0c1",
    )
    assert code == 0, err
    assert out == "kahn-hq ares: ok at 2026-11-01T06:00:00Z: pending -> ok\n"
    assert err == f"create {fleet.state_dir / 'kahn-hq.yaml'}\n"
    assert (fleet.root / LEDGER).read_text() == (
        "{\n"
        '  "schema_version": 1,\n'
        '  "slug": "kahn-hq",\n'
        '  "integrations": {\n'
        '    "ares": {\n'
        '      "current_status": "ok",\n'
        '      "status_since": "2026-11-01T06:00:00Z",\n'
        '      "last_verified_at": "2026-11-01T06:00:00Z",\n'
        '      "ok_since": "2026-11-01T06:00:00Z",\n'
        '      "needs_human": false,\n'
        '      "streak": 0,\n'
        '      "history": [\n'
        "        {\n"
        '          "at": "2026-11-01T06:00:00Z",\n'
        '          "outcome": "ok",\n'
        '          "detail": "pipeline green",\n'
        '          "evidence_sha": "3f9a0c1"\n'
        "        }\n"
        "      ]\n"
        "    }\n"
        "  },\n"
        '  "seal": "sha256:1c16fa883154902576fcdf98f9cc3237a9fbd21ddced61c6bc79ead17c1f2f8e"\n'
        "}\n"
    )


def test_hysteresis_through_the_command(fleet: Fleet, petrova_inprocess: Petrova) -> None:
    lines = []
    for n, outcome in enumerate(
        ["ok", "failing", "degraded", "failing", "failing", "failing", "ok"]
    ):
        code, out, err = _record(
            petrova_inprocess, fleet, "kahn-hq", "traceo", outcome, "--at", day(n)
        )
        assert code == 0, err
        lines.append(out.split(": ", 2)[2].rstrip("\n"))
    assert lines == [
        "pending -> ok",
        "stays ok (1 of 2 non-ok outcomes toward degraded)",
        "ok -> degraded",
        "stays degraded (1 of 3 non-ok outcomes toward failing)",
        "stays degraded (2 of 3 non-ok outcomes toward failing)",
        "degraded -> failing",
        "stays failing; needs a human: petrova state promote kahn-hq traceo --by human:NAME "
        "--reason TEXT",
    ]
    code, out, _ = _record(petrova_inprocess, fleet, "kahn-hq", "traceo", "unreachable", "--json")
    assert code == 0
    [change] = json.loads(out)
    assert change == {
        "slug": "kahn-hq",
        "integration": "traceo",
        "entry": {"at": day(30), "outcome": "unreachable"},
        "before": "failing",
        "status": "failing",
        "status_since": day(5),
        "last_verified_at": day(6),
        "ok_since": None,
        "needs_human": True,
        "streak": 0,
    }


def test_promote(fleet: Fleet, petrova: Petrova) -> None:
    for n, outcome in enumerate(["ok", "failing", "failing", "ok"]):
        assert _record(petrova, fleet, "kahn-hq", "crumb", outcome, "--at", day(n))[0] == 0
    run = petrova(
        "state", "promote", "kahn-hq", "crumb", "--by", "human:grace",
        "--reason", "cards regenerated", "--now", day(4), *state_args(fleet),
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert run.stdout == (
        "kahn-hq crumb: promoted by human:grace at 2026-11-05T06:00:00Z: degraded -> ok\n"
    )
    # The humans' file holds it; the bot's ledger is not touched by a human (SPEC §12)...
    promotions = (fleet.root / "state" / "promotions" / "kahn-hq.yaml").read_text()
    assert promotions.endswith(
        '  - integration: "crumb"\n    at: "2026-11-05T06:00:00Z"\n'
        '    by: "human:grace"\n    reason: "cards regenerated"\n'
    )
    cell = json.loads((fleet.root / LEDGER).read_text())["integrations"]["crumb"]
    assert cell["current_status"] == "degraded"
    # ... and the next outcome recorded is applied after it, the promotion copied in.
    assert _record(petrova, fleet, "kahn-hq", "crumb", "ok", "--at", day(5))[0] == 0
    cell = json.loads((fleet.root / LEDGER).read_text())["integrations"]["crumb"]
    assert (cell["current_status"], cell["needs_human"], cell["ok_since"]) == ("ok", False, day(4))
    assert cell["history"][-2] == {
        "at": day(4),
        "promoted_to": "ok",
        "by": "human:grace",
        "reason": "cards regenerated",
    }


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (
            ["nope-hq", "ares", "ok"],
            "REPO_NOT_IN_REGISTRY",
            "SLUG: 'nope-hq' is not in the registry",
        ),
        (
            ["kahn-hq", "jenkins", "ok"],
            "INTEGRATION_UNKNOWN",
            "INTEGRATION: 'jenkins' is not an integration id in the catalogue; valid: ares, "
            "traceo, crumb, lore_cairnet",
        ),
        (
            ["kahn-hq", "ares", "green"],
            "OUTCOME_INVALID",
            "OUTCOME: 'green' is not a probe outcome; valid: ok, degraded, failing, "
            "unreachable, not_applicable",
        ),
        (["kahn-hq", "ares", "ok", "--at", "2026-11-01 06:00"], "TIMESTAMP_INVALID", "--at: "),
        (
            ["kahn-hq", "ares", "ok", "--at", "2026-02-30T00:00:00Z"],
            "TIMESTAMP_INVALID",
            "real date",
        ),
        (
            ["kahn-hq", "ares", "ok", "--at", "2026-12-01T06:00:01Z"],
            "TIMESTAMP_IN_FUTURE",
            "--at: 2026-12-01T06:00:01Z is later than now (2026-12-01T06:00:00Z)",
        ),
        (
            ["kahn-hq", "ares", "ok", "--at", "2026-11-05T00:00:00Z"],
            "OUTCOME_OUT_OF_ORDER",
            "--at: kahn-hq ares: 2026-11-05T00:00:00Z is older than the newest entry "
            "(2026-11-06T06:00:00Z)",
        ),
        (["kahn-hq", "ares", "ok", "--detail", "x" * 201], "PROBE_INPUT_INVALID", "--detail: "),
        (["kahn-hq", "ares", "ok", "--evidence-sha", "XYZ"], "PROBE_INPUT_INVALID", "hex digits"),
        (["kahn-hq", "ares"], "USAGE_ERROR", "give SLUG INTEGRATION OUTCOME"),
        (["kahn-hq", "ares", "ok", "--from", "x.jsonl"], "USAGE_ERROR", "--from takes every"),
        (["kahn-hq", "ares", "ok", "--now", "now"], "TIMESTAMP_INVALID", "--now: 'now'"),
    ],
)
def test_record_bad_input_changes_nothing(
    fleet: Fleet, petrova: Petrova, args: list[str], code: str, needle: str
) -> None:
    assert _record(petrova, fleet, "kahn-hq", "ares", "ok", "--at", day(5))[0] == 0
    before = _files(fleet)
    run = petrova(
        "state",
        "record",
        *args,
        *(["--now", day(30)] if "--now" not in args else []),
        *state_args(fleet),
    )
    assert run.exit_code == 2
    assert run.stderr.startswith(f"petrova: {code}: "), run.stderr
    assert needle in run.stderr
    assert run.stdout == ""
    assert _files(fleet) == before


def test_hand_edited_ledger_is_refused_and_reported_by_the_snapshot(
    fleet: Fleet, petrova: Petrova
) -> None:
    migrate_tier2(fleet)
    for n, outcome in enumerate(["ok", "failing", "failing"]):
        assert _record(petrova, fleet, "kahn-hq", "ares", outcome, "--at", day(n))[0] == 0
    path = fleet.root / LEDGER
    path.write_text(
        path.read_text().replace('"current_status": "degraded"', '"current_status": "ok"')
    )
    before = _files(fleet)
    code, _, err = _record(petrova, fleet, "kahn-hq", "ares", "ok", "--at", day(3))
    assert code == 2
    assert err.startswith(
        f"petrova: STATE_INVALID: {path}:6:25: integrations.ares.current_status: "
    )
    assert "'ok' does not follow from the recorded history, which gives 'degraded'" in err
    assert _files(fleet) == before
    promote = petrova(
        "state", "promote", "kahn-hq", "ares", "--by", "human:ada", "--reason", "r",
        "--now", day(4), *state_args(fleet),
    )  # fmt: skip
    assert (promote.exit_code, promote.stderr[:30]) == (
        2,
        "petrova: STATE_INVALID: " + str(path)[:6],
    )
    assert _files(fleet) == before
    snap = petrova("snapshot", *fleet_args(fleet), env={"SOURCE_DATE_EPOCH": epoch(3)})
    assert snap.exit_code == 0
    [warning] = [w for w in json.loads(snap.stdout)["warnings"] if w["slug"] == "kahn-hq"]
    assert warning["code"] == "STATE_UNREADABLE"
    assert "integrations.ares.current_status" in warning["message"]


def test_corrupt_ledger_is_refused(fleet: Fleet, petrova: Petrova) -> None:
    fleet.write(LEDGER, '{"schema_version": 1, "slug": "kahn-hq", "integrations": {\n')
    before = _files(fleet)
    code, _, err = _record(petrova, fleet, "kahn-hq", "ares", "ok")
    assert code == 2
    assert err.startswith(f"petrova: STATE_INVALID: {fleet.root / LEDGER}:2:1: ")
    assert _files(fleet) == before


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ([], "kahn-hq ares: nothing has been observed yet"),
        (["unreachable"], "the cell is pending"),
        (["ok"], "the cell is already ok with nothing waiting for a human"),
    ],
)
def test_promote_refused(fleet: Fleet, petrova: Petrova, setup: list[str], needle: str) -> None:
    for n, outcome in enumerate(setup):
        assert _record(petrova, fleet, "kahn-hq", "ares", outcome, "--at", day(n))[0] == 0
    before = _files(fleet)
    run = petrova(
        "state", "promote", "kahn-hq", "ares", "--by", "human:ada", "--reason", "looks fine",
        "--now", day(9), *state_args(fleet),
    )  # fmt: skip
    assert run.exit_code == 2
    assert run.stderr.startswith("petrova: NOTHING_TO_PROMOTE: ")
    assert needle in run.stderr
    assert _files(fleet) == before


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--by", "ada", "--reason", "r"], "PROMOTION_INVALID", "--by: String should match"),
        (["--by", "human:ada", "--reason", ""], "PROMOTION_INVALID", "--reason: "),
        (["--reason", "r"], None, "Missing option '--by'"),
        (["--by", "human:ada", "--reason", "r", "--now", day(0)], "OUTCOME_OUT_OF_ORDER", "--now"),
    ],
)
def test_promote_bad_input(
    fleet: Fleet, petrova: Petrova, args: list[str], code: str | None, needle: str
) -> None:
    for n, outcome in enumerate(["ok", "failing", "failing"]):
        assert _record(petrova, fleet, "kahn-hq", "ares", outcome, "--at", day(n))[0] == 0
    before = _files(fleet)
    run = petrova("state", "promote", "kahn-hq", "ares", *args, *state_args(fleet))
    assert run.exit_code == 2
    if code is not None:
        assert run.stderr.startswith(f"petrova: {code}: ")
    assert needle in run.stderr
    assert _files(fleet) == before


def test_batch_from_file_and_stdin(fleet: Fleet, petrova: Petrova) -> None:
    text = batch(
        [
            {"slug": "kahn-hq", "integration": "ares", "outcome": "ok", "at": day(0)},
            {"slug": "stratt-hq", "integration": "crumb", "outcome": "degraded", "at": day(0)},
            {"slug": "kahn-hq", "integration": "ares", "outcome": "failing", "at": day(1),
             "detail": "build 41 red", "evidence_sha": None},
        ]
    )  # fmt: skip
    path = fleet.write("probes.jsonl", "\n" + text + "\n")
    code, out, err = _record(petrova, fleet, "--from", str(path))
    assert code == 0, err
    assert out.splitlines() == [
        f"kahn-hq ares: ok at {day(0)}: pending -> ok",
        f"stratt-hq crumb: degraded at {day(0)}: pending -> degraded",
        f"kahn-hq ares: failing at {day(1)}: stays ok (1 of 2 non-ok outcomes toward degraded)",
    ]
    assert err.splitlines() == [
        f"create {fleet.state_dir / 'kahn-hq.yaml'}",
        f"create {fleet.state_dir / 'stratt-hq.yaml'}",
    ]
    more = batch([{"slug": "kahn-hq", "integration": "ares", "outcome": "failing", "at": day(2)}])
    run = petrova("state", "record", "--from", "-", "--now", day(3), *state_args(fleet), input=more)
    assert run.exit_code == 0, run.stderr
    assert run.stdout == f"kahn-hq ares: failing at {day(2)}: ok -> degraded\n"
    empty = petrova("state", "record", "--from", "-", *state_args(fleet), input="\n")
    assert (empty.exit_code, empty.stdout) == (0, "")
    assert "nothing to record" in empty.stderr


def test_batch_is_all_or_nothing(fleet: Fleet, petrova: Petrova) -> None:
    assert _record(petrova, fleet, "kahn-hq", "ares", "ok", "--at", day(5))[0] == 0
    lines = [
        json.dumps({"slug": "stratt-hq", "integration": "ares", "outcome": "ok", "at": day(6)}),
        json.dumps({"slug": "kahn-hq", "integration": "ares", "outcome": "meh"}),
        "{not json",
        json.dumps(["kahn-hq", "ares", "ok"]),
        json.dumps({"slug": "kahn-hq", "integration": "ares", "outcome": "ok", "colour": "red"}),
        json.dumps({"slug": "kahn-hq", "outcome": "ok"}),
        json.dumps({"slug": "kahn-hq", "integration": "ares", "outcome": "ok", "at": 5}),
        json.dumps({"slug": "kahn-hq", "integration": "ares", "outcome": "ok", "at": day(99)}),
    ]
    path = fleet.write("probes.jsonl", "\n".join(lines) + "\n")
    before = _files(fleet)
    code, out, err = _record(petrova, fleet, "--from", str(path))
    assert code == 2
    assert out == ""
    shown = str(path)
    assert err.splitlines() == [
        f"petrova: PROBE_INPUT_INVALID: 7 bad line(s) in {shown}; nothing was recorded",
        f"  {shown}:2: outcome: 'meh' is not a probe outcome; valid: ok, degraded, failing, "
        "unreachable, not_applicable",
        f"  {shown}:3:2: not JSON: Expecting property name enclosed in double quotes",
        f"  {shown}:4: each line must be a JSON object with slug, integration, outcome",
        f"  {shown}:5: colour: unknown field; allowed: slug, integration, outcome, at, detail, "
        "evidence_sha",
        f"  {shown}:6: missing required field 'integration'",
        f"  {shown}:7: at: 5 is not a string",
        f"  {shown}:8: at: {day(99)} is later than now ({day(30)}); record what a probe saw, "
        "after it saw it",
    ]
    assert _files(fleet) == before
    # a line older than what the ledger holds refuses the batch too, after locking
    older = batch(
        [
            {"slug": "stratt-hq", "integration": "ares", "outcome": "ok", "at": day(6)},
            {"slug": "kahn-hq", "integration": "ares", "outcome": "ok", "at": day(4)},
        ]
    )
    path.write_text(older)
    before = _files(fleet)
    code, _, err = _record(petrova, fleet, "--from", str(path))
    assert code == 2
    assert err.splitlines()[-1] == (
        f"petrova: OUTCOME_OUT_OF_ORDER: {shown}:2: at: kahn-hq ares: {day(4)} is older than "
        f"the newest entry ({day(5)}); outcomes are recorded in time order, so report it with "
        "a later --at or drop it"
    )
    assert _files(fleet) == before


def test_unreadable_batch_file(fleet: Fleet, petrova: Petrova) -> None:
    code, _, err = _record(petrova, fleet, "--from", str(fleet.root / "missing.jsonl"))
    assert code == 2
    assert "PROBE_INPUT_INVALID" in err
    bad = fleet.write("bad.jsonl", b"\xff\xfe\n")
    code, _, err = _record(petrova, fleet, "--from", str(bad))
    assert (code, err.split(": ")[1]) == (2, "PROBE_INPUT_INVALID")
    assert "not valid UTF-8" in err


def test_legacy_integration_id(fleet: Fleet, petrova: Petrova) -> None:
    schema = json.loads(fleet.catalogue.read_text())
    schema["$defs"]["integration_lore_cairnet"]["x-legacy-ids"] = ["lore"]
    fleet.catalogue.write_text(json.dumps(schema))
    code, out, err = _record(petrova, fleet, "kahn-hq", "lore", "ok", "--at", day(0))
    assert code == 0, err
    assert "note: 'lore' is the old name of 'lore_cairnet'" in err
    assert out.startswith("kahn-hq lore_cairnet: ok")
    ledger = json.loads((fleet.root / LEDGER).read_text())
    assert list(ledger["integrations"]) == ["lore_cairnet"]
    # a ledger still keyed by the old id is read, and rewritten with the current one
    (fleet.root / LEDGER).write_text(
        (fleet.root / LEDGER).read_text().replace('"lore_cairnet"', '"lore"')
    )
    assert _record(petrova, fleet, "kahn-hq", "ares", "ok", "--at", day(1))[0] == 0
    assert list(json.loads((fleet.root / LEDGER).read_text())["integrations"]) == [
        "ares",
        "lore_cairnet",
    ]


def test_the_ledger_keeps_the_last_twenty(fleet: Fleet, petrova_inprocess: Petrova) -> None:
    lines = [
        {"slug": "kahn-hq", "integration": "ares", "outcome": "ok", "at": day(n)} for n in range(25)
    ]
    path = fleet.write("probes.jsonl", batch(lines))
    assert _record(petrova_inprocess, fleet, "--from", str(path))[0] == 0
    cell = json.loads((fleet.root / LEDGER).read_text())["integrations"]["ares"]
    assert [e["at"] for e in cell["history"]] == [day(n) for n in range(5, 25)]
    assert cell["ok_since"] == day(0)
    # and the capped ledger still reads back
    assert _record(petrova_inprocess, fleet, "kahn-hq", "ares", "ok", "--at", day(26))[0] == 0


def test_lock_held_elsewhere(fleet: Fleet, petrova: Petrova) -> None:
    fleet.state_dir.mkdir()
    with file_lock(fleet.root / LEDGER):
        code, _, err = _record(petrova, fleet, "kahn-hq", "ares", "ok", "--wait", "0")
    assert code == 75
    assert err.startswith(f"petrova: LOCK_TIMEOUT: {fleet.state_dir / '.kahn-hq.yaml.lock'}: ")
    assert not (fleet.root / LEDGER).exists()


def test_concurrent_records_lose_nothing(fleet: Fleet, spawn: Spawn) -> None:
    """Eight probes report at once; every outcome lands in the ledger."""
    integrations = ["ares", "traceo", "crumb", "lore_cairnet"]
    procs = [
        spawn(
            [
                str(PETROVA_BIN), "state", "record", "kahn-hq", integrations[i % 4], "ok",
                "--at", day(0), "--detail", f"probe {i}", "--now", day(1), *state_args(fleet),
            ],
            env=_clean_env(None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(8)
    ]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    ledger = json.loads((fleet.root / LEDGER).read_text())
    details = sorted(
        e["detail"] for cell in ledger["integrations"].values() for e in cell["history"]
    )
    assert details == sorted(f"probe {i}" for i in range(8))
    assert list(ledger["integrations"]) == integrations


def test_help_texts(petrova_inprocess: Petrova) -> None:
    for args in (["state"], ["state", "record"], ["state", "promote"]):
        run = petrova_inprocess(*args, "--help")
        assert run.exit_code == 0
        assert "Usage: " in run.stdout


def test_default_state_dir_is_beside_the_registry(
    fleet: Fleet, petrova: Petrova, tmp_path: Path
) -> None:
    code, _, err = _record(petrova, fleet, "kahn-hq", "ares", "ok")
    assert code == 0, err
    assert (fleet.state_dir / "kahn-hq.yaml").is_file()
    other = tmp_path / "elsewhere"
    other.mkdir()
    code, _, _ = _record(petrova, fleet, "kahn-hq", "ares", "ok", "--state-dir", str(other))
    assert code == 0
    assert (other / "kahn-hq.yaml").is_file()
    code, _, err = _record(
        petrova, fleet, "kahn-hq", "ares", "ok", "--state-dir", str(tmp_path / "no" / "where")
    )
    assert (code, err.split(": ")[1]) == (2, "OUTPUT_UNWRITABLE")
