"""Review of issue 7 (performance): bugs found in the snapshot memo and the forked readers.

Each test fails today and is marked ``xfail(strict=True)``; the fix removes the marker.
The process tests run petrova through a small driver that slows or kills the reader
workers (never the parent), so that a signal lands while they are reading.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from petrova import memo
from petrova.gather import gather_fleet
from tests.conftest import ROOT, Petrova, snapshot_args

FIXTURE = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"
EPOCH = {"SOURCE_DATE_EPOCH": "1795676400"}  # 2026-11-26T07:00:00Z


@pytest.mark.xfail(
    strict=True,
    reason="memo: validity() adds --stale-after to each probe time and overflows past "
    "year 9999 (OverflowError -> INTERNAL_ERROR, exit 70); PETROVA_CACHE=off works",
)
def test_a_long_stale_after_gives_the_snapshot_with_the_cache_on(
    statuses: Path, trusting_cache: Path, petrova_inprocess: Petrova
) -> None:
    """`--stale-after 9999999d` (27,000 years: "never stale") is a valid duration."""
    args = snapshot_args(statuses, "--stale-after", "9999999d")
    fresh = petrova_inprocess(*args, env={**EPOCH, "PETROVA_CACHE": "off"})
    cached = petrova_inprocess(*args, env={**EPOCH, "PETROVA_CACHE_DIR": str(trusting_cache)})
    assert fresh.exit_code == 0, fresh.stderr
    assert cached.exit_code == 0, cached.stderr
    assert cached.stdout_bytes == fresh.stdout_bytes


@pytest.mark.xfail(
    strict=True,
    reason="memo: the registry is hashed from one read and parsed from another; an edit "
    "between the two stores the new registry's snapshot under the old one's hash",
)
def test_a_registry_edited_during_a_run_is_not_memoised_under_its_old_content(
    statuses: Path,
    trusting_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    petrova_inprocess: Petrova,
) -> None:
    registry = statuses / "registry.yaml"
    before = registry.read_text()
    during = before.replace("tier: 3", "tier: 4", 1)  # gamma-hq's row shows it
    assert during != before
    real = gather_fleet
    edits: list[int] = []

    def edited_meanwhile(*args: object, **kwargs: object) -> object:
        if not edits:  # someone saves the registry just after the memo hashed it
            registry.write_text(during)
            edits.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(memo, "gather_fleet", edited_meanwhile)
    env = {**EPOCH, "PETROVA_CACHE_DIR": str(trusting_cache)}
    assert petrova_inprocess(*snapshot_args(statuses), env=env).exit_code == 0
    registry.write_text(before)  # the edit is undone (git checkout, a reverted pull)
    cached = petrova_inprocess(*snapshot_args(statuses), env=env)
    fresh = petrova_inprocess(*snapshot_args(statuses), env={**EPOCH, "PETROVA_CACHE": "off"})
    assert fresh.stdout_bytes == FIXTURE.read_bytes()
    assert cached.stdout_bytes == fresh.stdout_bytes


# --- the forked readers under signals ----------------------------------------------------

DRIVER = """
import os, sys, time
from pathlib import Path
import petrova.readers as readers

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


@pytest.mark.xfail(
    strict=True,
    reason="readers: Ctrl-C reaches the forked workers too, which print "
    "'Process ForkPoolWorker-N:' and KeyboardInterrupt tracebacks",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="readers: a worker that dies (OOM killer, SIGKILL) leaves Pool.imap waiting "
    "forever; the run hangs holding the -o lock",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="readers: workers outlive a parent stopped by SIGTERM (cron's timeout) and keep "
    "the inherited flock on -o FILE, so the next run exits 75 (LOCK_TIMEOUT)",
)
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
