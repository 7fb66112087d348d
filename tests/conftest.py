"""Shared fixtures: the two ways to run petrova, and throwaway copies of the fleet."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import settings

from petrova.cli import cli
from petrova.clock import MACHINE_ENV
from tests.ingest_server import Servers
from tests.ingest_server import servers as serve_ingest

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "contracts" / "contract.schema.json"
PETROVA_BIN = Path(sys.executable).parent / "petrova"
#: The suite's own fleet: a registry and the control plane's contract, never the shipped ones.
TESTS = Path(__file__).resolve().parent
FIXTURE_FLEET = TESTS / "fixtures" / "fleet"


# --- Hypothesis: the same examples on every run, unless asked to explore ----------------
# ``ci`` (the default, and what CI runs): derandomized, so every run draws the same
# examples and a run that passed once passes again; no deadline, since a loaded machine
# is not a failure. ``explore`` (``HYPOTHESIS_PROFILE=explore make test``): random seeds,
# 10,000 examples for every property, and the example database under .hypothesis/, so a
# failure found replays on the next run until it is fixed (then pin it with @example).
EXPLORE_EXAMPLES = 10_000
settings.register_profile("ci", derandomize=True, deadline=None, database=None, print_blob=True)
settings.register_profile(
    "explore", max_examples=EXPLORE_EXAMPLES, derandomize=False, deadline=None, print_blob=True
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or "ci"
settings.load_profile(PROFILE)


def examples(ci: int) -> int:
    """A property's number of examples: its own budget in CI, the exploratory one when
    exploring (an explicit ``max_examples`` would otherwise win over the profile's)."""
    return max(ci, EXPLORE_EXAMPLES) if PROFILE == "explore" else ci


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes


Petrova = Callable[..., Run]


def _users_setting(name: str) -> bool:
    """A ``PETROVA_*`` variable from the developer's shell, kept away from the tests (the
    suite's own clock is not one)."""
    return name.startswith("PETROVA_") and name != MACHINE_ENV


#: What every petrova the suite starts is given (a test may override it): the fake services
#: listen on 127.0.0.1, which probes refuse to connect to unless the operator allows it.
SUITE_ENV = {"PETROVA_PROBE_ALLOW_PRIVATE": "1"}


def _clean_env(env: Mapping[str, str] | None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not _users_setting(k)}
    base.update(SUITE_ENV)
    base.update(env or {})
    return base


def run_inprocess(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input: str | bytes | None = None,
) -> Run:
    runner = CliRunner()
    full_env: dict[str, str | None] = {k: None for k in os.environ if _users_setting(k)}
    full_env.update(SUITE_ENV)
    full_env.update(env or {})
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = runner.invoke(cli, list(args), env=full_env, catch_exceptions=False, input=input)
    finally:
        os.chdir(old)
    return Run(result.exit_code, result.stdout, result.stderr, result.stdout_bytes)


def run_subprocess(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input: str | bytes | None = None,
    timeout: float = 120,
) -> Run:
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        [str(PETROVA_BIN), *args],
        env=_clean_env(env),
        cwd=cwd,
        input=data,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return Run(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
        proc.stdout,
    )


Spawn = Callable[..., subprocess.Popen[bytes]]


def reap(proc: subprocess.Popen[bytes], *, group: bool = False) -> None:
    """Kill ``proc`` if it still runs (its whole process group when it leads one), close
    its pipes and wait for it: a child left running outlives its test, and its ``Popen``,
    garbage-collected later, fails whichever test is running then with a
    ``ResourceWarning`` ("subprocess N is still running") that the suite turns into an
    error."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
    with proc:  # closes stdin, stdout and stderr, then waits
        pass


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """``subprocess.Popen`` for a test: every child it started is reaped when the test
    ends, however it ends (a failed assertion, a timeout), even before it was waited for."""
    started: list[tuple[subprocess.Popen[bytes], bool]] = []

    def start(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = subprocess.Popen(args, **kwargs)
        started.append((proc, bool(kwargs.get("start_new_session"))))
        return proc

    try:
        yield start
    finally:
        for proc, group in started:
            reap(proc, group=group)


#: The suite's clock: every test runs at this moment unless it is marked ``real_clock``.
#: Dates in fixtures are relative to it (the fixtures' ledgers were written the same day).
FIXED_NOW = datetime(2026, 11, 26, 7, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fixed_clock(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin both of petrova's clocks to :data:`FIXED_NOW`, for the test and every process
    it starts: its own (``SOURCE_DATE_EPOCH``) and the machine's that the
    future-timestamp guard reads (``PETROVA_MACHINE_EPOCH``). So the suite passes on any
    day the machine thinks it is (CI runs it under ``faketime`` a year ahead and half a
    year behind).

    A test marked ``real_clock`` runs on the machine's clock and must assert nothing
    that depends on the date.
    """
    if request.node.get_closest_marker("real_clock"):
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
        monkeypatch.delenv(MACHINE_ENV, raising=False)
    else:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(FIXED_NOW.timestamp())))
        monkeypatch.setenv(MACHINE_ENV, str(int(FIXED_NOW.timestamp())))


MachineClock = Callable[[str], None]


@pytest.fixture
def machine_clock(monkeypatch: pytest.MonkeyPatch) -> MachineClock:
    """Move the machine's clock (the future-timestamp guard's) to an RFC 3339 time: for a
    story told with ``--now`` past :data:`FIXED_NOW`, whose outcomes are not a replay."""

    def move(moment: str) -> None:
        when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        monkeypatch.setenv(MACHINE_ENV, str(int(when.timestamp())))

    return move


@pytest.fixture(autouse=True)
def _no_github_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own GITHUB_TOKEN must never reach a test (the daily's notify step
    would talk to the real GitHub): tests that want one pass it explicitly."""
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep petrova's read cache out of the user's home during the tests."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


@pytest.fixture
def petrova() -> Petrova:
    """Run petrova in-process (CliRunner, stdout and stderr apart): fast, and the same code.

    That the installed console script behaves the same is proven once, by the smoke set
    in tests/commands/test_console_script.py, not by running every test twice.
    """
    return run_inprocess


@pytest.fixture
def petrova_inprocess() -> Petrova:
    return run_inprocess


@pytest.fixture
def petrova_subprocess() -> Petrova:
    return run_subprocess


@dataclass(frozen=True)
class Fleet:
    """A throwaway copy of the control-plane repo: registry, catalogue, own contract."""

    root: Path

    @property
    def registry(self) -> Path:
        return self.root / "registry.yaml"

    @property
    def catalogue(self) -> Path:
        return self.root / "contracts" / "contract.schema.json"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    def write(self, relpath: str, text: str | bytes) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    def args(self, *extra: str) -> list[str]:
        """Options that point a command at this fleet."""
        return ["--registry", str(self.registry), *extra]


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    root = tmp_path / "fleet"
    (root / "contracts").mkdir(parents=True)
    shutil.copy(FIXTURE_FLEET / "registry.yaml", root / "registry.yaml")
    shutil.copy(CATALOGUE, root / "contracts" / "contract.schema.json")
    shutil.copytree(FIXTURE_FLEET / ".petrova", root / ".petrova")
    return Fleet(root)


def make_git_repo(path: Path, files: Mapping[str, str], *, origin: str | None = None) -> Path:
    """A real git work tree built from a {path: text} dict, committed once."""
    path.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, env=env)

    git("init", "-q", "-b", "main")
    for rel, text in files.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git("add", "-A")
    git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "init",
    )
    if origin is not None:
        git("remote", "add", "origin", origin)
    return path


def git_status(repo: Path) -> str:
    """``git status`` in porcelain form, untracked files included: what a PR would carry."""
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture
def git_repo() -> Callable[..., Path]:
    return make_git_repo


@pytest.fixture
def ingest() -> Iterator[Servers]:
    """Start real HTTP servers on 127.0.0.1 (ephemeral ports): ``ingest(behaviour)``."""
    yield from serve_ingest()


# --- the all-statuses fleet: snapshot runs over a copy of it ---------------------------

ALL_STATUSES = ROOT / "contracts" / "fixtures" / "all-statuses"


def snapshot_args(root: Path, *extra: str) -> list[str]:
    """``petrova snapshot`` over the fleet copied at ``root``, every path explicit."""
    return [
        "snapshot",
        "--registry",
        str(root / "registry.yaml"),
        "--catalogue",
        str(ROOT / "contracts" / "contract.schema.json"),
        "--state-dir",
        str(root / "state"),
        "--workspace",
        str(root / "workspace"),
        *extra,
    ]


@pytest.fixture
def statuses(tmp_path: Path) -> Path:
    """A copy of the fleet behind contracts/fixtures/snapshot-all-statuses.json."""
    import shutil

    root = tmp_path / "statuses"
    shutil.copytree(ALL_STATUSES, root)
    return root
