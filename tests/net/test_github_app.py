"""GitHub App authentication: a JWT signed with the App's key, an installation token kept
in memory, used by git (sync) and by the API (probe), and the errors a person can fix."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from petrova.errors import (
    GitHubAppAuthFailed,
    GitHubAppConfigInvalid,
    GitHubAppInstallationMissing,
)
from petrova.files.disk import sha12
from petrova.net.github_app import (
    REFRESH_MARGIN,
    CredentialEnviron,
    GitHubApp,
    app_settings,
    forget_apps,
    github_credential,
    make_jwt,
    registry_organisation,
)
from petrova.sync.workspace import read_manifest
from tests.conftest import PETROVA_BIN, Fleet, Petrova, _clean_env
from tests.fake_github import FakeApp, FakeGitHub
from tests.fake_services import make_certificate
from tests.git_http_server import GitHttpServer
from tests.probe.test_probe import World
from tests.sync.test_sync import KAHN, VTM, keep_only, probe_catalogue
from tests.syncfleet import Remotes, contract_text, isolated_git_env

APP_ID = "31337"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(private: Any) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def github(key: rsa.RSAPrivateKey) -> Iterator[FakeGitHub]:
    forget_apps()
    fake = FakeGitHub(app=FakeApp(APP_ID, key.public_key()))
    try:
        yield fake
    finally:
        fake.close()
        forget_apps()


def app_env(github: FakeGitHub, key: Any, **extra: str) -> dict[str, str]:
    return {
        "PETROVA_GITHUB_APP_ID": APP_ID,
        "PETROVA_GITHUB_APP_PRIVATE_KEY": pem(key),
        "GITHUB_API_URL": github.url,
        **extra,
    }


def token_posts(github: FakeGitHub) -> list[Any]:
    return [r for r in github.requests if r.path.endswith("/access_tokens")]


# --- the settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"PETROVA_GITHUB_APP_ID": "my-app"}, "PETROVA_GITHUB_APP_ID: is not a GitHub App id"),
        ({"PETROVA_GITHUB_APP_ID": "1"}, "the App's private key is not: set"),
        (
            {"PETROVA_GITHUB_APP_ID": "1", "PETROVA_GITHUB_APP_PRIVATE_KEY": "-----BEGIN nonsense"},
            "PETROVA_GITHUB_APP_PRIVATE_KEY: is not a GitHub App private key",
        ),
        (
            {"PETROVA_GITHUB_APP_ID": "1", "PETROVA_GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent/k"},
            "/nonexistent/k: PETROVA_GITHUB_APP_PRIVATE_KEY_FILE: cannot read",
        ),
        (
            {
                "PETROVA_GITHUB_APP_ID": "1",
                "PETROVA_GITHUB_APP_PRIVATE_KEY": "x",
                "PETROVA_GITHUB_APP_INSTALLATION_ID": "the-org",
            },
            "PETROVA_GITHUB_APP_INSTALLATION_ID: is not an installation id",
        ),
    ],
)
def test_bad_settings_are_named_without_their_values(env: dict[str, str], words: str) -> None:
    with pytest.raises(GitHubAppConfigInvalid) as caught:
        app_settings(env)
    assert words in caught.value.render()
    assert caught.value.render().startswith("GITHUB_APP_CONFIG_INVALID: ")
    assert "nonsense" not in caught.value.render()


def test_a_key_that_is_not_rsa_is_refused(tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    text = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "app.pem"
    path.write_bytes(text)
    env = {"PETROVA_GITHUB_APP_ID": "1", "PETROVA_GITHUB_APP_PRIVATE_KEY_FILE": str(path)}
    with pytest.raises(GitHubAppConfigInvalid, match="not an RSA one"):
        app_settings(env)


def test_a_key_from_a_file_or_pasted_on_one_line(key: Any, tmp_path: Path) -> None:
    path = tmp_path / "app.pem"
    path.write_text(pem(key))
    from_file = app_settings(
        {"PETROVA_GITHUB_APP_ID": "7", "PETROVA_GITHUB_APP_PRIVATE_KEY_FILE": str(path)}
    )
    one_line = app_settings(
        {
            "PETROVA_GITHUB_APP_ID": "7",
            "PETROVA_GITHUB_APP_PRIVATE_KEY": pem(key).replace("\n", "\\n"),
        }
    )
    assert from_file is not None and one_line is not None
    assert from_file.key.private_numbers() == key.private_numbers()
    assert one_line.key.private_numbers() == key.private_numbers()
    assert app_settings({"GITHUB_TOKEN": "x"}) is None


def test_the_jwt_is_rs256_backdated_and_short(key: Any) -> None:
    now = 1_800_000_000.0
    token = make_jwt(APP_ID, key, now).reveal()
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(
        token,
        key.public_key(),
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == APP_ID
    assert claims["iat"] == now - 60
    assert claims["exp"] > now
    assert claims["exp"] - claims["iat"] < 600
    with pytest.raises(jwt.InvalidSignatureError):
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwt.decode(token, other.public_key(), algorithms=["RS256"], options={"verify_exp": False})


def test_the_organisation_is_the_control_planes_owner() -> None:
    repos = [
        ("https://github.com/kahn-hq/kahn", "production"),
        ("https://github.com/devarno-cloud/petrova-codes", "control-plane"),
    ]
    assert registry_organisation(repos) == "devarno-cloud"
    assert registry_organisation(repos[:1]) == "kahn-hq"
    assert registry_organisation([*repos[:1], ("https://github.com/other/x", "production")]) is None


# --- the installation token -------------------------------------------------------------------


def make_app(github: FakeGitHub, key: Any, **kw: Any) -> GitHubApp:
    settings = app_settings(app_env(github, key))
    assert settings is not None
    return GitHubApp(settings, **kw)


def test_the_token_is_fetched_once_and_kept(github: FakeGitHub, key: Any) -> None:
    app = make_app(github, key, organisation="devarno-cloud")
    first = app.token()
    assert github.app is not None and github.app.valid(first.reveal())
    assert app.token() is first
    assert len(token_posts(github)) == 1
    assert [r.path for r in github.requests] == [
        "/orgs/devarno-cloud/installation",
        "/app/installations/4242/access_tokens",
    ]
    assert github.counted() == 0  # the App's own requests do not spend the rate limit


def test_a_token_near_its_expiry_is_fetched_again(github: FakeGitHub, key: Any) -> None:
    assert github.app is not None
    github.app.token_lifetime = REFRESH_MARGIN - 10  # already "shortly before it expires"
    app = make_app(github, key)
    first, second = app.token(), app.token()
    assert first.reveal() != second.reveal()
    assert app.fetched == 2
    assert [r.path for r in github.requests].count("/app/installations?per_page=100") == 1
    assert len(token_posts(github)) == 2


def test_a_wrong_key_is_refused_with_githubs_words(github: FakeGitHub) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app = make_app(github, other, organisation="devarno-cloud")
    with pytest.raises(GitHubAppAuthFailed) as caught:
        app.token()
    text = caught.value.render()
    assert "GITHUB_APP_AUTH_FAILED" in text and "could not be decoded" in text
    assert "BEGIN" not in text


@pytest.mark.parametrize(
    ("skew", "said"),
    [(3600, "'Issued at' claim ('iat')"), (-1200, "'Expiration time' claim ('exp')")],
)
def test_a_clock_far_off_says_so(github: FakeGitHub, key: Any, skew: int, said: str) -> None:
    app = make_app(github, key, organisation="devarno-cloud", clock=lambda: time.time() + skew)
    with pytest.raises(GitHubAppAuthFailed) as caught:
        app.token()
    assert said in caught.value.render()
    assert "clock is probably off" in caught.value.render()


def test_a_revoked_installation_is_its_own_error(github: FakeGitHub, key: Any) -> None:
    assert github.app is not None
    settings = app_settings(app_env(github, key, PETROVA_GITHUB_APP_INSTALLATION_ID="4242"))
    assert settings is not None
    github.app.revoked = True
    with pytest.raises(
        GitHubAppInstallationMissing, match="uninstalled or the installation revoked"
    ):
        GitHubApp(settings).token()
    with pytest.raises(GitHubAppInstallationMissing, match="not installed on devarno-cloud"):
        make_app(github, key, organisation="devarno-cloud").token()


def test_github_credential_prefers_the_app_and_environ_reads_it_fresh(
    github: FakeGitHub, key: Any
) -> None:
    env = {**app_env(github, key), "GITHUB_TOKEN": "a-personal-token"}
    credential = github_credential(env, organisation="devarno-cloud")
    assert credential is not None and credential.source == "app"
    overlay = CredentialEnviron(env, credential, {"GITHUB_TOKEN", "GH_TOKEN"})
    assert overlay["GITHUB_TOKEN"] != "a-personal-token"
    assert github.app is not None and github.app.valid(overlay["GITHUB_TOKEN"])
    assert overlay["GITHUB_API_URL"] == github.url
    plain = github_credential({"GITHUB_TOKEN": "a-personal-token"})
    assert plain is not None and plain.source == "token"
    assert plain.secret().reveal() == "a-personal-token"
    assert github_credential({}) is None


# --- a fleet with the App alone -------------------------------------------------------------


@pytest.fixture
def git_host(tmp_path: Path, key: Any, github: FakeGitHub) -> Iterator[tuple[GitHttpServer, Path]]:
    import ssl

    cert, tls_key = make_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, tls_key)
    app = github.app
    assert app is not None
    server = GitHttpServer(tmp_path / "git" / "remotes", context, accept=app.valid)
    try:
        yield server, cert
    finally:
        server.close()


def _sync_fleet(fleet: Fleet, remotes: Remotes, server: GitHttpServer) -> str:
    probe_catalogue(fleet)
    keep_only(fleet, {"kahn-hq"})
    remotes.publish(KAHN, {".petrova/contract.yaml": contract_text("kahn-hq"), VTM: "# VTM\n"})
    url = f"{server.base}kahn-hq/kahn"
    fleet.registry.write_text(fleet.registry.read_text().replace(KAHN, url))
    return url


def _run_sync(fleet: Fleet, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(PETROVA_BIN), "sync", *fleet.args("--workspace", str(fleet.workspace))],
        env=_clean_env(isolated_git_env(env)),
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_a_fleet_syncs_over_https_with_the_app_alone(
    fleet: Fleet, github: FakeGitHub, key: Any, git_host: tuple[GitHttpServer, Path], tmp_path: Path
) -> None:
    server, cert = git_host
    _sync_fleet(fleet, Remotes(tmp_path / "git"), server)
    trust = {
        "GIT_SSL_CAINFO": str(cert),
        "PETROVA_TRUSTED_GIT_HOSTS": f"127.0.0.1:{server.port}",
    }
    # without a credential the host refuses: it really demands the token
    refused = _run_sync(fleet, trust)
    assert refused.returncode == 1, refused.stderr
    assert b"kahn-hq" in refused.stderr
    proc = _run_sync(fleet, {**trust, **app_env(github, key)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"" and proc.stderr == b""
    assert (fleet.workspace / "kahn-hq" / ".petrova" / "contract.yaml").is_file()
    assert read_manifest(fleet.workspace)["kahn-hq"].status == "ok"
    assert github.app is not None
    issued = set(github.app.issued)
    assert len(issued) == 1  # one token for the whole sync
    (token,) = issued
    used = {r.password for r in server.requests if r.status == 200}
    assert used == {token}
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert token.encode() not in path.read_bytes(), path
    assert token.encode() not in proc.stdout + proc.stderr


def test_a_revoked_installation_fails_the_sync_with_its_code(
    fleet: Fleet, github: FakeGitHub, key: Any, git_host: tuple[GitHttpServer, Path], tmp_path: Path
) -> None:
    server, cert = git_host
    _sync_fleet(fleet, Remotes(tmp_path / "git"), server)
    assert github.app is not None
    github.app.revoked = True
    env = {
        "GIT_SSL_CAINFO": str(cert),
        "PETROVA_TRUSTED_GIT_HOSTS": f"127.0.0.1:{server.port}",
        **app_env(github, key),
    }
    proc = _run_sync(fleet, env)
    assert proc.returncode == 1
    assert b"GITHUB_APP_INSTALLATION_MISSING" in proc.stderr
    assert b"Traceback" not in proc.stderr
    assert server.requests == []  # nothing was tried without the credential


@pytest.fixture
def app_world(
    fleet: Fleet, petrova_inprocess: Petrova, github: FakeGitHub, tmp_path: Path
) -> Iterator[World]:
    from tests.fake_services import FakeService

    cert = make_certificate(tmp_path)
    service = FakeService({}, tls=cert)
    fleet.workspace.mkdir()
    try:
        yield World(fleet, petrova_inprocess, github, service, cert[0])
    finally:
        service.close()


def test_the_probes_read_github_with_the_app_alone(app_world: World, key: Any) -> None:
    world = app_world
    world.add_repo("alpha-hq", {"ares": world.evidence("alpha-hq", "ares")})
    env: dict[str, str | None] = {"GITHUB_TOKEN": None, **app_env(world.github, key)}
    run = world.probe("--json", env=env)
    assert run.exit_code == 0, run.stderr
    (outcome,) = json.loads(run.stdout)["outcomes"]
    assert outcome["outcome"] == "ok", outcome
    assert world.github.app is not None
    (token,) = world.github.app.issued
    api = [r for r in world.github.requests if "/hooks" in r.path]
    assert api and {r.headers["authorization"] for r in api} == {f"Bearer {token}"}
    assert token not in run.stdout + run.stderr


def test_a_revoked_installation_leaves_the_github_cells_unreachable(
    app_world: World, key: Any
) -> None:
    world = app_world
    world.add_repo("alpha-hq", {"ares": world.evidence("alpha-hq", "ares")})
    assert world.github.app is not None
    world.github.app.revoked = True
    env: dict[str, str | None] = {"GITHUB_TOKEN": "gh-test-token", **app_env(world.github, key)}
    run = world.probe("--json", env=env)
    assert run.exit_code == 1
    assert "petrova: warning: GITHUB_APP_INSTALLATION_MISSING: " in run.stderr
    (outcome,) = json.loads(run.stdout)["outcomes"]
    assert outcome["outcome"] == "unreachable"
    # one refusal, not one per cell; and the personal token was not used instead
    assert len([r for r in world.github.requests if "installation" in r.path]) == 1
    assert not [r for r in world.github.requests if "/hooks" in r.path]


def test_a_bad_key_stops_sync_and_probe_with_exit_2(petrova: Petrova, fleet: Fleet) -> None:
    env = {"PETROVA_GITHUB_APP_ID": "5", "PETROVA_GITHUB_APP_PRIVATE_KEY": "not a key"}
    fleet.workspace.mkdir()
    for command in ("sync", "probe"):
        run = petrova(command, *fleet.args("--workspace", str(fleet.workspace)), env=env)
        assert run.exit_code == 2, run.stderr
        assert "GITHUB_APP_CONFIG_INVALID" in run.stderr
        assert "not a key" not in run.stderr


def test_the_daily_syncs_probes_and_notifies_with_the_app_alone(
    fleet: Fleet, github: FakeGitHub, key: Any, git_host: tuple[GitHttpServer, Path], tmp_path: Path
) -> None:
    """The whole daily (sync, probe, snapshot, notify) with the App's settings and no token."""
    server, cert = git_host
    remotes = Remotes(tmp_path / "git")
    contract = contract_text("kahn-hq").replace(
        "  ares: {status: pending}",
        "  ares:\n    status: wired\n    evidence: {org_or_repo_scope: kahn-hq/kahn}",
    )
    probe_catalogue(fleet)
    keep_only(fleet, {"kahn-hq"})
    remotes.publish(KAHN, {".petrova/contract.yaml": contract, VTM: "# VTM\n"})
    text = fleet.registry.read_text().replace(KAHN, f"{server.base}kahn-hq/kahn")
    pinned = "    role: production\n"
    applicability = "{ares: required, traceo: required, crumb: required, lore_cairnet: required}"
    pin = f"    contract_sha: {sha12(contract.encode())}\n"
    text = text.replace(
        pinned, f"{pinned}{pin}    integrations_applicability: {applicability}\n", 1
    )
    fleet.registry.write_text(text)
    github.add_hook("kahn-hq/kahn")
    env = {
        "GIT_SSL_CAINFO": str(cert),
        "PETROVA_TRUSTED_GIT_HOSTS": f"127.0.0.1:{server.port}",
        "PETROVA_CACHE_DIR": str(tmp_path / "cache"),
        **app_env(github, key),
    }
    proc = subprocess.run(
        [
            str(PETROVA_BIN), "daily", "--no-self-update", "-o", str(tmp_path / "fleet.json"),
            *fleet.args("--workspace", str(fleet.workspace)),
        ],
        env=_clean_env(isolated_git_env(env)),
        capture_output=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == proc.stderr == b"", proc.stderr.decode()
    (row,) = [
        r
        for r in json.loads((tmp_path / "fleet.json").read_text())["rows"]
        if r["slug"] == "kahn-hq"
    ]
    assert row["integrations"]["ares"]["observed"] == "ok"
    assert row["integrations"]["traceo"]["observed"] == "ok"
    assert github.app is not None
    tokens = set(github.app.issued)
    assert len(tokens) == 3  # one per process that needs GitHub: sync, probe, notify
    assert {r.password for r in server.requests if r.status == 200} <= tokens
    hooks = [r for r in github.requests if "/hooks" in r.path]
    assert hooks and {r.headers["authorization"].split()[1] for r in hooks} <= tokens
    # notify told the humans through the same App: its issues and labels, App tokens only
    told = [r for r in github.requests if "/issues" in r.path or "/labels" in r.path]
    assert told and {r.headers["authorization"].split()[1] for r in told} <= tokens
    assert github.mutations and all(
        m.headers["authorization"].split()[1] in tokens for m in github.mutations
    )
    for token in tokens:
        assert token.encode() not in proc.stderr
