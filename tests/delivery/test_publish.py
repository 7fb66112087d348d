"""Publishing the snapshot: `petrova snapshot --publish URL` against real local servers.

Every server here listens on 127.0.0.1 on an ephemeral port. The token is a marker
string that must reach the server in the Authorization header and nowhere else.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from petrova.delivery import publish
from petrova.delivery.policy import RetryPolicy
from petrova.delivery.publish import Clock, Secret, check_url, request, token_from_env
from petrova.errors import EndpointUrlInvalid, IngestFailed, IngestTokenMissing, PetrovaError
from tests.conftest import Fleet, Petrova, Run
from tests.ingest_server import Servers as Ingest
from tests.ingest_server import (
    answer,
    closed_port,
    drop_then_store,
    fail_then_store,
    garble_then_store,
    hang,
    store_and_echo,
    unauthorized_echoing_header,
)

TOKEN = "tok-7Qx2-NEVER-PRINT-ME-9f3a"
ENV = {"PETROVA_INGEST_TOKEN": TOKEN}
NOW = datetime(2026, 11, 26, 7, 0, 0, tzinfo=UTC)


class FakeClock:
    """Records the sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def clock(self) -> Clock:
        return Clock(sleep=self.sleep, now=lambda: NOW)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """No real waiting in-process (a subprocess run still sleeps for real, briefly)."""
    fake = FakeClock()
    monkeypatch.setattr(publish, "SYSTEM_CLOCK", fake.clock())
    return fake


def assert_no_token(run: Run, *roots: Path) -> None:
    assert TOKEN not in run.stdout
    assert TOKEN not in run.stderr
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), path


def snapshot_args(fleet: Fleet, url: str, *extra: str) -> list[str]:
    return [
        "snapshot",
        *fleet.args(),
        "-o",
        str(fleet.root / "fleet.json"),
        "--publish",
        url,
        *extra,
    ]


# --- the command, against real servers -------------------------------------------------


def test_publish_posts_the_written_document_with_the_token(
    petrova: Petrova, fleet: Fleet, ingest: Ingest
) -> None:
    server = ingest(store_and_echo)
    run = petrova(*snapshot_args(fleet, server.url), env=ENV)
    assert run.exit_code == 0, run.stderr
    assert run.stdout == ""
    assert run.stderr == ""  # quiet on success without a terminal
    assert server.count("POST") == 1
    seen = server.requests[0]
    assert seen.path == "/api/petrova/snapshot"
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["Content-Type"] == "application/json"
    written = (fleet.root / "fleet.json").read_bytes()
    assert seen.body == written
    assert json.loads(written)["totals"]["repos"] == 7
    assert_no_token(run, fleet.root)


def test_publish_to_stdout_sends_the_same_bytes(
    petrova: Petrova, fleet: Fleet, ingest: Ingest
) -> None:
    server = ingest(store_and_echo)
    run = petrova("snapshot", *fleet.args(), "--publish", server.url, env=ENV)
    assert run.exit_code == 0, run.stderr
    assert server.requests[0].body == run.stdout_bytes
    assert run.stderr == ""


def test_publish_always_sends_json_whatever_the_format(
    petrova_inprocess: Petrova, fleet: Fleet, ingest: Ingest
) -> None:
    server = ingest(store_and_echo)
    run = petrova_inprocess(
        "snapshot", *fleet.args(), "--format", "markdown", "--publish", server.url, env=ENV
    )
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith("# Fleet snapshot")
    assert json.loads(server.requests[0].body)["schema_version"] == "1.0"


def test_token_env_names_another_variable(petrova: Petrova, fleet: Fleet, ingest: Ingest) -> None:
    server = ingest(store_and_echo)
    run = petrova(
        *snapshot_args(fleet, server.url, "--token-env", "DASH_TOKEN"), env={"DASH_TOKEN": TOKEN}
    )
    assert run.exit_code == 0, run.stderr
    assert server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_503_twice_then_200_is_retried_with_backoff(
    petrova: Petrova, fleet: Fleet, ingest: Ingest, fake_clock: FakeClock
) -> None:
    server = ingest(fail_then_store(503, 2))
    run = petrova(*snapshot_args(fleet, server.url), env=ENV)
    assert run.exit_code == 0, run.stderr
    assert server.count("POST") == 3
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in server.requests)
    assert server.stored == (fleet.root / "fleet.json").read_bytes()
    assert run.stderr == ""
    if fake_clock.sleeps:  # in-process: the injected clock saw the backoff
        assert fake_clock.sleeps == [1.0, 2.0]


def test_a_person_watching_sees_the_retries_and_the_result(
    petrova_inprocess: Petrova,
    fleet: Fleet,
    ingest: Ingest,
    fake_clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from petrova import terminal

    monkeypatch.setattr(terminal, "watching", lambda: True)
    server = ingest(fail_then_store(503, 1))
    run = petrova_inprocess(*snapshot_args(fleet, server.url), env=ENV)
    assert run.exit_code == 0, run.stderr
    assert run.stderr.splitlines() == [
        f"create {fleet.root / 'fleet.json'}: 7 repos, 1 migrated, 0 warning(s)",
        "attempt 1 failed (HTTP 503 Service Unavailable); retrying in 1s",
        f"published to {server.url}: HTTP 200 (2 attempt(s))",
    ]
    assert TOKEN not in run.stderr


def test_401_fails_at_once_and_the_echoed_token_is_scrubbed(
    petrova: Petrova, fleet: Fleet, ingest: Ingest
) -> None:
    server = ingest(unauthorized_echoing_header)
    run = petrova(*snapshot_args(fleet, server.url), env=ENV)
    assert run.exit_code == 1
    assert "INGEST_FAILED" in run.stderr
    assert "HTTP 401" in run.stderr
    assert "check the token in PETROVA_INGEST_TOKEN" in run.stderr
    assert '"error": "invalid token"' in run.stderr  # the start of the body is shown ...
    assert "Bearer ***" in run.stderr  # ... with the token it echoed scrubbed out
    assert "fleet.json was written and stays" in run.stderr
    assert server.count() == 1  # not retried
    assert server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads((fleet.root / "fleet.json").read_bytes())["totals"]["repos"] == 7
    assert "Traceback" not in run.stderr
    assert_no_token(run, fleet.root)


def test_an_endpoint_that_never_answers_times_out_and_is_retried(
    petrova: Petrova, fleet: Fleet, ingest: Ingest, fake_clock: FakeClock
) -> None:
    server = ingest(hang)
    run = petrova(*snapshot_args(fleet, server.url, "--timeout", "0.3", "--retries", "1"), env=ENV)
    assert run.exit_code == 1
    assert "INGEST_FAILED" in run.stderr
    assert "no answer within 0.3s after 2 attempts" in run.stderr
    assert server.count("POST") == 2
    assert (fleet.root / "fleet.json").is_file()
    assert_no_token(run, fleet.root)


def test_connection_refused_is_retried_then_reported(
    petrova: Petrova, fleet: Fleet, fake_clock: FakeClock
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/api/petrova/snapshot"
    run = petrova(*snapshot_args(fleet, url, "--retries", "1"), env=ENV)
    assert run.exit_code == 1
    assert "INGEST_FAILED" in run.stderr
    assert "connection refused after 2 attempts" in run.stderr
    assert (fleet.root / "fleet.json").is_file()


def test_other_errors_are_not_retried(petrova: Petrova, fleet: Fleet, ingest: Ingest) -> None:
    server = ingest(answer(500, b"boom: database is down\n" * 50))
    run = petrova(*snapshot_args(fleet, server.url), env=ENV)
    assert run.exit_code == 1
    assert "INGEST_FAILED" in run.stderr
    assert "HTTP 500" in run.stderr
    assert "boom: database is down" in run.stderr
    assert len(run.stderr) < 600  # only the first part of the body
    assert server.count() == 1


def test_a_redirect_is_not_followed(petrova: Petrova, fleet: Fleet, ingest: Ingest) -> None:
    elsewhere = ingest(store_and_echo)
    server = ingest(answer(307, b"", {"Location": elsewhere.url}))
    run = petrova(*snapshot_args(fleet, server.url), env=ENV)
    assert run.exit_code == 1
    assert "HTTP 307" in run.stderr
    assert "redirects are not followed" in run.stderr
    assert server.count() == 1
    assert elsewhere.count() == 0  # the token never went there


def test_strict_publishes_then_fails_on_warnings(
    petrova: Petrova, fleet: Fleet, ingest: Ingest
) -> None:
    fleet.write("registry.yaml", fleet.registry.read_text().replace("5442defd6b27", "abcdefabcdef"))
    server = ingest(store_and_echo)
    run = petrova(*snapshot_args(fleet, server.url, "--strict"), env=ENV)
    assert run.exit_code == 1
    assert "CONTRACT_SHA_DRIFT" in run.stderr  # the warning, on stderr
    assert "CHECK_FAILED" in run.stderr
    assert server.count() == 1


# --- bad input: exit 2, nothing written, nothing sent ----------------------------------


@pytest.mark.parametrize("env", [{}, {"PETROVA_INGEST_TOKEN": ""}, {"PETROVA_INGEST_TOKEN": " "}])
def test_missing_token_is_a_usage_error(
    petrova: Petrova, fleet: Fleet, ingest: Ingest, env: dict[str, str]
) -> None:
    server = ingest(store_and_echo)
    run = petrova(*snapshot_args(fleet, server.url), env=env)
    assert run.exit_code == 2
    assert "INGEST_TOKEN_MISSING" in run.stderr
    assert "PETROVA_INGEST_TOKEN" in run.stderr
    assert not (fleet.root / "fleet.json").exists()
    assert server.count() == 0


def test_a_token_with_a_line_break_is_refused_without_showing_it(
    petrova: Petrova, fleet: Fleet, ingest: Ingest
) -> None:
    server = ingest(store_and_echo)
    run = petrova(
        *snapshot_args(fleet, server.url), env={"PETROVA_INGEST_TOKEN": TOKEN + "\r\nX-Evil: 1"}
    )
    assert run.exit_code == 2
    assert "INGEST_TOKEN_MISSING" in run.stderr
    assert "not a usable bearer token" in run.stderr
    assert_no_token(run, fleet.root)
    assert server.count() == 0


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://127.0.0.1/api", "http:// or https://"),
        ("http://", "http:// or https://"),
        ("http://user:pw@127.0.0.1/api", "must not carry credentials"),
        ("http://127.0.0.1:99999/api", "not a URL"),
    ],
)
def test_a_bad_url_is_a_usage_error(petrova: Petrova, fleet: Fleet, url: str, says: str) -> None:
    run = petrova(*snapshot_args(fleet, url), env=ENV)
    assert run.exit_code == 2
    assert "ENDPOINT_URL_INVALID" in run.stderr
    assert "--publish" in run.stderr
    assert says in run.stderr
    assert "pw" not in run.stderr.replace("--publish", "")
    assert not (fleet.root / "fleet.json").exists()


def test_a_bad_token_env_name_is_a_usage_error(petrova: Petrova, fleet: Fleet) -> None:
    run = petrova(*snapshot_args(fleet, "https://dash.invalid/x", "--token-env", "NOT-A-NAME"))
    assert run.exit_code == 2
    assert "USAGE_ERROR" in run.stderr
    assert not (fleet.root / "fleet.json").exists()


# --- the core, with an injected clock --------------------------------------------------


def test_backoff_is_exponential_and_bounded() -> None:
    policy = RetryPolicy(retries=8)
    assert [policy.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_retries_are_bounded(ingest: Ingest) -> None:
    fake = FakeClock()
    server = ingest(answer(502, b"bad gateway"))
    with pytest.raises(IngestFailed) as caught:
        request("POST", server.url, body=b"{}", policy=RetryPolicy(retries=3), clock=fake.clock())
    assert server.count() == 4
    assert fake.sleeps == [1.0, 2.0, 4.0]
    assert "HTTP 502" in caught.value.message
    assert "after 4 attempts" in caught.value.message
    assert caught.value.exit_code == 1


@pytest.mark.parametrize(
    ("retry_after", "slept"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("86400", 120.0),  # capped
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("soon", 1.0),  # unreadable: plain backoff
    ],
)
def test_429_honours_retry_after(ingest: Ingest, retry_after: str, slept: float) -> None:
    fake = FakeClock()
    server = ingest(fail_then_store(429, 1, {"Retry-After": retry_after}))
    sent = request("POST", server.url, body=b"{}", clock=fake.clock())
    assert sent.status == 200
    assert sent.attempts == 2
    assert server.count() == 2
    assert fake.sleeps == [slept]


def test_a_dropped_connection_is_retried(ingest: Ingest) -> None:
    fake = FakeClock()
    server = ingest(drop_then_store(2))
    sent = request("POST", server.url, body=b'{"a": 1}', clock=fake.clock())
    assert sent.status == 200
    assert sent.body == b'{"a": 1}'
    assert server.count() == 3
    assert fake.sleeps == [1.0, 2.0]


def test_a_garbled_answer_is_retried(ingest: Ingest) -> None:
    fake = FakeClock()
    server = ingest(garble_then_store(1))
    sent = request("POST", server.url, body=b"{}", clock=fake.clock())
    assert sent.status == 200
    assert server.count() == 2


def test_a_tls_failure_is_not_retried(ingest: Ingest) -> None:
    fake = FakeClock()
    server = ingest(store_and_echo)  # speaks plain HTTP: the TLS handshake fails
    url = server.url.replace("http://", "https://")
    with pytest.raises(IngestFailed) as caught:
        request("POST", url, body=b"{}", clock=fake.clock())
    assert "TLS failed" in caught.value.message
    assert fake.sleeps == []


def test_retry_notes_are_offered_to_the_caller(ingest: Ingest) -> None:
    fake = FakeClock()
    notes: list[str] = []
    server = ingest(fail_then_store(503, 1))
    request(
        "POST",
        server.url,
        body=b"{}",
        clock=fake.clock(),
        on_retry=lambda n: notes.append(f"{n.attempt}:{n.reason}:{n.delay:g}"),
    )
    assert notes == ["1:HTTP 503 Service Unavailable:1"]


def test_secret_never_shows_itself() -> None:
    secret = Secret(TOKEN)
    assert TOKEN not in repr(secret)
    assert TOKEN not in str(secret)
    assert TOKEN not in f"{secret}"
    assert secret.reveal() == TOKEN
    assert secret.scrub(f"a {TOKEN} b") == "a *** b"
    with pytest.raises(TypeError):
        secret.__reduce__()


def test_token_from_env() -> None:
    token = token_from_env("T", environ={"T": f"  {TOKEN}\n"})
    assert token is not None
    assert token.reveal() == TOKEN
    assert token_from_env("T", environ={}, required=False) is None
    with pytest.raises(IngestTokenMissing) as caught:
        token_from_env("T", environ={})
    assert caught.value.exit_code == 2
    assert "environment variable T" in caught.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://dashboard.example/api/petrova/snapshot",
        "http://127.0.0.1:8080/api",
        "http://[::1]:8080/api",
        "http://localhost/api",
    ],
)
def test_urls_that_may_carry_the_token(url: str) -> None:
    assert check_url(url, option="--publish", sends_token=True) == url


def test_plain_http_elsewhere_would_leak_the_token() -> None:
    # A pure check: no connection is ever attempted for a refused URL.
    url = "http://dashboard.example/api/petrova/snapshot"
    with pytest.raises(EndpointUrlInvalid) as caught:
        check_url(url, option="--publish", sends_token=True)
    assert "clear text" in caught.value.message
    assert check_url(url, option="URL", sends_token=False) == url


def test_errors_are_petrova_errors() -> None:
    assert issubclass(IngestFailed, PetrovaError)
    assert IngestFailed.code == "INGEST_FAILED"
