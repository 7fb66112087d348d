"""Resource bombs: alias expansion, huge files and huge collections are refused, by name.

Every refusal is exit 2 with ``INPUT_TOO_LARGE`` (or the loader's own code), says the
limit that was hit and the environment variable that raises it, and leaves every file
as it was. The console-script runs happen under an address-space limit, so a loader
that tried to expand a bomb would die of ``MemoryError`` instead of passing.
"""

from __future__ import annotations

import json
import resource
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PETROVA_BIN, ROOT, Fleet, Petrova, Run, _clean_env, make_git_repo
from tests.ingest_server import Answer, IngestServer, Seen
from tests.tierfleet import migrate_tier2

#: Address space for one petrova process: plenty for the shipped fleet, far too little
#: for a billion expanded nodes.
MEMORY_LIMIT = 1024 * 1024 * 1024


def laughs(levels: int = 9, width: int = 10, *, under: str | None = None) -> str:
    """The classic: ``width ** levels`` leaves from a few hundred bytes of YAML."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    body = "\n".join(lines) + "\n"
    if under is not None:
        body += f"{under}: *l{levels - 1}\n"
    return body


def run_limited(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """The console script under an address-space limit (and a timeout, so a bomb cannot hang)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    proc = subprocess.run(
        [str(PETROVA_BIN), *args],
        env=_clean_env(env),
        cwd=cwd,
        capture_output=True,
        timeout=120,
        check=False,
        preexec_fn=limit,
    )
    return Run(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
        proc.stdout,
    )


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def assert_alias_refusal(run: Run) -> None:
    assert run.exit_code == 2, run.stderr
    assert "INPUT_TOO_LARGE" in run.stderr, run.stderr
    assert "PETROVA_MAX_ALIAS_NODES" in run.stderr
    assert "100000" in run.stderr  # the limit, by number
    assert "MemoryError" not in run.stderr and "Traceback" not in run.stderr


# --- billion laughs, in every YAML file petrova reads ------------------------------------


def test_an_alias_bomb_registry_is_refused_with_bounded_memory(fleet: Fleet) -> None:
    fleet.registry.write_text(laughs() + "schema_version: 1\nrepos: []\n" + "notes_bomb: *l8\n")
    before = _files(fleet.root)
    run = run_limited("snapshot", *fleet.args(), "-o", str(fleet.root / "fleet.json"))
    assert_alias_refusal(run)
    assert "registry.yaml:" in run.stderr  # where the bomb is
    assert _files(fleet.root) == before


def test_an_alias_bomb_in_a_consumer_contract_is_a_warning_not_an_outage(fleet: Fleet) -> None:
    """A hostile consumer repo must not take the fleet's snapshot down with it."""
    migrate_tier2(fleet)
    contract = fleet.workspace / "kahn-hq" / ".petrova" / "contract.yaml"
    contract.write_text(
        laughs()
        + "schema_version: 1\nslug: kahn-hq\nintegrations:\n  ares:\n    status: wired\n"
        + "    evidence: {org_or_repo_scope: *l8}\n"
    )
    run = run_limited(
        "snapshot", *fleet.args("--workspace", str(fleet.workspace), "--stale-after", "72h")
    )
    assert run.exit_code == 0, run.stderr
    assert "CONTRACT_UNREADABLE [kahn-hq]: INPUT_TOO_LARGE" in run.stderr
    assert "PETROVA_MAX_ALIAS_NODES" in run.stderr
    rows = {r["slug"]: r for r in json.loads(run.stdout)["rows"]}
    assert set(rows["stratt-hq"]["integrations"]) == {"ares", "traceo", "crumb", "lore_cairnet"}


def test_an_alias_bomb_in_a_contract_under_validate(fleet: Fleet, tmp_path: Path) -> None:
    contract = tmp_path / "contract.yaml"
    contract.write_text(laughs() + "schema_version: 1\nslug: kahn-hq\nintegrations: {}\n")
    assert_alias_refusal(run_limited("contract", "validate", str(contract)))


def test_an_alias_bomb_ledger_is_refused_and_left_alone(fleet: Fleet) -> None:
    ledger = fleet.state_dir / "petrova-codes.yaml"
    fleet.write(
        "state/petrova-codes.yaml",
        laughs() + "schema_version: 1\nslug: petrova-codes\nintegrations: {}\nextra: *l8\n",
    )
    before = ledger.read_bytes()
    run = run_limited("state", "record", "petrova-codes", "ares", "ok", *fleet.args())
    assert_alias_refusal(run)
    assert ledger.read_bytes() == before


def test_an_alias_bomb_answers_file_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "kahn", {"a": "b"}, origin="https://github.com/kahn-hq/kahn")
    answers = tmp_path / "answers.yaml"
    answers.write_text(laughs(under="bomb") + "integrations: {ares: pending}\n")
    run = run_limited(
        "bootstrap",
        "--repo",
        str(repo),
        "--answers",
        str(answers),
        "--no-interactive",
        *fleet.args(),
    )
    assert_alias_refusal(run)
    assert not (repo / ".petrova").exists()
    assert not (repo / ".git" / "petrova").exists()


def test_small_aliases_still_work_and_the_limit_can_be_raised(fleet: Fleet) -> None:
    """Aliases are YAML: a few are fine, and the limit is a knob, not a wall."""
    text = fleet.registry.read_text().replace("schema_version: 1\n", "schema_version: 1\n", 1)
    text = text.replace("  - slug: kahn-hq\n", "  - &kahn\n    slug: kahn-hq\n", 1)
    fleet.registry.write_text(text)
    assert run_limited("registry", "validate", *fleet.args()).exit_code == 0
    # 10 ** 5 leaves: over the default, under a raised limit (then refused for what it is).
    fleet.registry.write_text(laughs(levels=6) + "schema_version: 1\nrepos: []\n")
    assert_alias_refusal(run_limited("registry", "validate", *fleet.args()))
    raised = run_limited(
        "registry", "validate", *fleet.args(), env={"PETROVA_MAX_ALIAS_NODES": "10000000"}
    )
    assert raised.exit_code == 2
    assert "REGISTRY_INVALID" in raised.stderr and "l5: unknown field" in raised.stderr


@pytest.mark.parametrize("value", ["lots", "-1", "1e9"])
def test_a_bad_alias_limit_is_a_usage_error(petrova: Petrova, fleet: Fleet, value: str) -> None:
    fleet.registry.write_text(laughs(levels=2) + "schema_version: 1\nrepos: []\n")
    run = petrova("registry", "validate", *fleet.args(), env={"PETROVA_MAX_ALIAS_NODES": value})
    assert run.exit_code == 2
    assert "USAGE_ERROR" in run.stderr and "PETROVA_MAX_ALIAS_NODES" in run.stderr


# --- huge files: refused before they are read -------------------------------------------


def _sparse(path: Path, size: int) -> Path:
    """A file that claims ``size`` bytes without taking them on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def test_a_registry_over_the_default_limit_is_refused_unread(fleet: Fleet) -> None:
    _sparse(fleet.registry, 64 * 1024 * 1024 + 1)
    run = run_limited("registry", "validate", *fleet.args())
    assert run.exit_code == 2
    assert "INPUT_TOO_LARGE" in run.stderr
    assert "67108865 bytes, over the 67108864-byte limit" in run.stderr
    assert "PETROVA_MAX_INPUT_BYTES" in run.stderr


SMALL = {"PETROVA_MAX_INPUT_BYTES": "4096"}


def _big(text: str) -> str:
    return text + "#" + "x" * 5000 + "\n"


def test_every_file_reader_honours_the_input_limit(
    petrova: Petrova, fleet: Fleet, tmp_path: Path
) -> None:
    """Each input petrova reads, one by one, just over a small limit set by the env var."""
    fleet_files = _files(fleet.root)
    big_contract = tmp_path / "contract.yaml"
    big_contract.write_text(_big((ROOT / ".petrova" / "contract.yaml").read_text()))
    big_snapshot = tmp_path / "fleet.json"
    big_snapshot.write_text(  # a valid snapshot, padded past the limit with whitespace
        (ROOT / "contracts/fixtures/snapshot-with-integrations.json").read_text() + " " * 5000
    )
    big_probes = tmp_path / "probes.jsonl"
    big_probes.write_text("\n" * 5000)
    big_answers = tmp_path / "answers.yaml"
    big_answers.write_text(_big("integrations: {}\n"))
    cases = {
        "contract": ("contract", "validate", str(big_contract)),
        "render": ("render", str(big_snapshot), "--catalogue", str(fleet.catalogue)),
        "fixture": (
            "contracts",
            "verify-endpoint",
            "http://127.0.0.1:9/x",
            "--fixture",
            str(big_snapshot),
            "--retries",
            "0",
        ),
    }
    for name, args in cases.items():
        run = petrova(*args, env=SMALL)
        assert run.exit_code == 2, (name, run.stderr)
        assert "INPUT_TOO_LARGE" in run.stderr, (name, run.stderr)
        assert "over the 4096-byte limit" in run.stderr and "PETROVA_MAX_INPUT_BYTES" in run.stderr
    # Inputs read after the registry: keep the registry under a limit the others exceed.
    limit = {"PETROVA_MAX_INPUT_BYTES": str(len(fleet.registry.read_bytes()) + 10)}
    probes = petrova("state", "record", "--from", str(big_probes), *fleet.args(), env=limit)
    assert "INPUT_TOO_LARGE" in probes.stderr and probes.exit_code == 2, probes.stderr
    stdin = petrova("state", "record", "--from", "-", *fleet.args(), env=limit, input="\n" * 5000)
    assert "INPUT_TOO_LARGE" in stdin.stderr and "<stdin>" in stdin.stderr, stdin.stderr
    fleet.write("state/petrova-codes.yaml", _big("{}"))
    ledger = petrova("state", "record", "petrova-codes", "ares", "ok", *fleet.args(), env=limit)
    assert "INPUT_TOO_LARGE" in ledger.stderr and ledger.exit_code == 2, ledger.stderr
    snap = petrova("snapshot", *fleet.args(), env=limit)
    assert snap.exit_code == 0
    assert "STATE_UNREADABLE [petrova-codes]: INPUT_TOO_LARGE" in snap.stderr
    repo = make_git_repo(tmp_path / "kahn", {"a": "b"}, origin="https://github.com/kahn-hq/kahn")
    answers = petrova(
        "bootstrap",
        "--repo",
        str(repo),
        "--answers",
        str(big_answers),
        "--no-interactive",
        *fleet.args(),
        env=limit,
    )
    assert "INPUT_TOO_LARGE" in answers.stderr and answers.exit_code == 2, answers.stderr
    assert not (repo / ".petrova").exists()
    (fleet.state_dir / "petrova-codes.yaml").unlink()
    assert _files(fleet.root) == fleet_files


@pytest.mark.parametrize("value", ["0", "-5", "sixty", ""])
def test_a_bad_input_limit_is_a_usage_error(petrova: Petrova, fleet: Fleet, value: str) -> None:
    run = petrova("registry", "validate", *fleet.args(), env={"PETROVA_MAX_INPUT_BYTES": value})
    assert run.exit_code == 2  # empty too: set but not a number of bytes
    assert "USAGE_ERROR" in run.stderr and "PETROVA_MAX_INPUT_BYTES" in run.stderr


def test_an_endpoint_answer_over_the_limit_is_refused(petrova: Petrova, tmp_path: Path) -> None:
    def flood(server: IngestServer, seen: Seen) -> Answer:
        return Answer(200, b"[" + b"0," * 100_000 + b"0]")

    server = IngestServer(flood)
    try:
        run = petrova(
            "contracts",
            "verify-endpoint",
            server.url,
            "--retries",
            "0",
            env={"PETROVA_MAX_INPUT_BYTES": "150000"},
        )
    finally:
        server.close()
    assert run.exit_code == 1
    assert "ROUND_TRIP_LOSSY" in run.stderr
    assert "over the 150000-byte limit" in run.stderr and "PETROVA_MAX_INPUT_BYTES" in run.stderr


# --- huge collections ----------------------------------------------------------------------


def test_a_registry_with_twenty_thousand_bad_keys_gives_one_screen(
    petrova: Petrova, fleet: Fleet
) -> None:
    """Refused with the first 50 problems at their lines and a count of the rest."""
    keys = ", ".join(f"k{i}: 1" for i in range(20_000))
    fleet.registry.write_text("{" + keys + "}\n")
    run = petrova("registry", "validate", *fleet.args())
    assert run.exit_code == 2
    assert "REGISTRY_INVALID" in run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) <= 52
    assert "k0: unknown field" in run.stderr
    assert lines[-1].endswith("... and 19952 more problem(s) not shown")


@pytest.mark.parametrize("where", ["applicability", "ledger", "answers"])
def test_twenty_thousand_unknown_ids_are_one_screen(
    petrova_inprocess: Petrova, fleet: Fleet, tmp_path: Path, where: str
) -> None:
    """Unknown ids in the registry's applicability, a ledger and an answers file: each
    used to be located one by one (quadratic, with 20,001 lines of output)."""
    ids = [f"k{i}" for i in range(20_000)]
    if where == "applicability":
        app = ", ".join(f"{k}: required" for k in ids)
        fleet.registry.write_text(
            "schema_version: 1\nrepos:\n  - {slug: a, url: 'https://x.example/a', "
            f"role: production, tier: 1, integrations_applicability: {{{app}}}}}\n"
        )
        args: tuple[str, ...] = ("registry", "validate", *fleet.args())
        code = "REGISTRY_INVALID"
    elif where == "ledger":
        fleet.write(
            "state/petrova-codes.yaml",
            json.dumps({"schema_version": 1, "slug": "petrova-codes",
                        "integrations": {k: {} for k in ids}}),
        )  # fmt: skip
        args = ("state", "record", "petrova-codes", "ares", "ok", *fleet.args())
        code = "STATE_INVALID"
    else:
        answers = tmp_path / "answers.yaml"
        answers.write_text(json.dumps({"integrations": dict.fromkeys(ids, "pending")}))
        repo = make_git_repo(
            tmp_path / "kahn", {"a": "b"}, origin="https://github.com/kahn-hq/kahn"
        )
        args = ("bootstrap", "--repo", str(repo), "--answers", str(answers), "--no-interactive",
                *fleet.args())  # fmt: skip
        code = "ANSWERS_INVALID"
    before = _files(fleet.root)
    run = petrova_inprocess(*args)
    assert run.exit_code == 2
    assert code in run.stderr and "'k0' is not an integration" in run.stderr
    assert len(run.stderr.splitlines()) <= 60
    assert "more" in run.stderr.splitlines()[-1]
    assert _files(fleet.root) == before


def test_a_ledger_with_a_huge_history_is_refused_at_its_field(
    petrova: Petrova, fleet: Fleet
) -> None:
    history = [{"at": "2026-11-20T06:00:00Z", "outcome": "ok"}] * 50_000
    ledger = {
        "schema_version": 1,
        "slug": "petrova-codes",
        "integrations": {"ares": {"history": history}},
    }
    path = fleet.write("state/petrova-codes.yaml", json.dumps(ledger))
    before = path.read_bytes()
    run = petrova("state", "record", "petrova-codes", "ares", "ok", *fleet.args())
    assert run.exit_code == 2
    assert "STATE_INVALID" in run.stderr and "integrations.ares.history" in run.stderr
    assert "at most 20" in run.stderr
    assert path.read_bytes() == before


def test_a_probe_batch_of_many_bad_lines_is_refused_whole(
    petrova: Petrova, fleet: Fleet, tmp_path: Path
) -> None:
    batch = tmp_path / "probes.jsonl"
    batch.write_text('{"slug": "nope", "integration": "ares", "outcome": "ok"}\n' * 20_000)
    run = petrova("state", "record", "--from", str(batch), *fleet.args())
    assert run.exit_code == 2
    assert "PROBE_INPUT_INVALID" in run.stderr and "20000 bad line(s)" in run.stderr
    assert not fleet.state_dir.exists()


def test_a_shipped_fleet_runs_under_the_memory_limit(fleet: Fleet) -> None:
    """The control for the memory-limited runs above: the limit alone breaks nothing."""
    run = run_limited("snapshot", *fleet.args())
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["totals"]["repos"] == 7
