"""Does a deployed ingest endpoint keep what the snapshot says? (``contracts verify-endpoint``)

The consumers' rollout runbook asks, between hops, to post the contract-test fixture to
the deployed endpoint and confirm that every ``integrations`` value survives the round
trip. A strict schema that was not updated drops unknown keys silently and still answers
200; this check is what catches that. Values are compared row by row (rows matched by
``slug``, so a server that reorders rows is fine) and every lost or changed value is
reported by its RFC 6901 JSON pointer into the fixture.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from petrova.delivery.policy import RetryNote, RetryPolicy
from petrova.delivery.publish import Clock, excerpt, request
from petrova.errors import (
    DuplicateJsonKey,
    FixtureInvalid,
    Location,
    Problem,
    ReadbackFailed,
    RoundTripLossy,
)
from petrova.files import json_strict
from petrova.files.disk import max_input_bytes, read_as
from petrova.net.http import Secret, scrub

#: The default fixture exercises what a lossy endpoint could get wrong: every cell status,
#: ``needs_human``, set and null ``last_verified_at``/``review_by``/``observed``, and both
#: row shapes (a migrated row with ``integrations``, one without the key). The spine
#: fixture (one migrated row, all ``not_applicable``) would let such a server pass.
FIXTURE_RELPATH = Path("contracts") / "fixtures" / "snapshot-all-statuses.json"


def default_fixture_path() -> Path:
    """The fixture in the current directory (the control-plane repo), else petrova's copy."""
    if FIXTURE_RELPATH.is_file():
        return FIXTURE_RELPATH
    packaged = resources.files("petrova").joinpath("_contracts", "fixtures", FIXTURE_RELPATH.name)
    if packaged.is_file():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[2] / FIXTURE_RELPATH
    return source if source.is_file() else FIXTURE_RELPATH


@dataclass(frozen=True)
class Finding:
    pointer: str
    #: ``added``: a key the fixture's row leaves out (``integrations`` on an unmigrated
    #: row) came back; the dashboards draw greyed dots only when it is absent.
    kind: Literal["lost", "changed", "added"]
    expected: Any
    actual: Any = None

    def message(self, secret: Secret | None) -> str:
        if self.kind == "lost":
            return f"lost (was {_show(self.expected, secret)})"
        if self.kind == "added":
            return (
                f"added {_show(self.actual, secret)} where the fixture has no such key "
                "(a row without integrations must stay without it)"
            )
        return f"changed from {_show(self.expected, secret)} to {_show(self.actual, secret)}"

    def as_dict(self, secret: Secret | None) -> dict[str, Any]:
        out: dict[str, Any] = {"pointer": self.pointer, "kind": self.kind}
        out["expected"] = _scrubbed(self.expected, secret)
        if self.kind in ("changed", "added"):
            out["actual"] = _scrubbed(self.actual, secret)
        return out


def _scrubbed(value: Any, secret: Secret | None) -> Any:
    """``value`` with the secret scrubbed from every string in it, however deep."""
    if secret is None or not isinstance(value, str | dict | list):
        return value
    try:
        return json.loads(secret.scrub(json.dumps(value, ensure_ascii=False)))
    except (ValueError, RecursionError):
        return "(not shown)"


@dataclass(frozen=True)
class EndpointReport:
    url: str
    status: int
    attempts: int
    readback: str | None
    readback_status: int | None
    checked: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self, secret: Secret | None) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "readback": self.readback,
            "readback_status": self.readback_status,
            "checked": self.checked,
            "ok": self.ok,
            "findings": [f.as_dict(secret) for f in self.findings],
        }


def load_fixture(path: Path) -> tuple[bytes, Any]:
    """The fixture's exact bytes (what is posted) and its parsed value."""
    shown = str(path)
    raw = read_as(
        path,
        FixtureInvalid,
        what="the fixture",
        missing="fixture not found; pass --fixture PATH or run from the control-plane repo",
        directory="is a directory, not a file",
    )
    try:
        data = json_strict.loads(raw)
    except DuplicateJsonKey as exc:
        raise FixtureInvalid(f"not valid JSON: {exc}", location=Location(shown)) from None
    except json.JSONDecodeError as exc:
        raise FixtureInvalid(
            f"not valid JSON: {exc.msg}", location=Location(shown, exc.lineno, exc.colno)
        ) from None
    except UnicodeDecodeError as exc:
        raise FixtureInvalid(
            f"not valid JSON: byte {exc.start} is not UTF-8", location=Location(shown)
        ) from None
    except (ValueError, RecursionError):  # a 4300+ digit number, or nesting too deep
        raise FixtureInvalid(
            "not valid JSON that petrova can read: a number too long or nesting too deep",
            location=Location(shown),
        ) from None
    if count_values(data) == 0:
        raise FixtureInvalid(
            "has no rows with integrations, so a round trip would prove nothing; use a "
            "snapshot with at least one migrated repo",
            location=Location(shown, field="rows"),
        )
    return raw, data


def pointer(parts: tuple[str | int, ...]) -> str:
    """RFC 6901: ``~`` becomes ``~0`` and ``/`` becomes ``~1``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _leaves(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _rows(doc: Any) -> list[Any]:
    rows = doc.get("rows") if isinstance(doc, dict) else None
    return rows if isinstance(rows, list) else []


def count_values(doc: Any) -> int:
    return sum(
        sum(1 for _ in _leaves(row["integrations"], ()))
        for row in _rows(doc)
        if isinstance(row, dict) and "integrations" in row
    )


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1 and "1" is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


_MISSING = object()


def _get(value: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        in_dict = isinstance(part, str) and isinstance(value, dict) and part in value
        in_list = isinstance(part, int) and isinstance(value, list) and 0 <= part < len(value)
        if not (in_dict or in_list):
            return _MISSING
        value = value[part]
    return value


def compare(fixture: Any, returned: Any) -> tuple[int, list[Finding]]:
    """Every ``integrations`` value of the fixture, checked in ``returned``: (count, findings).

    Rows without ``integrations`` are checked for their shape: they must come back, and
    without the key.
    """
    by_slug: dict[Any, Any] = {}
    for row in _rows(returned):
        if isinstance(row, dict) and isinstance(row.get("slug"), str):
            by_slug.setdefault(row["slug"], row)
    checked = 0
    findings: list[Finding] = []
    for index, row in enumerate(_rows(fixture)):
        if not isinstance(row, dict):
            continue
        other = by_slug.get(row.get("slug"), _MISSING)
        if "integrations" not in row:
            if other is _MISSING:
                findings.append(Finding(pointer(("rows", index)), "lost", row))
            elif isinstance(other, dict) and "integrations" in other:
                where = pointer(("rows", index, "integrations"))
                findings.append(Finding(where, "added", None, other["integrations"]))
            continue
        for path, expected in _leaves(row["integrations"], ("integrations",)):
            checked += 1
            where = pointer(("rows", index, *path))
            actual = _get(other, path) if other is not _MISSING else _MISSING
            if actual is _MISSING:
                findings.append(Finding(where, "lost", expected))
            elif not _same(expected, actual):
                findings.append(Finding(where, "changed", expected, actual))
    return checked, findings


def verify_endpoint(
    url: str,
    *,
    fixture: Path,
    readback: str | None = None,
    token: Secret | None = None,
    token_env: str | None = None,
    policy: RetryPolicy | None = None,
    clock: Clock | None = None,
    on_retry: Callable[[RetryNote], None] | None = None,
) -> EndpointReport:
    """POST the fixture, require 2xx, read back (echo or ``readback`` GET) and compare.

    Raises ``INGEST_FAILED``/``READBACK_FAILED`` when the endpoint does not answer 2xx, and
    ``ROUND_TRIP_LOSSY`` when what comes back cannot be compared; lost or changed values
    are in the returned report (``ok`` is False), for the caller to render and fail on.
    """
    raw, data = load_fixture(fixture)
    limit = max_input_bytes()
    common: dict[str, Any] = {
        "token": token,
        "token_env": token_env,
        "policy": policy,
        "clock": clock,
        "on_retry": on_retry,
        "max_body": limit,
    }
    posted = request("POST", url, body=raw, **common)
    source, returned = url, posted
    readback_status: int | None = None
    if readback is not None:
        returned = request("GET", readback, error=ReadbackFailed, **common)
        source, readback_status = readback, returned.status
    shown = scrub(source, token)
    if returned.truncated:
        raise RoundTripLossy(
            f"the answer is over the {limit}-byte limit (raise it with PETROVA_MAX_INPUT_BYTES)",
            location=Location(shown),
        )
    if not returned.body.strip():
        hint = "" if readback else "; pass --readback URL to GET the stored document"
        raise RoundTripLossy(
            f"HTTP {returned.status} came back with an empty body, nothing to compare{hint}",
            location=Location(shown),
        )
    try:
        echoed = json_strict.loads(returned.body)
    except DuplicateJsonKey as exc:
        raise RoundTripLossy(
            f"HTTP {returned.status} came back with JSON that repeats a key: {exc}",
            location=Location(shown),
        ) from None
    except (ValueError, RecursionError):
        hint = "" if readback else "; pass --readback URL if the POST does not echo the document"
        raise RoundTripLossy(
            f"HTTP {returned.status} came back with a body that is not JSON{hint}: "
            f"{excerpt(returned.body, token)}",
            location=Location(shown),
        ) from None
    checked, findings = compare(data, echoed)
    return EndpointReport(
        url=scrub(url, token),
        status=posted.status,
        attempts=posted.attempts,
        readback=scrub(readback, token) if readback else None,
        readback_status=readback_status,
        checked=checked,
        findings=tuple(findings),
    )


def lossy_error(report: EndpointReport, secret: Secret | None) -> RoundTripLossy:
    """One error listing every finding at its pointer."""
    source = report.readback or report.url
    problems = [Problem(f.message(secret), Location(field=f.pointer)) for f in report.findings]
    lost = sum(1 for f in report.findings if f.kind == "lost")
    changed = len(report.findings) - lost
    return RoundTripLossy(
        f"{source}: {lost} lost and {changed} changed of {report.checked} integrations "
        "value(s) after the round trip",
        problems=problems,
    )


def _show(value: Any, secret: Secret | None = None) -> str:
    """A value in one short line; the secret is scrubbed before the cut, never after,
    so no prefix of it survives."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (ValueError, RecursionError):
        text = "(too deep to show)"
    text = scrub(text, secret)
    return text if len(text) <= 80 else text[:77] + "..."
