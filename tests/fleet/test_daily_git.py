"""fleet/daily.py's git steps: recovering from its own crash, refusing a detached HEAD
before committing, naming the real reason a rebase fails, and a hung git as GIT_TIMEOUT."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from petrova.errors import StateNotCommitted
from petrova.fleet import daily
from petrova.fleet.daily import keep_state, run_daily
from tests.conftest import Fleet, Petrova, Spawn
from tests.fleet.test_daily import _plan, _record, control_plane, git

__all__ = ["control_plane"]  # the fixture, shared with tests/fleet/test_daily.py


def _count(repo: Path, ref: str = "HEAD") -> int:
    return int(git(repo, "rev-list", "--count", ref).strip())


def _lock(fleet: Fleet) -> Path:
    return fleet.root / ".git" / "index.lock"


def test_a_stale_index_lock_of_an_interrupted_run_is_removed(
    control_plane: Fleet, petrova: Petrova, tmp_path: Path
) -> None:
    _record(petrova, control_plane)
    _lock(control_plane).write_bytes(b"")
    old = daily.file_clock_now(control_plane.root) - 3600
    os.utime(_lock(control_plane), (old, old))
    said = keep_state(
        _plan(control_plane, commit_state=True, push=True),
        started=daily.file_clock_now(control_plane.root),
    )
    assert "removed a stale index.lock" in said
    assert not _lock(control_plane).exists()
    assert _count(tmp_path / "origin.git", "main") == 2


def test_an_index_lock_younger_than_the_run_is_left_alone(
    control_plane: Fleet, petrova: Petrova
) -> None:
    _record(petrova, control_plane)
    _lock(control_plane).write_bytes(b"")
    with pytest.raises(StateNotCommitted, match="may belong to a git command still running"):
        keep_state(
            _plan(control_plane, commit_state=True),
            started=daily.file_clock_now(control_plane.root) - 3600,
        )
    assert _lock(control_plane).exists()
    assert _count(control_plane.root) == 1


def test_a_run_killed_during_the_state_commit_is_recovered_by_the_next_run(
    control_plane: Fleet, petrova: Petrova, tmp_path: Path, spawn: Spawn
) -> None:
    """SIGKILL while git commits: index.lock and staged ledgers stay behind; the next run
    clears its own lock, commits the staged ledgers and pushes."""
    _record(petrova, control_plane)
    real = shutil.which("git")
    assert real is not None
    bin_dir, mark = tmp_path / "bin", tmp_path / "git-pid"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = commit ]; then\n'
        f'  : > "$({real} rev-parse --git-path index.lock)"\n'
        f'  echo $$ > "{mark}"\n'
        "  exec sleep 120\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    (bin_dir / "git").chmod(0o755)
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from petrova.fleet.daily import DailyPlan, keep_state\n"
        "root = Path(sys.argv[1])\n"
        "keep_state(DailyPlan(registry=root / 'registry.yaml', catalogue=None, "
        "state_dir=root / 'state', workspace=root / 'workspace', output=root / 'f.json', "
        "commit_state=True, push=True))\n"
    )
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = spawn([sys.executable, "-c", script, str(control_plane.root)], env=env)
    try:
        for _ in range(600):
            if mark.exists() and mark.read_text().strip():
                break
            time.sleep(0.05)
        assert _lock(control_plane).exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if mark.exists() and mark.read_text().strip():
            os.kill(int(mark.read_text()), signal.SIGKILL)
    staged = git(control_plane.root, "diff", "--cached", "--name-only").split()
    assert staged == ["state/petrova-codes.yaml"]  # the half-made commit
    said = keep_state(
        _plan(control_plane, commit_state=True, push=True),
        started=daily.file_clock_now(control_plane.root),
    )
    assert "removed a stale index.lock" in said
    assert git(control_plane.root, "diff", "--cached", "--name-only") == ""
    shown = git(tmp_path / "origin.git", "show", "--name-only", "--format=%s", "main").split("\n")
    assert shown[0].startswith("state: probe outcomes of")
    assert "state/petrova-codes.yaml" in shown


def test_a_detached_head_commits_nothing(control_plane: Fleet, petrova: Petrova) -> None:
    git(control_plane.root, "checkout", "-q", "--detach")
    _record(petrova, control_plane)
    before = git(control_plane.root, "rev-parse", "HEAD")
    with pytest.raises(StateNotCommitted, match="detached HEAD, not a branch; nothing was"):
        keep_state(_plan(control_plane, commit_state=True, push=True))
    assert git(control_plane.root, "rev-parse", "HEAD") == before
    assert git(control_plane.root, "diff", "--cached", "--name-only") == ""
    assert (control_plane.state_dir / "petrova-codes.yaml").exists()


def _human_pushes(tmp_path: Path, text: str = "# a PR\n") -> None:
    other = tmp_path / "human"
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(other))
    (other / "registry.yaml").write_text((other / "registry.yaml").read_text() + text)
    git(other, "commit", "-qam", "a human's registry PR")
    git(other, "push", "-q", "origin", "main")


def test_a_rebase_blocked_by_a_local_edit_of_a_file_upstream_changed_says_so(
    control_plane: Fleet, petrova: Petrova, tmp_path: Path
) -> None:
    _human_pushes(tmp_path)  # the PR changes registry.yaml
    registry = control_plane.root / "registry.yaml"
    edited = registry.read_text() + "# an operator's unfinished edit\n"
    registry.write_text(edited)
    _record(petrova, control_plane)
    with pytest.raises(StateNotCommitted) as caught:
        keep_state(_plan(control_plane, commit_state=True, push=True))
    message = caught.value.message
    assert caught.value.code == "STATE_NOT_PUSHED"
    assert "uncommitted changes to tracked files (registry.yaml)" in message
    assert "same ledger" not in message
    assert registry.read_text() == edited
    assert _count(control_plane.root) == 2  # the ledgers' commit stays local


def test_unrelated_local_edits_are_carried_across_the_rebase(
    control_plane: Fleet, petrova: Petrova, tmp_path: Path
) -> None:
    """SPEC §12: a human's uncommitted change the upstream did not touch (say a promotion
    made on the cron host) never stops the bot's push, and is kept as it was."""
    _human_pushes(tmp_path)
    notes = control_plane.root / "README.md"
    notes.write_text("an operator's unfinished edit of a tracked file\n")
    _record(petrova, control_plane)
    keep_state(_plan(control_plane, commit_state=True, push=True))
    assert notes.read_text() == "an operator's unfinished edit of a tracked file\n"
    subjects = git(tmp_path / "origin.git", "log", "--format=%s", "main").splitlines()
    assert (
        subjects[0].startswith("state: probe outcomes") and subjects[1] == "a human's registry PR"
    )


def test_an_interrupted_rebase_of_its_own_is_aborted_and_the_push_goes_through(
    control_plane: Fleet, petrova: Petrova, tmp_path: Path
) -> None:
    _record(petrova, control_plane)
    keep_state(_plan(control_plane, commit_state=True))  # committed, not pushed
    _human_pushes(tmp_path, "# one\n")
    # what a daily killed during `git pull --rebase` leaves: a rebase stopped mid-way
    git(control_plane.root, "fetch", "-q", "origin")
    with pytest.raises(subprocess.CalledProcessError):
        git(control_plane.root, "rebase", "-q", "--exec", "false", "origin/main")
    assert (control_plane.root / ".git" / "rebase-merge").is_dir()
    old = daily.file_clock_now(control_plane.root) - 3600
    for path in (control_plane.root / ".git" / "rebase-merge").rglob("*"):
        os.utime(path, (old, old))
    os.utime(control_plane.root / ".git" / "rebase-merge", (old, old))
    said = keep_state(
        _plan(control_plane, commit_state=True, push=True),
        started=daily.file_clock_now(control_plane.root),
    )
    assert "aborted a rebase left by an interrupted run" in said
    assert not (control_plane.root / ".git" / "rebase-merge").exists()
    subjects = git(tmp_path / "origin.git", "log", "--format=%s", "main").splitlines()
    assert subjects[0].startswith("state: probe outcomes")
    assert subjects[1:] == ["a human's registry PR", "fleet"]


def test_a_hung_push_is_git_timeout_in_the_report(
    control_plane: Fleet, petrova: Petrova, monkeypatch: pytest.MonkeyPatch
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    git(
        control_plane.root,
        "remote",
        "set-url",
        "origin",
        f"http://127.0.0.1:{silent.getsockname()[1]}/o.git",
    )
    monkeypatch.setattr(daily, "GIT_TIMEOUT", 1.0)
    _record(petrova, control_plane)
    report = run_daily(
        _plan(control_plane, commit_state=True, push=True, self_update=False),
        runner=lambda argv, cwd: (0, ""),
    )
    silent.close()
    kept = report.results[-1]
    assert kept.name == "push state" and not kept.ok  # a failed push warns (SPEC §12)
    assert "GIT_TIMEOUT" in kept.said
    assert "git push did not finish within 1s" in kept.said
    assert [r.name for r in report.warned] == ["push pending", "push state"]
    assert report.failed == []
    assert _count(control_plane.root) == 2  # committed, kept for the next run
