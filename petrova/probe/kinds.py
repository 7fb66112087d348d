"""The built-in check kinds, and how a probe's check results become one outcome.

Each kind is a function ``(check, cell) -> Result``. A check never raises for what it
observes: a missing file is a ``fail``, a refused connection is ``unreachable``. Only
:class:`~petrova.probe.github.BudgetSpent` passes through, so that the whole cell is
left for the next run.
"""

from __future__ import annotations

import fnmatch
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from petrova.documents.probe_spec import Check, ProbeSpec
from petrova.errors import PetrovaError
from petrova.files.disk import confined
from petrova.models import parse_timestamp
from petrova.net.http import Secret
from petrova.probe.github import GitHub
from petrova.probe.http import CouldNotLook, Transport, probe_token, request

Verdict = Literal["pass", "skip", "fail", "unreachable"]
#: Files counted under a path at most: a count past this is reported as a mismatch.
MAX_COUNTED = 100_000
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


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


def check_file(check: Check, cell: Cell) -> Result:
    rel = str(cell.evidence[check.params["path_field"]])
    shown = _short(rel)
    pure = PurePosixPath(rel)
    if pure.is_absolute() or not pure.parts or ".." in pure.parts:
        return Result(check.id, "fail", f"{shown} is not a path inside the repo", "missing")
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
    found = _count(path, count["pattern"])
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


def _count(root: Path, pattern: str) -> int:
    """Regular files under ``root`` whose relative path matches ``pattern`` (``**/`` = any
    depth); links are neither followed nor counted."""
    if root.is_file():
        return 1 if _matches(root.name, pattern) else 0
    found = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]  # noqa: PTH114, PTH118
        rel = os.path.relpath(folder, root)
        for name in files:
            full = os.path.join(folder, name)  # noqa: PTH118
            if os.path.islink(full):  # noqa: PTH114
                continue
            path = name if rel == "." else f"{rel}/{name}"
            if _matches(path, pattern):
                found += 1
                if found >= MAX_COUNTED:
                    return found
    return found


def _matches(path: str, pattern: str) -> bool:
    if fnmatch.fnmatchcase(path, pattern):
        return True
    return pattern.startswith("**/") and fnmatch.fnmatchcase(path, pattern[3:])


def check_age(check: Check, cell: Cell) -> Result:
    name = check.params["field"]
    try:
        moment = parse_timestamp(str(cell.evidence[name]))
    except ValueError:
        return Result(check.id, "fail", f"{name} is not a timestamp", "old")
    limit = timedelta(days=int(check.params["max_days"]))
    age = cell.now - moment
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
    whole = _PLACEHOLDER.fullmatch(template)
    if whole is not None:
        url = str(evidence[whole.group(1)])
    else:
        url = _PLACEHOLDER.sub(
            lambda m: urllib.parse.quote(str(evidence[m.group(1)]), safe=""), template
        )
    if url.startswith("/"):
        return base + url if base else None
    return url


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
    scope = str(cell.evidence[params["scope_field"]]).strip("/")
    host = str(params["host"]).lower()
    parts = scope.split("/")
    if len(parts) > 2 or not all(re.fullmatch(r"[A-Za-z0-9_.-]+", p) for p in parts):
        return Result(check.id, "fail", f"{_short(scope)} is not an org or org/repo", "no_hook")
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
        results.append(KINDS[check.kind](check, cell))
    return combine(spec, results)


def combine(spec: ProbeSpec, results: list[Result]) -> tuple[str, str]:
    """The worst failure wins; a check that could not look makes the outcome
    ``unreachable`` unless a failure already proved ``failing``."""
    fails = {c.id: c for c in spec.checks}
    worst, worst_detail = "ok", ""
    for r in results:
        if r.verdict == "fail":
            outcome = fails[r.check].fail[r.mode or ""]
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
