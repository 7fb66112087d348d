"""petrova/net/git.py: the one git runner (timeouts, a cleaned environment, no prompts,
its own process group killed on timeout, stable error codes), with the real git."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from petrova.errors import GitFailed, GitMissing, GitTimeout
from petrova.migrate.merged import read_merged
from petrova.net.git import Git
from tests.conftest import Fleet, Petrova
from tests.syncfleet import git, isolated_git_env


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **isolated_git_env(), **extra}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "a.txt").write_text("a\n")
    git(path, "add", "a.txt")
    git(path, "commit", "-q", "-m", "first")
    return path


def test_a_hung_git_is_killed_with_its_helpers_and_is_a_coded_error(tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    runner = Git(timeout=1, environ=_env())
    started = time.monotonic()
    result = runner.run(["ls-remote", f"http://127.0.0.1:{port}/x/y"], cwd=tmp_path)
    assert time.monotonic() - started < 30  # not the 300 s default
    silent.close()
    assert result.timed_out and not result.ok
    assert result.reason() == "timed out"
    with pytest.raises(GitTimeout) as caught:
        result.check(str(tmp_path))
    assert caught.value.code == "GIT_TIMEOUT"
    assert "git ls-remote did not finish within 1s" in caught.value.message
    # the killed group left no git behind
    leftovers = [
        p
        for p in Path("/proc").iterdir()
        if p.name.isdigit()
        and f"127.0.0.1:{port}".encode() in _read(p / "cmdline")
        and int(p.name) != os.getpid()
    ]
    assert leftovers == []


def test_git_interrupted_mid_run_is_killed_and_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while git runs: git, in its own session, never got the terminal's signal;
    petrova kills its group and waits for it before the interrupt goes on."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    seen: list[subprocess.Popen[bytes]] = []
    held: list[socket.socket] = []  # the connection stays open: git cannot give up itself
    real = subprocess.Popen.communicate

    def interrupted(
        self: subprocess.Popen[bytes], *args: object, **kwargs: object
    ) -> tuple[bytes, bytes]:
        if not seen:  # git's first wait: once it has connected, the operator presses Ctrl-C
            seen.append(self)
            held.append(silent.accept()[0])
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(subprocess.Popen, "communicate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Git(timeout=300, environ=_env()).run(["ls-remote", f"http://127.0.0.1:{port}/x/y"])
    assert seen and seen[0].returncode == -signal.SIGKILL  # killed, and waited for
    for sock in (*held, silent):
        sock.close()
    leftovers = [
        p
        for p in Path("/proc").iterdir()
        if p.name.isdigit()
        and f"127.0.0.1:{port}".encode() in _read(p / "cmdline")
        and int(p.name) != os.getpid()
    ]
    assert leftovers == []


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_the_environment_cannot_point_git_elsewhere(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    runner = Git(environ=_env(GIT_DIR=str(other / ".git"), GIT_WORK_TREE=str(other)))
    result = runner.run(["log", "--format=%s"], cwd=repo).check()
    assert result.stdout.strip() == "first"  # the repo petrova named, not GIT_DIR's


def test_git_never_prompts(tmp_path: Path) -> None:
    runner = Git(timeout=30, environ=_env())
    # a host that asks for a password: git must fail at once, not wait for a terminal
    result = runner.run(["ls-remote", "https://user@127.0.0.1:1/x"], cwd=tmp_path)
    assert not result.ok and not result.timed_out
    assert runner.base_env["GIT_TERMINAL_PROMPT"] == "0"
    assert runner.base_env["GIT_ASKPASS"] == ""


def test_a_failure_is_git_failed_with_git_reason(repo: Path) -> None:
    with pytest.raises(GitFailed) as caught:
        Git(environ=_env()).run(["rev-parse", "--verify", "no-such-ref"], cwd=repo).check()
    assert caught.value.code == "GIT_FAILED"
    assert "git rev-parse failed" in caught.value.message


def test_no_git_on_path_is_a_coded_error(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "nowhere"))
    with pytest.raises(GitMissing) as caught:
        Git().run(["status"], cwd=repo)
    assert caught.value.code == "GIT_NOT_FOUND"


def test_pins_merged_check_says_git_timeout_not_a_crash(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A git that hangs (here: a wrapper that sleeps) is GIT_TIMEOUT from pin's merged check."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text("#!/bin/sh\nexec sleep 30\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr("petrova.migrate.merged._TIMEOUT", 0.5)
    with pytest.raises(GitTimeout):
        read_merged(repo, default_branch="main", head_is_default=True, how="--repo")


def test_a_hung_git_in_registry_pin_is_exit_1_with_a_code_not_70(
    petrova_inprocess: Petrova,
    fleet: Fleet,
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text("#!/bin/sh\nexec sleep 30\n")
    (bin_dir / "git").chmod(0o755)
    monkeypatch.setattr("petrova.migrate.merged._TIMEOUT", 0.5)
    slug = "kahn-hq"
    run = petrova_inprocess(
        "registry", "pin", slug, "--repo", str(repo), *fleet.args(),
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert run.exit_code == 1, run.stderr
    assert "GIT_TIMEOUT" in run.stderr
    assert "did not finish within 0.5s" in run.stderr
    assert "INTERNAL_ERROR" not in run.stderr
