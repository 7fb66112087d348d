"""The built-in check kinds, and how a probe's check results become one outcome.

Each kind is a function ``(check, cell) -> Result``. A check never raises for what it
observes: a missing file is a ``fail``, a refused connection is ``unreachable``. Only
:class:`~petrova.probe.github.BudgetSpent` passes through, so that the whole cell is
left for the next run. Whatever else a check raises is contained by :func:`run_probe`:
evidence that cannot be true (:class:`EvidenceMalformed`) makes the check fail
(``failing``), anything else makes it ``unreachable``; one consumer's contract can never
stop the fleet's probes.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from petrova.documents.probe_spec import Check, ProbeSpec, path_problem, segment_problem
from petrova.errors import PetrovaError
from petrova.files.disk import confined
from petrova.models import parse_timestamp
from petrova.net.http import Secret
from petrova.probe.github import BudgetSpent, GitHub
from petrova.probe.http import CouldNotLook, Transport, probe_token, request
from petrova.probe.urls import UrlRefused, safe_url

Verdict = Literal["pass", "skip", "fail", "unreachable"]
#: Entries (files and folders) a count looks at, at most: a folder a probe path names is
#: walked no further, and the count is reported as unknown.
MAX_COUNTED = 100_000
#: Folder levels below the counted path a count descends, at most.
MAX_DEPTH = 64
#: The failure mode of evidence that cannot be true (an unsafe path, a URL that is none):
#: always ``failing``, whatever the catalogue maps the kind's modes to.
MALFORMED = "malformed"


class EvidenceMalformed(Exception):
    """A check's evidence cannot be looked at as given: the check fails (``failing``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: How far ahead of the probe's clock an evidence time may be (clocks differ a little).
FUTURE_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Result:
    check: str
    verdict: Verdict
    detail: str
    mode: str | None = None


@dataclass(frozen=True)
class Cell:
    """What one check needs to look: the repo, its clone, the evidence, the run's tools."""

    slug: str
    repo_url: str
    clone: Path
    evidence: Mapping[str, Any]
    now: datetime
    transport: Transport
    github: GitHub
    environ: Mapping[str, str]


def token(name: str, environ: Mapping[str, str], url: str | None = None) -> Secret | str:
    """The token, or why it is not sent (unset, not on the operator's allowlist, or a
    GitHub token for a host that is not a trusted GitHub host)."""
    return probe_token(name, environ, url=url)


def _text(cell: Cell, name: str) -> str:
    value = cell.evidence[name]
    if not isinstance(value, str):
        raise EvidenceMalformed(f"{name} is not text")
    return value


def check_file(check: Check, cell: Cell) -> Result:
    rel = _text(cell, check.params["path_field"])
    shown = _short(rel)
    problem = path_problem(rel)
    if problem is not None:
        raise EvidenceMalformed(f"{shown!r} {problem}; not a path a probe may look at")
    pure = PurePosixPath(rel)
    try:
        path = confined(cell.clone, Path(*pure.parts))
    except PetrovaError:
        return Result(check.id, "fail", f"{shown} is a symbolic link, not a file", "missing")
    if not cell.clone.is_dir():
        return Result(check.id, "unreachable", "the repo is not synced (no clone)")
    if not path.exists():
        return Result(check.id, "fail", f"{shown} is not in the repo", "missing")
    count = check.params.get("count")
    if count is None:
        return Result(check.id, "pass", f"{shown} is in the repo")
    expected = cell.evidence.get(count["field"])
    if not isinstance(expected, int) or isinstance(expected, bool):
        return Result(check.id, "pass", f"{shown} is in the repo")
    found, cut_short = _count(path, count["pattern"])
    if cut_short is not None:
        return Result(check.id, "fail", f"{shown}: {cut_short}; the count is unknown", "count")
    tolerance = int(count.get("tolerance", 0))
    if abs(found - expected) > tolerance:
        within = f" (within {tolerance})" if tolerance else ""
        return Result(
            check.id,
            "fail",
            f"{shown} holds {found} {count['pattern']} file(s); {count['field']} says "
            f"{expected}{within}",
            "count",
        )
    return Result(check.id, "pass", f"{shown} holds {found} file(s), as declared")


def _count(root: Path, pattern: str) -> tuple[int, str | None]:
    """Regular files under ``root`` whose relative path matches ``pattern`` (``**/`` = any
    depth), and why the walk stopped short (``None`` when it did not).

    Walked with an explicit stack, never by recursion, at most :data:`MAX_DEPTH` levels
    down and :data:`MAX_COUNTED` entries in all: a consumer's folder 1,100 levels deep or
    with a million files costs a bounded walk. Links are neither followed nor counted.
    """
    info = root.lstat()
    if stat.S_ISREG(info.st_mode):
        return (1 if _matches(root.name, pattern) else 0), None
    if not stat.S_ISDIR(info.st_mode):
        return 0, None
    found = 0
    seen = 0
    stack: list[tuple[str, str, int]] = [(str(root), "", 0)]
    while stack:
        folder, rel, depth = stack.pop()
        try:
            with os.scandir(folder) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError as exc:
            return found, f"a folder could not be read ({exc.strerror or 'error'})"
        for entry in listed:
            seen += 1
            if seen > MAX_COUNTED:
                return found, f"more than {MAX_COUNTED} entries"
            path = f"{rel}{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 > MAX_DEPTH:
                    return found, f"folders nested deeper than {MAX_DEPTH} levels"
                stack.append((entry.path, path + "/", depth + 1))
            elif entry.is_file(follow_symlinks=False) and _matches(path, pattern):
                found += 1
    return found, None


def _matches(path: str, pattern: str) -> bool:
    if fnmatch.fnmatchcase(path, pattern):
        return True
    return pattern.startswith("**/") and fnmatch.fnmatchcase(path, pattern[3:])


def check_age(check: Check, cell: Cell) -> Result:
    name = check.params["field"]
    try:
        moment = parse_timestamp(str(cell.evidence[name]))
    except ValueError:
        raise EvidenceMalformed(f"{name} is not a timestamp") from None
    limit = timedelta(days=int(check.params["max_days"]))
    age = cell.now - moment
    if age < -FUTURE_SKEW:
        # a time to come proves nothing about freshness; if it passed, it would forever
        return Result(check.id, "fail", f"{name} is in the future (after the probe's clock)", "old")
    if age > limit:
        return Result(
            check.id,
            "fail",
            f"{name} is {age.days} days old (more than {limit.days})",
            "old",
        )
    return Result(check.id, "pass", f"{name} is within {limit.days} days")


def check_http(check: Check, cell: Cell) -> Result:
    params = check.params
    base = None
    if "base_url_env" in params:
        base = cell.environ.get(params["base_url_env"]) or None
    base = (base or params.get("base_url") or "").rstrip("/")
    if base:
        try:
            safe_url(base + "/")
        except UrlRefused as exc:
            return Result(check.id, "unreachable", f"the service's base URL: {exc.reason}")
    url = _build_url(params["url"], cell.evidence, base)
    if url is None:
        return Result(check.id, "unreachable", "no base URL for a relative URL")
    secret: Secret | None = None
    if "token_env" in params:
        given = token(params["token_env"], cell.environ, url)
        if isinstance(given, str):
            return Result(check.id, "unreachable", given)
        secret = given
        # The token goes only where the catalogue says the service is: evidence is
        # written by consumer repos and must not be able to collect the fleet's token.
        trusted = base or ("" if params["url"].startswith("{") else params["url"])
        if not trusted or _origin(url) != _origin(trusted):
            return Result(
                check.id,
                "unreachable",
                f"will not send {params['token_env']} to {_host(url)}, "
                f"which is not the service's host {_host(trusted) if trusted else '(none)'}",
            )
    try:
        answer = request(url, transport=cell.transport, token=secret)
    except CouldNotLook as exc:
        return Result(check.id, "unreachable", f"{_host(url)}: {exc.reason}")
    status = answer.status
    if _passes(status, params.get("pass_statuses", ["2xx"])):
        return Result(check.id, "pass", f"{_host(url)} answered {status}")
    if status in (401, 403, 407, 429) or status >= 500:
        return Result(check.id, "unreachable", f"{_host(url)} answered {status}")
    return Result(check.id, "fail", f"{_host(url)} answered {status}", "status")


def _build_url(template: str, evidence: Mapping[str, Any], base: str) -> str | None:
    """The URL to ask, safe to send (:func:`~petrova.probe.urls.safe_url`); ``None`` for a
    relative one without a base. A ``{field}`` that is the whole template is a whole URL;
    inside a template it is one path segment and follows the segment rule everywhere
    evidence becomes a path (:func:`~petrova.documents.probe_spec.segment_problem`)."""
    whole = _PLACEHOLDER.fullmatch(template)
    if whole is not None:
        url = _evidence_text(evidence, whole.group(1))
    else:

        def segment(match: re.Match[str]) -> str:
            value = _evidence_text(evidence, match.group(1))
            problem = segment_problem(value)
            if problem is not None:
                raise EvidenceMalformed(f"{match.group(1)} {_short(value)!r} {problem}")
            return urllib.parse.quote(value, safe="")

        url = _PLACEHOLDER.sub(segment, template)
    if url.startswith("/"):
        if not base:
            return None
        url = base + url
    try:
        return safe_url(url)
    except UrlRefused as exc:
        raise EvidenceMalformed(f"{_short(url)!r}: {exc.reason}") from None


def _evidence_text(evidence: Mapping[str, Any], name: str) -> str:
    value = evidence[name]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise EvidenceMalformed(f"{name} is not text")
    return str(value)


def _passes(status: int, allowed: list[Any]) -> bool:
    for item in allowed:
        if isinstance(item, int) and status == item:
            return True
        if isinstance(item, str) and str(status)[0] == item[0]:
            return True
    return False


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urllib.parse.urlsplit(url)
        return parts.scheme, (parts.hostname or "").lower(), parts.port
    except ValueError:
        return "", "", None


def _host(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def check_github_webhook(check: Check, cell: Cell) -> Result:
    params = check.params
    env_name = params.get("token_env", "GITHUB_TOKEN")
    secret = token(env_name, cell.environ)
    if isinstance(secret, str):
        return Result(check.id, "unreachable", secret)
    scope = _text(cell, params["scope_field"]).strip("/")
    host = str(params["host"]).lower()
    parts = scope.split("/")
    if len(parts) > 2 or not all(
        segment_problem(p) is None and re.fullmatch(r"[A-Za-z0-9_.-]+", p) for p in parts
    ):
        raise EvidenceMalformed(f"{_short(scope)!r} is not an org or org/repo")
    base = f"/orgs/{parts[0]}/hooks" if len(parts) == 1 else f"/repos/{scope}/hooks"
    try:
        status, hooks = cell.github.get(base + "?per_page=100", secret, _keep_hooks)
        if status == 404:
            return Result(
                check.id,
                "unreachable",
                f"GitHub answered 404 for {scope}'s hooks (no such scope, or the token "
                "cannot read its webhooks)",
            )
        mine = [h for h in hooks if h["host"] == host]
        if not mine:
            return Result(check.id, "fail", f"no webhook to {host} on {scope}", "no_hook")
        active = [h for h in mine if h["active"]]
        if not active:
            return Result(
                check.id, "fail", f"webhook {mine[0]['id']} to {host} is inactive", "inactive"
            )
        hook = active[0]
        status, deliveries = cell.github.get(
            f"{base}/{hook['id']}/deliveries?per_page=1", secret, _keep_deliveries
        )
    except CouldNotLook as exc:
        return Result(check.id, "unreachable", exc.reason)
    if status == 404 or not deliveries:
        return Result(check.id, "fail", f"webhook {hook['id']} has no delivery yet", "delivery")
    code = deliveries[0]
    if not isinstance(code, int) or not 200 <= code < 300:
        return Result(
            check.id,
            "fail",
            f"webhook {hook['id']}'s latest delivery was answered {code}",
            "delivery",
        )
    return Result(check.id, "pass", f"webhook {hook['id']} active; latest delivery {code}")


def _keep_hooks(data: Any) -> list[dict[str, Any]]:
    """Of each hook: its id, ``active`` and the host of ``config.url`` (never the URL)."""
    kept = []
    for hook in data:
        url = (hook.get("config") or {}).get("url") or ""
        kept.append(
            {"id": int(hook["id"]), "active": bool(hook.get("active")), "host": _host(url).lower()}
        )
    return kept


def _keep_deliveries(data: Any) -> list[Any]:
    return [d.get("status_code") for d in data[:1]]


KINDS: dict[str, Callable[[Check, Cell], Result]] = {
    "file": check_file,
    "http": check_http,
    "github_webhook": check_github_webhook,
    "age": check_age,
}

_RANK = {"ok": 0, "degraded": 1, "failing": 2}


def run_probe(spec: ProbeSpec, cell: Cell) -> tuple[str, str]:
    """``(outcome, detail)`` for one cell; :class:`BudgetSpent` passes through."""
    results = []
    for check in spec.checks:
        if any(cell.evidence.get(name) in (None, "") for name in check.fields()):
            results.append(Result(check.id, "skip", "not declared"))
            continue
        results.append(contained(check, cell))
    return combine(spec, results)


def contained(check: Check, cell: Cell) -> Result:
    """One check, whatever it raises: malformed evidence fails it, anything else (a bug,
    a file system surprise, a library's error on odd input) means it could not look."""
    try:
        return KINDS[check.kind](check, cell)
    except BudgetSpent:
        raise
    except EvidenceMalformed as exc:
        return Result(check.id, "fail", exc.reason, MALFORMED)
    except RecursionError:
        return Result(check.id, "unreachable", "the check could not run (nesting too deep)")
    except Exception as exc:  # containment is the point
        return Result(check.id, "unreachable", f"the check could not run ({type(exc).__name__})")


def combine(spec: ProbeSpec, results: list[Result]) -> tuple[str, str]:
    """The worst failure wins; a check that could not look makes the outcome
    ``unreachable`` unless a failure already proved ``failing``."""
    fails = {c.id: c for c in spec.checks}
    worst, worst_detail = "ok", ""
    for r in results:
        if r.verdict == "fail":
            outcome = "failing" if r.mode == MALFORMED else fails[r.check].fail[r.mode or ""]
            if _RANK[outcome] > _RANK[worst]:
                worst, worst_detail = outcome, f"{r.check}: {r.detail}"
    blind = [r for r in results if r.verdict == "unreachable"]
    if blind and worst != "failing":
        return "unreachable", "; ".join(f"{r.check}: {r.detail}" for r in blind)
    if worst != "ok":
        return worst, worst_detail
    looked = [f"{r.check}: {r.detail}" for r in results if r.verdict == "pass"]
    return "ok", "; ".join(looked) or "nothing to check"


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip(text: str, limit: int = 200) -> str:
    """A detail for the ledger: one line, at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def environment() -> dict[str, str]:
    return dict(os.environ)
