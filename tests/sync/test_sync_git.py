"""``petrova sync`` as a process: the token, timeouts, SIGKILL, and ``--self``."""

from __future__ import annotations

import base64
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from petrova.net.git import Git
from petrova.sync.workspace import read_manifest
from tests.conftest import FIXTURE_FLEET, PETROVA_BIN, Fleet, Petrova, Spawn, _clean_env
from tests.ingest_server import HANG, Answer, IngestServer, Seen, Servers
from tests.sync.test_sync import KAHN, files_in, keep_only
from tests.syncfleet import Remotes, contract_text, git, isolated_git_env

TOKEN = "tok-7d1f0c2a9b4e-never-shown"


def processes() -> Iterator[tuple[int, bytes, bytes]]:
    """(pid, cmdline, environ) of every process of ours that can be read."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        yield int(entry.name), cmdline, environ


def wait_until_gone(marker: str) -> None:
    """Wait for every process whose command line names ``marker`` to end (git children a
    killed petrova left behind finish their command on their own)."""
    for _ in range(600):
        if not any(marker.encode() in cmd for _, cmd, _ in processes()):
            return
        time.sleep(0.05)


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1 and a server context that uses it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return cert, context


def https_server(ingest: Servers, context: ssl.SSLContext) -> IngestServer:
    """A git host that asks for credentials and, once given some, never answers."""

    def behaviour(server: IngestServer, seen: Seen) -> Answer | str:
        if "Authorization" not in seen.headers:
            return Answer(401, headers={"WWW-Authenticate": 'Basic realm="git"'})
        return HANG

    server = ingest(behaviour)
    inner = server._server
    inner.socket = context.wrap_socket(inner.socket, server_side=True)
    return server


def _sync_against(
    spawn: Spawn, fleet: Fleet, server: IngestServer, cert: Path, url: str, extra: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int, bytes, bytes]:
    """Sync one repo at ``url`` (the fake git host behind it); returns the process, how
    many git processes were seen with a credential helper, and what petrova said."""
    keep_only(fleet, {"kahn-hq"})
    fleet.registry.write_text(fleet.registry.read_text().replace(KAHN, url))
    env = isolated_git_env({"GIT_SSL_CAINFO": str(cert), "GITHUB_TOKEN": TOKEN, **extra})
    proc = spawn(
        [str(PETROVA_BIN), "sync", *fleet.args("--workspace", str(fleet.workspace))],
        env=_clean_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen_git = 0
    try:
        for _ in range(600):  # until git has come back with credentials, or given up
            if server.count() >= 2 or proc.poll() is not None:
                break
            time.sleep(0.05)
        for _ in range(20):
            for _pid, cmdline, environ in processes():
                assert TOKEN.encode() not in cmdline
                if b"git" in cmdline and b".helper" in environ and b"credential." in environ:
                    seen_git += 1
            time.sleep(0.01)
    finally:
        server.release.set()
        out, err = proc.communicate(timeout=120)
    return proc, seen_git, out, err


def _authorized(server: IngestServer) -> list[str]:
    return [s.headers["Authorization"] for s in server.requests if "Authorization" in s.headers]


def test_the_token_reaches_a_trusted_host_and_no_command_line_or_file(
    fleet: Fleet,
    ingest: Servers,
    tls: tuple[Path, ssl.SSLContext],
    tmp_path: Path,
    spawn: Spawn,
) -> None:
    cert, context = tls
    server = https_server(ingest, context)
    url = f"https://127.0.0.1:{server.port}/kahn-hq/kahn"
    trust = {"PETROVA_TRUSTED_GIT_HOSTS": f"github.com, 127.0.0.1:{server.port}"}
    proc, seen_git, out, err = _sync_against(spawn, fleet, server, cert, url, trust)
    assert seen_git > 0, err
    authorized = _authorized(server)
    assert authorized, err
    assert base64.b64decode(authorized[0].split()[1]).decode() == f"x-access-token:{TOKEN}"
    assert proc.returncode == 1
    assert TOKEN.encode() not in out + err
    assert b"SYNC_FAILED: kahn-hq: " in err
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    "variant",
    [
        "host the registry names",  # any https host a registry PR adds
        "evil host rewritten by insteadOf",  # github.com.evil.example, routed to the fake
        "trusted name rewritten to an untrusted host",  # github.com -> the fake by insteadOf
        "trusted host on another port",  # the entry names a port; the url another
    ],
)
def test_the_token_never_reaches_a_host_the_operator_did_not_trust(
    fleet: Fleet,
    ingest: Servers,
    tls: tuple[Path, ssl.SSLContext],
    variant: str,
    spawn: Spawn,
) -> None:
    cert, context = tls
    server = https_server(ingest, context)
    fake = f"https://127.0.0.1:{server.port}/"
    extra: dict[str, str] = {}
    if variant == "host the registry names":
        url = f"{fake}kahn-hq/kahn"
    elif variant == "evil host rewritten by insteadOf":
        url = "https://github.com.evil.example/kahn-hq/kahn"
        extra = {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"url.{fake}.insteadOf",
            "GIT_CONFIG_VALUE_0": "https://github.com.evil.example/",
            # even with the fake's own address trusted: the registry named another host
            "PETROVA_TRUSTED_GIT_HOSTS": f"127.0.0.1:{server.port}",
        }
    elif variant == "trusted name rewritten to an untrusted host":
        url = KAHN
        extra = {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"url.{fake}.insteadOf",
            "GIT_CONFIG_VALUE_0": "https://github.com/",
        }
    else:
        url = f"{fake}kahn-hq/kahn"
        extra = {"PETROVA_TRUSTED_GIT_HOSTS": f"127.0.0.1:{server.port + 1}"}
    proc, _seen, out, err = _sync_against(spawn, fleet, server, cert, url, extra)
    assert server.count() >= 1, err  # git did reach the fake host and was asked to log in
    assert _authorized(server) == [], "the token went to a host the operator did not trust"
    assert proc.returncode == 1
    assert TOKEN.encode() not in out + err
    assert b"SYNC_AUTH_FAILED: kahn-hq" in err
    if variant != "trusted name rewritten to an untrusted host":
        assert b"the token is not given to this host" in err


def test_the_token_is_offered_only_to_trusted_hosts_over_https(tmp_path: Path) -> None:
    git_env = Git(
        token_env="MY_TOKEN",
        environ={
            **os.environ,
            **isolated_git_env(),
            "MY_TOKEN": TOKEN,
            "PETROVA_TRUSTED_GIT_HOSTS": "git.example:8443",
        },
    )

    def fill(url: str, asked: str) -> str:
        env = git_env.env_for(url)
        return subprocess.run(
            ["git", "credential", "fill"],
            input=asked,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            start_new_session=True,
        ).stdout

    url = "https://git.example:8443/org/repo"
    assert f"password={TOKEN}" in fill(url, "protocol=https\nhost=git.example:8443\n\n")
    assert "password" not in fill(url, "protocol=https\nhost=evil.example\n\n")
    assert "password" not in fill(
        "http://git.example/org/repo", "protocol=http\nhost=git.example\n\n"
    )
    # a repo on a host nobody trusted gets no helper at all, whatever git later asks
    assert "password" not in fill(
        "https://git.example.evil/org/repo", "protocol=https\nhost=git.example:8443\n\n"
    )
    assert "password" not in fill(
        "https://github.com.evil.example/o/r", "protocol=https\nhost=github.com\n\n"
    )
    env = git_env.env_for(url)
    assert TOKEN not in "".join(env[k] for k in env if k.startswith("GIT_CONFIG_"))


def test_a_git_command_that_hangs_is_killed_at_the_timeout(
    petrova_inprocess: Petrova, fleet: Fleet
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    keep_only(fleet, {"kahn-hq"})
    fleet.registry.write_text(
        fleet.registry.read_text().replace(KAHN, f"https://127.0.0.1:{port}/kahn-hq/kahn")
    )
    try:
        run = petrova_inprocess(
            "sync",
            *fleet.args("--workspace", str(fleet.workspace), "--timeout", "1"),
            env=isolated_git_env(),
        )
    finally:
        silent.close()
    assert run.exit_code == 1
    assert (
        f"SYNC_FAILED: kahn-hq: https://127.0.0.1:{port}/kahn-hq/kahn: git timed out after 1s"
        in run.stderr
    )
    assert not (fleet.workspace / "kahn-hq").exists()
    wait_until_gone(str(fleet.workspace))


def many_repos(fleet: Fleet, remotes: Remotes, count: int) -> list[str]:
    """A registry of ``count`` repos, each with a contract."""
    lines = [
        "schema_version: 1",
        "repos:",
    ]
    slugs = []
    for n in range(count):
        slug = f"repo-{n:03d}"
        url = f"https://github.com/fleet/{slug}"
        slugs.append(slug)
        lines += [
            f"  - slug: {slug}",
            f"    url: {url}",
            "    role: production",
            "    tier: 2",
        ]
        remotes.publish(url, {".petrova/contract.yaml": contract_text(slug), "README": slug})
    fleet.registry.write_text("\n".join(lines) + "\n")
    return slugs


def assert_in_step(fleet: Fleet, remotes: Remotes, slugs: list[str]) -> None:
    records = read_manifest(fleet.workspace)
    for slug in slugs:
        bare = remotes.bare(f"https://github.com/fleet/{slug}")
        clone = fleet.workspace / slug
        assert records[slug].status == "ok"
        assert records[slug].commit == git(bare, "rev-parse", "main").strip()
        assert git(clone, "rev-parse", "HEAD") == git(bare, "rev-parse", "main")
        assert git(clone, "status", "--porcelain") == ""
        assert files_in(clone) == {".petrova/contract.yaml"}
        shown = git(bare, "show", "main:.petrova/contract.yaml")
        assert (clone / ".petrova/contract.yaml").read_text() == shown
    leftovers = [p for p in (fleet.workspace / ".petrova-sync.d").iterdir() if p.is_dir()]
    assert leftovers == []


@pytest.mark.parametrize("phase", ["cold", "update"])
def test_a_sync_killed_midway_is_repaired_by_the_next(
    fleet: Fleet, tmp_path: Path, phase: str, spawn: Spawn
) -> None:
    remotes = Remotes(tmp_path / "git")
    slugs = many_repos(fleet, remotes, 12)
    args = [str(PETROVA_BIN), "sync", *fleet.args("--workspace", str(fleet.workspace))]
    env = _clean_env(remotes.env())
    if phase == "update":
        assert subprocess.run(args, env=env, check=False).returncode == 0
        for n, slug in enumerate(slugs):
            remotes.publish(
                f"https://github.com/fleet/{slug}",
                {".petrova/contract.yaml": contract_text(slug, f"docs/v{n}.md")},
            )
    proc = spawn([*args, "--jobs", "2"], env=env)
    scratch = fleet.workspace / ".petrova-sync.d"
    for _ in range(2000):  # kill it while some repos are done and others are not
        busy = scratch.is_dir() and any(p.suffix == ".tmp" for p in scratch.iterdir())
        if phase == "cold" and busy and any(fleet.workspace.glob("repo-*")):
            break
        if phase == "update" and any(
            "docs/v" in (fleet.workspace / s / ".petrova/contract.yaml").read_text() for s in slugs
        ):
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    wait_until_gone(str(fleet.workspace))
    behind = [
        s
        for s in slugs
        if not (fleet.workspace / s / ".git").is_dir()
        or git(fleet.workspace / s, "rev-parse", "HEAD")
        != git(remotes.bare(f"https://github.com/fleet/{s}"), "rev-parse", "main")
    ]
    assert behind, "the kill came after the run had finished"
    again = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    assert (again.returncode, again.stderr) == (0, "")
    assert_in_step(fleet, remotes, slugs)


# --- sync --self: the control-plane checkout --------------------------------------------


@pytest.fixture
def control_plane(tmp_path: Path) -> tuple[Path, Path]:
    """A bare 'origin' of the control-plane repo and a checkout of it (the cron host's)."""
    work = tmp_path / "cp-work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "registry.yaml").write_text((FIXTURE_FLEET / "registry.yaml").read_text())
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "registry")
    origin = tmp_path / "cp-origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(origin))
    checkout = tmp_path / "cp-checkout"
    git(tmp_path, "clone", "-q", str(origin), str(checkout))
    git(work, "remote", "add", "origin", str(origin))
    return work, checkout


def merge_upstream(work: Path, text: str) -> str:
    (work / "registry.yaml").write_text(text)
    git(work, "commit", "-q", "-am", "a merged registry PR")
    git(work, "push", "-q", "origin", "main")
    return git(work, "rev-parse", "HEAD").strip()


def self_sync(petrova: Petrova, checkout: Path, *extra: str):  # type: ignore[no-untyped-def]
    return petrova(
        "sync", "--self", "--registry", str(checkout / "registry.yaml"), *extra,
        env=isolated_git_env(),
    )  # fmt: skip


def test_self_pulls_a_merged_registry_change(
    petrova_inprocess: Petrova, control_plane: tuple[Path, Path]
) -> None:
    work, checkout = control_plane
    changed = (work / "registry.yaml").read_text() + "# merged\n"
    head = merge_upstream(work, changed)
    run = self_sync(petrova_inprocess, checkout)
    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")
    assert (checkout / "registry.yaml").read_text() == changed
    assert git(checkout, "rev-parse", "HEAD").strip() == head
    again = self_sync(petrova_inprocess, checkout, "--json")
    assert again.exit_code == 0
    assert '"before":"' + head in again.stdout


def test_self_refuses_local_changes(
    petrova_inprocess: Petrova, control_plane: tuple[Path, Path]
) -> None:
    work, checkout = control_plane
    merge_upstream(work, (work / "registry.yaml").read_text() + "# merged\n")
    local = (checkout / "registry.yaml").read_text() + "# mine\n"
    (checkout / "registry.yaml").write_text(local)
    before = git(checkout, "rev-parse", "HEAD")
    run = self_sync(petrova_inprocess, checkout)
    assert run.exit_code == 1
    assert "SYNC_SELF_REFUSED" in run.stderr
    assert "has local changes to files the update would change (registry.yaml)" in run.stderr
    assert (checkout / "registry.yaml").read_text() == local
    assert git(checkout, "rev-parse", "HEAD") == before


def test_self_is_not_stopped_by_a_humans_promotion_or_the_bots_ledgers(
    petrova_inprocess: Petrova, control_plane: tuple[Path, Path]
) -> None:
    """SPEC §12: a promotion made on the cron host (an untracked file in
    state/promotions/) and uncommitted tracked files the update does not touch are
    left as they are, and the merged registry PR still arrives."""
    work, checkout = control_plane
    (work / "notes.md").write_text("tracked\n")
    git(work, "add", "notes.md")
    git(work, "commit", "-q", "-m", "notes")
    git(work, "push", "-q", "origin", "main")
    assert self_sync(petrova_inprocess, checkout).exit_code == 0
    changed = (work / "registry.yaml").read_text() + "# merged\n"
    head = merge_upstream(work, changed)
    promotion = checkout / "state" / "promotions" / "kahn-hq.yaml"
    promotion.parent.mkdir(parents=True)
    promotion.write_text("a human's promotion, not committed yet\n")
    (checkout / "notes.md").write_text("changed here, untouched upstream\n")
    run = self_sync(petrova_inprocess, checkout)
    assert (run.exit_code, run.stderr) == (0, "")
    assert git(checkout, "rev-parse", "HEAD").strip() == head
    assert (checkout / "registry.yaml").read_text() == changed
    assert promotion.read_text() == "a human's promotion, not committed yet\n"
    assert (checkout / "notes.md").read_text() == "changed here, untouched upstream\n"


def test_self_refuses_a_diverged_checkout(
    petrova_inprocess: Petrova, control_plane: tuple[Path, Path]
) -> None:
    work, checkout = control_plane
    merge_upstream(work, (work / "registry.yaml").read_text() + "# merged\n")
    (checkout / "notes.md").write_text("a local commit\n")
    git(checkout, "add", "notes.md")
    git(checkout, "commit", "-q", "-m", "local")
    before = git(checkout, "rev-parse", "HEAD")
    run = self_sync(petrova_inprocess, checkout)
    assert run.exit_code == 1
    assert "diverged from its upstream" in run.stderr
    assert git(checkout, "rev-parse", "HEAD") == before
    assert git(checkout, "rev-list", "--merges", "HEAD") == ""


def test_self_outside_a_checkout(petrova_inprocess: Petrova, fleet: Fleet) -> None:
    run = petrova_inprocess(
        "sync", "--self", *fleet.args(),
        env={**isolated_git_env(), "GIT_CEILING_DIRECTORIES": str(fleet.root.parent)},
    )  # fmt: skip
    assert run.exit_code == 1
    assert "is not in a git checkout" in run.stderr


def test_jobs_bound_the_git_commands_running_at_once(fleet: Fleet, tmp_path: Path) -> None:
    """A ``git`` early on PATH notes how many of its kind run when it starts."""
    remotes = Remotes(tmp_path / "git")
    many_repos(fleet, remotes, 8)
    tally = tmp_path / "tally"
    (tally / "running").mkdir(parents=True)
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True)
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        f'mark=$(mktemp -p "{tally}/running")\n'
        f'ls "{tally}/running" | wc -l >> "{tally}/counts"\n'
        "sleep 0.2\n"
        f'{real.stdout.strip()} "$@"; status=$?\n'
        'rm -f "$mark"\n'
        "exit $status\n"
    )
    wrapper.chmod(0o755)
    env = _clean_env({**remotes.env(), "PATH": f"{wrapper.parent}:{os.environ['PATH']}"})
    run = subprocess.run(
        [str(PETROVA_BIN), "sync", *fleet.args("--workspace", str(fleet.workspace), "--jobs", "2")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (run.returncode, run.stderr) == (0, "")
    counts = [int(n) for n in (tally / "counts").read_text().split()]
    assert len(counts) >= 8 * 2  # a clone and a checkout each, at least
    assert max(counts) == 2
