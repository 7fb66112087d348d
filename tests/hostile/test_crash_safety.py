"""Crash safety: SIGKILL at any moment leaves every file as it was or as the complete new one.

The three writers that run unattended (``snapshot -o``, ``state record``, ``registry
pin``) are started as the real console script and killed with SIGKILL at moments spread
over a whole run, many times. After each kill the file must be byte for byte one of the
two legal versions, and must parse. A killed run may leave its own temporary file
(``.<name>.*.tmp``, nothing can clean up after SIGKILL) but never a half-written target,
and the next run still works. Concurrent ``state record`` runs on one ledger must keep
every outcome.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from petrova.files.disk import sha12
from tests.conftest import PETROVA_BIN, Fleet, Petrova, Spawn, _clean_env
from tests.tierfleet import migrate_tier2

#: SIGKILLs per command: enough to land before, during and after the write.
KILLS = 30
EPOCH = {"SOURCE_DATE_EPOCH": "1795676400"}


def _start(
    spawn: Spawn, args: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return spawn(
        [str(PETROVA_BIN), *args],
        env=_clean_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(PETROVA_BIN), *args], env=_clean_env(env), capture_output=True, timeout=60, check=False
    )


def _duration(args: list[str], env: dict[str, str] | None, reset: Callable[[], None]) -> float:
    """How long one whole run takes here, so kill moments can be spread over all of it."""
    reset()
    started = time.monotonic()
    done = _run(args, env)
    assert done.returncode == 0, done.stderr.decode()
    return time.monotonic() - started


def kill_loop(
    spawn: Spawn,
    args: list[str],
    target: Path,
    *,
    old: bytes,
    new: bytes,
    parse: Callable[[bytes], object],
    env: dict[str, str] | None = None,
    seed: int,
) -> dict[str, int]:
    """Kill ``args`` at random moments; after each kill ``target`` is ``old`` or ``new``."""
    assert old != new

    def reset() -> None:
        target.write_bytes(old)

    span = _duration(args, env, reset) * 1.3
    rng = random.Random(seed)
    seen = {"old": 0, "new": 0}
    for attempt in range(KILLS):
        reset()
        proc = _start(spawn, args, env)
        # Spread the kills over the run, with a share near the end where the write is.
        delay = rng.uniform(0, span) if attempt % 3 else rng.uniform(span * 0.5, span)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.stderr is not None
        proc.stderr.close()
        data = target.read_bytes()
        assert data in (old, new), f"kill {attempt} after {delay:.3f}s left a third version"
        parse(data)
        seen["old" if data == old else "new"] += 1
        strays = [
            p.name
            for p in target.parent.iterdir()
            if p.is_file() and p.name.startswith(".") and not p.name.endswith(".lock")
        ]
        assert all(n.startswith(f".{target.name}.") and n.endswith(".tmp") for n in strays), strays
        seen["strays"] = seen.get("strays", 0) + len(strays)
        for name in strays:  # a killed run's own temp file: never the target, cleaned here
            (target.parent / name).unlink()
    # The harness must really have hit both sides of the write, or it proved little.
    assert seen["old"] > 0 and seen["new"] > 0, seen
    # And after all that, a plain run still finishes and writes the new version.
    reset()
    assert _run(args, env).returncode == 0
    assert target.read_bytes() == new
    return seen


@pytest.mark.slow
def test_sigkill_during_snapshot_output(fleet: Fleet, spawn: Spawn) -> None:
    output = fleet.root / "fleet.json"
    args = ["snapshot", *fleet.args(), "-o", str(output)]
    done = _run(args, {"SOURCE_DATE_EPOCH": "1700000000"})
    assert done.returncode == 0
    old = output.read_bytes()
    assert _run(args, EPOCH).returncode == 0
    new = output.read_bytes()
    kill_loop(spawn, args, output, old=old, new=new, parse=json.loads, env=EPOCH, seed=1)


@pytest.mark.slow
def test_sigkill_during_state_record(fleet: Fleet, spawn: Spawn) -> None:
    migrate_tier2(fleet)
    ledger = fleet.state_dir / "kahn-hq.yaml"
    clock = ["--now", "2026-11-26T07:00:00Z"]
    first = ["state", "record", "kahn-hq", "ares", "ok", "--at", "2026-11-25T06:00:00Z"]
    assert _run([*first, *clock, *fleet.args()]).returncode == 0
    old = ledger.read_bytes()
    args = [
        "state", "record", "kahn-hq", "ares", "failing", "--at", "2026-11-26T06:00:00Z",
        "--detail", "pipeline red", *clock, *fleet.args(),
    ]  # fmt: skip
    assert _run(args).returncode == 0
    new = ledger.read_bytes()
    assert b"pipeline red" in new
    kill_loop(spawn, args, ledger, old=old, new=new, parse=json.loads, seed=2)


@pytest.mark.slow
def test_sigkill_during_registry_pin(fleet: Fleet, spawn: Spawn) -> None:
    contract = fleet.root / ".petrova" / "contract.yaml"
    contract.write_bytes(contract.read_bytes() + b"# reviewed again\n")
    old = fleet.registry.read_bytes()
    args = ["registry", "pin", "petrova-codes", *fleet.args()]
    assert _run(args).returncode == 0
    new = fleet.registry.read_bytes()
    assert f"contract_sha: {sha12(contract.read_bytes())}".encode() in new
    kill_loop(spawn, args, fleet.registry, old=old, new=new, parse=yaml.safe_load, seed=3)


# --- concurrency: no outcome is ever lost ------------------------------------------------


def _history(ledger: Path) -> list[str]:
    data = json.loads(ledger.read_text())
    return sorted(
        entry.get("detail", "")
        for cell in data["integrations"].values()
        for entry in cell["history"]
    )


def test_concurrent_records_on_one_ledger_lose_nothing(fleet: Fleet, spawn: Spawn) -> None:
    migrate_tier2(fleet)
    ids = ["ares", "traceo", "crumb"]
    procs = [
        _start(
            spawn,
            [
                "state",
                "record",
                "kahn-hq",
                ids[i % 3],
                "ok",
                "--at",
                "2026-11-26T06:00:00Z",
                "--detail",
                f"probe-{i:02d}",
                "--now",
                "2026-11-26T07:00:00Z",
                *fleet.args(),
            ],
        )
        for i in range(12)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
        assert proc.stderr is not None
        proc.stderr.close()
    assert _history(fleet.state_dir / "kahn-hq.yaml") == [f"probe-{i:02d}" for i in range(12)]


@pytest.mark.slow
def test_concurrent_records_with_kills_keep_every_finished_outcome(
    fleet: Fleet, spawn: Spawn
) -> None:
    """Some runs are killed, the others finish: every finished one is in the ledger, and a
    killed one is either wholly there or not at all; the ledger always loads."""
    migrate_tier2(fleet)
    rng = random.Random(4)
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    for i in range(16):
        detail = f"probe-{i:02d}"
        args = [
            "state", "record", "--from", "-", "--now", "2026-11-26T07:00:00Z", *fleet.args(),
        ]  # fmt: skip
        proc = spawn(
            [str(PETROVA_BIN), *args],
            env=_clean_env(None),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        line = {
            "slug": "kahn-hq" if i % 2 else "stratt-hq",
            "integration": "ares",
            "outcome": "unreachable",
            "at": "2026-11-26T06:00:00Z",
            "detail": detail,
        }
        assert proc.stdin is not None
        proc.stdin.write((json.dumps(line) + "\n").encode())
        proc.stdin.close()
        procs.append((detail, proc))
    killed: set[str] = set()
    for detail, proc in procs:
        if rng.random() < 0.3:
            time.sleep(rng.uniform(0, 0.3))
            proc.send_signal(signal.SIGKILL)
            killed.add(detail)
    finished: set[str] = set()
    for detail, proc in procs:
        code = proc.wait(timeout=120)
        if code == 0:
            finished.add(detail)
        else:
            assert code == -signal.SIGKILL and detail in killed
    recorded = set(_history(fleet.state_dir / "kahn-hq.yaml"))
    recorded |= set(_history(fleet.state_dir / "stratt-hq.yaml"))
    assert finished <= recorded  # nothing that finished was lost
    assert recorded <= finished | killed  # nothing appeared from nowhere
    snap = _run(["snapshot", *fleet.args("--workspace", str(fleet.workspace))])
    assert b"STATE_UNREADABLE" not in snap.stderr


# --- faults short of a kill: the old file stays, no temp file is left ----------------------


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_keeps_the_old_snapshot(
    petrova_inprocess: Petrova, fleet: Fleet, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    output = fleet.root / "fleet.json"
    output.write_bytes(b'{"the": "last good snapshot"}\n')

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, full)
    run = petrova_inprocess("snapshot", *fleet.args(), "-o", str(output))
    assert run.exit_code == 2
    assert "OUTPUT_UNWRITABLE" in run.stderr and "No space left on device" in run.stderr
    assert "Traceback" not in run.stderr
    assert output.read_bytes() == b'{"the": "last good snapshot"}\n'
    assert sorted(p.name for p in fleet.root.iterdir() if p.name.startswith(".fleet")) == [
        ".fleet.json.lock"
    ]
