"""A real loopback HTTP server that stands in for GitHub's REST API (tests and benchmark).

It serves what the ARES probe asks: a repo's and an org's webhooks and a hook's
deliveries, with GitHub's manners: a strong ``ETag`` on every answer and ``304 Not
Modified`` (not counted against the rate limit) for a matching ``If-None-Match``;
``x-ratelimit-limit``/``-remaining``/``-reset`` on every answer, and ``403`` with
``x-ratelimit-remaining: 0`` once the budget is spent. Each request is recorded, and
``latency`` delays every answer (the benchmark's 50 ms).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ARES_URL = "https://ares.devarno.cloud/hooks/github"
_HOOKS = re.compile(r"^/(?:repos/([^/]+/[^/]+)|orgs/([^/]+))/hooks(?:/(\d+)/deliveries)?$")


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    status: int
    #: Did this answer count against the rate limit?
    counted: bool


class FakeGitHub:
    def __init__(self, *, token: str = "gh-test-token", limit: int = 5000, latency: float = 0.0):
        self.token = token
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

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str], bool]:
        if self.outage is not None:
            return self.outage, b'{"message": "Service Unavailable"}', {}, False
        auth = headers.get("authorization", "")
        if auth not in (f"Bearer {self.token}", f"token {self.token}"):
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

        def do_GET(self) -> None:
            if fake.latency:
                time.sleep(fake.latency)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body, extra, counted = fake.answer(self.path, headers)
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
