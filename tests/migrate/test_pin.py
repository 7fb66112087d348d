from __future__ import annotations

import difflib
import hashlib
from pathlib import Path

import pytest

from petrova.documents.catalogue import load_catalogue
from petrova.documents.registry import load_registry
from petrova.migrate.pin import _plain_or_quoted, splice
from petrova.models import ApplicabilityDetail
from tests.conftest import CATALOGUE, Fleet, Petrova, make_git_repo

PENDING = (
    "schema_version: 1\nslug: {slug}\nintegrations:\n"
    "  ares: {{status: pending}}\n  traceo: {{status: pending}}\n"
    "  crumb: {{status: not_applicable, not_applicable_reason: no content surface yet, "
    "review_by: '2026-08-01'}}\n  lore_cairnet: {{status: pending}}\n"
)


def write_contract(tmp_path: Path, slug: str = "kahn-hq", text: str | None = None) -> Path:
    path = tmp_path / f"{slug}.contract.yaml"
    path.write_text(text if text is not None else PENDING.format(slug=slug))
    return path


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def changed_old_lines(before: str, after: str) -> list[int]:
    """0-based numbers of the old lines a diff touches (replaced, deleted, or inserted at)."""
    touched: list[int] = []
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag != "equal":
            touched += list(range(i1, max(i2, i1 + 1)))
    return touched


def entry_lines(text: str, slug: str) -> range:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"- slug: {slug}")
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("- slug:")),
        len(lines),
    )
    return range(start, end + 1)


def pin(petrova: Petrova, fleet: Fleet, slug: str, contract: Path, *args: str):  # type: ignore[no-untyped-def]
    return petrova("registry", "pin", slug, "--contract", str(contract), *fleet.args(*args))


def test_pin_changes_only_that_entrys_lines(petrova: Petrova, fleet: Fleet, tmp_path: Path) -> None:
    contract = write_contract(tmp_path)
    before = fleet.registry.read_text()
    run = pin(petrova, fleet, "kahn-hq", contract)
    assert run.exit_code == 0, run.stderr
    after = fleet.registry.read_text()
    sha = sha_of(contract)
    assert f"update {fleet.registry}: kahn-hq: contract_sha (none) -> {sha}" in run.stderr
    assert set(changed_old_lines(before, after)) <= set(entry_lines(before, "kahn-hq"))
    assert (
        '    added: "2026-04-29"\n'
        f"    contract_sha: {sha}\n"
        "    integrations_applicability:\n"
        "      ares: required\n"
        "      traceo: required\n"
        '      crumb: {value: not_applicable, review_by: "2026-08-01", '
        'reason: "no content surface yet"}\n'
        "      lore_cairnet: required\n"
        "    contract_committers: [humans]\n"
        "\n"
        "  - slug: stratt-hq\n"
    ) in after
    loaded = load_registry(fleet.registry, load_catalogue(CATALOGUE))
    entry = loaded.entry("kahn-hq")
    assert entry is not None and entry.contract_sha == sha
    assert entry.integrations_applicability["crumb"] == ApplicabilityDetail(
        value="not_applicable", review_by="2026-08-01", reason="no content surface yet"
    )


def test_second_pin_is_unchanged_and_check_passes(
    petrova: Petrova, fleet: Fleet, tmp_path: Path
) -> None:
    contract = write_contract(tmp_path)
    assert pin(petrova, fleet, "kahn-hq", contract).exit_code == 0
    pinned = fleet.registry.read_bytes()
    run = pin(petrova, fleet, "kahn-hq", contract)
    assert run.exit_code == 0
    assert "unchanged" in run.stderr
    assert fleet.registry.read_bytes() == pinned
    run = pin(petrova, fleet, "kahn-hq", contract, "--check")
    assert run.exit_code == 0, run.stderr
    assert "up to date" in run.stderr


def test_check_exits_1_when_stale_and_writes_nothing(
    petrova: Petrova, fleet: Fleet, tmp_path: Path
) -> None:
    contract = write_contract(tmp_path)
    before = fleet.registry.read_bytes()
    run = pin(petrova, fleet, "kahn-hq", contract, "--check")
    assert run.exit_code == 1
    assert "petrova: PIN_STALE: " in run.stderr
    assert f"contract_sha (none) -> {sha_of(contract)}" in run.stderr
    assert fleet.registry.read_bytes() == before


def test_repin_replaces_the_sha_in_place(petrova: Petrova, fleet: Fleet, tmp_path: Path) -> None:
    contract = write_contract(tmp_path)
    assert pin(petrova, fleet, "kahn-hq", contract).exit_code == 0
    first = fleet.registry.read_text()
    old_sha = sha_of(contract)
    contract.write_text(PENDING.format(slug="kahn-hq") + "contract_committers: [humans, bots]\n")
    assert pin(petrova, fleet, "kahn-hq", contract, "--check").exit_code == 1
    run = pin(petrova, fleet, "kahn-hq", contract)
    assert run.exit_code == 0, run.stderr
    assert fleet.registry.read_text() == first.replace(old_sha, sha_of(contract))


def test_dry_run_prints_a_diff_and_writes_nothing(
    petrova: Petrova, fleet: Fleet, tmp_path: Path
) -> None:
    contract = write_contract(tmp_path)
    before = fleet.registry.read_bytes()
    run = pin(petrova, fleet, "kahn-hq", contract, "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert f"+    contract_sha: {sha_of(contract)}\n" in run.stdout
    assert fleet.registry.read_bytes() == before


def test_pin_finds_the_contract_in_the_workspace(
    petrova: Petrova, fleet: Fleet, tmp_path: Path
) -> None:
    # The synced clone: what is committed at its HEAD is what was merged.
    make_git_repo(
        fleet.workspace / "kahn-hq", {".petrova/contract.yaml": PENDING.format(slug="kahn-hq")}
    )
    clone = fleet.workspace / "kahn-hq" / ".petrova"
    run = petrova(
        "registry", "pin", "kahn-hq", *fleet.args(), env={"PETROVA_WORKSPACE": str(fleet.workspace)}
    )
    assert run.exit_code == 0, run.stderr
    assert f"contract_sha: {sha_of(clone / 'contract.yaml')}" in fleet.registry.read_text()


# --- bad input ------------------------------------------------------------------------------


def refused(run: object, code: str) -> None:
    assert run.exit_code == 2, (run.stdout, run.stderr)  # type: ignore[attr-defined]
    assert f"petrova: {code}: " in run.stderr  # type: ignore[attr-defined]


def test_contradiction_is_refused(petrova: Petrova, fleet: Fleet, tmp_path: Path) -> None:
    fleet.registry.write_text(
        fleet.registry.read_text().replace(
            "    fleets_allowed: [kahn-implementer]\n",
            "    fleets_allowed: [kahn-implementer]\n"
            "    integrations_applicability:\n"
            "      ares: {value: not_applicable, review_by: '2027-01-01', reason: own CI}\n",
        )
    )
    contract = write_contract(
        tmp_path,
        text=PENDING.format(slug="kahn-hq").replace(
            "ares: {status: pending}", "ares: {status: wired, evidence: {org_or_repo_scope: k}}"
        ),
    )
    before = fleet.registry.read_bytes()
    run = pin(petrova, fleet, "kahn-hq", contract)
    refused(run, "APPLICABILITY_CONFLICT")
    assert f"{fleet.registry}:34:13: repos[1].integrations_applicability.ares: kahn-hq: ares" in (
        run.stderr
    )
    assert f"{contract}:4:18: integrations.ares.status declares it wired" in run.stderr
    assert fleet.registry.read_bytes() == before


def test_unknown_slug(petrova: Petrova, fleet: Fleet, tmp_path: Path) -> None:
    before = fleet.registry.read_bytes()
    run = pin(petrova, fleet, "kahn", write_contract(tmp_path))
    refused(run, "REPO_NOT_IN_REGISTRY")
    assert "did you mean kahn-hq" in run.stderr
    assert fleet.registry.read_bytes() == before


def test_contract_for_another_slug(petrova: Petrova, fleet: Fleet, tmp_path: Path) -> None:
    before = fleet.registry.read_bytes()
    run = pin(petrova, fleet, "kahn-hq", write_contract(tmp_path, "stratt-hq"))
    refused(run, "CONTRACT_INVALID")
    assert "this contract is for 'stratt-hq', not 'kahn-hq'" in run.stderr
    assert fleet.registry.read_bytes() == before


def test_invalid_contract(petrova: Petrova, fleet: Fleet, tmp_path: Path) -> None:
    contract = write_contract(tmp_path, text="schema_version: 1\nslug: kahn-hq\n")
    before = fleet.registry.read_bytes()
    run = pin(petrova, fleet, "kahn-hq", contract)
    refused(run, "CONTRACT_INVALID")
    assert "missing required field 'integrations'" in run.stderr
    assert fleet.registry.read_bytes() == before


def test_missing_contract(petrova: Petrova, fleet: Fleet, tmp_path: Path) -> None:
    run = pin(petrova, fleet, "kahn-hq", tmp_path / "nope.yaml")
    refused(run, "CONTRACT_NOT_FOUND")


def test_no_contract_and_no_workspace(petrova: Petrova, fleet: Fleet) -> None:
    before = fleet.registry.read_bytes()
    run = petrova("registry", "pin", "kahn-hq", *fleet.args())
    refused(run, "USAGE_ERROR")
    assert "pass --repo CLONE" in run.stderr
    assert fleet.registry.read_bytes() == before


# --- the splice, shape by shape ---------------------------------------------------------------

HEAD = "schema_version: 1\nrepos:\n"
ENTRY = "url: https://github.com/o/a, role: production, tier: 2"
ADDED_ALL = {
    "ares": "required",
    "traceo": "required",
    "crumb": ApplicabilityDetail(value="not_applicable", review_by="2026-08-01", reason="n/a"),
    "lore_cairnet": "required",
}
CRUMB = '{value: not_applicable, review_by: "2026-08-01", reason: "n/a"}'


@pytest.mark.parametrize(
    ("before", "added", "after"),
    [
        pytest.param(
            HEAD + f"  - {{slug: a, {ENTRY}}}  # flow\n",
            ADDED_ALL,
            HEAD + f"  - {{slug: a, {ENTRY}, contract_sha: abcdef012345, "
            f"integrations_applicability: {{ares: required, traceo: required, crumb: {CRUMB}, "
            "lore_cairnet: required}}  # flow\n",
            id="flow-entry",
        ),
        pytest.param(
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2\n    contract_sha:\n    notes: x\n",
            {},
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2\n    contract_sha: abcdef012345\n    notes: x\n",
            id="empty-sha",
        ),
        pytest.param(
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2\n    contract_sha: null   # not yet\n",
            {},
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2\n    contract_sha: abcdef012345   # not yet\n",
            id="null-sha-with-comment",
        ),
        pytest.param(
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2\n    integrations_applicability:\n      ares: optional  # why\n\n"
            "      # traceo later\n    notes: x\n",
            {k: v for k, v in ADDED_ALL.items() if k != "ares"},
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2\n    contract_sha: abcdef012345\n    integrations_applicability:\n"
            f"      ares: optional  # why\n      traceo: required\n      crumb: {CRUMB}\n"
            "      lore_cairnet: required\n\n      # traceo later\n    notes: x\n",
            id="block-applicability-partly-there",
        ),
        pytest.param(
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2\n    contract_sha: 000000000000\n"
            "    integrations_applicability: {ares: optional}\n",
            {k: v for k, v in ADDED_ALL.items() if k != "ares"},
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2\n    contract_sha: abcdef012345\n"
            f"    integrations_applicability: {{ares: optional, traceo: required, crumb: {CRUMB}, "
            "lore_cairnet: required}\n",
            id="flow-applicability",
        ),
        pytest.param(
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2\n    integrations_applicability: {}\n",
            {"ares": "required"},
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2\n    contract_sha: abcdef012345\n"
            "    integrations_applicability: {ares: required}\n",
            id="empty-flow-applicability",
        ),
        pytest.param(
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2\n    integrations_applicability:\n",
            {"ares": "required"},
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2\n    contract_sha: abcdef012345\n"
            "    integrations_applicability: {ares: required}\n",
            id="null-applicability",
        ),
        pytest.param(
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2",
            {"ares": "required"},
            HEAD + "  - slug: a\n    url: https://github.com/o/a\n    role: production\n"
            "    tier: 2\n    contract_sha: abcdef012345\n    integrations_applicability:\n"
            "      ares: required\n",
            id="last-line-without-newline",
        ),
        pytest.param(
            HEAD.replace("\n", "\r\n") + "  - slug: a\r\n    url: https://github.com/o/a\r\n"
            "    role: production\r\n    tier: 2\r\n    # who may commit\r\n"
            "    contract_committers: [humans]\r\n",
            {"ares": "required"},
            HEAD.replace("\n", "\r\n") + "  - slug: a\r\n    url: https://github.com/o/a\r\n"
            "    role: production\r\n    tier: 2\r\n    contract_sha: abcdef012345\r\n"
            "    integrations_applicability:\r\n      ares: required\r\n    # who may commit\r\n"
            "    contract_committers: [humans]\r\n",
            id="crlf-and-a-comment-above-the-anchor",
        ),
    ],
)
def test_splice(before: str, added: dict[str, object], after: str) -> None:
    assert splice(before.encode(), 0, sha="abcdef012345", added=added).decode() == after  # type: ignore[arg-type]


def test_splice_keeps_a_bom_and_other_entries() -> None:
    text = "\ufeff" + HEAD + "  - slug: a  # é\n    tier: 2\n  - slug: b\n    tier: 3\n"
    out = splice(text.encode(), 1, sha="abcdef012345", added={}).decode()
    assert out == text + "    contract_sha: abcdef012345\n"


def test_a_sha_that_would_read_as_a_number_is_quoted() -> None:
    assert _plain_or_quoted("123456789012") == '"123456789012"'
    assert _plain_or_quoted("3f9a0c1b2d4e") == "3f9a0c1b2d4e"
