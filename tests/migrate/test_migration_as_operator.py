"""The migration as a new operator runs it (issue 18): the runbook's commands, end to end.

Each test here fails without its fix: bootstrap asks (or refuses) instead of writing
defaults, the pin reads what was merged, the hop check exercises every value, a replay
cannot write the future into the real ledger, the pre-commit hook checks the slug, and a
new catalogue integration rolls out instead of stopping the fleet.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from petrova.files.disk import sha12
from petrova.models import format_timestamp
from tests.catalogue_edits import add_integration
from tests.conftest import FIXED_NOW, Fleet, Petrova, git_status
from tests.ingest_server import Answer, IngestServer, Seen, store_and_echo
from tests.ingest_server import Servers as Ingest

KAHN_ORIGIN = "git@github.com:kahn-hq/kahn.git"


@pytest.fixture
def kahn(tmp_path: Path, git_repo: Callable[..., Path]) -> Path:
    return git_repo(tmp_path / "kahn", {"README.md": "kahn\n"}, origin=KAHN_ORIGIN)


def runbook_bootstrap(petrova: Petrova, fleet: Fleet, repo: Path, *extra: str, **kw: object):  # type: ignore[no-untyped-def]
    """The runbook's tier-2 step 1, exactly: ``petrova bootstrap --resume --phase 6``."""
    return petrova(
        "bootstrap", "--resume", "--phase", "6", "--repo", str(repo), *fleet.args(*extra), **kw
    )


# --- 1. bootstrap asks, or refuses; never writes defaults nobody chose -------------------


def test_runbook_resume_on_a_fresh_repo_without_a_terminal_refuses(
    petrova_inprocess: Petrova, fleet: Fleet, kahn: Path
) -> None:
    run = runbook_bootstrap(petrova_inprocess, fleet, kahn)
    assert run.exit_code == 2, run.stderr
    assert "petrova: ANSWERS_REQUIRED:" in run.stderr
    assert "no checkpoint to resume from" in run.stderr
    assert "--answers FILE" in run.stderr
    assert not (kahn / ".petrova").exists()
    assert not (kahn / ".git" / "petrova").exists()
    assert git_status(kahn) == ""
    assert "from the defaults" not in run.stderr


def test_runbook_resume_on_a_terminal_asks_the_questions(
    petrova_inprocess: Petrova, fleet: Fleet, kahn: Path
) -> None:
    # ares: not applicable (reason, date); the other three: Enter keeps pending.
    typed = "not_applicable\nno CI of its own\n2027-03-01\n\n\n\n"
    run = runbook_bootstrap(petrova_inprocess, fleet, kahn, "--interactive", input=typed)
    assert run.exit_code == 0, run.stderr
    assert "phase 5/6 questions: asking (no checkpoint to resume from)" in run.stderr
    assert "why is it not applicable" in run.stderr
    text = (kahn / ".petrova" / "contract.yaml").read_text()
    assert (
        "  ares:\n    status: not_applicable\n    not_applicable_reason: no CI of its own\n"
        "    review_by: '2027-03-01'\n"
    ) in text
    assert "  traceo:\n    status: pending\n" in text
    # Resumed again: the answers now come from the checkpoint, and it says so.
    again = runbook_bootstrap(petrova_inprocess, fleet, kahn)
    assert again.exit_code == 0, again.stderr
    assert "phase 5/6 questions: resumed: 4 answer(s) from the checkpoint " in again.stderr
    assert "identical .petrova/contract.yaml" in again.stderr


def test_the_phase_5_line_names_the_answers_file(
    petrova_inprocess: Petrova, fleet: Fleet, kahn: Path, tmp_path: Path
) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("integrations:\n  ares: {status: pending}\n")
    run = runbook_bootstrap(petrova_inprocess, fleet, kahn, "--answers", str(answers))
    assert run.exit_code == 0, run.stderr
    assert f"phase 5/6 questions: 1 answer(s) from --answers {answers}" in run.stderr


def test_defaults_only_when_asked_for_by_name(
    petrova_inprocess: Petrova, fleet: Fleet, kahn: Path
) -> None:
    run = runbook_bootstrap(petrova_inprocess, fleet, kahn, "--defaults")
    assert run.exit_code == 0, run.stderr
    assert "phase 5/6 questions: the defaults, as --defaults asks" in run.stderr
    assert (kahn / ".petrova" / "contract.yaml").is_file()


def test_phase_without_resume_is_a_petrova_usage_error(
    petrova_inprocess: Petrova, fleet: Fleet, kahn: Path
) -> None:
    run = petrova_inprocess("bootstrap", "--phase", "6", "--repo", str(kahn), *fleet.args())
    assert run.exit_code == 2
    assert run.stderr.startswith("petrova: USAGE_ERROR: --phase: ")
    assert "Error:" not in run.stderr


# --- 2. the pin takes what was merged -----------------------------------------------------

MERGED = (
    "schema_version: 1\nslug: kahn-hq\nintegrations:\n"
    "  ares: {status: pending}\n  traceo: {status: pending}\n"
    "  crumb: {status: pending}\n  lore_cairnet: {status: pending}\n"
)
UNMERGED = MERGED.replace("  ares: {status: pending}\n", "  ares: {status: pending}  # wip\n")


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    return subprocess.run(
        ["git", *ident, *args], cwd=repo, check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


@pytest.fixture
def operator_clone(tmp_path: Path, git_repo: Callable[..., Path]) -> Path:
    """An operator's clone of kahn-hq: the contract merged on origin/main, and an
    uncommitted edit of it on an unmerged branch in the working tree."""
    upstream = git_repo(tmp_path / "upstream", {".petrova/contract.yaml": MERGED})
    bare = tmp_path / "kahn.git"
    git(tmp_path, "clone", "-q", "--bare", str(upstream), str(bare))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    git(clone, "checkout", "-q", "-b", "wip")
    (clone / ".petrova" / "contract.yaml").write_text(UNMERGED)
    return clone


def test_pin_repo_reads_origin_default_branch_not_the_working_tree(
    petrova_inprocess: Petrova, fleet: Fleet, operator_clone: Path
) -> None:
    commit = git(operator_clone, "rev-parse", "origin/main")
    run = petrova_inprocess(
        "registry", "pin", "kahn-hq", "--repo", str(operator_clone), *fleet.args()
    )
    assert run.exit_code == 0, run.stderr
    assert f"kahn-hq: read origin/main at commit {commit} in {operator_clone}" in run.stderr
    text = fleet.registry.read_text()
    assert f"contract_sha: {sha12(MERGED.encode())}" in text
    assert sha12(UNMERGED.encode()) not in text


def test_pin_workspace_clone_reads_the_committed_contract(
    petrova_inprocess: Petrova, fleet: Fleet, git_repo: Callable[..., Path]
) -> None:
    clone = git_repo(fleet.workspace / "kahn-hq", {".petrova/contract.yaml": MERGED})
    (clone / ".petrova" / "contract.yaml").write_text(UNMERGED)  # an edit nobody merged
    run = petrova_inprocess(
        "registry", "pin", "kahn-hq", "--workspace", str(fleet.workspace), *fleet.args()
    )
    assert run.exit_code == 0, run.stderr
    assert f"read HEAD at commit {git(clone, 'rev-parse', 'HEAD')}" in run.stderr
    assert f"contract_sha: {sha12(MERGED.encode())}" in fleet.registry.read_text()


def test_pin_refuses_a_contract_that_has_not_merged(
    petrova_inprocess: Petrova, fleet: Fleet, tmp_path: Path, git_repo: Callable[..., Path]
) -> None:
    upstream = git_repo(tmp_path / "upstream", {"README.md": "kahn\n"})
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(upstream), str(clone))
    (clone / ".petrova").mkdir()
    (clone / ".petrova" / "contract.yaml").write_text(MERGED)
    before = fleet.registry.read_bytes()
    run = petrova_inprocess("registry", "pin", "kahn-hq", "--repo", str(clone), *fleet.args())
    assert run.exit_code == 2
    assert "petrova: CONTRACT_NOT_FOUND:" in run.stderr
    assert "no contract on origin/main" in run.stderr
    assert fleet.registry.read_bytes() == before


def test_pin_contract_path_says_it_does_not_check_merge_state(
    petrova_inprocess: Petrova, fleet: Fleet, tmp_path: Path
) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(MERGED)
    run = petrova_inprocess("registry", "pin", "kahn-hq", "--contract", str(path), *fleet.args())
    assert run.exit_code == 0, run.stderr
    assert "merge state is not checked" in run.stderr


# --- 3. the hop check's default fixture exercises every value -----------------------------


def _lossy(server: IngestServer, seen: Seen) -> Answer:
    """A server whose schema drops needs_human, nulls last_verified_at, and has no 'stale'."""
    doc = json.loads(seen.body)
    for row in doc["rows"]:
        for cell in row.get("integrations", {}).values():
            cell.pop("needs_human", None)
            cell["last_verified_at"] = None
            if cell["status"] == "stale":
                cell["status"] = "pending"
    return Answer(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})


def _adds_integrations(server: IngestServer, seen: Seen) -> Answer:
    """A server that fills in ``integrations: null`` on rows that had none."""
    doc = json.loads(seen.body)
    for row in doc["rows"]:
        row.setdefault("integrations", None)
    return Answer(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})


def test_the_default_hop_check_fails_a_lossy_endpoint(
    petrova_inprocess: Petrova, ingest: Ingest, tmp_path: Path
) -> None:
    server = ingest(_lossy)
    run = petrova_inprocess("contracts", "verify-endpoint", server.url, "--json", cwd=tmp_path)
    assert run.exit_code == 1, run.stderr
    findings = {(f["pointer"], f["kind"]) for f in json.loads(run.stdout)["findings"]}
    assert ("/rows/0/integrations/crumb/needs_human", "lost") in findings
    assert ("/rows/0/integrations/ares/last_verified_at", "changed") in findings
    assert ("/rows/0/integrations/lore_cairnet/status", "changed") in findings


def test_the_default_hop_check_fails_an_endpoint_that_adds_integrations(
    petrova_inprocess: Petrova, ingest: Ingest, tmp_path: Path
) -> None:
    server = ingest(_adds_integrations)
    run = petrova_inprocess("contracts", "verify-endpoint", server.url, cwd=tmp_path)
    assert run.exit_code == 1, run.stderr
    assert "/rows/2/integrations: added null" in run.stderr


def test_the_default_hop_check_passes_a_faithful_endpoint(
    petrova_inprocess: Petrova, ingest: Ingest, tmp_path: Path
) -> None:
    server = ingest(store_and_echo)
    run = petrova_inprocess("contracts", "verify-endpoint", server.url, cwd=tmp_path)
    assert run.exit_code == 0, run.stderr
    doc = json.loads(server.requests[0].body)
    statuses = {c["status"] for r in doc["rows"] for c in r.get("integrations", {}).values()}
    assert statuses == {"ok", "degraded", "failing", "stale", "pending", "not_applicable"}
    assert any("integrations" not in row for row in doc["rows"])


# --- 6. a new integration rolls out instead of stopping the fleet -------------------------

KAHN_MIGRATED = (
    '    added: "2026-04-29"\n'
    "    contract_sha: 0123456789ab  # pinned\n"
    "    integrations_applicability: {ares: required, traceo: required, crumb: required, "
    "lore_cairnet: optional}\n"
    "    contract_committers: [humans]\n"
)


@pytest.fixture
def eva(fleet: Fleet, tmp_path: Path) -> Path:
    """The catalogue with a fifth integration, ``eva``; kahn-hq migrated too."""
    text = fleet.registry.read_text()
    kahn_at = text.index("  - slug: kahn-hq")
    head, tail = text[:kahn_at], text[kahn_at:]
    tail = tail.replace(
        '    added: "2026-04-29"\n    contract_committers: [humans]\n', KAHN_MIGRATED, 1
    )
    fleet.registry.write_text(head + tail)
    return add_integration(fleet.catalogue, "eva", "EVA", tmp_path / "catalogue.json")


def test_a_new_integration_is_a_warning_and_a_pending_cell(
    petrova_inprocess: Petrova, fleet: Fleet, eva: Path
) -> None:
    check = petrova_inprocess("registry", "validate", *fleet.args("--catalogue", str(eva)))
    assert check.exit_code == 0, check.stderr
    assert "warning: APPLICABILITY_MISSING:" in check.stderr
    assert "no applicability for eva" in check.stderr
    snap = petrova_inprocess(
        "snapshot",
        *fleet.args("--catalogue", str(eva), "--state-dir", str(fleet.state_dir)),
    )
    assert snap.exit_code == 0, snap.stderr
    doc = json.loads(snap.stdout)
    rows = {row["slug"]: row for row in doc["rows"]}
    assert rows["petrova-codes"]["integrations"]["eva"]["status"] == "pending"
    assert rows["petrova-codes"]["integrations"]["eva"]["applicability"] is None
    assert rows["petrova-codes"]["integrations"]["ares"]["status"] == "not_applicable"
    assert {w["code"] for w in doc["warnings"]} >= {"APPLICABILITY_MISSING"}


def test_fill_applicability_adds_only_the_missing_keys(
    petrova_inprocess: Petrova, fleet: Fleet, eva: Path
) -> None:
    before = fleet.registry.read_text()
    args = fleet.args("--catalogue", str(eva))
    dry = petrova_inprocess("registry", "fill-applicability", "--all", "--value", "required",
                            "--dry-run", *args)  # fmt: skip
    assert dry.exit_code == 0, dry.stderr
    assert "+      eva: required\n" in dry.stdout
    assert fleet.registry.read_text() == before

    run = petrova_inprocess("registry", "fill-applicability", "--all", "--value", "required",
                            *args)  # fmt: skip
    assert run.exit_code == 0, run.stderr
    after = fleet.registry.read_text()
    expected = before.replace(
        '      lore_cairnet: {value: not_applicable, review_by: "2027-04-30", '
        'reason: "emits no LORE stones"}\n',
        '      lore_cairnet: {value: not_applicable, review_by: "2027-04-30", '
        'reason: "emits no LORE stones"}\n      eva: required\n',
    ).replace("lore_cairnet: optional}", "lore_cairnet: optional, eva: required}")
    assert after == expected
    check = petrova_inprocess("registry", "validate", *args)
    assert check.exit_code == 0 and "APPLICABILITY_MISSING" not in check.stderr
    again = petrova_inprocess("registry", "fill-applicability", "--all", "--value", "required",
                              *args)  # fmt: skip
    assert "unchanged" in again.stderr and fleet.registry.read_text() == after


def test_fill_applicability_named_repo_with_paperwork(
    petrova_inprocess: Petrova, fleet: Fleet, eva: Path
) -> None:
    args = fleet.args("--catalogue", str(eva))
    bare = petrova_inprocess(
        "registry", "fill-applicability", "kahn-hq", "--value", "not_applicable", *args
    )
    assert bare.exit_code == 2 and "needs --reason" in bare.stderr
    run = petrova_inprocess("registry", "fill-applicability", "kahn-hq", "--value",
                            "not_applicable", "--reason", "nothing to watch", "--review-by",
                            "2027-05-01", *args)  # fmt: skip
    assert run.exit_code == 0, run.stderr
    text = fleet.registry.read_text()
    assert (
        'lore_cairnet: optional, eva: {value: not_applicable, review_by: "2027-05-01", '
        'reason: "nothing to watch"}}' in text
    )
    assert "      eva:" not in text  # petrova-codes was not named


# --- 4. a replay cannot write the future into the real ledger -----------------------------
# Two clocks: petrova's (SOURCE_DATE_EPOCH, or --now) and the machine's, which the guard
# reads and neither moves. The suite pins both to FIXED_NOW (PETROVA_MACHINE_EPOCH for
# the machine's) and places the replay a week after it.


def _week_ahead_of_the_machine() -> str:
    return format_timestamp(FIXED_NOW + timedelta(days=7))


def test_a_replay_ahead_of_the_machine_clock_is_refused_in_the_real_ledger(
    petrova_inprocess: Petrova, fleet: Fleet
) -> None:
    ahead = _week_ahead_of_the_machine()
    run = petrova_inprocess(
        "state", "record", "petrova-codes", "ares", "ok", "--now", ahead, *fleet.args()
    )
    assert run.exit_code == 2, run.stderr
    assert "petrova: TIMESTAMP_IN_FUTURE:" in run.stderr
    assert "scratch ledger" in run.stderr and "--force" in run.stderr
    assert not (fleet.state_dir / "petrova-codes.yaml").exists()
    # At petrova's own clock, the machine's time, recording is fine.
    fine = petrova_inprocess("state", "record", "petrova-codes", "ares", "ok", *fleet.args())
    assert fine.exit_code == 0, fine.stderr


def test_a_replay_ahead_goes_to_a_scratch_state_dir(
    petrova_inprocess: Petrova, fleet: Fleet, tmp_path: Path
) -> None:
    scratch = tmp_path / "replay"
    run = petrova_inprocess("state", "record", "petrova-codes", "ares", "ok", "--now",
                            _week_ahead_of_the_machine(), "--state-dir", str(scratch),
                            *fleet.args())  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert (scratch / "petrova-codes.yaml").is_file()
    assert not fleet.state_dir.exists()


def test_a_forced_future_entry_is_a_snapshot_warning(
    petrova_inprocess: Petrova, fleet: Fleet
) -> None:
    ahead = _week_ahead_of_the_machine()
    run = petrova_inprocess("state", "record", "petrova-codes", "ares", "ok", "--now", ahead,
                            "--force", *fleet.args())  # fmt: skip
    assert run.exit_code == 0, run.stderr
    # The snapshot runs at the suite's pinned clock, which is before the forced entry.
    snap = petrova_inprocess("snapshot", *fleet.args())
    assert snap.exit_code == 0, snap.stderr
    warnings = [w for w in json.loads(snap.stdout)["warnings"] if w["slug"] == "petrova-codes"]
    future = [w for w in warnings if w["code"] == "TIMESTAMP_IN_FUTURE"]
    assert len(future) == 1 and ahead in future[0]["message"]
    strict = petrova_inprocess("snapshot", "--strict", *fleet.args())
    assert strict.exit_code == 1


# --- 5. the pre-commit hook catches what the snapshot would reject -------------------------


def _hook(petrova: Petrova, repo: Path, *extra: str):  # type: ignore[no-untyped-def]
    """What the hook runs: `petrova contract validate .petrova/contract.yaml`, in the repo."""
    return petrova("contract", "validate", ".petrova/contract.yaml", *extra, cwd=repo)


def test_the_hook_fails_a_contract_for_another_repo(
    petrova_inprocess: Petrova, fleet: Fleet, git_repo: Callable[..., Path], tmp_path: Path
) -> None:
    stratt = MERGED.replace("slug: kahn-hq", "slug: stratt-hq")
    repo = git_repo(tmp_path / "kahn", {".petrova/contract.yaml": stratt}, origin=KAHN_ORIGIN)
    run = _hook(petrova_inprocess, repo, "--registry", str(fleet.registry))
    assert run.exit_code == 2, run.stderr
    assert "CONTRACT_SLUG_MISMATCH: .petrova/contract.yaml:2:7: slug:" in run.stderr
    assert "Set `slug: kahn-hq`" in run.stderr
    # The right slug passes; without a registry there is nothing to match against.
    (repo / ".petrova" / "contract.yaml").write_text(MERGED)
    ok = _hook(petrova_inprocess, repo, "--registry", str(fleet.registry))
    assert ok.exit_code == 0, ok.stderr
    (repo / ".petrova" / "contract.yaml").write_text(stratt)
    assert _hook(petrova_inprocess, repo).exit_code == 0


def test_the_hook_warns_about_a_review_date_in_the_past(
    petrova_inprocess: Petrova, git_repo: Callable[..., Path], tmp_path: Path
) -> None:
    overdue = MERGED.replace(
        "  crumb: {status: pending}\n",
        "  crumb: {status: not_applicable, not_applicable_reason: none, review_by: '2026-01-31'}\n",
    )
    repo = git_repo(tmp_path / "kahn", {".petrova/contract.yaml": overdue}, origin=KAHN_ORIGIN)
    run = _hook(petrova_inprocess, repo)
    assert run.exit_code == 0, run.stderr
    assert "warning: REVIEW_OVERDUE: .petrova/contract.yaml:6:" in run.stderr
    assert "crumb: not_applicable was due for review on 2026-01-31" in run.stderr


# --- 7. small things an operator trips on --------------------------------------------------


def test_problems_in_one_file_are_listed_in_line_order(
    petrova_inprocess: Petrova, tmp_path: Path
) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(
        "slug: kahn-hq\nintegrations:\n  ares:\n    status: bogus\n"
        "  traceo: {status: pending}\n  crumb: {status: pending}\n"
        "  lore_cairnet: {status: pending}\nschema_version: 2\n"
    )
    run = petrova_inprocess("contract", "validate", str(path))
    assert run.exit_code == 2
    lines = [line for line in run.stderr.splitlines() if line.startswith(f"  {path}:")]
    assert len(lines) == 2, run.stderr
    numbers = [int(line.split(":")[1]) for line in lines]
    assert numbers == sorted(numbers) == [4, 8]


def test_rollout_gate_help_says_what_it_needs(petrova_inprocess: Petrova) -> None:
    run = petrova_inprocess("rollout", "gate", "--help")
    assert run.exit_code == 0
    text = " ".join(run.stdout.split())
    for needed in ("--state-dir", "--workspace", "petrova sync", "state record"):
        assert needed in text, needed
