"""Hostile input, round two (issue 17): what the user points at is never hurt.

One section per input class of the issue, each proving the class's rule through the real
CLI (in-process, under a hang alarm) and, where the class is open-ended, with generated
inputs: outputs that are not regular files or are the command's own inputs, reads that
could block, links out of consumer clones, proxies and slow servers, the fast and strict
YAML paths, YAML 1.1 numbers, identifiers with control characters, repeated JSON keys,
terminal escapes, and file-system refusals that are not bugs.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CATALOGUE, Fleet, Run, make_git_repo, run_inprocess
from tests.hostile.test_loaders_fuzzed import assert_clean, no_hang
from tests.ingest_server import IngestServer, store_and_echo

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
NOW = "2026-11-26T07:00:00Z"
SECRET = "PETROVA_INGEST_TOKEN=s3cr3t-do-not-print"


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Run:
    with no_hang():
        return run_inprocess(*args, env=env, input=input)


def refused(result: Run, code: str) -> None:
    assert assert_clean(result) == code, result.stderr


def snapshot(fleet: Fleet, *extra: str, env: dict[str, str] | None = None) -> Run:
    return run(
        "snapshot",
        "--registry",
        str(fleet.registry),
        "--catalogue",
        str(fleet.catalogue),
        "--state-dir",
        str(fleet.state_dir),
        "--workspace",
        str(fleet.workspace),
        *extra,
        env=env,
    )


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: a file's bytes, or what kind of thing it is."""
    out: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode):
            out[str(path)] = path.read_bytes()
        elif not stat.S_ISDIR(mode):
            out[str(path)] = f"special {stat.S_IFMT(mode):o}"
    return out


KAHN_CONTRACT = """schema_version: 1
slug: kahn-hq
integrations:
  ares: {status: wired, evidence: {org_or_repo_scope: kahn-hq}}
  traceo: {status: pending}
  crumb: {status: wired, evidence: {content_path: c, project_prefix: K, card_count: 1}}
  lore_cairnet: {status: not_applicable, not_applicable_reason: none, review_by: '2027-01-01'}
"""


def migrate_kahn(fleet: Fleet, sha: str = "000000000001") -> None:
    """kahn-hq pinned (to ``sha``) so that snapshot reads its contract and ledger."""
    text = fleet.registry.read_text().replace(
        "    fleets_allowed: [kahn-implementer]\n",
        "    fleets_allowed: [kahn-implementer]\n"
        f"    contract_sha: {sha}\n"
        "    integrations_applicability:\n"
        "      ares: required\n      traceo: required\n      crumb: optional\n"
        "      lore_cairnet: {value: not_applicable, review_by: '2027-01-01', reason: none}\n",
    )
    fleet.registry.write_text(text)


def kahn_clone(fleet: Fleet) -> Path:
    return make_git_repo(fleet.workspace / "kahn-hq", {"README.md": "kahn\n"})


# --- 1. -o onto something that is not a regular file --------------------------------------


def test_output_onto_a_fifo_is_refused_before_any_work(fleet: Fleet) -> None:
    fifo = fleet.root / "fleet.json"
    os.mkfifo(fifo)
    result = snapshot(fleet, "-o", str(fifo))
    refused(result, "OUTPUT_UNWRITABLE")
    assert "FIFO" in result.stderr and "regular file" in result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still the FIFO
    assert not (fleet.root / ".fleet.json.lock").exists()  # no lock made beside it


def test_output_onto_a_device_leaves_the_device(fleet: Fleet) -> None:
    device = fleet.root / "mynull"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device needs privileges")
    for command in (
        ["snapshot", "-o", str(device), "--registry", str(fleet.registry)],
        ["render", str(fleet.root / "missing.json"), "-o", str(device)],
    ):
        result = run(*command)
        refused(result, "OUTPUT_UNWRITABLE")
        assert "device" in result.stderr
        assert stat.S_ISCHR(device.lstat().st_mode)
    assert not (fleet.root / ".mynull.lock").exists()


def test_output_onto_a_directory_is_refused(fleet: Fleet) -> None:
    folder = fleet.root / "out"
    folder.mkdir()
    result = snapshot(fleet, "-o", str(folder))  # click's own check, as a usage error
    assert result.exit_code == 2 and "is a directory" in result.stderr
    assert list(folder.iterdir()) == []


def test_a_huge_old_output_is_never_read(fleet: Fleet) -> None:
    """The old target is compared only when it has the new size: a sparse 64 GiB file
    would take minutes and all memory to read whole."""
    out = fleet.root / "fleet.json"
    with out.open("wb") as handle:
        handle.truncate(64 * 1024**3)
    result = snapshot(fleet, "-o", str(out))
    assert assert_clean(result) is None
    assert json.loads(out.read_bytes())["totals"]["repos"] == 7


def test_an_output_that_is_a_link_is_replaced_not_written_through(fleet: Fleet) -> None:
    target = fleet.root / "kept.txt"
    target.write_text("keep me\n")
    link = fleet.root / "fleet.json"
    link.symlink_to(target)
    assert assert_clean(snapshot(fleet, "-o", str(link))) is None
    assert target.read_text() == "keep me\n"
    assert not link.is_symlink()


# --- 2. -o onto the command's own inputs ---------------------------------------------------


@pytest.mark.parametrize(
    "which", ["registry", "catalogue", "ledger", "contract", "own-contract", "hard-link"]
)
def test_snapshot_never_writes_over_its_inputs(fleet: Fleet, which: str) -> None:
    migrate_kahn(fleet)
    kahn_clone(fleet)
    fleet.write("workspace/kahn-hq/.petrova/contract.yaml", KAHN_CONTRACT)
    fleet.write("state/kahn-hq.yaml", "schema_version: 1\nslug: kahn-hq\nintegrations: {}\n")
    hard = fleet.root / "copy.yaml"
    os.link(fleet.registry, hard)
    output = {
        "registry": fleet.registry,
        "catalogue": fleet.catalogue,
        "ledger": fleet.state_dir / "kahn-hq.yaml",
        "contract": fleet.workspace / "kahn-hq" / ".petrova" / "contract.yaml",
        "own-contract": fleet.root / ".petrova" / "contract.yaml",
        "hard-link": hard,
    }[which]
    before = tree(fleet.root)
    result = snapshot(fleet, "-o", str(output))
    refused(result, "OUTPUT_IS_INPUT")
    assert tree(fleet.root) == before


def test_render_never_writes_over_its_input(fleet: Fleet, tmp_path: Path) -> None:
    doc = tmp_path / "fleet.json"
    assert assert_clean(snapshot(fleet, "-o", str(doc))) is None
    before = doc.read_bytes()
    result = run("render", str(doc), "-o", str(doc), "--catalogue", str(fleet.catalogue))
    refused(result, "OUTPUT_IS_INPUT")
    assert doc.read_bytes() == before
    spelled = tmp_path / "." / "fleet.json"
    refused(run("render", str(doc), "-o", str(spelled)), "OUTPUT_IS_INPUT")


# --- 3. reads that could block -------------------------------------------------------------


def test_a_fifo_contract_or_ledger_is_a_warning_on_its_row(fleet: Fleet) -> None:
    migrate_kahn(fleet)
    kahn_clone(fleet)
    (fleet.workspace / "kahn-hq" / ".petrova").mkdir()
    os.mkfifo(fleet.workspace / "kahn-hq" / ".petrova" / "contract.yaml")
    fleet.state_dir.mkdir()
    os.mkfifo(fleet.state_dir / "kahn-hq.yaml")
    out = fleet.root / "fleet.json"
    result = snapshot(fleet, "-o", str(out), env={"PETROVA_CACHE": "off"})
    assert assert_clean(result) is None
    warnings = json.loads(out.read_bytes())["warnings"]
    kahn = [w["message"] for w in warnings if w["slug"] == "kahn-hq"]
    for name in ("contract.yaml", "kahn-hq.yaml"):
        assert any(name in m and "FIFO" in m for m in kahn), warnings


@pytest.mark.parametrize("where", ["registry", "catalogue"])
def test_a_fifo_registry_or_catalogue_is_an_input_error(fleet: Fleet, where: str) -> None:
    path = fleet.registry if where == "registry" else fleet.catalogue
    path.unlink()
    os.mkfifo(path)
    result = snapshot(fleet)
    assert result.exit_code == 2
    assert "regular file" in result.stderr
    assert_clean(result)


def test_fifos_never_hang_the_other_commands(fleet: Fleet) -> None:
    fifo = fleet.root / "pipe"
    os.mkfifo(fifo)
    refused(run("contract", "validate", str(fifo)), "CONTRACT_NOT_FOUND")
    refused(run("contract", "sha", str(fifo)), "CONTRACT_NOT_FOUND")
    refused(run("render", str(fifo)), "SNAPSHOT_UNREADABLE")
    result = run("state", "record", "--from", str(fifo), *fleet.args())
    assert result.exit_code == 2 and "regular file" in result.stderr
    fleet.state_dir.mkdir()
    os.mkfifo(fleet.state_dir / "kahn-hq.yaml")
    result = run(
        "state", "record", "kahn-hq", "ares", "ok", "--now", NOW, "--state-dir",
        str(fleet.state_dir), *fleet.args(),
    )  # fmt: skip
    assert result.exit_code == 2 and "regular file" in result.stderr
    assert stat.S_ISFIFO((fleet.state_dir / "kahn-hq.yaml").lstat().st_mode)


# --- 4. links through explicit paths -------------------------------------------------------


@pytest.fixture
def linked_clone(fleet: Fleet, tmp_path: Path) -> Iterator[Path]:
    """kahn-hq's clone whose contract is a link to a secret file outside it."""
    secret = tmp_path / "secret.env"
    secret.write_text(SECRET + "\n")
    clone = kahn_clone(fleet)
    (clone / ".petrova").mkdir()
    (clone / ".petrova" / "contract.yaml").symlink_to(secret)
    yield clone


def test_pin_refuses_a_linked_contract(fleet: Fleet, linked_clone: Path) -> None:
    before = fleet.registry.read_bytes()
    contract = linked_clone / ".petrova" / "contract.yaml"
    result = run("registry", "pin", "kahn-hq", "--contract", str(contract), *fleet.args())
    refused(result, "UNSAFE_PATH")
    assert "s3cr3t" not in result.stderr + result.stdout
    assert fleet.registry.read_bytes() == before


@pytest.mark.parametrize("command", ["validate", "sha"])
def test_contract_commands_refuse_links_in_the_clone(
    fleet: Fleet, linked_clone: Path, command: str, tmp_path: Path
) -> None:
    contract = linked_clone / ".petrova" / "contract.yaml"
    result = run("contract", command, str(contract))
    refused(result, "UNSAFE_PATH")
    assert "s3cr3t" not in result.stderr + result.stdout
    # a linked .petrova folder is refused the same way
    (linked_clone / ".petrova" / "contract.yaml").unlink()
    (linked_clone / ".petrova").rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "contract.yaml").write_text(KAHN_CONTRACT)
    (linked_clone / ".petrova").symlink_to(elsewhere)
    refused(run("contract", command, str(contract)), "UNSAFE_PATH")


def test_a_contract_named_through_dot_dot_from_a_clone_is_read(tmp_path: Path) -> None:
    """Links are looked for lexically: ``../other/contract.yaml`` from inside a clone is a
    real file in a folder with no links, and it is read."""
    clone = make_git_repo(tmp_path / "clone", {"README.md": "x\n"})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "contract.yaml").write_text(KAHN_CONTRACT)
    with no_hang():
        result = run_inprocess(
            "contract", "validate", "../other/contract.yaml", "--catalogue", str(CATALOGUE),
            cwd=clone,
        )  # fmt: skip
    assert assert_clean(result) is None, result.stderr


@PROPERTY
@given(
    secret=st.text(
        st.characters(
            min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#'\"{}[]&*!|>%@`,:-?"
        ),
        min_size=8,
        max_size=40,
    ),
    shape=st.sampled_from(["{s}", "TOKEN={s}", "- {s}", "{s}\n{s}", "'{s}'", "[{s}]"]),
)
def test_an_error_never_quotes_a_file_that_is_not_a_contract(
    tmp_path_factory: pytest.TempPathFactory, secret: str, shape: str
) -> None:
    path = tmp_path_factory.mktemp("notacontract") / "secret.env"
    path.write_text(shape.format(s=secret) + "\n")
    result = run("contract", "validate", str(path), "--catalogue", str(CATALOGUE))
    assert_clean(result)
    assert secret not in result.stderr + result.stdout


# --- 5. proxies and 6. deadlines -------------------------------------------------------------


def test_a_loopback_endpoint_never_goes_through_a_proxy(fleet: Fleet) -> None:
    endpoint = IngestServer(store_and_echo)
    proxy = IngestServer(store_and_echo)
    try:
        env = {
            "PETROVA_INGEST_TOKEN": "tok-123456",
            "http_proxy": proxy.base,
            "HTTP_PROXY": proxy.base,
            "https_proxy": proxy.base,
            "no_proxy": "",
            "NO_PROXY": "",
        }
        result = snapshot(fleet, "--publish", endpoint.url, "--retries", "0", env=env)
        assert assert_clean(result) is None, result.stderr
        assert proxy.count() == 0
        assert endpoint.count("POST") == 1
        assert endpoint.requests[0].headers["Authorization"] == "Bearer tok-123456"
    finally:
        endpoint.close()
        proxy.close()


class DripServer:
    """Answers every request with headers, then one body byte every ``every`` seconds: a
    server that never stalls long enough for a per-read timeout to fire."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/petrova/snapshot"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while not self.stop.wait(self.every):
                    conn.sendall(b"x")
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def test_timeout_is_a_total_deadline_per_attempt(fleet: Fleet) -> None:
    server = DripServer()
    try:
        env = {"PETROVA_INGEST_TOKEN": "tok-123456"}
        with no_hang(20):
            result = run_inprocess(
                *["snapshot", "--registry", str(fleet.registry)],
                *["--publish", server.url, "--timeout", "1", "--retries", "1"],
                env=env,
            )
        assert result.exit_code == 1, result.stderr
        assert "INGEST_FAILED" in result.stderr
        assert "no answer within 1s after 2 attempts" in result.stderr
    finally:
        server.close()


ODD_SECONDS = ["nan", "inf", "-inf", "-1", "NaN", "1e999", "x"]


@pytest.mark.parametrize("value", ODD_SECONDS)
@pytest.mark.parametrize("command", ["snapshot-timeout", "snapshot-wait", "verify", "record"])
def test_odd_seconds_are_usage_errors(fleet: Fleet, command: str, value: str) -> None:
    out = fleet.root / "fleet.json"
    args = {
        "snapshot-timeout": ["snapshot", "-o", str(out), "--timeout", value, *fleet.args()],
        "snapshot-wait": ["snapshot", "-o", str(out), "--wait", value, *fleet.args()],
        "verify": ["contracts", "verify-endpoint", "http://127.0.0.1:9/x", "--timeout", value],
        "record": ["state", "record", "kahn-hq", "ares", "ok", "--wait", value, *fleet.args()],
    }[command]
    result = run(*args)
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr and "INTERNAL_ERROR" not in result.stderr
    assert "number of seconds" in result.stderr
    assert not out.exists()


# --- 7. the fast and the strict YAML paths agree on every input -----------------------------

ODD_SCALARS = [
    "010", "0o10", "0x1F", "0b11", "1_000", "1:30", "1:30.5", "1e3", "1E3", ".inf", "-.inf",
    ".nan", "+1", "-0", "00", "1.", ".5", "01.5", "yes", "no", "on", "off", "y", "true",
    "True", "FALSE", "null", "Null", "~", "''", "'010'", '"1e3"', "!!str 010", "!!int 10",
    "!!float 1", "!!binary aGk=", "!!timestamp 2026-01-01", "!!set {a}", "!foo bar", "! 12",
    "2026-01-01", "12:30:00", "<<", "=", "37649451e057", "000000000001", "kahn-hq", "a b",
]  # fmt: skip


#: The end of kahn-hq's entry in the suite's registry.
KAHN_END = "    contract_committers: [humans]\n\n  - slug: stratt-hq"
OK = '"current_status": "ok"'


def _places(text: str) -> list[tuple[str, str]]:
    """Spots in the registry where a scalar can be swapped: (what to replace, template)."""
    return [
        ("tier: 2", "tier: {v}"),
        ("fleets_allowed: [kahn-implementer]", "fleets_allowed: [{v}]"),
        ("fleets_allowed: [kahn-implementer]", "fleets_allowed:\n      - {v}"),
        (KAHN_END, KAHN_END.replace("[humans]", "[{v}]")),
        ("default_branch: main\n    role: production", "default_branch: {v}\n    role: production"),
        ("schema_version: 1", "schema_version: {v}"),
        ("    tier: 2\n", "    tier:\n      {v}\n"),
        ("    tier: 2\n", "    {v}: 2\n"),
        (KAHN_END, KAHN_END.replace("[humans]\n", "[humans]\n    notes: {v}\n")),
    ]  # fmt: skip


def _verdict(path: Path, fast: bool, monkeypatch: pytest.MonkeyPatch) -> object:
    from petrova.documents.catalogue import load_catalogue
    from petrova.documents.registry import load_registry
    from petrova.errors import PetrovaError
    from petrova.files import yaml_fast

    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(yaml_fast, "_fast", None)
        try:
            loaded = load_registry(path, load_catalogue(CATALOGUE))
        except PetrovaError as exc:
            return ("refused", exc.code)
        return ("valid", loaded.registry.model_dump())


@PROPERTY
@given(data=st.data())
def test_fast_and_strict_registry_reads_agree(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, data: st.DataObject
) -> None:
    text = fleet.registry.read_text()
    for _ in range(data.draw(st.integers(1, 3))):
        old, template = data.draw(st.sampled_from(_places(text)))
        value = data.draw(st.sampled_from(ODD_SCALARS))
        if old in text:
            text = text.replace(old, template.format(v=value), 1)
    path = fleet.root / "generated.yaml"
    path.write_text(text)
    assert _verdict(path, True, monkeypatch) == _verdict(path, False, monkeypatch)


@PROPERTY
@given(value=st.sampled_from(ODD_SCALARS), key=st.sampled_from(["card_count", "content_path"]))
def test_fast_and_strict_contract_reads_agree(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    key: str,
) -> None:
    from petrova.documents.catalogue import load_catalogue
    from petrova.documents.contract import load_contract
    from petrova.errors import PetrovaError
    from petrova.files import yaml_fast

    text = KAHN_CONTRACT.replace(
        "{content_path: c, project_prefix: K, card_count: 1}",
        "{content_path: c, project_prefix: K, card_count: 1}".replace(
            f"{key}: {'1' if key == 'card_count' else 'c'}", f"{key}: {value}"
        ),
    )
    path = tmp_path_factory.mktemp("contract") / "contract.yaml"
    path.write_text(text)
    verdicts = []
    for fast in (True, False):
        with monkeypatch.context() as patch:
            if not fast:
                patch.setattr(yaml_fast, "_fast", None)
            try:
                loaded = load_contract(path, load_catalogue(CATALOGUE))
                verdicts.append(("valid", loaded.contract.model_dump()))
            except PetrovaError as exc:
                verdicts.append(("refused", exc.code))
    assert verdicts[0] == verdicts[1]


# --- 8. YAML 1.1 surprises ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("010", "without the leading zeros"),
        ("1:30", "base 60"),
        ("0b11", "binary"),
        ("1_0", "write the digits alone"),
        ("yes", "not a number here"),
        ("true", "not a number here"),
    ],
)
def test_yaml_11_numbers_are_refused_with_a_way_out(fleet: Fleet, value: str, needle: str) -> None:
    fleet.registry.write_text(fleet.registry.read_text().replace("tier: 2", f"tier: {value}", 1))
    result = run("registry", "validate", *fleet.args())
    refused(result, "REGISTRY_INVALID")
    assert needle in result.stderr


def test_a_boolean_schema_version_is_refused(fleet: Fleet) -> None:
    fleet.registry.write_text(
        fleet.registry.read_text().replace("schema_version: 1", "schema_version: true", 1)
    )
    result = run("registry", "validate", *fleet.args())
    refused(result, "REGISTRY_INVALID")
    assert "write the number 1" in result.stderr


def test_a_leading_zero_in_a_contract_count_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(KAHN_CONTRACT.replace("card_count: 1", "card_count: 010"))
    result = run("contract", "validate", str(path), "--catalogue", str(CATALOGUE))
    refused(result, "CONTRACT_INVALID")
    assert "octal" in result.stderr


def test_a_twelve_digit_sha_keeps_its_text(fleet: Fleet) -> None:
    """Under a string field, what looks like a number is the text people wrote."""
    migrate_kahn(fleet, "000000000010")
    result = run("registry", "show", "kahn-hq", "--json", *fleet.args())
    assert assert_clean(result) is None
    assert json.loads(result.stdout)["contract_sha"] == "000000000010"


# --- 9. identifiers with control characters -----------------------------------------------

control = st.sampled_from(["\n", "\r", "\t", "\x00", "\x1b", "\x85", "\u2028", " "])


@PROPERTY
@given(suffix=control, field=st.sampled_from(["slug", "url", "contract_sha"]))
def test_identifiers_match_the_whole_string(fleet: Fleet, suffix: str, field: str) -> None:
    text = fleet.registry.read_text()
    if field == "contract_sha":
        text = text.replace(
            "contract_sha: 5442defd6b27", f"contract_sha: {json.dumps('5442defd6b27' + suffix)}"
        )
    elif field == "slug":
        text = text.replace("- slug: kahn-hq", f"- slug: {json.dumps('kahn-hq' + suffix)}")
    else:
        url = "https://github.com/kahn-hq/kahn"
        text = text.replace(f"url: {url}", f"url: {json.dumps(url + suffix)}")
    path = fleet.root / "generated.yaml"
    path.write_text(text)
    result = run("registry", "validate", "--registry", str(path), "--catalogue", str(CATALOGUE))
    refused(result, "REGISTRY_INVALID")


@pytest.mark.parametrize(
    "evidence",
    [
        '{baseline_id: b, vtm_path: v, traceo_endpoint: "https://x.example/a\\n"}',
        '{baseline_id: b, vtm_path: v, mermaid_validated_at: "2026-01-01T00:00:00Z\\n"}',
    ],
)
def test_catalogue_patterns_match_the_whole_string(tmp_path: Path, evidence: str) -> None:
    """Evidence fields are checked by the catalogue's JSON Schema only: its patterns, too,
    end at the end of the string, as in every other JSON Schema validator."""
    path = tmp_path / "contract.yaml"
    wired = f"traceo: {{status: wired, evidence: {evidence}}}"
    path.write_text(KAHN_CONTRACT.replace("traceo: {status: pending}", wired))
    result = run("contract", "validate", str(path), "--catalogue", str(CATALOGUE))
    assert assert_clean(result) in ("EVIDENCE_INVALID", "CONTRACT_INVALID"), result.stderr
    assert "has the wrong form" in result.stderr


@pytest.mark.parametrize("slug", ["kahn-hq\n", "kahn-hq\r", "../kahn-hq", "kahn-hq\x00"])
def test_no_ledger_file_is_named_by_an_unchecked_slug(fleet: Fleet, slug: str) -> None:
    result = run(
        "state", "record", slug, "ares", "ok", "--now", NOW, "--state-dir",
        str(fleet.state_dir), *fleet.args(),
    )  # fmt: skip
    assert result.exit_code == 2
    assert_clean(result)
    assert not fleet.state_dir.exists() or list(fleet.state_dir.iterdir()) == []


def test_a_ledger_path_is_never_made_from_a_bad_slug(tmp_path: Path) -> None:
    from petrova.errors import UnsafePath
    from petrova.ledger.store import ledger_path

    for slug in ("kahn-hq\n", "a/b", "..", ""):
        with pytest.raises(UnsafePath):
            ledger_path(tmp_path, slug)
    assert ledger_path(tmp_path, "kahn-hq") == tmp_path / "kahn-hq.yaml"


# --- 10. duplicate keys in JSON inputs ----------------------------------------------------


def test_a_probe_line_with_two_slugs_records_nothing(fleet: Fleet) -> None:
    line = (
        '{"slug": "petrova-codes", "slug": "kahn-hq", "integration": "ares", '
        f'"outcome": "ok", "at": "{NOW}"}}\n'
    )
    result = run(
        "state", "record", "--from", "-", "--now", NOW, "--state-dir", str(fleet.state_dir),
        *fleet.args(), input=line,
    )  # fmt: skip
    refused(result, "PROBE_INPUT_INVALID")
    assert "duplicate key 'slug'" in result.stderr
    assert not fleet.state_dir.exists() or list(fleet.state_dir.iterdir()) == []


def test_a_sealed_ledger_with_a_repeated_key_is_refused(fleet: Fleet) -> None:
    args = ["--state-dir", str(fleet.state_dir), *fleet.args()]
    for at in ("2026-11-25T06:00:00Z", NOW):
        result = run("state", "record", "petrova-codes", "ares", "ok", "--now", at, *args)
        assert assert_clean(result) is None, result.stderr
    ledger = fleet.state_dir / "petrova-codes.yaml"
    text = ledger.read_text()
    assert text.startswith("{") and '"current_status": "ok"' in text
    # the first of two keys says failing; a reader taking the last one would see ok
    ledger.write_text(
        text.replace(OK, '"current_status": "failing", ' + OK, 1)
    )  # fmt: skip
    result = run("state", "record", "petrova-codes", "ares", "ok", "--now", NOW, *args)
    refused(result, "STATE_INVALID")
    assert "duplicate key 'current_status'" in result.stderr


@PROPERTY
@given(
    obj=st.dictionaries(
        st.text(max_size=5), st.integers() | st.text(max_size=5), min_size=1, max_size=5
    ),
    nested=st.booleans(),
)  # fmt: skip
def test_every_repeated_json_key_is_found(obj: dict[str, object], nested: bool) -> None:
    from petrova.errors import DuplicateJsonKey
    from petrova.files.json_strict import loads, orjson_unique

    key = next(iter(obj))
    body = json.dumps(obj)
    doubled = body[:-1] + ", " + json.dumps(key) + ": 1}"
    raw = ('{"outer": ' + doubled + "}" if nested else doubled).encode()
    with pytest.raises(DuplicateJsonKey):
        loads(raw)
    with pytest.raises(ValueError, match="duplicate key"):
        orjson_unique(raw)
    plain = ('{"outer": ' + body + "}" if nested else body).encode()
    assert loads(plain) == orjson_unique(plain) == json.loads(plain)


# --- 11. terminal escapes -------------------------------------------------------------------

ESCAPE = "\x1b]0;owned\x07\x1b[2J"


def test_registry_notes_are_shown_not_obeyed(fleet: Fleet) -> None:
    fleet.registry.write_text(
        fleet.registry.read_text().replace(
            KAHN_END,
            KAHN_END.replace("[humans]\n", f"[humans]\n    notes: {json.dumps('hi' + ESCAPE)}\n"),
        )
    )  # fmt: skip
    result = run("registry", "show", "kahn-hq", *fleet.args())
    assert assert_clean(result) is None
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "hi\\x1b]0;owned\\x07\\x1b[2J" in result.stdout


def test_warnings_and_errors_show_control_characters(fleet: Fleet, tmp_path: Path) -> None:
    migrate_kahn(fleet)
    kahn_clone(fleet)
    fleet.write(
        "workspace/kahn-hq/.petrova/contract.yaml",
        KAHN_CONTRACT + f"{json.dumps('x' + ESCAPE)}: 1\n",
    )
    result = snapshot(fleet, "--format", "table")
    assert assert_clean(result) is None
    assert "\x1b" not in result.stderr + result.stdout
    assert "\\x1b" in result.stderr
    bad = tmp_path / ("contract" + ESCAPE + ".yaml")
    bad.write_text("schema_version: 2\n")
    result = run("contract", "validate", str(bad), "--catalogue", str(CATALOGUE))
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\\x1b" in result.stderr


@given(st.text())
def test_visible_leaves_no_control_character(text: str) -> None:
    import unicodedata

    from petrova.terminal import visible

    shown = visible(text)
    assert not any(unicodedata.category(c) == "Cc" for c in shown)
    assert not any(c in shown for c in "\u202e\u2066\u200f\u2028")
    if all(c.isprintable() and unicodedata.category(c) != "Cf" for c in text):
        assert shown == text


# --- 12. ordinary trouble is not "a bug" ---------------------------------------------------


def test_a_file_where_bootstrap_keeps_its_checkpoint(fleet: Fleet, tmp_path: Path) -> None:
    clone = make_git_repo(
        tmp_path / "kahn", {"README.md": "kahn\n"}, origin="https://github.com/kahn-hq/kahn"
    )
    (clone / ".git" / "petrova").write_text("not a folder\n")
    result = run("bootstrap", "--repo", str(clone), "--defaults", *fleet.args())
    assert result.exit_code == 2, result.stderr
    code = assert_clean(result)
    assert code is not None
    assert str(clone / ".git" / "petrova") in result.stderr


def test_a_file_where_the_state_folder_goes(fleet: Fleet) -> None:
    fleet.write("state", "not a folder\n")
    result = run("state", "record", "petrova-codes", "ares", "ok", "--now", NOW, *fleet.args())
    assert result.exit_code == 2, result.stderr
    assert assert_clean(result) is not None
    assert "state" in result.stderr


def test_an_os_error_is_reported_with_its_path_and_advice() -> None:
    from petrova.cli import _os_advice, _os_location

    exc = OSError(30, "Read-only file system", "/srv/fleet/registry.yaml")
    assert "read-only" in _os_advice(exc)
    assert str(_os_location(exc)) == "/srv/fleet/registry.yaml"
