"""The daily job: its steps' policies, and the ledgers kept in the control-plane repo."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from petrova.errors import StateNotCommitted, StateNotPushed
from petrova.fleet.daily import (
    BOT_NAME,
    DailyPlan,
    keep_state,
    push_state,
    run_daily,
    step_commands,
)
from tests.conftest import Fleet, MachineClock, Petrova

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        **GIT_ENV,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def control_plane(fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    """The fleet as a git checkout of a bare 'origin', as a cron host or a runner has it."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key, raising=False)
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(fleet.root, "init", "-q", "-b", "main")
    git(fleet.root, "add", "-A")
    git(fleet.root, "commit", "-q", "-m", "fleet")
    git(fleet.root, "remote", "add", "origin", str(origin))
    git(fleet.root, "push", "-q", "origin", "main")
    return fleet


def _plan(fleet: Fleet, **kw: object) -> DailyPlan:
    base: dict[str, object] = {
        "registry": fleet.registry,
        "catalogue": None,
        "state_dir": fleet.state_dir,
        "workspace": fleet.workspace,
        "output": fleet.root / "fleet.json",
    }
    base.update(kw)
    return DailyPlan(**base)  # type: ignore[arg-type]


def _record(petrova: Petrova, fleet: Fleet, outcome: str = "not_applicable") -> None:
    run = petrova("state", "record", "petrova-codes", "ares", outcome, *fleet.args())
    assert run.exit_code == 0, run.stderr


def test_ledgers_are_committed_as_the_bot_and_pushed(
    control_plane: Fleet, petrova: Petrova, tmp_path: Path
) -> None:
    _record(petrova, control_plane)
    (control_plane.root / "notes.txt").write_text("an operator's scratch file\n")
    assert keep_state(_plan(control_plane, commit_state=True, push=True)) == ""
    push_state(_plan(control_plane, commit_state=True, push=True))
    origin = tmp_path / "origin.git"
    log = git(origin, "log", "-1", "--format=%an|%s", "main")
    assert log.startswith(f"{BOT_NAME}|state: probe outcomes of 2026-11-26T07:00:00Z")
    shown = git(origin, "show", "--name-only", "--format=", "main").split()
    assert shown == ["state/petrova-codes.yaml"]  # nothing but the ledgers
    assert "?? notes.txt" in git(control_plane.root, "status", "--porcelain")
    # nothing new: no empty commit
    assert keep_state(_plan(control_plane, commit_state=True, push=True)) == ""
    assert git(origin, "rev-list", "--count", "main").strip() == "2"


def test_a_push_overtaken_by_a_human_pr_is_rebased_and_retried(
    control_plane: Fleet, petrova: Petrova, tmp_path: Path
) -> None:
    other = tmp_path / "human"
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(other))
    (other / "registry.yaml").write_text((other / "registry.yaml").read_text() + "# a PR\n")
    git(other, "commit", "-qam", "a human's registry PR")
    git(other, "push", "-q", "origin", "main")
    _record(petrova, control_plane)
    keep_state(_plan(control_plane, commit_state=True, push=True))
    push_state(_plan(control_plane, commit_state=True, push=True))
    subjects = git(tmp_path / "origin.git", "log", "--format=%s", "main").splitlines()
    assert subjects[:2] == [subjects[0], "a human's registry PR"]
    assert subjects[0].startswith("state: probe outcomes")


def test_a_conflicting_ledger_edit_keeps_the_commit_local_and_says_so(
    control_plane: Fleet, petrova: Petrova, tmp_path: Path, machine_clock: MachineClock
) -> None:
    _record(petrova, control_plane)
    keep_state(_plan(control_plane, commit_state=True, push=True))
    push_state(_plan(control_plane, commit_state=True, push=True))
    other = tmp_path / "human"
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(other))
    ledger = other / "state" / "petrova-codes.yaml"
    text = ledger.read_text()
    ledger.write_text(text.replace('"seal": "', '"seal": "0', 1))
    git(other, "commit", "-qam", "a hand edit of the same ledger")
    git(other, "push", "-q", "origin", "main")
    machine_clock("2026-11-26T08:00:00Z")  # an hour later, on every clock
    run = petrova(
        "state",
        "record",
        "petrova-codes",
        "ares",
        "not_applicable",
        "--now",
        "2026-11-26T08:00:00Z",
        *control_plane.args(),
    )
    assert run.exit_code == 0, run.stderr
    keep_state(_plan(control_plane, commit_state=True))
    with pytest.raises(StateNotPushed, match="could not be rebased"):
        push_state(_plan(control_plane, commit_state=True, push=True))
    assert git(control_plane.root, "status", "--porcelain", "--untracked-files=no") == ""


def test_a_state_dir_outside_the_checkout_is_refused(control_plane: Fleet, tmp_path: Path) -> None:
    with pytest.raises(StateNotCommitted, match="outside the control-plane checkout"):
        keep_state(_plan(control_plane, state_dir=tmp_path / "elsewhere", commit_state=True))


def test_steps_never_carry_a_token_and_follow_the_policy(control_plane: Fleet) -> None:
    plan = _plan(control_plane, publish="https://ingest.example/x", token_env="INGEST")
    names = [name for name, _ in step_commands(plan)]
    assert names == ["refresh", "sync", "probe", "snapshot", "notify"]
    for _, argv in step_commands(plan):
        assert all("secret" not in a for a in argv)
    said: list[str] = []

    def runner(argv: list[str], cwd: Path) -> tuple[int, str]:
        said.append(argv[3])
        return (
            (1, "sync: 1 repo failed\n") if argv[3] == "sync" and "--self" not in argv else (0, "")
        )

    report = run_daily(plan, runner=runner)  # type: ignore[arg-type]
    assert [r.name for r in report.warned] == ["sync"] and report.failed == []
    assert said == ["sync", "sync", "probe", "snapshot", "notify"]  # the snapshot still ran
    # the run left its record: every step and its outcome, and that it finished
    record = json.loads((control_plane.state_dir / "runs" / "daily.json").read_bytes())
    [run] = record["runs"]
    assert run["finished_at"] is not None
    assert [(s["name"], s["outcome"]) for s in run["steps"]] == [
        ("refresh", "ok"),
        ("sync", "warned"),
        ("probe", "ok"),
        ("snapshot", "ok"),
        ("notify", "ok"),
    ]


def test_no_ledger_yet_is_nothing_to_commit(control_plane: Fleet, tmp_path: Path) -> None:
    assert keep_state(_plan(control_plane, commit_state=True, push=True)) == ""
    assert git(tmp_path / "origin.git", "rev-list", "--count", "main").strip() == "1"


def test_a_protected_main_keeps_the_state_on_its_own_branch(
    control_plane: Fleet, petrova: Petrova, tmp_path: Path
) -> None:
    """--push-branch: the forge refuses pushes to main; the bot's state goes to its own
    branch, main (local and origin) never carries a bot commit, so the refresh always
    fast-forwards, and a fresh checkout restores the ledgers from that branch."""
    origin = tmp_path / "origin.git"
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\nwhile read old new ref; do\n"
        '  [ "$ref" = refs/heads/main ] && { echo "main is protected" >&2; exit 1; }\n'
        "done\nexit 0\n"
    )
    hook.chmod(0o755)
    head = git(control_plane.root, "rev-parse", "HEAD")
    plan = _plan(control_plane, commit_state=True, push=True, push_branch="petrova/state")
    _record(petrova, control_plane)
    keep_state(plan)
    push_state(plan)
    _record(petrova, control_plane, "ok")
    keep_state(plan)
    push_state(plan)
    assert git(control_plane.root, "rev-parse", "HEAD") == head  # main untouched
    assert git(control_plane.root, "status", "--porcelain", "--", "registry.yaml") == ""
    log = git(origin, "log", "--format=%an|%s", "petrova/state").splitlines()
    assert len(log) == 2 and all(line.startswith(f"{BOT_NAME}|state: ") for line in log)
    files = git(origin, "ls-tree", "-r", "--name-only", "petrova/state").split()
    assert files == ["state/petrova-codes.yaml"]
    # The snapshot job on a fresh checkout of main reads the state from its branch.
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(origin), str(fresh))
    git(fresh, "fetch", "-q", "origin", "petrova/state")
    git(fresh, "restore", "--source=FETCH_HEAD", "--worktree", "--", "state/")
    assert (fresh / "state" / "petrova-codes.yaml").read_bytes() == (
        control_plane.state_dir / "petrova-codes.yaml"
    ).read_bytes()
    # Without --push-branch the same push is refused: a warning, the commit kept.
    plain = _plan(control_plane, commit_state=True, push=True)
    keep_state(_plan(control_plane, commit_state=True))
    with pytest.raises(StateNotPushed, match="--push-branch"):
        push_state(plain)
    assert git(control_plane.root, "rev-list", "--count", "origin/main..main").strip() == "1"
