"""Reading across processes, started before the registry is parsed (petrova/readers.py):
the same snapshot, whatever the number of processes, a wrong guess or a failure."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from petrova.fleet import readers
from petrova.fleet.reads import Job
from tests.conftest import ROOT, Petrova, snapshot_args

EPOCH = {"SOURCE_DATE_EPOCH": "1795676400"}
FIXTURE = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"


@pytest.mark.parametrize("workers", ["1", "2", "3"])
def test_forked_readers_give_the_same_snapshot(
    statuses: Path, workers: str, petrova_subprocess: Petrova
) -> None:
    """PETROVA_WORKERS forces the readers on even for a fleet this small."""
    env = {**EPOCH, "PETROVA_CACHE": "off", "PETROVA_WORKERS": workers}
    run = petrova_subprocess(*snapshot_args(statuses), env=env)
    assert run.exit_code == 0, run.stderr
    fixture = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"
    assert run.stdout_bytes == fixture.read_bytes()


def test_a_wrong_guess_before_the_registry_is_parsed_costs_nothing(
    statuses: Path, monkeypatch: pytest.MonkeyPatch, petrova_inprocess: Petrova
) -> None:
    """The reads started early are guessed from the registry's text; a slug written in a
    way the guess misses is read afterwards, and a guessed slug that is no repo is
    dropped."""
    registry = statuses / "registry.yaml"
    text = registry.read_text()
    text = text.replace("  - slug: alpha-hq\n", '  - slug: "alpha-hq"  # quoted, commented\n')
    text += "# slug: ghost-hq\n"  # the guess would look for it
    registry.write_text(text)
    guessed: list[list[Job]] = []
    real = readers.Readers.__init__

    def spy(self: readers.Readers, jobs: list[Job], *args: object) -> None:
        guessed.append(list(jobs))
        real(self, jobs, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(readers.Readers, "__init__", spy)
    env = {**EPOCH, "PETROVA_CACHE": "off", "PETROVA_WORKERS": "2"}
    run = petrova_inprocess(*snapshot_args(statuses), env=env)
    assert run.exit_code == 0, run.stderr
    fixture = json.loads(
        (ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json").read_text()
    )
    assert json.loads(run.stdout)["rows"] == fixture["rows"]
    early, late = guessed[0], guessed[1]
    assert {job[2] for job in early} == {"beta-hq", "gamma-hq"}  # not alpha, not the ghost
    assert {job[2] for job in late} == {"alpha-hq"}


def test_a_registry_error_stops_the_early_readers(
    statuses: Path, petrova_subprocess: Petrova
) -> None:
    registry = statuses / "registry.yaml"
    registry.write_text(registry.read_text().replace("tier: 2", "tier: two", 1))
    env = {**EPOCH, "PETROVA_CACHE": "off", "PETROVA_WORKERS": "2"}
    run = petrova_subprocess(*snapshot_args(statuses), env=env)
    assert run.exit_code == 2
    assert "REGISTRY_INVALID" in run.stderr
    assert "Traceback" not in run.stderr


def test_no_processes_to_be_had_means_reading_in_one(
    statuses: Path, monkeypatch: pytest.MonkeyPatch, petrova_inprocess: Petrova
) -> None:
    """A process limit (EAGAIN from fork) costs speed, not the snapshot."""

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    env = {**EPOCH, "PETROVA_CACHE": "off", "PETROVA_WORKERS": "2"}
    run = petrova_inprocess(*snapshot_args(statuses), env=env)
    assert run.exit_code == 0, run.stderr
    fixture = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"
    assert run.stdout_bytes == fixture.read_bytes()
    assert readers._WORKER_STATE is None


# --- the forked readers under signals ----------------------------------------------------

DRIVER = """
import os, sys, time
from pathlib import Path
import petrova.fleet.readers as readers

PARENT = os.getpid()
MODE = os.environ["REVIEW_MODE"]
MARK = Path(os.environ["REVIEW_MARK"])
real_read = readers.read_ledger
real_exit = readers.Readers.__exit__

def read_ledger(*args, **kwargs):
    if os.getpid() != PARENT:  # in a worker only
        MARK.touch()
        if MODE == "kill":
            os.kill(os.getpid(), 9)  # the OOM killer picks a worker
        time.sleep(float(os.environ.get("REVIEW_SLOW", "30")))
    return real_read(*args, **kwargs)

def slow_exit(self, *exc):
    time.sleep(1.0)  # the parent takes a moment to clean up: makes the race certain
    return real_exit(self, *exc)

readers.read_ledger = read_ledger
readers.Readers.__exit__ = slow_exit
from petrova.cli import main
sys.argv = ["petrova", *sys.argv[1:]]
main()
"""


def _start(
    tmp_path: Path, mode: str, args: list[str], **env: str
) -> tuple[subprocess.Popen[bytes], Path]:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    mark = tmp_path / "worker-reading"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PETROVA_")} | {
        **EPOCH,
        "PETROVA_CACHE": "off",
        "PETROVA_WORKERS": "2",
        "REVIEW_MODE": mode,
        "REVIEW_MARK": str(mark),
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, str(driver), *args],
        env=full_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    return proc, mark


def _wait_for(mark: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not mark.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no worker started reading"
        time.sleep(0.05)


def test_ctrl_c_while_workers_read_says_interrupted_and_nothing_else(
    statuses: Path, tmp_path: Path
) -> None:
    proc, mark = _start(tmp_path, "slow", snapshot_args(statuses))
    try:
        _wait_for(mark, proc)
        os.killpg(proc.pid, signal.SIGINT)  # a terminal sends it to the whole group
        _, err = proc.communicate(timeout=60)
    finally:
        with_group_killed(proc)
    assert proc.returncode == 130
    assert err.decode() == "petrova: interrupted\n"


def test_a_killed_worker_does_not_hang_the_snapshot(statuses: Path, tmp_path: Path) -> None:
    output = tmp_path / "fleet.json"
    proc, _ = _start(tmp_path, "kill", snapshot_args(statuses, "-o", str(output)))
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("petrova snapshot still running 20 s after a reader worker was killed")
    finally:
        with_group_killed(proc)
    assert "Traceback" not in err.decode()
    assert proc.returncode in (0, 1, 2, 75), err.decode()  # a PetrovaError, not exit 70


def test_a_run_stopped_by_sigterm_leaves_no_reader_holding_the_lock(
    statuses: Path, tmp_path: Path, petrova_subprocess: Petrova
) -> None:
    output = tmp_path / "fleet.json"
    args = snapshot_args(statuses, "-o", str(output))
    proc, mark = _start(tmp_path, "slow", args, REVIEW_SLOW="8")
    try:
        _wait_for(mark, proc)
        proc.terminate()  # the parent only, as `timeout` and service managers do
        proc.wait(timeout=30)  # not communicate(): the orphans hold its pipes open
        time.sleep(0.5)
        after = petrova_subprocess(*args, "--wait", "1", env={**EPOCH, "PETROVA_CACHE": "off"})
    finally:
        with_group_killed(proc)
    assert after.exit_code == 0, after.stderr
    assert output.read_bytes() == FIXTURE.read_bytes()


def with_group_killed(proc: subprocess.Popen[bytes]) -> None:
    """Leave no process of the driver's session behind (its own workers included)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    proc.communicate()
