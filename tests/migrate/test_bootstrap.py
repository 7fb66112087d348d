from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from petrova.migrate.bootstrap import PHASES
from petrova.sync.origin import normalise_remote
from tests.conftest import TESTS, Fleet, Petrova, git_status

KAHN_ORIGIN = "git@github.com:kahn-hq/kahn.git"
HEADER = (
    "# petrova consumer contract: this repo's declared integration intent.\n"
    "# Written by `petrova bootstrap` phase 6; change it by pull request.\n"
    "# Its sha256 (first 12 hex digits) is pinned in the fleet registry.\n"
)
ALL_PENDING = HEADER + (
    "schema_version: 1\n"
    "slug: kahn-hq\n"
    "contract_committers:\n"
    "- humans\n"
    "integrations:\n"
    "  ares:\n"
    "    status: pending\n"
    "  traceo:\n"
    "    status: pending\n"
    "  crumb:\n"
    "    status: pending\n"
    "  lore_cairnet:\n"
    "    status: pending\n"
)


def files_of(*roots: Path) -> dict[str, bytes]:
    """Every file under the roots (git directories included), for "nothing changed"."""
    out: dict[str, bytes] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                out[str(path)] = path.read_bytes()
    return out


@pytest.fixture
def kahn(tmp_path: Path, git_repo: Callable[..., Path]) -> Path:
    return git_repo(tmp_path / "kahn", {"README.md": "kahn\n"}, origin=KAHN_ORIGIN)


def boot(petrova: Petrova, fleet: Fleet, repo: Path, *args: str, **kw: object):  # type: ignore[no-untyped-def]
    return petrova("bootstrap", "--repo", str(repo), *fleet.args(*args), **kw)


def contract_of(repo: Path) -> bytes:
    return (repo / ".petrova" / "contract.yaml").read_bytes()


def write_answers(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(text)
    return path


# --- help and phases ----------------------------------------------------------------------


def test_help_lists_every_phase_with_its_name(petrova: Petrova) -> None:
    run = petrova("bootstrap", "--help")
    assert run.exit_code == 0
    for phase in PHASES:
        assert f"{phase.number}. {phase.name}" in run.stdout
    assert [p.number for p in PHASES] == [1, 2, 3, 4, 5, 6]


# --- the happy path -----------------------------------------------------------------------


def test_defaults_write_the_contract_and_only_the_contract(
    petrova: Petrova, fleet: Fleet, kahn: Path
) -> None:
    run = boot(petrova, fleet, kahn, "--defaults")
    assert run.exit_code == 0, run.stderr
    data = contract_of(kahn)
    assert data.decode() == ALL_PENDING
    sha = hashlib.sha256(data).hexdigest()[:12]
    lines = run.stdout.splitlines()
    assert lines[0] == f"contract_sha: {sha}"
    assert lines[1].startswith(f"next: petrova registry pin kahn-hq --repo {kahn} ")
    assert "create .petrova/contract.yaml" in run.stderr
    assert git_status(kahn) == "?? .petrova/contract.yaml\n"
    checkpoint = json.loads((kahn / ".git" / "petrova" / "bootstrap.json").read_text())
    assert checkpoint["completed_phase"] == 6
    assert checkpoint["slug"] == "kahn-hq"


def test_second_run_says_unchanged(petrova: Petrova, fleet: Fleet, kahn: Path) -> None:
    assert boot(petrova, fleet, kahn, "--defaults").exit_code == 0
    before = files_of(kahn)
    run = boot(petrova, fleet, kahn, "--defaults", "--resume", "--phase", "6")
    assert run.exit_code == 0, run.stderr
    assert "unchanged" in run.stderr
    assert files_of(kahn) == before


@pytest.mark.parametrize(
    "origin",
    [
        "git@github.com:kahn-hq/kahn.git",
        "ssh://git@github.com/kahn-hq/kahn.git",
        "ssh://git@github.com:22/kahn-hq/kahn",
        "https://github.com/kahn-hq/kahn.git",
        "https://someone@GitHub.com/Kahn-HQ/kahn/",
    ],
)
def test_origin_matches_the_registry_url_in_any_form(origin: str) -> None:
    assert normalise_remote(origin) == normalise_remote("https://github.com/kahn-hq/kahn")


def test_slug_selects_the_entry_without_origin(
    petrova: Petrova, fleet: Fleet, tmp_path: Path, git_repo: Callable[..., Path]
) -> None:
    repo = git_repo(tmp_path / "stratt", {"a": "b\n"})
    run = boot(petrova, fleet, repo, "--defaults", "--slug", "stratt-hq")
    assert run.exit_code == 0, run.stderr
    assert b"slug: stratt-hq\n" in contract_of(repo)


def test_answers_file_and_registry_not_applicable(
    petrova: Petrova, fleet: Fleet, kahn: Path, tmp_path: Path
) -> None:
    text = fleet.registry.read_text().replace(
        "    fleets_allowed: [kahn-implementer]\n",
        "    fleets_allowed: [kahn-implementer]\n"
        "    integrations_applicability:\n"
        '      crumb: {value: not_applicable, review_by: "2026-08-01", '
        'reason: "no content surface yet"}\n',
    )
    fleet.registry.write_text(text)
    answers = write_answers(
        tmp_path,
        "integrations:\n"
        "  ares: pending\n"
        "  traceo:\n"
        "    status: wired\n"
        "    evidence: {vtm_path: docs/spec/vtm.md, baseline_id: bl-7, "
        "mermaid_diagram_count: 3}\n",
    )
    run = boot(petrova, fleet, kahn, "--answers", str(answers))
    assert run.exit_code == 0, run.stderr
    assert contract_of(kahn).decode() == HEADER + (
        "schema_version: 1\n"
        "slug: kahn-hq\n"
        "contract_committers:\n"
        "- humans\n"
        "integrations:\n"
        "  ares:\n"
        "    status: pending\n"
        "  traceo:\n"
        "    status: wired\n"
        "    evidence:\n"
        "      baseline_id: bl-7\n"
        "      vtm_path: docs/spec/vtm.md\n"
        "      mermaid_diagram_count: 3\n"
        "  crumb:\n"
        "    status: not_applicable\n"
        "    not_applicable_reason: no content surface yet\n"
        "    review_by: '2026-08-01'\n"
        "  lore_cairnet:\n"
        "    status: pending\n"
    )


def test_rerun_never_downgrades_wired_or_drops_evidence(
    petrova: Petrova, fleet: Fleet, kahn: Path, tmp_path: Path
) -> None:
    wired = write_answers(
        tmp_path,
        "integrations:\n  ares: {status: wired, evidence: {org_or_repo_scope: kahn-hq}}\n",
    )
    assert boot(petrova, fleet, kahn, "--answers", str(wired)).exit_code == 0
    before = contract_of(kahn)
    downgrade = tmp_path / "down.yaml"
    downgrade.write_text("integrations:\n  ares: pending\n")
    run = boot(petrova, fleet, kahn, "--answers", str(downgrade))
    assert run.exit_code == 0, run.stderr
    assert "ares: kept as the contract says (wired)" in run.stderr
    assert contract_of(kahn) == before
    run = boot(petrova, fleet, kahn, "--resume", "--phase", "6")
    assert run.exit_code == 0
    assert contract_of(kahn) == before


def test_resume_phase_6_without_checkpoint_keeps_a_hand_written_contract(
    petrova: Petrova, fleet: Fleet, kahn: Path
) -> None:
    hand = (
        "# written by hand, long ago\n"
        "schema_version: 1\n"
        "slug: kahn-hq\n"
        "integrations:\n"
        "  traceo: {status: wired, evidence: {baseline_id: bl-1, vtm_path: vtm.md}}\n"
        "  crumb: {status: not_applicable, not_applicable_reason: none, review_by: '2027-01-01'}\n"
    )
    (kahn / ".petrova").mkdir()
    (kahn / ".petrova" / "contract.yaml").write_text(hand)
    assert not (kahn / ".git" / "petrova").exists()
    run = boot(petrova, fleet, kahn, "--defaults", "--resume", "--phase", "6")
    assert run.exit_code == 0, run.stderr
    text = contract_of(kahn).decode()
    assert "  traceo:\n    status: wired\n    evidence:\n      baseline_id: bl-1\n" in text
    assert "  crumb:\n    status: not_applicable\n    not_applicable_reason: none\n" in text
    assert "  ares:\n    status: pending\n" in text
    assert "  lore_cairnet:\n    status: pending\n" in text
    assert "note: ares is new in the catalogue; added as pending" in run.stderr
    assert "update .petrova/contract.yaml" in run.stderr


def test_an_equivalent_hand_written_contract_keeps_its_bytes(
    petrova: Petrova, fleet: Fleet, kahn: Path
) -> None:
    hand = ALL_PENDING.replace("slug: kahn-hq\n", "slug: kahn-hq  # ours\n")
    (kahn / ".petrova").mkdir()
    (kahn / ".petrova" / "contract.yaml").write_text(hand)
    run = boot(petrova, fleet, kahn, "--resume", "--phase", "6")
    assert run.exit_code == 0, run.stderr
    assert "unchanged" in run.stderr
    assert contract_of(kahn).decode() == hand


def test_resume_takes_answers_from_the_checkpoint(
    petrova: Petrova, fleet: Fleet, kahn: Path, tmp_path: Path
) -> None:
    answers = write_answers(
        tmp_path, "integrations:\n  ares: {status: wired, evidence: {org_or_repo_scope: kahn}}\n"
    )
    assert boot(petrova, fleet, kahn, "--answers", str(answers)).exit_code == 0
    first = contract_of(kahn)
    (kahn / ".petrova" / "contract.yaml").unlink()
    run = boot(petrova, fleet, kahn, "--resume")
    assert run.exit_code == 0, run.stderr
    assert "resumed: 1 answer(s) from the checkpoint" in run.stderr
    assert contract_of(kahn) == first


def test_dry_run_shows_the_file_and_sha_and_writes_nothing(
    petrova: Petrova, fleet: Fleet, kahn: Path
) -> None:
    before = files_of(kahn, fleet.root)
    run = boot(petrova, fleet, kahn, "--defaults", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert run.stdout == ALL_PENDING
    sha = hashlib.sha256(ALL_PENDING.encode()).hexdigest()[:12]
    assert f"contract_sha: {sha}" in run.stderr
    assert "would create .petrova/contract.yaml" in run.stderr
    assert files_of(kahn, fleet.root) == before


def test_dry_run_of_an_update_shows_a_diff(petrova: Petrova, fleet: Fleet, kahn: Path) -> None:
    (kahn / ".petrova").mkdir()
    old = ALL_PENDING.replace("  lore_cairnet:\n    status: pending\n", "")
    (kahn / ".petrova" / "contract.yaml").write_text(old)
    run = boot(petrova, fleet, kahn, "--defaults", "--dry-run", "--resume", "--phase", "6")
    assert run.exit_code == 0, run.stderr
    assert "+  lore_cairnet:\n" in run.stderr
    assert contract_of(kahn).decode() == old


def test_interactive_prompts_ask_what_the_schema_asks(
    petrova_inprocess: Petrova, fleet: Fleet, kahn: Path
) -> None:
    typed = "\n".join(
        [
            "wired",  # ares
            "kahn-hq",  # org_or_repo_scope
            "not_applicable",  # traceo
            "no matrix yet",
            "2026-09-01",
            "wired",  # crumb
            "content",  # content_path
            "KAHN",  # project_prefix
            "many",  # card_count: not a number, asked again
            "12",
            "",  # last_generated_at: optional, skipped
            "",  # generator_id: skipped
            "",  # lore_cairnet: default pending
        ]
    )
    run = boot(petrova_inprocess, fleet, kahn, "--interactive", input=typed + "\n")
    assert run.exit_code == 0, run.stderr
    assert "'many' is not a whole number" in run.stderr
    assert "card_count (Number of cards generated; integer)" in run.stderr
    text = contract_of(kahn).decode()
    assert "  ares:\n    status: wired\n    evidence:\n      org_or_repo_scope: kahn-hq\n" in text
    assert "    not_applicable_reason: no matrix yet\n    review_by: '2026-09-01'\n" in text
    assert "      project_prefix: KAHN\n      card_count: 12\n  lore_cairnet:\n" in text


# --- bad input: exit 2, a stable code, and nothing changed ---------------------------------


def refused(run: object, code: str) -> None:
    assert run.exit_code == 2, (run.stdout, run.stderr)  # type: ignore[attr-defined]
    assert f"petrova: {code}: " in run.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in run.stderr  # type: ignore[attr-defined]


def test_not_a_git_repo(petrova: Petrova, fleet: Fleet, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    before = files_of(plain, fleet.root)
    run = boot(petrova, fleet, plain)
    refused(run, "NOT_A_GIT_REPO")
    assert str(plain) in run.stderr
    assert files_of(plain, fleet.root) == before


def test_no_origin_and_no_slug(
    petrova: Petrova, fleet: Fleet, tmp_path: Path, git_repo: Callable[..., Path]
) -> None:
    repo = git_repo(tmp_path / "lonely", {"a": "b\n"})
    before = files_of(repo, fleet.root)
    run = boot(petrova, fleet, repo)
    refused(run, "ORIGIN_MISSING")
    assert "pass --slug SLUG" in run.stderr
    assert files_of(repo, fleet.root) == before


def test_slug_not_in_registry(petrova: Petrova, fleet: Fleet, kahn: Path) -> None:
    before = files_of(kahn, fleet.root)
    run = boot(petrova, fleet, kahn, "--slug", "kahn-hqq")
    refused(run, "REPO_NOT_IN_REGISTRY")
    assert "no repo 'kahn-hqq'" in run.stderr
    assert "did you mean kahn-hq" in run.stderr
    assert files_of(kahn, fleet.root) == before


def test_origin_not_in_registry(
    petrova: Petrova, fleet: Fleet, tmp_path: Path, git_repo: Callable[..., Path]
) -> None:
    repo = git_repo(tmp_path / "x", {"a": "b\n"}, origin="https://github.com/else/where")
    before = files_of(repo, fleet.root)
    run = boot(petrova, fleet, repo)
    refused(run, "REPO_NOT_IN_REGISTRY")
    assert "https://github.com/else/where" in run.stderr
    assert files_of(repo, fleet.root) == before


ANSWERS_CORPUS = TESTS / "examples" / "answers" / "invalid"


@pytest.mark.parametrize("example", sorted(ANSWERS_CORPUS.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_answers_file(
    petrova: Petrova, fleet: Fleet, kahn: Path, tmp_path: Path, example: Path
) -> None:
    """Each example's first line says the exact error line it must produce."""
    path = write_answers(tmp_path, example.read_text())
    expected = example.read_text().splitlines()[0].removeprefix("# expect: ")
    before = files_of(kahn, fleet.root, tmp_path)
    run = boot(petrova, fleet, kahn, "--answers", str(path))
    refused(run, expected.split(":")[0])
    assert expected.format(file=path) in run.stderr.replace("petrova: ", "").splitlines() or (
        "  " + expected.split(": ", 1)[1].format(file=path) in run.stderr.splitlines()
    ), run.stderr
    assert files_of(kahn, fleet.root, tmp_path) == before


def test_missing_answers_file(petrova: Petrova, fleet: Fleet, kahn: Path, tmp_path: Path) -> None:
    run = boot(petrova, fleet, kahn, "--answers", str(tmp_path / "nope.yaml"))
    refused(run, "ANSWERS_INVALID")
    assert "answers file not found" in run.stderr


def test_not_applicable_with_no_review_date_anywhere(
    petrova: Petrova, fleet: Fleet, kahn: Path, tmp_path: Path
) -> None:
    path = write_answers(
        tmp_path,
        "integrations:\n  crumb: {status: not_applicable, not_applicable_reason: no content}\n",
    )
    before = files_of(kahn, fleet.root, tmp_path)
    run = boot(petrova, fleet, kahn, "--answers", str(path))
    refused(run, "REVIEW_BY_MISSING")
    assert "crumb is not applicable but has no review date anywhere" in run.stderr
    assert files_of(kahn, fleet.root, tmp_path) == before


def test_registry_not_applicable_without_review_date_by_default(
    petrova: Petrova, fleet: Fleet, kahn: Path
) -> None:
    fleet.registry.write_text(
        fleet.registry.read_text().replace(
            "    fleets_allowed: [kahn-implementer]\n",
            "    fleets_allowed: [kahn-implementer]\n"
            "    integrations_applicability: {crumb: not_applicable}\n",
        )
    )
    before = files_of(kahn, fleet.root)
    run = boot(petrova, fleet, kahn, "--defaults")
    refused(run, "REVIEW_BY_MISSING")
    assert files_of(kahn, fleet.root) == before


def test_wired_answer_where_the_registry_says_not_applicable(
    petrova: Petrova, fleet: Fleet, kahn: Path, tmp_path: Path
) -> None:
    fleet.registry.write_text(
        fleet.registry.read_text().replace(
            "    fleets_allowed: [kahn-implementer]\n",
            "    fleets_allowed: [kahn-implementer]\n"
            "    integrations_applicability:\n"
            "      ares: {value: not_applicable, review_by: '2027-01-01', reason: own CI}\n",
        )
    )
    path = write_answers(
        tmp_path, "integrations:\n  ares: {status: wired, evidence: {org_or_repo_scope: k}}\n"
    )
    before = files_of(kahn, fleet.root, tmp_path)
    run = boot(petrova, fleet, kahn, "--answers", str(path))
    refused(run, "APPLICABILITY_CONFLICT")
    assert "ares: answered wired, but the registry says not_applicable" in run.stderr
    assert files_of(kahn, fleet.root, tmp_path) == before


def test_malformed_existing_contract_is_never_overwritten(
    petrova: Petrova, fleet: Fleet, kahn: Path
) -> None:
    (kahn / ".petrova").mkdir()
    bad = "schema_version: 1\nslug: kahn-hq\nintegrations:\n  ares: {status: maybe}\n"
    (kahn / ".petrova" / "contract.yaml").write_text(bad)
    before = files_of(kahn, fleet.root)
    for args in ((), ("--resume", "--phase", "6")):
        run = boot(petrova, fleet, kahn, *args)
        refused(run, "CONTRACT_INVALID")
        assert "contract.yaml:4:18: integrations.ares.status: 'maybe' is not one of" in run.stderr
    assert files_of(kahn, fleet.root) == before


def test_existing_contract_for_another_slug(petrova: Petrova, fleet: Fleet, kahn: Path) -> None:
    (kahn / ".petrova").mkdir()
    other = ALL_PENDING.replace("slug: kahn-hq", "slug: stratt-hq")
    (kahn / ".petrova" / "contract.yaml").write_text(other)
    before = files_of(kahn, fleet.root)
    run = boot(petrova, fleet, kahn)
    refused(run, "CONTRACT_INVALID")
    assert "is for 'stratt-hq', not 'kahn-hq'" in run.stderr
    assert files_of(kahn, fleet.root) == before


def test_refuses_a_symlinked_petrova_dir(
    petrova: Petrova, fleet: Fleet, kahn: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (kahn / ".petrova").symlink_to(outside, target_is_directory=True)
    before = files_of(kahn, fleet.root, outside)
    run = boot(petrova, fleet, kahn)
    refused(run, "UNSAFE_PATH")
    assert "is a symbolic link" in run.stderr
    assert files_of(kahn, fleet.root, outside) == before
    assert list(outside.iterdir()) == []


def test_refuses_a_symlinked_contract_file(
    petrova: Petrova, fleet: Fleet, kahn: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(ALL_PENDING)
    (kahn / ".petrova").mkdir()
    (kahn / ".petrova" / "contract.yaml").symlink_to(outside)
    run = boot(petrova, fleet, kahn)
    refused(run, "UNSAFE_PATH")
    assert outside.read_text() == ALL_PENDING


def test_corrupt_checkpoint_on_resume(petrova: Petrova, fleet: Fleet, kahn: Path) -> None:
    (kahn / ".git" / "petrova").mkdir()
    (kahn / ".git" / "petrova" / "bootstrap.json").write_text('{"petrova_bootstrap": 7}\n')
    before = files_of(kahn, fleet.root)
    run = boot(petrova, fleet, kahn, "--resume")
    refused(run, "CHECKPOINT_INVALID")
    assert "bootstrap.json" in run.stderr
    assert files_of(kahn, fleet.root) == before


def test_checkpoint_answers_that_no_longer_fit(petrova: Petrova, fleet: Fleet, kahn: Path) -> None:
    (kahn / ".git" / "petrova").mkdir()
    (kahn / ".git" / "petrova" / "bootstrap.json").write_text(
        json.dumps(
            {
                "petrova_bootstrap": 1,
                "completed_phase": 5,
                "slug": "kahn-hq",
                "origin": None,
                "integrations": {"gone": {"status": "pending"}},
            }
        )
    )
    run = boot(petrova, fleet, kahn, "--resume", "--phase", "6")
    refused(run, "CHECKPOINT_INVALID")
    assert "'gone' is not an integration in the catalogue" in run.stderr


def test_phase_needs_resume(petrova: Petrova, fleet: Fleet, kahn: Path) -> None:
    run = boot(petrova, fleet, kahn, "--phase", "6")
    assert run.exit_code == 2
    assert "add --resume" in run.stderr
    assert not (kahn / ".petrova").exists()


def test_bootstrap_and_sync_agree_about_origin_under_insteadof(
    petrova: Petrova, fleet: Fleet, kahn: Path, tmp_path: Path
) -> None:
    """One origin rule (SPEC §12): the url as configured, before insteadOf rewrites it,
    for bootstrap as for sync; a mirror is the operator's transport, not another repo."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    subprocess.run(
        ["git", "-C", str(kahn), "config", f"url.file://{mirror}/.insteadOf", "git@github.com:"],
        check=True,
    )
    rewritten = subprocess.run(
        ["git", "-C", str(kahn), "remote", "get-url", "origin"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert rewritten.startswith("file://")  # what bootstrap used to compare, and refuse
    run = boot(petrova, fleet, kahn, "--defaults")
    assert run.exit_code == 0, run.stderr
    assert "REPO_NOT_IN_REGISTRY" not in run.stderr
    assert (kahn / ".petrova" / "contract.yaml").exists()
