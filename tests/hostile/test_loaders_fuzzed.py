"""Every loader against hostile input: a valid model or a clean exit-2 error, never a crash.

The registry and contracts are edited by people, ledgers by scripts, consumer repos are
not ours, and archived snapshots come from anywhere. Each loader is fed generated and
mutated documents, random bytes, non-UTF-8, a BOM, tabs, very deep nesting and very long
strings through the real CLI (in-process for the property tests, the console script for
a corpus of the nastiest files). The promise checked everywhere: the exit code is one the
command documents, stderr names a stable UPPER_SNAKE code, no traceback and no
INTERNAL_ERROR ever reach the user, nothing hangs, and a refused run changes no file.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import (
    CATALOGUE,
    ROOT,
    Fleet,
    Petrova,
    Run,
    make_git_repo,
    run_inprocess,
    run_subprocess,
)
from tests.ingest_server import IngestServer, store_and_echo

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
#: Seconds any single in-process run may take before the test calls it a hang.
HANG_SECONDS = 30
_CODE_LINE = re.compile(r"^petrova: ([A-Z][A-Z0-9_]*): ", re.MULTILINE)
FIXTURE = ROOT / "contracts" / "fixtures" / "snapshot-with-integrations.json"
NOW = "2026-11-26T07:00:00Z"


# --- the promise, checked on every run --------------------------------------------------


def assert_clean(run: Run, *, allowed: tuple[int, ...] = (0, 2)) -> str | None:
    """The run ended as documented; returns the error code when it refused the input."""
    assert "Traceback" not in run.stderr, run.stderr
    assert "INTERNAL_ERROR" not in run.stderr, run.stderr
    assert run.exit_code in allowed, (run.exit_code, run.stderr[-2000:])
    if run.exit_code == 0:
        return None
    match = _CODE_LINE.search(run.stderr)
    assert match is not None, run.stderr[-2000:]
    return match.group(1)


@contextlib.contextmanager
def no_hang(seconds: int = HANG_SECONDS) -> Iterator[None]:
    """Fail (rather than wait forever) when a run takes longer than ``seconds``."""

    def alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"petrova did not finish within {seconds}s: a hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(*args: str, env: dict[str, str] | None = None) -> Run:
    with no_hang():
        return run_inprocess(*args, env=env)


# --- the stage: one fleet per module, files overwritten per example ---------------------


@dataclass(frozen=True)
class Stage(Fleet):
    """The shared fleet, a consumer repo beside it, and an ingest server."""

    repo: Path
    server: IngestServer

    @property
    def ledger(self) -> Path:
        return self.root / "state" / "petrova-codes.yaml"

    @property
    def own_contract(self) -> Path:
        return self.root / ".petrova" / "contract.yaml"


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    root = tmp_path_factory.mktemp("hostile") / "fleet"
    (root / "contracts").mkdir(parents=True)
    (root / "state").mkdir()
    shutil.copy(ROOT / "registry.yaml", root / "registry.yaml")
    shutil.copy(CATALOGUE, root / "contracts" / "contract.schema.json")
    shutil.copytree(ROOT / ".petrova", root / ".petrova")
    repo = make_git_repo(
        root.parent / "kahn-hq", {"README.md": "kahn\n"}, origin="https://github.com/kahn-hq/kahn"
    )
    server = IngestServer(store_and_echo)
    try:
        yield Stage(root, repo, server)
    finally:
        server.close()


# --- hostile documents -------------------------------------------------------------------

VALID_REGISTRY = (ROOT / "registry.yaml").read_text()
VALID_CONTRACT = (ROOT / ".petrova" / "contract.yaml").read_text()
VALID_LEDGER = json.dumps(
    {
        "schema_version": 1,
        "slug": "petrova-codes",
        "integrations": {
            "ares": {
                "current_status": "ok",
                "history": [{"at": "2026-11-20T06:00:00Z", "outcome": "ok", "detail": "green"}],
            }
        },
    },
    indent=2,
)
VALID_ANSWERS = (
    "integrations:\n"
    "  ares: pending\n"
    "  traceo:\n"
    "    status: wired\n"
    "    evidence: {baseline_id: bl-7, vtm_path: docs/spec/vtm.md}\n"
    "  crumb:\n"
    "    status: not_applicable\n"
    "    not_applicable_reason: no content surface yet\n"
    '    review_by: "2027-08-01"\n'
)
VALID_SNAPSHOT = FIXTURE.read_text()
VALID_PROBES = "".join(
    json.dumps({"slug": "petrova-codes", "integration": i, "outcome": o, "at": at}) + "\n"
    for i, o, at in [
        ("ares", "ok", "2026-11-21T06:00:00Z"),
        ("traceo", "unreachable", "2026-11-21T06:00:00Z"),
    ]
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
yaml_noise = st.sampled_from(
    [
        "\t",
        "\ufeff",
        ": ",
        "- ",
        "&a ",
        "*a",
        "!!python/object:os.system ",
        "!!binary ",
        "{",
        "}",
        "[",
        "]",
        "'",
        '"',
        "#",
        "\n",
        "\r\n",
        "\x00",
        "\x85",
        "\u2028",
        "\ud7ff",
        "? ",
        "|",
        ">",
        "%YAML 1.1\n",
        "---\n",
        "...\n",
        "<<: *a\n",
        "1" + "0" * 5000,
        "~",
        "yes",
        "2026-13-45",
        "0x1F",
        ".inf",
        ".nan",
    ]
)


@st.composite
def mutated(draw: st.DrawFn, text: str) -> bytes:
    """A valid document after a few edits a careless person or a broken script might make."""
    data = text
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "truncate"]))
        at = draw(st.integers(min_value=0, max_value=len(data)))
        if kind == "insert":
            data = data[:at] + draw(yaml_noise | st.text(max_size=20)) + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(min_value=1, max_value=40)) :]
        elif kind == "replace" and at < len(data):
            data = data[:at] + draw(yaml_noise) + data[at + 1 :]
        elif kind == "duplicate":
            lines = data.splitlines(keepends=True)
            if lines:
                index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
                lines.insert(index, lines[index])
                data = "".join(lines)
        else:
            data = data[:at]
    encoded = data.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(min_value=0, max_value=len(encoded)))
        encoded = encoded[:at] + draw(st.binary(min_size=1, max_size=4)) + encoded[at:]
    return encoded


def _replace_somewhere(data: Any, draw: st.DrawFn, value: Any) -> Any:
    """``data`` with one value somewhere inside it replaced by ``value``."""
    if isinstance(data, dict) and data and draw(st.integers(0, 3)) > 0:
        key = draw(st.sampled_from(sorted(data)))
        return {**data, key: _replace_somewhere(data[key], draw, value)}
    if isinstance(data, list) and data and draw(st.integers(0, 3)) > 0:
        index = draw(st.integers(0, len(data) - 1))
        return [*data[:index], _replace_somewhere(data[index], draw, value), *data[index + 1 :]]
    return value


@st.composite
def generated(draw: st.DrawFn, text: str, *, kind: str = "yaml") -> bytes:
    """A structurally plausible document: the valid one with one value swapped for noise."""
    if kind == "jsonl":  # one JSON object per line: change one line
        lines = text.splitlines()
        index = draw(st.integers(0, len(lines) - 1))
        lines[index] = draw(generated(lines[index], kind="json")).decode()
        return ("\n".join(lines) + "\n").encode()
    data = yaml.safe_load(text)
    changed = _replace_somewhere(data, draw, draw(json_values))
    if kind == "json":
        return json.dumps(changed, indent=draw(st.sampled_from([None, 2]))).encode()
    return yaml.safe_dump(changed, allow_unicode=draw(st.booleans()), sort_keys=False).encode()


def hostile(text: str, *, kind: str) -> st.SearchStrategy[bytes]:
    """Random bytes, random text, mutations and generated variants of one valid document."""
    return st.one_of(
        st.binary(max_size=600),
        st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.text(max_size=300).map(lambda t: b"\xef\xbb\xbf" + t.encode("utf-8", "surrogatepass")),
        mutated(text),
        generated(text, kind=kind),
    )


# Deterministic extremes, every loader gets all of them.
EXTREMES: dict[str, bytes] = {
    "empty": b"",
    "only-bom": b"\xef\xbb\xbf",
    "latin-1": "caf\xe9: cr\xe8me\n".encode("latin-1"),
    "utf-16": "schema_version: 1\n".encode("utf-16"),
    "nul-bytes": b"schema_version: 1\x00\x00\n",
    "tabs-indent": b"schema_version: 1\nrepos:\n\t- slug: kahn-hq\n",
    "deep-flow-list": b"[" * 20_000 + b"]" * 20_000,
    "deep-flow-map": b"{a: " * 5_000 + b"1" + b"}" * 5_000,
    "deep-block": "".join("  " * i + "k:\n" for i in range(1_500)).encode(),
    "deep-json": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "long-string": b"schema_version: 1\nslug: " + b"a" * 2_000_000 + b"\n",
    "long-line-of-keys": b"{" + b", ".join(b"k%d: 1" % i for i in range(20_000)) + b"}\n",
    "huge-integer": b"schema_version: 1" + b"0" * 5_000 + b"\n",
    "recursive-alias": b"a: &a [*a]\n",
    "python-tag": b"!!python/object/apply:os.system ['true']\n",
    "many-documents": b"a: 1\n---\nb: 2\n",
    "lone-surrogate-escape": b'{"a": "\\ud800"}\n',
    "nan-and-infinity": b'{"a": NaN, "b": Infinity, "c": .nan}\n',
}


# --- the loaders, one command each --------------------------------------------------------


def registry_loader(stage: Stage, data: bytes) -> Run:
    path = stage.root / "fuzz-registry" / "registry.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return run("registry", "validate", "--registry", str(path), "--catalogue", str(stage.catalogue))


def contract_loader(stage: Stage, data: bytes) -> Run:
    path = stage.root / "fuzz-contract.yaml"
    path.write_bytes(data)
    return run("contract", "validate", str(path), "--catalogue", str(stage.catalogue))


def ledger_loader(stage: Stage, data: bytes) -> Run:
    """A ledger is read by the snapshot (a warning at worst) and by state record (refused)."""
    stage.ledger.write_bytes(data)
    snap = run("snapshot", "--registry", str(stage.registry))
    assert_clean(snap, allowed=(0,))
    recorded = run(
        "state",
        "record",
        "petrova-codes",
        "crumb",
        "unreachable",
        "--now",
        NOW,
        "--at",
        NOW,
        "--registry",
        str(stage.registry),
    )
    if recorded.exit_code != 0:
        assert stage.ledger.read_bytes() == data, "a refused record changed the ledger"
    return recorded


def answers_loader(stage: Stage, data: bytes) -> Run:
    path = stage.root / "fuzz-answers.yaml"
    path.write_bytes(data)
    result = run(
        "bootstrap",
        "--repo",
        str(stage.repo),
        "--answers",
        str(path),
        "--dry-run",
        "--no-interactive",
        "--registry",
        str(stage.registry),
    )
    assert not (stage.repo / ".petrova").exists(), "a dry run wrote the contract"
    return result


def render_loader(stage: Stage, data: bytes) -> Run:
    path = stage.root / "fuzz-snapshot.json"
    out = stage.root / "fuzz-page.html"
    out.unlink(missing_ok=True)
    path.write_bytes(data)
    result = run("render", str(path), "-o", str(out), "--catalogue", str(stage.catalogue))
    if result.exit_code != 0:
        assert not out.exists(), "a refused render wrote the page"
    return result


def endpoint_loader(stage: Stage, data: bytes) -> Run:
    path = stage.root / "fuzz-fixture.json"
    path.write_bytes(data)
    before = stage.server.count()
    result = run(
        "contracts", "verify-endpoint", stage.server.url, "--fixture", str(path), "--retries", "0"
    )
    if result.exit_code == 2:
        assert stage.server.count() == before, "a refused fixture was posted anyway"
    return result


def probes_loader(stage: Stage, data: bytes) -> Run:
    path = stage.root / "fuzz-probes.jsonl"
    path.write_bytes(data)
    stage.ledger.unlink(missing_ok=True)
    result = run(
        "state", "record", "--from", str(path), "--now", NOW, "--registry", str(stage.registry)
    )
    if result.exit_code != 0:
        assert not stage.ledger.exists(), "a refused batch recorded something"
    return result


Loader = Callable[[Stage, bytes], Run]
LOADERS: dict[str, tuple[Loader, str, str, tuple[int, ...]]] = {
    # name: (loader, a valid document, its kind (yaml, json, jsonl), allowed exit codes)
    "registry": (registry_loader, VALID_REGISTRY, "yaml", (0, 2)),
    "contract": (contract_loader, VALID_CONTRACT, "yaml", (0, 2)),
    "ledger": (ledger_loader, VALID_LEDGER, "json", (0, 2)),
    "answers": (answers_loader, VALID_ANSWERS, "yaml", (0, 2)),
    "render": (render_loader, VALID_SNAPSHOT, "json", (0, 2)),
    # 1: the endpoint answered but the round trip lost values (a fixture that is a
    # snapshot, just not the one the server keeps): a check that failed, cleanly.
    "verify-endpoint": (endpoint_loader, VALID_SNAPSHOT, "json", (0, 1, 2)),
    "probe-lines": (probes_loader, VALID_PROBES, "jsonl", (0, 2)),
}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_the_valid_document_loads(stage: Stage, name: str) -> None:
    """The baseline the mutations start from: every loader accepts it (else they prove little)."""
    loader, valid, _, _ = LOADERS[name]
    result = loader(stage, valid.encode())
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("extreme", sorted(EXTREMES))
@pytest.mark.parametrize("name", sorted(LOADERS))
def test_extreme_inputs_are_refused_cleanly(stage: Stage, name: str, extreme: str) -> None:
    loader, _, _, allowed = LOADERS[name]
    assert_clean(loader(stage, EXTREMES[extreme]), allowed=allowed)


def _fuzz(name: str) -> Callable[..., None]:
    loader, valid, kind, allowed = LOADERS[name]

    @FUZZ
    @given(data=hostile(valid, kind=kind))
    def test(stage: Stage, data: bytes) -> None:
        assert_clean(loader(stage, data), allowed=allowed)

    test.__name__ = f"test_fuzz_{name.replace('-', '_')}"
    test.__doc__ = f"The {name} loader: generated, mutated and random documents."
    return test


test_fuzz_registry = _fuzz("registry")
test_fuzz_contract = _fuzz("contract")
test_fuzz_ledger = _fuzz("ledger")
test_fuzz_answers = _fuzz("answers")
test_fuzz_render = _fuzz("render")
test_fuzz_verify_endpoint = _fuzz("verify-endpoint")
test_fuzz_probe_lines = _fuzz("probe-lines")


# --- specific shapes, with the exact code a user sees ---------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("registry", b"schema_version: 1\nrepos: [\xff]\n", "REGISTRY_INVALID"),
        ("registry", b"\xef\xbb\xbf" + VALID_REGISTRY.encode(), None),
        (
            "registry",
            VALID_REGISTRY.replace("  - slug: kahn-hq", "\t- slug: kahn-hq").encode(),
            "REGISTRY_INVALID",
        ),
        ("registry", b"schema_version: 1" + b"0" * 5000 + b"\nrepos: []\n", "REGISTRY_INVALID"),
        ("contract", b"\xef\xbb\xbf" + VALID_CONTRACT.encode(), None),
        ("contract", b"[" * 20_000, "CONTRACT_INVALID"),
        ("contract", VALID_CONTRACT.encode() + b"x: 1" + b"0" * 5000 + b"\n", "CONTRACT_INVALID"),
        ("answers", b"integrations: {ares: 1" + b"0" * 5000 + b"}\n", "ANSWERS_INVALID"),
        ("render", b'{"a": "\\udfff"}', "SNAPSHOT_UNREADABLE"),
        (
            "render",
            VALID_SNAPSHOT.replace('"tier": 1', '"tier": 100000000000000000000').encode(),
            "SNAPSHOT_UNREADABLE",
        ),
        ("render", b"\xef\xbb\xbf" + VALID_SNAPSHOT.encode(), "SNAPSHOT_UNREADABLE"),
        ("verify-endpoint", b"[" * 50_000 + b"]" * 50_000, "FIXTURE_INVALID"),
        ("verify-endpoint", b'{"a": 1' + b"0" * 5000 + b"}", "FIXTURE_INVALID"),
        ("probe-lines", b'{"slug": 1' + b"0" * 5000 + b"}\n", "PROBE_INPUT_INVALID"),
        ("probe-lines", b"[" * 100_000 + b"\n", "PROBE_INPUT_INVALID"),
        (
            "probe-lines",
            json.dumps(
                {
                    "slug": "petrova-codes",
                    "integration": "ares",
                    "outcome": "ok",
                    "at": "0001-01-01T00:00:00+01:00",
                }
            ).encode(),
            "PROBE_INPUT_INVALID",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_specific_hostile_shapes_get_their_code(
    stage: Stage, name: str, data: bytes, code: str | None
) -> None:
    loader, _, _, allowed = LOADERS[name]
    assert assert_clean(loader(stage, data), allowed=allowed) == code


def test_a_ledger_time_outside_the_calendar_is_state_invalid(stage: Stage) -> None:
    """An offset that pushes a time before year 1 in UTC used to crash every reader."""
    data = VALID_LEDGER.replace("2026-11-20T06:00:00Z", "0001-01-01T00:00:00+01:00").encode()
    result = ledger_loader(stage, data)
    assert assert_clean(result) == "STATE_INVALID"
    assert "0001-01-01T00:00:00+01:00" in result.stderr
    assert "outside the years 0001-9999" in result.stderr


@pytest.mark.parametrize("value", ["inf", "nan", "1e300d", "-3h", "0", "h"])
def test_a_hostile_duration_is_a_usage_error(stage: Stage, value: str) -> None:
    result = run("snapshot", "--stale-after", value, "--registry", str(stage.registry))
    assert result.exit_code == 2
    assert "is not a duration" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("rollout", "status", "--now", "0001-01-01T00:00:00+00:01"),
        ("rollout", "gate", "1", "--now", "9999-12-31T23:59:59-01:00"),
        ("state", "record", "petrova-codes", "ares", "ok", "--at", "0001-01-01T00:00:00+05:00"),
        ("rollout", "status", "--days", "99999999999"),
    ],
)
def test_clock_values_at_the_edge_of_the_calendar(stage: Stage, args: tuple[str, ...]) -> None:
    result = run(*args, "--registry", str(stage.registry))
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr and "INTERNAL_ERROR" not in result.stderr


def test_years_before_1000_round_trip_through_the_ledger(stage: Stage) -> None:
    """petrova must read back what it writes: %Y used to drop the leading zeros."""
    stage.ledger.unlink(missing_ok=True)
    result = run(
        "state",
        "record",
        "petrova-codes",
        "ares",
        "ok",
        "--at",
        "0999-01-01T00:00:00Z",
        "--now",
        NOW,
        "--registry",
        str(stage.registry),
    )
    assert result.exit_code == 0, result.stderr
    assert '"at": "0999-01-01T00:00:00Z"' in stage.ledger.read_text()
    again = run(
        "state",
        "record",
        "petrova-codes",
        "ares",
        "ok",
        "--now",
        NOW,
        "--registry",
        str(stage.registry),
    )
    assert again.exit_code == 0, again.stderr


# --- the console script, for the nastiest files ----------------------------------------------

CONSOLE_CASES = ["deep-flow-list", "latin-1", "huge-integer", "recursive-alias", "long-string"]


@pytest.mark.parametrize("extreme", CONSOLE_CASES)
def test_the_console_script_refuses_hostile_registries(tmp_path: Path, extreme: str) -> None:
    registry = tmp_path / "registry.yaml"
    registry.write_bytes(EXTREMES[extreme])
    result = run_subprocess("snapshot", "--registry", str(registry), timeout=60)
    assert assert_clean(result) in ("REGISTRY_INVALID", "INPUT_TOO_LARGE")
    assert result.stdout == ""


@pytest.mark.parametrize("extreme", ["deep-json", "lone-surrogate-escape", "utf-16"])
def test_the_console_script_refuses_hostile_snapshots(tmp_path: Path, extreme: str) -> None:
    snapshot = tmp_path / "fleet.json"
    snapshot.write_bytes(EXTREMES[extreme])
    result = run_subprocess("render", str(snapshot), "-o", str(tmp_path / "p.html"), timeout=60)
    assert assert_clean(result) in ("SNAPSHOT_UNREADABLE", "SNAPSHOT_INVALID")
    assert not (tmp_path / "p.html").exists()


def test_the_console_script_refuses_a_hostile_probe_stream(
    petrova_subprocess: Petrova, tmp_path: Path
) -> None:
    registry = tmp_path / "registry.yaml"
    shutil.copy(ROOT / "registry.yaml", registry)
    stream = b'{"slug": "petrova-codes"}\n' + b"[" * 100_000 + b"\n\xff\xfe\n"
    result = petrova_subprocess(
        "state", "record", "--from", "-", "--registry", str(registry), input=stream
    )
    assert assert_clean(result) == "PROBE_INPUT_INVALID"
    assert not (tmp_path / "state" / "petrova-codes.yaml").exists()
