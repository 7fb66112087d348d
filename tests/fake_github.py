"""A real loopback HTTP server that stands in for GitHub's REST API (tests and benchmark).

It serves what the ARES probe asks: a repo's and an org's webhooks and a hook's
deliveries, with GitHub's manners: a strong ``ETag`` on every answer and ``304 Not
Modified`` (not counted against the rate limit) for a matching ``If-None-Match``;
``x-ratelimit-limit``/``-remaining``/``-reset`` on every answer, and ``403`` with
``x-ratelimit-remaining: 0`` once the budget is spent. Each request is recorded, and
``latency`` delays every answer (the benchmark's 50 ms).

For ``petrova notify`` it also keeps issues, comments, labels and pull requests of any
repo (one number sequence per repo, as GitHub has), answers their reads with ETags and
their writes (``POST``/``PATCH``) as GitHub does, and logs every request that changed
something, body included (:attr:`FakeGitHub.mutations`). ``secondary_limit`` makes the
next writes answer ``403`` with ``Retry-After`` (GitHub's secondary rate limit).
With a :class:`FakeApp`, it is also a GitHub App's side of GitHub: it issues installation
tokens (``POST /app/installations/{id}/access_tokens``) only for a JWT that verifies
against the App's public key with GitHub's time rules (and GitHub's words when they are
broken), finds installations (``GET /orgs/{org}/installation``, ``GET /app/installations``),
and then answers the API only with an installation token it issued and that has not expired.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ARES_URL = "https://ares.devarno.cloud/hooks/github"
_REPO_API = re.compile(r"^/repos/([^/]+/[^/]+)/(issues|pulls|labels)(?:/([^/]+))?(?:/(comments))?$")
_ACCESS = re.compile(r"^/app/installations/(\d+)/access_tokens$")
_ORG_INSTALLATION = re.compile(r"^/orgs/([^/]+)/installation$")
_HOOKS = re.compile(r"^/(?:repos/([^/]+/[^/]+)|orgs/([^/]+))/hooks(?:/(\d+)/deliveries)?$")


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    status: int
    #: Did this answer count against the rate limit?
    counted: bool


@dataclass(frozen=True)
class Mutation:
    method: str
    path: str
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Repo:
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # pulls included
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    labels: set[str] = field(default_factory=set)
    next_number: int = 1


@dataclass
class FakeApp:
    """A GitHub App as GitHub knows it: its id, its public key, one installation."""

    app_id: str
    public_key: Any  # cryptography's RSAPublicKey
    installation_id: int = 4242
    account: str = "devarno-cloud"
    revoked: bool = False
    token_lifetime: int = 3600  # seconds an installation token is valid
    issued: dict[str, float] = field(default_factory=dict)  # token -> expires (epoch)

    def check_jwt(self, bearer: str) -> str | None:
        """None when the JWT is good; else GitHub's message for why not."""
        import jwt

        try:
            claims = jwt.decode(
                bearer,
                self.public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return "A JSON web token could not be decoded"
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or iat > now:
            return "'Issued at' claim ('iat') must be an Integer representing a time in the past"
        if not isinstance(exp, int) or exp > now + 600:
            return "'Expiration time' claim ('exp') is too far in the future"
        if exp <= now:
            return (
                "'Expiration time' claim ('exp') must be a numeric value representing the "
                "future time at which the assertion expires"
            )
        if str(claims.get("iss")) != self.app_id:
            return "Integration not found"
        return None

    def issue(self) -> tuple[str, str]:
        token = "ghs_" + secrets.token_hex(18)
        expires = time.time() + self.token_lifetime
        self.issued[token] = expires
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        return token, at

    def valid(self, token: str) -> bool:
        expires = self.issued.get(token)
        return expires is not None and time.time() < expires and not self.revoked


class FakeGitHub:
    def __init__(
        self,
        *,
        token: str = "gh-test-token",
        limit: int = 5000,
        latency: float = 0.0,
        app: FakeApp | None = None,
    ):
        self.token = token
        #: With an App, the API takes only installation tokens the App was issued.
        self.app = app
        self.limit = limit
        self.remaining = limit
        self.reset = int(time.time()) + 3600
        self.latency = latency
        #: When set, every answer is this status (a GitHub outage: 502, 503).
        self.outage: int | None = None
        self.hooks: dict[str, list[dict[str, Any]]] = {}  # "owner/repo" or "org" -> hooks
        self.deliveries: dict[int, list[dict[str, Any]]] = {}
        self.requests: list[Seen] = []
        self.repos: dict[str, Repo] = {}
        self.mutations: list[Mutation] = []
        #: Writes still to be refused with 403 + Retry-After (a secondary rate limit).
        self.secondary_limit = 0
        self.per_page_max = 100
        self.now = "2026-11-26T07:00:00Z"
        self._ids = itertools.count(101)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.request_queue_size = 256
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_hook(
        self,
        scope: str,
        *,
        url: str = ARES_URL,
        active: bool = True,
        delivery: int | None = 200,
    ) -> int:
        """A webhook on ``scope`` (``owner/repo`` or ``org``) with at most one delivery."""
        hook_id = next(self._ids)
        hook = {
            "type": "Repository" if "/" in scope else "Organization",
            "id": hook_id,
            "name": "web",
            "active": active,
            "events": ["push"],
            "config": {"url": url, "content_type": "json", "secret": "********"},
        }
        self.hooks.setdefault(scope, []).append(hook)
        self.deliveries[hook_id] = (
            [] if delivery is None else [{"id": hook_id * 10, "status_code": delivery}]
        )
        return hook_id

    def set_delivery(self, hook_id: int, status: int) -> None:
        self.deliveries[hook_id] = [{"id": hook_id * 10 + 1, "status_code": status}]

    def counted(self) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.counted)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # --- issues, comments, labels, pulls (petrova notify) ---

    def repo(self, name: str) -> Repo:
        return self.repos.setdefault(name, Repo())

    def issues(self, name: str, *, pulls: bool = False) -> list[dict[str, Any]]:
        """The repo's issues (or pull requests), oldest first."""
        items = self.repo(name).issues.values()
        return [i for i in items if ("pull_request" in i) == pulls]

    def comments(self, name: str, number: int) -> list[dict[str, Any]]:
        return self.repo(name).comments.get(number, [])

    def add_issue(
        self, name: str, *, title: str, body: str, labels: tuple[str, ...] = (), state: str = "open"
    ) -> int:
        """An issue a person opened (or one planted by a test)."""
        repo = self.repo(name)
        number = repo.next_number
        repo.next_number += 1
        repo.issues[number] = {
            "number": number,
            "title": title,
            "body": body,
            "state": state,
            "labels": [{"name": n} for n in labels],
            "created_at": self.now,
            "html_url": f"https://github.com/{name}/issues/{number}",
        }
        return number

    def _repo_get(
        self, name: str, kind: str, item: str | None, sub: str | None, query: str
    ) -> tuple[int, Any, dict[str, str]]:
        repo = self.repo(name)
        params = dict(urllib.parse.parse_qsl(query))
        if kind == "labels":
            if item is None:
                return 200, [{"name": n} for n in sorted(repo.labels)], {}
            return (
                (200, {"name": item}, {})
                if item in repo.labels
                else (404, {"message": "Not Found"}, {})
            )
        if item is not None:
            issue = repo.issues.get(int(item)) if item.isdigit() else None
            if issue is None or (kind == "pulls") != ("pull_request" in issue):
                return 404, {"message": "Not Found"}, {}
            if sub == "comments":
                return 200, repo.comments.get(int(item), []), {}
            return 200, issue, {}
        if kind == "pulls":
            found = [i for i in repo.issues.values() if "pull_request" in i]
            if "head" in params:
                found = [
                    i for i in found if f"{name.split('/')[0]}:{i['head']['ref']}" == params["head"]
                ]
        else:
            found = list(repo.issues.values())  # GitHub lists pulls as issues too
            if "labels" in params:
                want = set(params["labels"].split(","))
                found = [i for i in found if want <= {lb["name"] for lb in i["labels"]}]
        state = params.get("state", "open")
        if state != "all":
            found = [i for i in found if i["state"] == state]
        if params.get("direction", "desc") == "desc":  # GitHub's default: newest first
            found = found[::-1]
        per_page = min(int(params.get("per_page", 30)), self.per_page_max)
        page = int(params.get("page", 1))
        chunk = found[(page - 1) * per_page : page * per_page]
        extra = {}
        if page * per_page < len(found):
            nxt = dict(params, page=str(page + 1))
            extra["Link"] = (
                f'<{self.url}/repos/{name}/{kind}?{urllib.parse.urlencode(nxt)}>; rel="next"'
            )
        return 200, chunk, extra

    def authorised(self, auth: str) -> bool:
        """The ``Authorization`` header GitHub would take: an installation token the App
        issued when there is an App, else the one personal token."""
        if self.app is not None:
            scheme, _, given = auth.partition(" ")
            return scheme.lower() in ("bearer", "token") and self.app.valid(given)
        return auth in (f"Bearer {self.token}", f"token {self.token}")

    def write(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        """A POST or PATCH: applied as GitHub would, and logged."""
        if not self.authorised(headers.get("authorization", "")):
            return 401, b'{"message": "Bad credentials"}', {}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, b'{"message": "Problems parsing JSON"}', {}
        with self._lock:
            if self.secondary_limit > 0:
                self.secondary_limit -= 1
                return (
                    403,
                    b'{"message": "You have exceeded a secondary rate limit"}',
                    {"Retry-After": "60"},
                )
            if self.remaining <= 0:
                return 403, b'{"message": "API rate limit exceeded"}', {}
            self.remaining -= 1
            self.mutations.append(Mutation(method, path, body, raw, dict(headers)))
            status, result = self._apply(method, path, body)
        return status, json.dumps(result).encode(), {}

    def _apply(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        match = _REPO_API.match(path.split("?")[0])
        if match is None:
            return 404, {"message": "Not Found"}
        name, kind, item, sub = match.groups()
        repo = self.repo(name)
        if kind == "labels" and method == "POST" and item is None:
            repo.labels.add(body["name"])
            return 201, {"name": body["name"]}
        if method == "POST" and item is None and kind in ("issues", "pulls"):
            number = repo.next_number
            repo.next_number += 1
            issue: dict[str, Any] = {
                "number": number,
                "title": body.get("title", ""),
                "body": body.get("body", ""),
                "state": "open",
                "labels": [{"name": n} for n in body.get("labels", [])],
                "created_at": self.now,
                "html_url": f"https://github.com/{name}/{kind[:-1]}/{number}",
            }
            if kind == "pulls":
                issue["pull_request"] = {}
                issue["head"] = {"ref": body["head"]}
                issue["base"] = {"ref": body["base"]}
                issue["merged"] = False
            repo.issues[number] = issue
            return 201, issue
        if item is None or not item.isdigit() or int(item) not in repo.issues:
            return 404, {"message": "Not Found"}
        issue = repo.issues[int(item)]
        if sub == "comments" and method == "POST":
            comment = {"id": next(self._ids), "body": body["body"], "created_at": self.now}
            repo.comments.setdefault(int(item), []).append(comment)
            return 201, comment
        if method == "PATCH":
            for key in ("title", "body", "state", "state_reason"):
                if key in body:
                    issue[key] = body[key]
            return 200, issue
        return 404, {"message": "Not Found"}

    def answer_app(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str], bool] | None:
        """The App's endpoints (JWT-authenticated, not counted against the rate limit);
        ``None`` for any other path."""
        app = self.app
        route = path.split("?")[0]
        access = _ACCESS.match(route)
        org = _ORG_INSTALLATION.match(route)
        if app is None or not (access or org or route == "/app/installations"):
            return None
        auth = headers.get("authorization", "")
        problem = app.check_jwt(auth[len("Bearer ") :]) if auth.startswith("Bearer ") else ""
        if problem is not None:
            message = problem or "A JSON web token could not be decoded"
            return 401, json.dumps({"message": message}).encode(), {}, False
        mine = {"id": app.installation_id, "account": {"login": app.account}}
        if access is not None and method == "POST":
            if int(access.group(1)) != app.installation_id or app.revoked:
                return 404, b'{"message": "Not Found"}', {}, False
            token, expires_at = app.issue()
            body = {"token": token, "expires_at": expires_at, "permissions": {}}
            return 201, json.dumps(body).encode(), {}, False
        if org is not None and method == "GET":
            if org.group(1) != app.account or app.revoked:
                return 404, b'{"message": "Not Found"}', {}, False
            return 200, json.dumps(mine).encode(), {}, False
        if route == "/app/installations" and method == "GET":
            return 200, json.dumps([] if app.revoked else [mine]).encode(), {}, False
        return 404, b'{"message": "Not Found"}', {}, False

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str], bool]:
        if self.outage is not None:
            return self.outage, b'{"message": "Service Unavailable"}', {}, False
        if not self.authorised(headers.get("authorization", "")):
            return 401, b'{"message": "Bad credentials"}', {}, False
        match = _HOOKS.match(path.split("?")[0])
        body: Any
        extra: dict[str, str] = {}
        repo_match = _REPO_API.match(path.split("?")[0])
        if repo_match is not None:
            name, kind, item, sub = repo_match.groups()
            with self._lock:
                status, body, extra = self._repo_get(
                    name, kind, item, sub, urllib.parse.urlsplit(path).query
                )
        elif match is None:
            status, body = 404, {"message": "Not Found"}
        else:
            scope = match.group(1) or match.group(2)
            hook_id = match.group(3)
            if scope not in self.hooks:
                status, body = 404, {"message": "Not Found"}
            elif hook_id is None:
                status, body = 200, self.hooks[scope]
            else:
                status, body = 200, self.deliveries.get(int(hook_id), [])
        data = json.dumps(body).encode()
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        if status == 200 and headers.get("if-none-match") == etag:
            return 304, b"", {"ETag": etag}, False
        with self._lock:
            if self.remaining <= 0:
                return 403, b'{"message": "API rate limit exceeded"}', {}, False
            self.remaining -= 1
        return status, data, {**extra, "ETag": etag} if status == 200 else {}, True


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self, method: str = "GET") -> None:
            if fake.latency:
                time.sleep(fake.latency)
            headers = {k.lower(): v for k, v in self.headers.items()}
            app = fake.answer_app(method, self.path, headers)
            status, body, extra, counted = app or fake.answer(self.path, headers)
            self._respond(headers, status, body, extra, counted)

        def _respond(
            self,
            headers: dict[str, str],
            status: int,
            body: bytes,
            extra: dict[str, str],
            counted: bool,
        ) -> None:
            with fake._lock:
                fake.requests.append(Seen(self.path, headers, status, counted))
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("x-ratelimit-limit", str(fake.limit))
            self.send_header("x-ratelimit-remaining", str(max(fake.remaining, 0)))
            self.send_header("x-ratelimit-reset", str(fake.reset))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _write(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            app = fake.answer_app(self.command, self.path, headers)  # the App's token POST
            if app is not None:
                status, body, extra, counted = app
            else:
                status, body, extra = fake.write(self.command, self.path, headers, raw)
                counted = status < 400
            self._respond(headers, status, body, extra, counted)

        do_POST = _write
        do_PATCH = _write

    return Handler
