"""`petrova contracts verify-endpoint`: the runbook's round-trip check, against real servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from petrova.delivery.endpoint import compare, count_values, pointer
from tests.conftest import ROOT, Petrova, Run
from tests.ingest_server import (
    Answer,
    IngestServer,
    Seen,
    accept_no_body,
    answer,
    hang,
    store_and_echo,
    strict_schema,
    unauthorized_echoing_header,
)
from tests.ingest_server import Servers as Ingest

TOKEN = "tok-endpoint-DO-NOT-LEAK-41c2"
ENV = {"PETROVA_INGEST_TOKEN": TOKEN}
FIXTURE = ROOT / "contracts" / "fixtures" / "snapshot-with-integrations.json"
ALL_STATUSES = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"


def leaves(doc: Any) -> list[str]:
    """Every integrations value's JSON pointer, computed independently of the code (a
    cell's ``history`` list counts each of its entries' fields)."""

    def walk(value: Any, pointer: str) -> list[str]:
        if isinstance(value, dict) and value:
            return [p for key, item in value.items() for p in walk(item, f"{pointer}/{key}")]
        if isinstance(value, list) and value:
            return [p for n, item in enumerate(value) for p in walk(item, f"{pointer}/{n}")]
        return [pointer]

    out: list[str] = []
    for i, row in enumerate(doc["rows"]):
        for iid, cell in row.get("integrations", {}).items():
            out += walk(cell, f"/rows/{i}/integrations/{iid}")
    return out


def assert_no_token(run: Run) -> None:
    assert TOKEN not in run.stdout
    assert TOKEN not in run.stderr


def test_a_faithful_endpoint_passes(petrova: Petrova, ingest: Ingest) -> None:
    server = ingest(store_and_echo)
    run = petrova("contracts", "verify-endpoint", server.url, "--fixture", str(FIXTURE), env=ENV)
    assert run.exit_code == 0, run.stderr
    checked = len(leaves(json.loads(FIXTURE.read_bytes())))
    assert checked == 24
    assert f"all {checked} integrations value(s) came back unchanged" in run.stdout
    assert server.count("POST") == 1
    seen = server.requests[0]
    assert seen.body == FIXTURE.read_bytes()  # the fixture's exact bytes
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["Content-Type"] == "application/json"
    assert_no_token(run)


def test_a_strict_schema_that_drops_integrations_is_caught(
    petrova: Petrova, ingest: Ingest
) -> None:
    server = ingest(strict_schema)
    fixture = json.loads(ALL_STATUSES.read_bytes())
    run = petrova(
        "contracts", "verify-endpoint", server.url, "--fixture", str(ALL_STATUSES), env=ENV
    )
    assert run.exit_code == 1
    assert "ROUND_TRIP_LOSSY" in run.stderr
    expected = leaves(fixture)
    assert len(expected) > 24
    assert f"{len(expected)} lost and 0 changed of {len(expected)}" in run.stderr
    for where in expected:
        assert f"  {where}: lost (was " in run.stderr
    assert run.stdout == ""
    assert_no_token(run)


def test_json_report_lists_every_finding(petrova: Petrova, ingest: Ingest) -> None:
    server = ingest(strict_schema)
    run = petrova(
        "contracts", "verify-endpoint", server.url, "--fixture", str(FIXTURE), "--json", env=ENV
    )
    assert run.exit_code == 1
    report = json.loads(run.stdout)
    assert report["ok"] is False
    assert report["status"] == 200
    assert report["checked"] == 24
    assert [f["pointer"] for f in report["findings"]] == leaves(json.loads(FIXTURE.read_bytes()))
    assert {f["kind"] for f in report["findings"]} == {"lost"}
    assert report["findings"][0]["expected"] == "not_applicable"


def _rewrite_status(server: IngestServer, seen: Seen) -> Answer:
    doc = json.loads(seen.body)
    doc["rows"][0]["integrations"]["traceo"]["status"] = "ok"
    del doc["rows"][0]["integrations"]["crumb"]["review_by"]
    return Answer(200, json.dumps(doc).encode())


def test_changed_and_lost_values_are_named_by_pointer(petrova: Petrova, ingest: Ingest) -> None:
    server = ingest(_rewrite_status)
    run = petrova("contracts", "verify-endpoint", server.url, "--fixture", str(FIXTURE), env=ENV)
    assert run.exit_code == 1
    assert "1 lost and 1 changed of 24" in run.stderr
    assert '/rows/0/integrations/traceo/status: changed from "not_applicable" to "ok"' in (
        run.stderr
    )
    assert '/rows/0/integrations/crumb/review_by: lost (was "2027-04-30")' in run.stderr


def test_readback_is_compared_when_the_post_does_not_echo(petrova: Petrova, ingest: Ingest) -> None:
    server = ingest(accept_no_body)
    readback = server.base + "/api/petrova/snapshot/latest"
    run = petrova(
        "contracts", "verify-endpoint", server.url, "--fixture", str(FIXTURE),
        "--readback", readback, env=ENV,
    )  # fmt: skip
    assert run.exit_code == 0, run.stderr
    assert f"GET {readback} (200)" in run.stdout
    assert [r.method for r in server.requests] == ["POST", "GET"]
    assert server.requests[1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_an_empty_answer_without_readback_says_what_to_do(petrova: Petrova, ingest: Ingest) -> None:
    server = ingest(accept_no_body)
    run = petrova("contracts", "verify-endpoint", server.url, "--fixture", str(FIXTURE), env=ENV)
    assert run.exit_code == 1
    assert "ROUND_TRIP_LOSSY" in run.stderr
    assert "HTTP 204 came back with an empty body" in run.stderr
    assert "--readback URL" in run.stderr


def test_a_strict_store_behind_readback_is_caught(petrova: Petrova, ingest: Ingest) -> None:
    server = ingest(strict_schema)
    run = petrova(
        "contracts", "verify-endpoint", server.url, "--fixture", str(FIXTURE),
        "--readback", server.url, env=ENV,
    )  # fmt: skip
    assert run.exit_code == 1
    assert "24 lost and 0 changed of 24" in run.stderr


def test_a_body_that_is_not_json(petrova: Petrova, ingest: Ingest) -> None:
    server = ingest(answer(200, b"<html>OK</html>"))
    run = petrova("contracts", "verify-endpoint", server.url, "--fixture", str(FIXTURE), env=ENV)
    assert run.exit_code == 1
    assert "not JSON" in run.stderr
    assert "<html>OK</html>" in run.stderr


def test_a_rejected_post_fails_with_the_status(petrova: Petrova, ingest: Ingest) -> None:
    server = ingest(unauthorized_echoing_header)
    run = petrova("contracts", "verify-endpoint", server.url, "--fixture", str(FIXTURE), env=ENV)
    assert run.exit_code == 1
    assert "INGEST_FAILED" in run.stderr
    assert "HTTP 401" in run.stderr
    assert "Bearer ***" in run.stderr
    assert server.count() == 1
    assert_no_token(run)


def test_without_a_token_nothing_is_sent_and_a_401_says_so(
    petrova: Petrova, ingest: Ingest
) -> None:
    server = ingest(unauthorized_echoing_header)
    run = petrova("contracts", "verify-endpoint", server.url, "--fixture", str(FIXTURE))
    assert run.exit_code == 1
    assert "no token was sent: PETROVA_INGEST_TOKEN is not set" in run.stderr
    assert "Authorization" not in server.requests[0].headers


def test_a_failed_readback(petrova: Petrova, ingest: Ingest) -> None:
    server = ingest(accept_no_body)
    missing = ingest(answer(404, b"not here"))
    run = petrova(
        "contracts", "verify-endpoint", server.url, "--fixture", str(FIXTURE),
        "--readback", missing.url, env=ENV,
    )  # fmt: skip
    assert run.exit_code == 1
    assert "READBACK_FAILED" in run.stderr
    assert "GET answered HTTP 404 Not Found: not here" in run.stderr


def test_an_endpoint_that_never_answers(petrova: Petrova, ingest: Ingest) -> None:
    server = ingest(hang)
    run = petrova(
        "contracts", "verify-endpoint", server.url, "--fixture", str(FIXTURE),
        "--timeout", "0.3", "--retries", "0", env=ENV,
    )  # fmt: skip
    assert run.exit_code == 1
    assert "INGEST_FAILED" in run.stderr
    assert "no answer within 0.3s" in run.stderr
    assert server.count() == 1


@pytest.mark.parametrize("cwd", ["repo", "elsewhere"])
def test_the_default_fixture(petrova: Petrova, ingest: Ingest, tmp_path: Path, cwd: str) -> None:
    server = ingest(store_and_echo)
    where = ROOT if cwd == "repo" else tmp_path
    run = petrova("contracts", "verify-endpoint", server.url, env=ENV, cwd=where)
    assert run.exit_code == 0, run.stderr
    default = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"
    assert server.requests[0].body == default.read_bytes()


# --- bad input: exit 2, nothing sent ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"rows": [\n  {"slug": "a",}\n]}', ":2:"),
        ('{"rows": [{"slug": "a"}]}', "has no rows with integrations"),
        ("[]", "has no rows with integrations"),
    ],
)
def test_a_bad_fixture_is_a_usage_error(
    petrova: Petrova, ingest: Ingest, tmp_path: Path, text: str, says: str
) -> None:
    server = ingest(store_and_echo)
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    run = petrova("contracts", "verify-endpoint", server.url, "--fixture", str(bad), env=ENV)
    assert run.exit_code == 2
    assert "FIXTURE_INVALID" in run.stderr
    assert str(bad) in run.stderr
    assert says in run.stderr
    assert server.count() == 0
    assert bad.read_text() == text


def test_a_missing_fixture(petrova: Petrova, ingest: Ingest, tmp_path: Path) -> None:
    server = ingest(store_and_echo)
    run = petrova(
        "contracts", "verify-endpoint", server.url, "--fixture", str(tmp_path / "no.json")
    )
    assert run.exit_code == 2
    assert "FIXTURE_INVALID" in run.stderr
    assert server.count() == 0


def test_a_bad_url(petrova: Petrova) -> None:
    run = petrova("contracts", "verify-endpoint", "not a url", "--fixture", str(FIXTURE))
    assert run.exit_code == 2
    assert "ENDPOINT_URL_INVALID" in run.stderr


# --- the comparison ---------------------------------------------------------------------


def test_pointer_escapes_per_rfc_6901() -> None:
    assert pointer(("rows", 0, "integrations", "a/b~c")) == "/rows/0/integrations/a~1b~0c"
    assert pointer(()) == ""


def _doc(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"rows": list(rows)}


def test_rows_are_matched_by_slug_not_position() -> None:
    a = {"slug": "a", "integrations": {"x": {"status": "ok"}}}
    b = {"slug": "b", "integrations": {"x": {"status": "failing"}}}
    assert compare(_doc(a, b), _doc(b, a)) == (2, [])


def test_a_missing_row_loses_all_its_values() -> None:
    a = {"slug": "a", "integrations": {"x": {"status": "ok", "observed": None}}}
    checked, findings = compare(_doc({"slug": "z"}, a), _doc())
    assert checked == 2
    assert [(f.pointer, f.kind) for f in findings] == [
        ("/rows/0", "lost"),
        ("/rows/1/integrations/x/status", "lost"),
        ("/rows/1/integrations/x/observed", "lost"),
    ]


@pytest.mark.parametrize(
    ("sent", "got", "same"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (None, "null", False),
        (None, None, True),
        ("ok", "OK", False),
        (False, False, True),
    ],
)
def test_json_equality(sent: Any, got: Any, same: bool) -> None:
    fixture = _doc({"slug": "a", "integrations": {"x": {"v": sent}}})
    returned = _doc({"slug": "a", "integrations": {"x": {"v": got}}})
    assert (compare(fixture, returned)[1] == []) is same


def test_null_dropped_by_the_server_is_lost() -> None:
    fixture = _doc({"slug": "a", "integrations": {"x": {"observed": None}}})
    returned = _doc({"slug": "a", "integrations": {"x": {}}})
    assert [f.kind for f in compare(fixture, returned)[1]] == ["lost"]


def test_count_values() -> None:
    assert count_values(json.loads(FIXTURE.read_bytes())) == 24
    assert count_values({"rows": "nope"}) == 0
