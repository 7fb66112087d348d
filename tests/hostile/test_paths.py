"""Paths and links: nothing is read or written outside the directories a command is for.

Consumer clones are not ours, so a symbolic link in one (``.petrova/`` or the contract)
is refused by name (``UNSAFE_PATH``), and what it points at is never read, quoted or
published. Ledgers and lock files are petrova's own: a link planted at their names is
refused, and nothing is created or changed where it points. Slugs name files, so one
that could climb out of ``state/`` (``..``, ``/``) never gets that far.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, Fleet, Petrova, make_git_repo
from tests.tierfleet import migrate_tier2

SECRET = "PETROVA_INGEST_TOKEN=tok_do_not_print_me_0123456789\n"


def _tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (links not followed), to prove nothing changed."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and not p.name.endswith(".lock")
    }


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the fleet holding something no petrova run may read or touch."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "ingest.env").write_text(SECRET)
    (path / "contract.yaml").write_text(
        "schema_version: 1\nslug: kahn-hq\nintegrations: {}\n# " + SECRET
    )
    return path


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert "tok_do" not in text and "PETROVA_INGEST_TOKEN=" not in text, text


# --- slugs and .. segments ----------------------------------------------------------------

BAD_SLUGS = ["../kahn-hq", "../../etc/passwd", "/etc/passwd", "kahn-hq/../stratt-hq", "."]


@pytest.mark.parametrize("slug", BAD_SLUGS)
def test_a_climbing_slug_never_reaches_the_file_system(
    petrova_inprocess: Petrova, fleet: Fleet, slug: str
) -> None:
    before = _tree(fleet.root.parent)
    for args in (
        ("state", "record", slug, "ares", "ok"),
        ("state", "promote", slug, "ares", "--by", "human:ada", "--reason", "checked"),
        ("registry", "show", slug),
        ("registry", "pin", slug, "--workspace", str(fleet.workspace)),
    ):
        run = petrova_inprocess(*args, *fleet.args())
        assert run.exit_code == 2, (args, run.stderr)
        assert "REPO_NOT_IN_REGISTRY" in run.stderr
    assert _tree(fleet.root.parent) == before
    assert not fleet.state_dir.exists()


@pytest.mark.parametrize("slug", BAD_SLUGS)
def test_the_registry_refuses_a_slug_that_names_a_path(
    petrova_inprocess: Petrova, fleet: Fleet, slug: str
) -> None:
    text = fleet.registry.read_text().replace("slug: kahn-hq", f"slug: {json.dumps(slug)}", 1)
    fleet.registry.write_text(text)
    run = petrova_inprocess("registry", "validate", *fleet.args())
    assert run.exit_code == 2
    assert "REGISTRY_INVALID" in run.stderr
    assert "repos[1].slug" in run.stderr and "is not a kebab-case slug" in run.stderr


def test_a_probe_line_with_a_climbing_slug_records_nothing(
    petrova_inprocess: Petrova, fleet: Fleet
) -> None:
    line = {"slug": "../../outside", "integration": "ares", "outcome": "ok"}
    run = petrova_inprocess(
        "state", "record", "--from", "-", *fleet.args(), input=json.dumps(line) + "\n"
    )
    assert run.exit_code == 2
    assert "PROBE_INPUT_INVALID" in run.stderr and "'../../outside' is not in the registry" in (
        run.stderr
    )
    assert not fleet.state_dir.exists()


def test_a_contract_naming_a_climbing_slug_is_not_pinned(
    petrova_inprocess: Petrova, fleet: Fleet, tmp_path: Path
) -> None:
    contract = tmp_path / "contract.yaml"
    contract.write_text("schema_version: 1\nslug: ../petrova-codes\nintegrations: {}\n")
    before = fleet.registry.read_bytes()
    run = petrova_inprocess(
        "registry", "pin", "petrova-codes", "--contract", str(contract), *fleet.args()
    )
    assert run.exit_code == 2
    assert "CONTRACT_INVALID" in run.stderr and "slug" in run.stderr
    assert fleet.registry.read_bytes() == before


# --- consumer clones: links are refused, their targets never read ----------------------------


def test_a_contract_linked_out_of_a_clone_is_not_read(
    petrova: Petrova, fleet: Fleet, outside: Path
) -> None:
    """The snapshot (which is published) must not quote a file a hostile repo links to."""
    migrate_tier2(fleet)
    contract = fleet.workspace / "kahn-hq" / ".petrova" / "contract.yaml"
    contract.unlink()
    contract.symlink_to(outside / "ingest.env")
    run = petrova("snapshot", *fleet.args("--workspace", str(fleet.workspace)))
    assert run.exit_code == 0, run.stderr
    _no_secret(run.stdout, run.stderr)
    warnings = json.loads(run.stdout)["warnings"]
    [unsafe] = [
        w for w in warnings if w["slug"] == "kahn-hq" and w["code"] == "CONTRACT_UNREADABLE"
    ]
    assert unsafe["message"].startswith("UNSAFE_PATH: ")
    assert f"{contract}: is a symbolic link" in unsafe["message"]


def test_a_linked_petrova_directory_in_a_clone_is_not_read(
    petrova_inprocess: Petrova, fleet: Fleet, outside: Path
) -> None:
    migrate_tier2(fleet)
    petrova_dir = fleet.workspace / "kahn-hq" / ".petrova"
    (petrova_dir / "contract.yaml").unlink()
    petrova_dir.rmdir()
    petrova_dir.symlink_to(outside, target_is_directory=True)
    before = _tree(outside)
    for args in (
        ("snapshot", "--workspace", str(fleet.workspace)),
        ("rollout", "status", "--workspace", str(fleet.workspace)),
    ):
        run = petrova_inprocess(*args, *fleet.args())
        assert run.exit_code == 0, run.stderr
        assert f"UNSAFE_PATH: {petrova_dir}: is a symbolic link" in run.stderr
        _no_secret(run.stdout, run.stderr)
    registry = fleet.registry.read_bytes()
    pin = petrova_inprocess(
        "registry", "pin", "kahn-hq", "--workspace", str(fleet.workspace), *fleet.args()
    )
    assert pin.exit_code == 2
    assert "UNSAFE_PATH" in pin.stderr and str(petrova_dir) in pin.stderr
    assert fleet.registry.read_bytes() == registry
    assert _tree(outside) == before


def test_a_clone_that_is_itself_a_link_is_fine(petrova_inprocess: Petrova, fleet: Fleet) -> None:
    """The operator lays out the workspace; only links inside a clone are suspect."""
    migrate_tier2(fleet)
    real = fleet.root / "clones" / "kahn-hq"
    real.parent.mkdir()
    (fleet.workspace / "kahn-hq").rename(real)
    (fleet.workspace / "kahn-hq").symlink_to(real, target_is_directory=True)
    run = petrova_inprocess("snapshot", *fleet.args("--workspace", str(fleet.workspace)))
    assert run.exit_code == 0
    assert "UNSAFE_PATH" not in run.stderr and "CONTRACT_UNREADABLE" not in run.stderr


def test_bootstrap_writes_nothing_through_links(
    petrova: Petrova, fleet: Fleet, outside: Path, tmp_path: Path
) -> None:
    repo = make_git_repo(tmp_path / "kahn", {"a": "b"}, origin="https://github.com/kahn-hq/kahn")
    (repo / ".petrova").symlink_to(outside, target_is_directory=True)
    before = _tree(outside)
    run = petrova("bootstrap", "--repo", str(repo), "--no-interactive", *fleet.args())
    assert run.exit_code == 2
    assert "UNSAFE_PATH" in run.stderr and f"{repo / '.petrova'}: is a symbolic link" in run.stderr
    assert _tree(outside) == before
    assert not (repo / ".git" / "petrova").exists()


# --- the state directory: ledgers and locks are petrova's own files ----------------------------


def test_a_linked_ledger_is_refused_and_its_target_untouched(
    petrova: Petrova, fleet: Fleet, outside: Path
) -> None:
    migrate_tier2(fleet)
    fleet.state_dir.mkdir()
    ledger = fleet.state_dir / "kahn-hq.yaml"
    ledger.symlink_to(outside / "ingest.env")
    record = petrova("state", "record", "kahn-hq", "ares", "ok", *fleet.args())
    assert record.exit_code == 2
    assert f"UNSAFE_PATH: {ledger}: is a symbolic link" in record.stderr
    _no_secret(record.stdout, record.stderr)
    assert ledger.is_symlink()
    assert (outside / "ingest.env").read_text() == SECRET
    snap = petrova("snapshot", *fleet.args("--workspace", str(fleet.workspace)))
    assert snap.exit_code == 0
    assert "STATE_UNREADABLE [kahn-hq]: UNSAFE_PATH" in snap.stderr
    _no_secret(snap.stdout, snap.stderr)


@pytest.mark.parametrize("command", ["record", "snapshot"])
def test_a_linked_lock_file_creates_nothing_elsewhere(
    petrova_inprocess: Petrova, fleet: Fleet, outside: Path, command: str
) -> None:
    planted = outside / "created-by-petrova"
    if command == "record":
        fleet.state_dir.mkdir()
        (fleet.state_dir / ".petrova-codes.yaml.lock").symlink_to(planted)
        args: tuple[str, ...] = ("state", "record", "petrova-codes", "ares", "ok")
        target = fleet.state_dir / "petrova-codes.yaml"
    else:
        (fleet.root / ".fleet.json.lock").symlink_to(planted)
        args = ("snapshot", "-o", str(fleet.root / "fleet.json"))
        target = fleet.root / "fleet.json"
    run = petrova_inprocess(*args, *fleet.args())
    assert run.exit_code == 2
    assert "OUTPUT_UNWRITABLE" in run.stderr and "cannot create the lock file" in run.stderr
    assert "it is a symbolic link" in run.stderr
    assert not planted.exists()
    assert not target.exists()


def test_snapshot_output_through_a_link_never_writes_the_target(
    petrova_inprocess: Petrova, fleet: Fleet, outside: Path
) -> None:
    """-o replaces the link itself (atomic rename cannot go through one): the file it pointed
    at keeps its bytes."""
    link = fleet.root / "fleet.json"
    link.symlink_to(outside / "ingest.env")
    run = petrova_inprocess("snapshot", "-o", str(link), *fleet.args())
    assert run.exit_code == 0, run.stderr
    assert (outside / "ingest.env").read_text() == SECRET
    assert not link.is_symlink()
    assert json.loads(link.read_text())["totals"]["repos"] == 7


@pytest.mark.parametrize("command", ["snapshot", "render"])
def test_output_into_a_missing_directory_or_onto_a_directory(
    petrova_inprocess: Petrova, fleet: Fleet, tmp_path: Path, command: str
) -> None:
    fixture = ROOT / "contracts/fixtures/snapshot-with-integrations.json"
    head = ("snapshot", *fleet.args()) if command == "snapshot" else ("render", str(fixture))
    missing = petrova_inprocess(*head, "-o", str(tmp_path / "nope" / "out"))
    assert missing.exit_code == 2 and "OUTPUT_UNWRITABLE" in missing.stderr
    assert "does not exist" in missing.stderr
    directory = tmp_path / "a-directory"
    directory.mkdir()
    onto = petrova_inprocess(*head, "-o", str(directory))
    assert onto.exit_code == 2
    assert "Traceback" not in onto.stderr and "INTERNAL_ERROR" not in onto.stderr
    assert list(directory.iterdir()) == []
