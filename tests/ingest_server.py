"""Real HTTP servers on 127.0.0.1 that stand in for the dashboards' ingest endpoint.

Each runs ``http.server`` in a thread on an ephemeral port and records every request
it received (method, path, headers, body), so tests can count retries and see the
Authorization header server-side. Behaviours are small functions; a few (never answer,
drop the connection) are special because they send no HTTP answer at all.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The fields a strict consumer schema (zod, no passthrough) knows on a row.
STRICT_ROW_KEYS = ("slug", "url", "role", "profile", "tier", "default_branch", "contract_sha")


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


HANG = "hang"  # read the request, never answer
DROP = "drop"  # read the request, close the connection without a word
GARBLE = "garble"  # answer with something that is not HTTP

Behaviour = Callable[["IngestServer", Seen], "Answer | str"]


class IngestServer:
    """One server; ``url`` is its ingest endpoint, ``requests`` what it received."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list[Seen] = []
        self.stored: bytes | None = None
        self.release = threading.Event()
        self._lock = threading.Lock()
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + "/api/petrova/snapshot"

    def count(self, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if method is None or r.method == method)

    def record(self, seen: Seen) -> int:
        with self._lock:
            self.requests.append(seen)
            return len(self.requests)

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _make_handler(server: IngestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Seen(self.command, self.path, dict(self.headers.items()), body)
            server.record(seen)
            answer = server.behaviour(server, seen)
            if answer == HANG:
                server.release.wait(30)
                self.close_connection = True
                return
            if answer == DROP:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if answer == GARBLE:
                self.close_connection = True
                self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
                return
            assert isinstance(answer, Answer)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer.body)
            self.close_connection = True

        do_GET = _handle
        do_POST = _handle

    return Handler


# --- behaviours ------------------------------------------------------------------------


def store_and_echo(server: IngestServer, seen: Seen) -> Answer:
    """Keep the posted document and answer with it; GET returns what is stored."""
    if seen.method == "POST":
        server.stored = seen.body
        return Answer(200, seen.body, {"Content-Type": "application/json"})
    if server.stored is None:
        return Answer(404, b'{"error": "nothing stored yet"}')
    return Answer(200, server.stored, {"Content-Type": "application/json"})


def strict_schema(server: IngestServer, seen: Seen) -> Answer:
    """Parse like a strict schema that predates `integrations`: unknown keys vanish, 200."""
    if seen.method == "POST":
        doc = json.loads(seen.body)
        doc["rows"] = [{k: r[k] for k in STRICT_ROW_KEYS if k in r} for r in doc["rows"]]
        server.stored = json.dumps(doc).encode()
        return Answer(200, server.stored, {"Content-Type": "application/json"})
    return store_and_echo(server, seen)


def accept_no_body(server: IngestServer, seen: Seen) -> Answer:
    """Store, answer 204 with nothing; a GET returns what is stored."""
    if seen.method == "POST":
        server.stored = seen.body
        return Answer(204)
    return store_and_echo(server, seen)


def fail_then_store(status: int, times: int, headers: dict[str, str] | None = None) -> Behaviour:
    """Answer ``status`` for the first ``times`` requests, then behave like the store."""

    def behaviour(server: IngestServer, seen: Seen) -> Answer:
        if server.count() <= times:
            return Answer(status, b'{"error": "busy"}', dict(headers or {}))
        return store_and_echo(server, seen)

    return behaviour


def unauthorized_echoing_header(server: IngestServer, seen: Seen) -> Answer:
    """A careless server that puts the Authorization header it got in its error body."""
    got = seen.headers.get("Authorization", "")
    body = json.dumps({"error": "invalid token", "received": got}).encode()
    return Answer(401, body, {"Content-Type": "application/json"})


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Behaviour:
    def behaviour(server: IngestServer, seen: Seen) -> Answer:
        return Answer(status, body, dict(headers or {}))

    return behaviour


def hang(server: IngestServer, seen: Seen) -> str:
    return HANG


def drop_then_store(times: int) -> Behaviour:
    def behaviour(server: IngestServer, seen: Seen) -> Answer | str:
        if server.count() <= times:
            return DROP
        return store_and_echo(server, seen)

    return behaviour


def garble_then_store(times: int) -> Behaviour:
    def behaviour(server: IngestServer, seen: Seen) -> Answer | str:
        if server.count() <= times:
            return GARBLE
        return store_and_echo(server, seen)

    return behaviour


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Servers:
    """Start servers for a test; all are closed when it ends."""

    def __init__(self) -> None:
        self._servers: list[IngestServer] = []

    def __call__(self, behaviour: Behaviour) -> IngestServer:
        server = IngestServer(behaviour)
        self._servers.append(server)
        return server

    def close(self) -> None:
        for server in self._servers:
            server.close()


def servers() -> Iterator[Servers]:
    started = Servers()
    try:
        yield started
    finally:
        started.close()
