"""A real loopback HTTP server that stands in for GitHub's REST API (tests and benchmark).

It serves what the ARES probe asks: a repo's and an org's webhooks and a hook's
deliveries, with GitHub's manners: a strong ``ETag`` on every answer and ``304 Not
Modified`` (not counted against the rate limit) for a matching ``If-None-Match``;
``x-ratelimit-limit``/``-remaining``/``-reset`` on every answer, and ``403`` with
``x-ratelimit-remaining: 0`` once the budget is spent. Each request is recorded, and
``latency`` delays every answer (the benchmark's 50 ms).

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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ARES_URL = "https://ares.devarno.cloud/hooks/github"
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
        auth = headers.get("authorization", "")
        if self.app is not None:
            scheme, _, given = auth.partition(" ")
            if scheme.lower() not in ("bearer", "token") or not self.app.valid(given):
                return 401, b'{"message": "Bad credentials"}', {}, False
        elif auth not in (f"Bearer {self.token}", f"token {self.token}"):
            return 401, b'{"message": "Bad credentials"}', {}, False
        match = _HOOKS.match(path.split("?")[0])
        body: Any
        if match is None:
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
        return status, data, {"ETag": etag} if status == 200 else {}, True


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.do_GET("POST")

        def do_GET(self, method: str = "GET") -> None:
            if fake.latency:
                time.sleep(fake.latency)
            headers = {k.lower(): v for k, v in self.headers.items()}
            app = fake.answer_app(method, self.path, headers)
            status, body, extra, counted = app or fake.answer(self.path, headers)
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

    return Handler
