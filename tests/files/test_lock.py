"""Overlapping unattended runs: real `petrova snapshot` processes against one output file."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from jsonschema import Draft202012Validator

from petrova.errors import LockTimeout
from petrova.files.lock import file_lock, lock_path_for
from tests.conftest import PETROVA_BIN, ROOT, Fleet, Petrova, Spawn, _clean_env

SCHEMA = json.loads((ROOT / "contracts" / "snapshot.schema.json").read_bytes())


def start(spawn: Spawn, fleet: Fleet, output: Path, *extra: str) -> subprocess.Popen[bytes]:
    return spawn(
        [str(PETROVA_BIN), "snapshot", *fleet.args(), "-o", str(output), *extra],
        env=_clean_env(None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out.decode(), err.decode()


def assert_complete_snapshot(path: Path) -> None:
    doc = json.loads(path.read_bytes())
    errors = list(Draft202012Validator(SCHEMA).iter_errors(doc))
    assert errors == []
    assert doc["totals"]["repos"] == len(doc["rows"]) == 7


def test_two_runs_at_once_both_succeed(fleet: Fleet, spawn: Spawn) -> None:
    output = fleet.root / "fleet.json"
    for _ in range(3):
        procs = [start(spawn, fleet, output), start(spawn, fleet, output)]
        results = [finish(p) for p in procs]
        assert [code for code, _, _ in results] == [0, 0], results
        assert all(out == "" and err == "" for _, out, err in results)  # quiet, unattended
        assert_complete_snapshot(output)
    leftovers = sorted(p.name for p in fleet.root.iterdir() if p.name.startswith(".fleet.json"))
    assert leftovers == [".fleet.json.lock"]  # no temp files left behind


def test_two_runs_that_must_not_wait_either_succeed_or_say_so(fleet: Fleet, spawn: Spawn) -> None:
    output = fleet.root / "fleet.json"
    for _ in range(3):
        procs = [start(spawn, fleet, output, "--wait", "0") for _ in range(2)]
        results = [finish(p) for p in procs]
        codes = sorted(code for code, _, _ in results)
        assert codes in ([0, 0], [0, 75]), results
        for code, _, err in results:
            if code == 75:
                assert "LOCK_TIMEOUT" in err
                assert str(lock_path_for(output)) in err
        assert_complete_snapshot(output)


def test_runs_queued_behind_a_held_lock_all_complete(fleet: Fleet, spawn: Spawn) -> None:
    output = fleet.root / "fleet.json"
    with file_lock(output, wait=0):
        procs = [start(spawn, fleet, output, "--wait", "60") for _ in range(3)]
        time.sleep(1.0)  # they are all waiting on the lock now (or still starting)
        assert not output.exists()  # nobody wrote while the lock was held
        assert all(p.poll() is None for p in procs)
    results = [finish(p) for p in procs]
    assert [code for code, _, _ in results] == [0, 0, 0], results
    assert_complete_snapshot(output)


def test_wait_zero_while_the_lock_is_held(petrova: Petrova, fleet: Fleet) -> None:
    output = fleet.root / "fleet.json"
    output.write_bytes(b'{"old": true}\n')
    with file_lock(output, wait=0):
        run = petrova("snapshot", *fleet.args(), "-o", str(output), "--wait", "0")
    assert run.exit_code == 75  # EX_TEMPFAIL: cron and systemd know to try again later
    assert run.stderr.startswith("petrova: LOCK_TIMEOUT: ")
    assert str(lock_path_for(output)) in run.stderr
    assert "another petrova run still holds the lock after 0s" in run.stderr
    assert "Traceback" not in run.stderr
    assert output.read_bytes() == b'{"old": true}\n'  # untouched
    assert run.stdout == ""


def test_a_short_wait_times_out_too(petrova_inprocess: Petrova, fleet: Fleet) -> None:
    output = fleet.root / "fleet.json"
    with file_lock(output, wait=0):
        run = petrova_inprocess("snapshot", *fleet.args(), "-o", str(output), "--wait", "0.2")
    assert run.exit_code == LockTimeout.exit_code == 75
    assert "after 0.2s" in run.stderr
    assert not output.exists()


def test_stdout_runs_take_no_lock(petrova: Petrova, fleet: Fleet) -> None:
    output = fleet.root / "fleet.json"
    with file_lock(output, wait=0):
        run = petrova("snapshot", *fleet.args(), "--wait", "0")
    assert run.exit_code == 0
    assert json.loads(run.stdout)["totals"]["repos"] == 7


def test_an_output_directory_that_does_not_exist(petrova: Petrova, fleet: Fleet) -> None:
    output = fleet.root / "nope" / "fleet.json"
    run = petrova("snapshot", *fleet.args(), "-o", str(output))
    assert run.exit_code == 2
    assert "OUTPUT_UNWRITABLE" in run.stderr
    assert "does not exist" in run.stderr
    assert not output.parent.exists()


def test_a_lock_file_that_cannot_be_opened(petrova: Petrova, fleet: Fleet) -> None:
    output = fleet.root / "fleet.json"
    lock_path_for(output).mkdir()  # something in the way, whoever runs the test
    run = petrova("snapshot", *fleet.args(), "-o", str(output))
    assert run.exit_code == 2
    assert "OUTPUT_UNWRITABLE" in run.stderr
    assert "cannot create the lock file" in run.stderr
    assert "Traceback" not in run.stderr
    assert not output.exists()
