"""`petrova snapshot`: the rows the dashboards read, and what happens on bad input."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from petrova.fleet.snapshot import derive_status
from petrova.ledger.rules import observed_status
from petrova.models import CELL_HISTORY_LIMIT, LedgerCell, ProbeEntry
from tests.conftest import ROOT, Fleet, Petrova

FIXTURE_EPOCH = "1795676400"  # 2026-11-26T07:00:00Z, the fixtures' clock
ALL_STATUSES = ROOT / "contracts" / "fixtures" / "all-statuses"
NA_CELL = {
    "status": "not_applicable",
    "applicability": "not_applicable",
    "declared": "not_applicable",
    "observed": None,
    "last_verified_at": None,
    "review_by": "2027-04-30",
}


def _independent_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "contracts" / "snapshot.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_shipped_fleet(fleet: Fleet, petrova: Petrova) -> None:
    run = petrova("snapshot", *fleet.args(), env={"SOURCE_DATE_EPOCH": FIXTURE_EPOCH})
    assert run.exit_code == 0, run.stderr
    assert run.stderr == ""
    doc = json.loads(run.stdout)
    assert list(_independent_validator().iter_errors(doc)) == []
    assert doc["schema_version"] == "1.0"
    assert doc["generated_at"] == "2026-11-26T07:00:00Z"
    assert doc["generator"] == "petrova 0.1.0"
    assert doc["integration_ids"] == ["ares", "traceo", "crumb", "lore_cairnet"]
    assert doc["totals"] == {"repos": 7, "migrated": 1}
    assert doc["warnings"] == []
    assert [r["slug"] for r in doc["rows"]] == [
        "petrova-codes",
        "kahn-hq",
        "stratt-hq",
        "choco-hq",
        "devarno-cloud",
        "traceo-mcp-server",
        "grace-hq",
    ]
    control, *others = doc["rows"]
    assert control["contract_sha"] == "5442defd6b27"
    assert control["integrations"] == dict.fromkeys(doc["integration_ids"], NA_CELL)
    for row in others:
        assert "integrations" not in row
        assert row["contract_sha"] is None
    assert others[0] == {
        "slug": "kahn-hq",
        "url": "https://github.com/kahn-hq/kahn",
        "role": "production",
        "profile": "standard",
        "tier": 2,
        "default_branch": "main",
        "contract_sha": None,
    }


def test_same_inputs_same_bytes(fleet: Fleet, petrova: Petrova) -> None:
    env = {"SOURCE_DATE_EPOCH": FIXTURE_EPOCH}
    first = petrova("snapshot", *fleet.args(), env=env).stdout_bytes
    second = petrova("snapshot", *fleet.args(), env=env).stdout_bytes
    assert first == second
    assert first == (ROOT / "contracts/fixtures/snapshot-with-integrations.json").read_bytes()


def test_every_status_matches_the_fixture(petrova: Petrova) -> None:
    run = petrova(
        "snapshot",
        "--registry",
        str(ALL_STATUSES / "registry.yaml"),
        "--catalogue",
        str(ROOT / "contracts" / "contract.schema.json"),
        "--state-dir",
        str(ALL_STATUSES / "state"),
        "--workspace",
        str(ALL_STATUSES / "workspace"),
        env={"SOURCE_DATE_EPOCH": FIXTURE_EPOCH},
    )
    assert run.exit_code == 0, run.stderr
    fixture = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"
    assert run.stdout_bytes == fixture.read_bytes()
    doc = json.loads(run.stdout)
    alpha, beta, gamma = doc["rows"]
    assert {k: c["status"] for k, c in alpha["integrations"].items()} == {
        "ares": "ok",
        "traceo": "degraded",
        "crumb": "failing",
        "lore_cairnet": "stale",
    }
    assert alpha["integrations"]["crumb"]["needs_human"] is True
    assert "needs_human" not in alpha["integrations"]["ares"]
    assert {k: c["status"] for k, c in beta["integrations"].items()} == {
        "ares": "pending",
        "traceo": "not_applicable",
        "crumb": "pending",
        "lore_cairnet": "ok",
    }
    # intent is not observation: declared pending, observed ok, both shown
    assert (beta["integrations"]["ares"]["declared"], beta["integrations"]["ares"]["observed"]) == (
        "pending",
        "ok",
    )
    assert "integrations" not in gamma


def test_output_file_is_written_atomically(fleet: Fleet, petrova: Petrova) -> None:
    out = fleet.root / "fleet.json"
    run = petrova("snapshot", "-o", str(out), *fleet.args())
    assert run.exit_code == 0, run.stderr
    assert run.stdout == ""
    good = out.read_bytes()
    assert json.loads(good)["totals"] == {"repos": 7, "migrated": 1}
    # a broken registry stops the run and leaves the last good snapshot byte for byte
    fleet.registry.write_text(fleet.registry.read_text().replace("tier: 2", "tier: two", 1))
    run = petrova("snapshot", "-o", str(out), *fleet.args())
    assert run.exit_code == 2
    assert run.stderr.startswith("petrova: REGISTRY_INVALID: ")
    assert "registry.yaml:" in run.stderr and "repos[1].tier" in run.stderr
    assert out.read_bytes() == good
    assert sorted(p.name for p in fleet.root.iterdir() if p.name.startswith(".fleet")) in (
        [],
        [".fleet.json.lock"],
    )


def test_output_into_missing_directory(fleet: Fleet, petrova: Petrova) -> None:
    run = petrova("snapshot", "-o", str(fleet.root / "no" / "fleet.json"), *fleet.args())
    assert run.exit_code == 2
    assert "OUTPUT_UNWRITABLE" in run.stderr


def _migrate_kahn(fleet: Fleet, contract: str, ledger: str | None) -> None:
    """Make kahn-hq migrated, with a contract in the workspace and maybe a ledger."""
    path = fleet.write("workspace/kahn-hq/.petrova/contract.yaml", contract)
    from petrova.files.disk import sha12

    text = fleet.registry.read_text().replace(
        "    fleets_allowed: [kahn-implementer]\n",
        "    fleets_allowed: [kahn-implementer]\n"
        f"    contract_sha: {sha12(path.read_bytes())}\n"
        "    integrations_applicability:\n"
        "      ares: required\n      traceo: required\n      crumb: optional\n"
        "      lore_cairnet: {value: not_applicable, review_by: '2027-01-01', reason: none}\n",
    )
    fleet.registry.write_text(text)
    if ledger is not None:
        fleet.write("state/kahn-hq.yaml", ledger)


KAHN_CONTRACT = """schema_version: 1
slug: kahn-hq
integrations:
  ares: {status: wired, evidence: {org_or_repo_scope: kahn-hq}}
  traceo: {status: pending}
  crumb: {status: wired, evidence: {content_path: c, project_prefix: K, card_count: 1}}
  lore_cairnet: {status: not_applicable, not_applicable_reason: none, review_by: '2027-01-01'}
"""
KAHN_LEDGER = """schema_version: 1
slug: kahn-hq
integrations:
  ares:
    current_status: ok
    last_verified_at: '2026-11-26T06:00:00Z'
    history: [{at: '2026-11-26T06:00:00Z', outcome: ok}]
"""


def test_migrated_consumer(fleet: Fleet, petrova: Petrova) -> None:
    _migrate_kahn(fleet, KAHN_CONTRACT, KAHN_LEDGER)
    run = petrova(
        "snapshot",
        *fleet.args("--workspace", str(fleet.workspace)),
        env={"SOURCE_DATE_EPOCH": FIXTURE_EPOCH},
    )
    assert run.exit_code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["totals"] == {"repos": 7, "migrated": 2}
    kahn = doc["rows"][1]["integrations"]
    assert kahn["ares"] == {
        "status": "ok",
        "applicability": "required",
        "declared": "wired",
        "observed": "ok",
        "last_verified_at": "2026-11-26T06:00:00Z",
        "review_by": None,
        "history": [{"at": "2026-11-26T06:00:00Z", "outcome": "ok"}],
    }
    assert "history" not in kahn["crumb"]  # no ledger entry: the key is left out
    assert kahn["traceo"]["status"] == "pending"
    assert (kahn["crumb"]["status"], kahn["crumb"]["observed"]) == ("pending", None)
    assert kahn["lore_cairnet"]["status"] == "not_applicable"
    assert doc["warnings"] == []


def test_workspace_from_environment(fleet: Fleet, petrova: Petrova) -> None:
    _migrate_kahn(fleet, KAHN_CONTRACT, KAHN_LEDGER)
    run = petrova("snapshot", *fleet.args(), env={"PETROVA_WORKSPACE": str(fleet.workspace)})
    assert json.loads(run.stdout)["warnings"] == []


def test_broken_ledger_is_a_warning_on_its_row(fleet: Fleet, petrova: Petrova) -> None:
    _migrate_kahn(fleet, KAHN_CONTRACT, "schema_version: 1\nslug: kahn-hq\nintegrations: [\n")
    out = fleet.root / "fleet.json"
    run = petrova("snapshot", "-o", str(out), *fleet.args("--workspace", str(fleet.workspace)))
    assert run.exit_code == 0
    doc = json.loads(out.read_text())
    [warning] = doc["warnings"]
    assert (warning["slug"], warning["code"]) == ("kahn-hq", "STATE_UNREADABLE")
    assert "kahn-hq.yaml:4:1" in warning["message"]
    assert "warning: STATE_UNREADABLE [kahn-hq]: " in run.stderr
    assert doc["rows"][1]["integrations"]["ares"]["observed"] is None
    assert doc["rows"][0]["integrations"]["ares"] == NA_CELL  # the rest is still reported
    strict = petrova(
        "snapshot", "--strict", "-o", str(out), *fleet.args("--workspace", str(fleet.workspace))
    )
    assert strict.exit_code == 1
    assert (
        "CHECK_FAILED: 1 warning under --strict" in strict.stderr
        or "CHECK_FAILED: 1 warning(s) under --strict" in strict.stderr
    )
    assert json.loads(out.read_text())["warnings"] == doc["warnings"]


def test_contract_failing_its_schema(fleet: Fleet, petrova: Petrova) -> None:
    bad = KAHN_CONTRACT.replace("{org_or_repo_scope: kahn-hq}", "{scope: kahn-hq}")
    _migrate_kahn(fleet, bad, KAHN_LEDGER)
    run = petrova("snapshot", *fleet.args("--workspace", str(fleet.workspace)))
    assert run.exit_code == 0
    doc = json.loads(run.stdout)
    [warning] = doc["warnings"]
    assert warning["code"] == "CONTRACT_UNREADABLE"
    assert "EVIDENCE_INVALID" in warning["message"]
    assert "contract.yaml:4:" in warning["message"]
    ares = doc["rows"][1]["integrations"]["ares"]
    # declared unknown: the observation decides (SPEC §7)
    assert (ares["declared"], ares["status"]) == (None, "ok")


def test_no_workspace_and_drift(fleet: Fleet, petrova: Petrova) -> None:
    _migrate_kahn(fleet, KAHN_CONTRACT, KAHN_LEDGER)
    (fleet.root / ".petrova" / "contract.yaml").write_text(
        (fleet.root / ".petrova" / "contract.yaml").read_text() + "# edited\n"
    )
    run = petrova("snapshot", *fleet.args())
    codes = [(w["slug"], w["code"]) for w in json.loads(run.stdout)["warnings"]]
    assert codes == [("petrova-codes", "CONTRACT_SHA_DRIFT"), ("kahn-hq", "CONTRACT_UNREADABLE")]
    assert "--workspace" in json.loads(run.stdout)["warnings"][1]["message"]


def test_missing_state_is_reported_for_applicable_integrations(
    fleet: Fleet, petrova: Petrova
) -> None:
    _migrate_kahn(fleet, KAHN_CONTRACT, None)
    run = petrova("snapshot", *fleet.args("--workspace", str(fleet.workspace)))
    [warning] = json.loads(run.stdout)["warnings"]
    assert warning["code"] == "STATE_MISSING"
    assert "ares, traceo, crumb" in warning["message"]


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_people_formats(fleet: Fleet, petrova: Petrova, fmt: str) -> None:
    run = petrova(
        "snapshot", "--format", fmt, *fleet.args(), env={"SOURCE_DATE_EPOCH": FIXTURE_EPOCH}
    )
    assert run.exit_code == 0
    lines = run.stdout.splitlines()
    control = next(line for line in lines if "petrova-codes" in line)
    assert control.count("n/a") == 4
    assert "7 repos, 1 migrated; generated 2026-11-26T07:00:00Z" in run.stdout


def test_bad_source_date_epoch(fleet: Fleet, petrova: Petrova) -> None:
    run = petrova("snapshot", *fleet.args(), env={"SOURCE_DATE_EPOCH": "yesterday"})
    assert run.exit_code == 2
    assert run.stderr.startswith("petrova: USAGE_ERROR: SOURCE_DATE_EPOCH='yesterday'")


def test_control_plane_contract_missing(fleet: Fleet, petrova: Petrova) -> None:
    shutil.rmtree(fleet.root / ".petrova")
    run = petrova("snapshot", *fleet.args())
    assert run.exit_code == 0
    [warning] = json.loads(run.stdout)["warnings"]
    assert warning["code"] == "CONTRACT_UNREADABLE"
    assert "CONTRACT_NOT_FOUND" in warning["message"]
    # registry says not applicable: the dots stay n/a
    row = json.loads(run.stdout)["rows"][0]
    assert {c["status"] for c in row["integrations"].values()} == {"not_applicable"}


@pytest.mark.parametrize(
    ("applicability", "declared", "observed", "status"),
    [
        ("not_applicable", "wired", "ok", "not_applicable"),
        ("required", "not_applicable", "failing", "not_applicable"),
        ("required", "pending", "ok", "pending"),
        ("required", "wired", "degraded", "degraded"),
        ("required", "wired", None, "pending"),
        ("optional", None, "stale", "stale"),
        ("required", None, None, "pending"),
    ],
)
def test_derive_status(
    applicability: str, declared: str | None, observed: str | None, status: str
) -> None:
    assert (
        derive_status(applicability=applicability, declared=declared, observed=observed) == status
    )


def test_staleness() -> None:
    now = datetime(2026, 11, 26, 7, tzinfo=UTC)
    window = timedelta(hours=72)
    fresh = LedgerCell(
        current_status="ok",
        last_verified_at="2026-11-24T07:00:00Z",
        history=[ProbeEntry(at="2026-11-24T07:00:00Z", outcome="ok")],
    )
    old = LedgerCell(current_status="degraded", last_verified_at="2026-11-23T06:59:59Z")
    only_unreachable = LedgerCell(
        current_status="ok",
        history=[ProbeEntry(at="2026-11-22T00:00:00Z", outcome="unreachable")],
    )
    assert observed_status(fresh, now=now, stale_after=window) == "ok"
    assert observed_status(old, now=now, stale_after=window) == "stale"
    assert observed_status(only_unreachable, now=now, stale_after=window) == "stale"
    assert observed_status(LedgerCell(), now=now, stale_after=window) == "pending"


def test_stale_after_option(fleet: Fleet, petrova: Petrova) -> None:
    _migrate_kahn(fleet, KAHN_CONTRACT, KAHN_LEDGER)
    args = fleet.args("--workspace", str(fleet.workspace))
    env = {"SOURCE_DATE_EPOCH": FIXTURE_EPOCH}
    short = json.loads(petrova("snapshot", "--stale-after", "30m", *args, env=env).stdout)
    assert short["rows"][1]["integrations"]["ares"]["status"] == "stale"
    bad = petrova("snapshot", "--stale-after", "soon", *args)
    assert bad.exit_code == 2
    assert "'soon' is not a duration" in bad.stderr


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["rows"][0]["integrations"]["ares"].update(status="green"),
        lambda d: d["rows"][0]["integrations"].pop("crumb"),
        lambda d: d["rows"][1].update(integrations=None),
        lambda d: d["rows"][1].update(extra=1),
        lambda d: d["totals"].update(repos=-1),
        lambda d: d.update(integration_ids=["ares", "jenkins"]),
        lambda d: d["rows"][0]["integrations"]["ares"].update(needs_human=False),
    ],
)
def test_check_snapshot_refuses_what_the_schema_refuses(mutate: object) -> None:
    from petrova.documents.catalogue import load_catalogue
    from petrova.documents.schemas import check_snapshot
    from petrova.errors import SnapshotInvalid
    from tests.conftest import CATALOGUE

    doc = json.loads((ROOT / "contracts/fixtures/snapshot-with-integrations.json").read_text())
    catalogue = load_catalogue(CATALOGUE)
    check_snapshot(doc, catalogue)
    mutate(doc)  # type: ignore[operator]
    assert list(_independent_validator().iter_errors(doc)) != []
    with pytest.raises(SnapshotInvalid) as info:
        check_snapshot(doc, catalogue)
    assert info.value.code == "SNAPSHOT_INVALID"
    assert "nothing was written" in info.value.message


def test_the_document_keeps_the_models_key_order() -> None:
    """The snapshot is derived into typed values and encoded by hand for speed; the
    models still define its shape, down to the order of keys in the written file, and an
    archived file reads back into the very same typed values."""
    import orjson

    from petrova.documents.catalogue import load_catalogue
    from petrova.documents.registry import load_registry
    from petrova.fleet.artefacts import ALL_STATUSES_DIR, FIXTURE_TIME
    from petrova.fleet.gather import gather
    from petrova.fleet.snapshot import derive_snapshot
    from petrova.models import FleetSnapshot, Snapshot
    from petrova.render.formats import snapshot_document

    root = ROOT / ALL_STATUSES_DIR
    catalogue = load_catalogue(ROOT / "contracts" / "contract.schema.json")
    loaded = load_registry(root / "registry.yaml", catalogue, today=FIXTURE_TIME.date())
    inputs = gather(loaded, state_dir=root / "state", workspace=root / "workspace")
    typed = derive_snapshot(inputs, now=FIXTURE_TIME)
    document = snapshot_document(typed)
    model = Snapshot.model_validate(document)
    assert orjson.dumps(document) == orjson.dumps(model.model_dump(mode="json"))
    assert FleetSnapshot.from_model(model) == typed
    cells = [c for r in document["rows"] for c in r.get("integrations", {}).values()]
    assert any("needs_human" in c for c in cells)  # the optional keys are exercised too
    assert any("integrations" not in r for r in document["rows"])


def test_the_gate_decides_on_typed_problems_not_on_the_warnings_words(tmp_path: Path) -> None:
    """gather keeps why a contract or ledger could not be read as fields; the gate holds a
    tier on those, so the same holds come out when every warning's text is gone."""
    import dataclasses

    from petrova.documents.catalogue import load_catalogue
    from petrova.documents.registry import load_registry
    from petrova.fleet.artefacts import ALL_STATUSES_DIR, FIXTURE_TIME
    from petrova.fleet.gather import gather
    from petrova.fleet.rollout import rollout_report
    from petrova.fleet.snapshot import derive_snapshot

    root = tmp_path / "fleet"
    shutil.copytree(ROOT / ALL_STATUSES_DIR, root)
    (root / "workspace" / "beta-hq" / ".petrova" / "contract.yaml").write_text("slug: [\n")
    (root / "state" / "alpha-hq.yaml").write_text("{not json\n")
    catalogue = load_catalogue(ROOT / "contracts" / "contract.schema.json")
    loaded = load_registry(root / "registry.yaml", catalogue, today=FIXTURE_TIME.date())
    inputs = gather(loaded, state_dir=root / "state", workspace=root / "workspace")
    assert inputs.repos["beta-hq"].contract_unread is not None
    assert inputs.repos["alpha-hq"].ledger_unreadable is not None

    def holds(fleet_inputs: Any) -> list[tuple[str, str, str]]:
        derived = derive_snapshot(fleet_inputs, now=FIXTURE_TIME)
        report = rollout_report(fleet_inputs, derived, now=FIXTURE_TIME, days=7)
        return [(h.slug, h.reason, h.message) for t in report.tiers for h in t.holds]

    said = holds(inputs)
    assert ("beta-hq", "contract_unknown") in [(s, r) for s, r, _ in said]
    assert ("alpha-hq", "ledger_unreadable") in [(s, r) for s, r, _ in said]
    mute = {slug: r._replace(warnings=()) for slug, r in inputs.repos.items()}
    assert holds(dataclasses.replace(inputs, repos=mute, warnings=())) == said


def test_a_cell_carries_its_newest_outcomes_and_promotions(fleet: Fleet, petrova: Petrova) -> None:
    """The page's strip reads these: at most CELL_HISTORY_LIMIT, oldest first, a
    promotion as ``promoted`` with its reason, a probe's detail as it was recorded."""
    _migrate_kahn(fleet, KAHN_CONTRACT, None)
    args = fleet.args("--workspace", str(fleet.workspace))
    for day in range(1, 13):
        outcome = "failing" if day in (9, 10, 11) else "ok"
        run = petrova(
            "state",
            "record",
            "kahn-hq",
            "ares",
            outcome,
            "--at",
            f"2025-10-{day:02d}T06:00:00Z",
            "--detail",
            f"day {day}",
            *fleet.args(),
        )
        assert run.exit_code == 0, run.stderr
    run = petrova(
        "state",
        "promote",
        "kahn-hq",
        "ares",
        "--by",
        "human:ana",
        "--reason",
        "fixed",
        "--now",
        "2025-10-13T06:00:00Z",
        *fleet.args(),
    )
    assert run.exit_code == 0, run.stderr
    run = petrova("snapshot", *args, env={"SOURCE_DATE_EPOCH": FIXTURE_EPOCH})
    assert run.exit_code == 0, run.stderr
    history = json.loads(run.stdout)["rows"][1]["integrations"]["ares"]["history"]
    assert len(history) == CELL_HISTORY_LIMIT
    assert history[-1] == {"at": "2025-10-13T06:00:00Z", "outcome": "promoted", "detail": "fixed"}
    assert [h["at"][8:10] for h in history] == [f"{d:02d}" for d in range(4, 14)]
    assert history[5] == {"at": "2025-10-09T06:00:00Z", "outcome": "failing", "detail": "day 9"}


def _all_statuses_inputs() -> Any:
    from petrova.documents.catalogue import load_catalogue
    from petrova.documents.registry import load_registry
    from petrova.fleet.artefacts import FIXTURE_TIME
    from petrova.fleet.gather import gather

    catalogue = load_catalogue(ROOT / "contracts" / "contract.schema.json")
    loaded = load_registry(ALL_STATUSES / "registry.yaml", catalogue, today=FIXTURE_TIME.date())
    return gather(loaded, state_dir=ALL_STATUSES / "state", workspace=ALL_STATUSES / "workspace")


@pytest.mark.parametrize(
    ("now", "future"),
    [
        # beta-hq lore_cairnet's newest entry is at 06:30, four others' at 06:00
        ("2026-11-26T06:25:00Z", ["beta-hq lore_cairnet"]),  # exactly 5 minutes ahead
        ("2026-11-26T06:25:01Z", []),  # within a runner's drift
        (
            "2026-11-26T05:55:00Z",
            [
                "alpha-hq ares",
                "alpha-hq traceo",
                "alpha-hq crumb",
                "beta-hq ares",
                "beta-hq lore_cairnet",
            ],
        ),
    ],
)
def test_a_ledger_entry_five_minutes_ahead_or_more_is_the_future(
    now: str, future: list[str]
) -> None:
    """The skew is compared once per snapshot (``now + skew``), the boundary as the rule
    states it: future while ``now <= latest - skew``, in registry and catalogue order."""
    from petrova.fleet.snapshot import derive_snapshot
    from petrova.models import parse_timestamp

    derived = derive_snapshot(_all_statuses_inputs(), now=parse_timestamp(now))
    warned = [w for w in derived.warnings if w.code == "TIMESTAMP_IN_FUTURE"]
    assert [f"{w.slug} {w.message.split(':')[0]}" for w in warned] == future
    for warning in warned:
        assert f"later than this snapshot's time ({now})" in warning.message


def test_equal_cells_share_one_dict_and_the_check_still_sees_each() -> None:
    """The document makes each distinct cell once and the check reads each distinct cell
    once; a drift between the code and the schema in a cell is still refused, whether
    the document or the typed value carries it."""
    import dataclasses

    from petrova.documents.catalogue import load_catalogue
    from petrova.documents.schemas import check_snapshot
    from petrova.errors import SnapshotInvalid
    from petrova.fleet.artefacts import FIXTURE_TIME
    from petrova.fleet.snapshot import derive_snapshot
    from petrova.models import Mark
    from petrova.render.formats import snapshot_document

    catalogue = load_catalogue(ROOT / "contracts" / "contract.schema.json")
    typed = derive_snapshot(_all_statuses_inputs(), now=FIXTURE_TIME)
    migrated = [r for r in typed.rows if r.integrations is not None]
    # a fleet of many repos with the same dots: the rows' cells are shared dicts
    rows = tuple(migrated[0]._replace(slug=f"copy-{n}") for n in range(3))
    many = dataclasses.replace(typed, rows=rows + typed.rows)
    document = snapshot_document(many)
    first, second = (r["integrations"] for r in document["rows"][:2])
    assert all(first[i] is second[i] for i in first)
    check_snapshot(document, catalogue)
    assert json.loads(json.dumps(document)) == document

    ares = first["ares"]
    ares["status"] = "green"  # every row holding this cell now says it
    assert list(_independent_validator().iter_errors(document)) != []
    with pytest.raises(SnapshotInvalid):
        check_snapshot(document, catalogue)
    ares["status"] = "ok" if ares["observed"] == "ok" else ares["status"]

    # the code deriving a status the schema does not know, on one dot of one row
    dots = dict(migrated[0].integrations or {})
    dots["crumb"] = dots["crumb"]._replace(status="green")  # type: ignore[arg-type]
    drifted = dataclasses.replace(many, rows=(rows[0]._replace(integrations=dots), *rows))
    with pytest.raises(SnapshotInvalid):
        check_snapshot(snapshot_document(drifted), catalogue)

    # a mark the schema does not know, deep in one cell's history
    dots = dict(migrated[0].integrations or {})
    marked = next(i for i, d in dots.items() if d.history)
    dots[marked] = dots[marked]._replace(history=(Mark("2026-11-26T06:00:00Z", "maybe"),))
    drifted = dataclasses.replace(many, rows=(rows[0]._replace(integrations=dots), *rows))
    with pytest.raises(SnapshotInvalid):
        check_snapshot(snapshot_document(drifted), catalogue)


def test_a_young_green_run_is_measured_against_each_clock_it_is_asked_at() -> None:
    """A run's age and green_at are worked out once per start time (cells share them);
    asked again at a later clock in the same process, the hold says the later age."""
    import dataclasses

    from petrova.fleet.artefacts import FIXTURE_TIME
    from petrova.fleet.rollout import rollout_report
    from petrova.fleet.snapshot import derive_snapshot
    from petrova.ledger.rules import observe

    inputs = _all_statuses_inputs()
    pin = next(e for e in inputs.loaded.registry.repos if e.slug == "alpha-hq").contract_sha
    history = [
        {"at": "2026-11-25T06:00:00Z", "outcome": "ok", "evidence_sha": pin},
        {"at": "2026-11-26T06:00:00Z", "outcome": "ok", "evidence_sha": pin},
    ]
    seen = observe(
        {
            "current_status": "ok",
            "status_since": "2026-11-25T06:00:00Z",
            "last_verified_at": "2026-11-26T06:00:00Z",
            "ok_since": "2026-11-25T06:00:00Z",
            "history": history,
        }
    )
    alpha = inputs.repos["alpha-hq"]
    observed = {**alpha.observed, "ares": seen}
    repos = {**inputs.repos, "alpha-hq": alpha._replace(observed=observed)}
    inputs = dataclasses.replace(inputs, repos=repos)
    for hours, age in ((0, "1d 1h"), (5, "1d 6h"), (0, "1d 1h")):
        now = FIXTURE_TIME + timedelta(hours=hours)
        report = rollout_report(inputs, derive_snapshot(inputs, now=now), now=now, days=7)
        [hold] = [h for t in report.tiers for h in t.holds if h[:2] == ("alpha-hq", "ares")]
        assert (hold.slug, hold.reason, hold.green_at) == (
            "alpha-hq",
            "too_young",
            "2026-12-02T06:00:00Z",
        )
        assert hold.message == (
            f"alpha-hq ares: ok since 2026-11-25T06:00:00Z, {age} of 7d; "
            "green at 2026-12-02T06:00:00Z if every outcome until then is ok"
        )


def test_the_schema_reaches_a_cell_only_through_a_row_s_integrations() -> None:
    """``check_snapshot`` checks each cell it finds under ``rows[*].integrations`` on
    its own and leaves the cell definition open elsewhere: a schema that put a cell (or a
    row) anywhere else would leave that one unchecked, so this fails first."""
    from petrova.documents.catalogue import load_catalogue
    from petrova.documents.schemas import snapshot_schema

    schema = snapshot_schema(load_catalogue(ROOT / "contracts" / "contract.schema.json"))
    refs: dict[str, list[tuple[object, ...]]] = {}

    def walk(node: object, path: tuple[object, ...]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    refs.setdefault(str(value), []).append(path)
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index))

    walk(schema, ())
    cells = refs["#/$defs/SnapshotCell"]
    assert cells and all(
        p[:4] == ("$defs", "SnapshotRow", "properties", "integrations") for p in cells
    )
    assert refs["#/$defs/SnapshotRow"] == [("properties", "rows", "items")]
