"""The ingest token never shows: not on stdout or stderr, not in files, not in exception
text, not with ``--debug`` or for a person watching, on success and on every failure path.

The token is chosen so that its raw, percent-encoded and JSON-escaped forms all differ,
and servers here echo it back in every way a careless endpoint might: in a body, in a
redirect's ``Location``, inside a JSON value, cut at the edge of a quoted excerpt.
"""

from __future__ import annotations

import json
import pickle
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from petrova.delivery.publish import Secret, request, token_from_env
from petrova.errors import IngestFailed, PetrovaError
from tests.conftest import ROOT, Fleet, Petrova, Run
from tests.ingest_server import Answer, Behaviour, IngestServer, Seen, Servers, store_and_echo

TOKEN = "pv_9f3K+q/Zr=Tk_S3cr3t-0123456789abcdef"
ENV = {"PETROVA_INGEST_TOKEN": TOKEN}
FIXTURE = ROOT / "contracts" / "fixtures" / "snapshot-with-integrations.json"


def _forms() -> list[str]:
    """The token as it could appear: raw, percent-encoded, and any long piece of it."""
    pieces = [TOKEN[i : i + 10] for i in range(0, len(TOKEN) - 9, 5)]
    return [TOKEN, urllib.parse.quote(TOKEN, safe=""), *pieces]


def assert_no_token(*texts: str | bytes) -> None:
    for text in texts:
        shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        for form in _forms():
            assert form not in shown, f"{form!r} leaked in: {shown[:500]}"


def assert_no_token_in_files(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            assert_no_token(path.read_bytes())


def assert_clean_run(run: Run) -> None:
    assert_no_token(run.stdout, run.stderr)
    assert "Traceback" not in run.stderr and "INTERNAL_ERROR" not in run.stderr


# --- servers that echo the token back -------------------------------------------------------


def _bearer(seen: Seen) -> str:
    return seen.headers.get("Authorization", "")


def echo_in_body(status: int) -> Behaviour:
    def behaviour(server: IngestServer, seen: Seen) -> Answer:
        got = _bearer(seen)
        body = {
            "raw": got,
            "quoted": urllib.parse.quote(got, safe=""),
            # the token straddling the 200-character excerpt's cut
            "padding": "x" * 150 + got,
        }
        return Answer(status, json.dumps(body).encode())

    return behaviour


def redirect_with_token(server: IngestServer, seen: Seen) -> Answer:
    target = "https://elsewhere.example/in?token=" + _bearer(seen).removeprefix("Bearer ")
    return Answer(302, b"", {"Location": target})


def echo_inside_integrations(server: IngestServer, seen: Seen) -> Answer:
    """A server that answers 200 but puts the header it got inside the document."""
    doc = json.loads(seen.body)
    cells = doc["rows"][0]["integrations"]
    cells["ares"]["status"] = {"echo": _bearer(seen)}
    cells["traceo"]["declared"] = "x" * 60 + _bearer(seen)
    cells["crumb"]["observed"] = [_bearer(seen)]
    return Answer(200, json.dumps(doc).encode())


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.close()


# --- publishing: success and every failure -------------------------------------------------


@pytest.mark.parametrize("status", [200, 400, 401, 403, 500])
def test_publish_never_shows_the_token(
    petrova: Petrova, fleet: Fleet, servers: Servers, status: int
) -> None:
    server = servers(echo_in_body(status))
    output = fleet.root / "fleet.json"
    run = petrova(
        "snapshot", *fleet.args(), "-o", str(output), "--publish", server.url, "--retries", "0",
        env=ENV,
    )  # fmt: skip
    assert run.exit_code == (0 if status == 200 else 1), run.stderr
    assert server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"  # it was sent
    assert_clean_run(run)
    assert_no_token_in_files(fleet.root)
    if status != 200:
        assert "INGEST_FAILED" in run.stderr and "***" in run.stderr


def test_a_redirect_carrying_the_token_is_scrubbed(
    petrova: Petrova, fleet: Fleet, servers: Servers
) -> None:
    server = servers(redirect_with_token)
    run = petrova("snapshot", *fleet.args(), "--publish", server.url, env=ENV)
    assert run.exit_code == 1
    assert "redirects are not followed" in run.stderr and "token=***" in run.stderr
    assert_clean_run(run)
    assert server.count() == 1


def test_a_url_that_repeats_the_token_is_scrubbed_in_messages(
    petrova: Petrova, fleet: Fleet, servers: Servers
) -> None:
    server = servers(echo_in_body(500))
    url = f"{server.url}?t={urllib.parse.quote(TOKEN, safe='')}"
    run = petrova("snapshot", *fleet.args(), "--publish", url, "--retries", "0", env=ENV)
    assert run.exit_code == 1
    assert "?t=***" in run.stderr
    assert_clean_run(run)


@pytest.mark.parametrize(
    "url",
    [f"https://ingest:{TOKEN}@dashboard.example/api", f"http://{TOKEN}@dashboard.example/"],
)
def test_credentials_in_the_url_are_refused_without_echoing_them(
    petrova: Petrova, fleet: Fleet, url: str
) -> None:
    run = petrova("snapshot", *fleet.args(), "--publish", url, env=ENV)
    assert run.exit_code == 2
    assert "ENDPOINT_URL_INVALID" in run.stderr
    assert_clean_run(run)


def test_the_token_given_where_its_variable_name_goes_is_not_echoed(
    petrova: Petrova, fleet: Fleet, servers: Servers
) -> None:
    server = servers(store_and_echo)
    # Not a variable name at all (it has + / =) ...
    bad = petrova("snapshot", *fleet.args(), "--publish", server.url, "--token-env", TOKEN,
                  env=ENV)  # fmt: skip
    assert bad.exit_code == 2 and "USAGE_ERROR" in bad.stderr
    assert_clean_run(bad)
    # ... and one that looks like a name but is the value of another variable.
    name_like = "ghp_" + "A1b2C3d4" * 4
    run = petrova("snapshot", *fleet.args(), "--publish", server.url, "--token-env", name_like,
                  env={"GH_TOKEN": name_like})  # fmt: skip
    assert run.exit_code == 2 and "INGEST_TOKEN_MISSING" in run.stderr
    assert name_like not in run.stderr and "not shown" in run.stderr
    assert server.count() == 0


def test_a_person_watching_sees_retries_without_the_token(
    petrova_inprocess: Petrova, fleet: Fleet, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from petrova import terminal

    monkeypatch.setattr(terminal, "watching", lambda: True)
    calls: list[int] = []

    def busy_then_echo(server: IngestServer, seen: Seen) -> Answer:
        calls.append(1)
        if len(calls) == 1:
            return Answer(503, _bearer(seen).encode(), {"Retry-After": "0"})
        return Answer(500, _bearer(seen).encode())

    server = servers(busy_then_echo)
    run = petrova_inprocess(
        "snapshot", *fleet.args(), "--publish", server.url, "--retries", "1", env=ENV
    )
    assert run.exit_code == 1
    assert "attempt 1 failed" in run.stderr
    assert_clean_run(run)


def test_a_person_watching_a_success_does_not_see_a_token_in_the_url(
    petrova_inprocess: Petrova, fleet: Fleet, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from petrova import terminal

    monkeypatch.setattr(terminal, "watching", lambda: True)
    server = servers(store_and_echo)
    url = f"{server.url}?t={TOKEN}"
    run = petrova_inprocess("snapshot", *fleet.args(), "--publish", url, env=ENV)
    assert run.exit_code == 0, run.stderr
    assert f"published to {server.url}?t=***: HTTP 200" in run.stderr
    assert_clean_run(run)


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_debug_output_on_failure_has_no_token(
    petrova: Petrova, fleet: Fleet, servers: Servers, debug: list[str]
) -> None:
    server = servers(echo_in_body(401))
    run = petrova(*debug, "snapshot", *fleet.args(), "--publish", server.url, env=ENV)
    assert run.exit_code == 1
    assert_clean_run(run)
    broken = petrova(*debug, "snapshot", *fleet.args(), "--publish", server.url,
                     env={"PETROVA_INGEST_TOKEN": TOKEN + "\n" + TOKEN[::-1] + " x"})  # fmt: skip
    assert broken.exit_code == 2 and "INGEST_TOKEN_MISSING" in broken.stderr
    assert_clean_run(broken)


# --- verify-endpoint: what comes back is quoted, never the token in it ------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_verify_endpoint_scrubs_the_token_from_every_value_it_quotes(
    petrova: Petrova, servers: Servers, as_json: bool
) -> None:
    server = servers(echo_inside_integrations)
    flags = ["--json"] if as_json else []
    run = petrova("contracts", "verify-endpoint", server.url, "--fixture", str(FIXTURE), *flags,
                  env=ENV)  # fmt: skip
    assert run.exit_code == 1
    assert "ROUND_TRIP_LOSSY" in run.stderr
    assert "***" in (run.stdout if as_json else run.stderr)
    assert_clean_run(run)
    if as_json:
        report = json.loads(run.stdout)
        changed = {f["pointer"]: f.get("actual") for f in report["findings"]}
        assert changed["/rows/0/integrations/ares/status"] == {"echo": "Bearer ***"}
        assert changed["/rows/0/integrations/crumb/observed"] == ["Bearer ***"]


@pytest.mark.parametrize("status", [401, 500])
def test_verify_endpoint_failures_have_no_token(
    petrova: Petrova, servers: Servers, status: int
) -> None:
    server = servers(echo_in_body(status))
    run = petrova("contracts", "verify-endpoint", server.url, "--fixture", str(FIXTURE),
                  "--retries", "0", env=ENV)  # fmt: skip
    assert run.exit_code == 1 and "INGEST_FAILED" in run.stderr
    assert_clean_run(run)
    readback = servers(echo_in_body(status))
    ok = servers(store_and_echo)
    run = petrova("contracts", "verify-endpoint", ok.url, "--readback", readback.url,
                  "--fixture", str(FIXTURE), "--retries", "0", env=ENV)  # fmt: skip
    assert run.exit_code == 1 and "READBACK_FAILED" in run.stderr
    assert_clean_run(run)


# --- every other command, with the token in its environment ---------------------------------


def test_no_command_prints_the_environment(
    petrova_inprocess: Petrova, fleet: Fleet, tmp_path: Path
) -> None:
    """Success and failure, with and without --debug: the token is in the environment only."""
    bad_registry = tmp_path / "bad.yaml"
    bad_registry.write_text("schema_version: 2\nrepos: []\nnotes: ${{PETROVA_INGEST_TOKEN}}\n")
    commands = [
        ("snapshot", *fleet.args()),
        ("snapshot", "--format", "table", *fleet.args()),
        ("registry", "validate", *fleet.args()),
        ("registry", "validate", "--json", "--registry", str(bad_registry)),
        ("registry", "list", *fleet.args()),
        ("registry", "show", "nope", *fleet.args()),
        ("rollout", "status", *fleet.args()),
        ("rollout", "gate", "1", *fleet.args()),
        ("state", "record", "petrova-codes", "ares", "sideways", *fleet.args()),
        ("render", str(FIXTURE)),
        ("render", str(tmp_path / "missing.json")),
        ("contract", "validate", str(ROOT / ".petrova" / "contract.yaml")),
        ("registry", "pin", "kahn-hq", *fleet.args()),
    ]
    for args in commands:
        for debug in ([], ["--debug"]):
            run = petrova_inprocess(*debug, *args, env=ENV)
            assert_clean_run(run)
    assert_no_token_in_files(fleet.root)


# --- the library: exception text and reprs --------------------------------------------------


def test_exception_text_and_reprs_never_hold_the_token(servers: Servers) -> None:
    secret = token_from_env("PETROVA_INGEST_TOKEN", environ=ENV)
    assert secret is not None
    assert_no_token(repr(secret), str(secret), f"{secret}", repr([secret]))
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    server = servers(echo_in_body(403))
    with pytest.raises(IngestFailed) as info:
        request("POST", server.url, body=b"{}", token=secret, token_env="PETROVA_INGEST_TOKEN")
    error = info.value
    assert_no_token(str(error), repr(error), error.render(), json.dumps(error.as_dict()))
    assert_no_token(*(str(a) for a in error.args))
    assert secret.reveal() == TOKEN  # the one way to get at it, used for the header only


def test_a_secret_scrubs_every_form_it_takes() -> None:
    secret = Secret(TOKEN)
    text = f"{TOKEN} {urllib.parse.quote(TOKEN, safe='')} {json.dumps(TOKEN)}"
    assert secret.scrub(text) == '*** *** "***"'
    assert isinstance(PetrovaError("x"), Exception)
