"""Real loopback servers standing in for the integrations' services (Traceo, LORE+CAIRNET).

Routes map a path to a status, or to :data:`TRICKLE` (send the answer one byte at a
time, slowly: a server that would hold a naive client for minutes). A server can speak
TLS with a throwaway certificate for 127.0.0.1 (made with the ``openssl`` command);
clients trust it through ``SSL_CERT_FILE``, as they would a corporate CA.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TRICKLE = "trickle"
#: Seconds between two trickled bytes; the whole answer takes well over a minute.
TRICKLE_PAUSE = 0.5


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    assert shutil.which("openssl"), "the openssl command is needed for the TLS fakes"
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "3650",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class FakeService:
    def __init__(self, routes: dict[str, int | str], *, tls: tuple[Path, Path] | None = None):
        self.routes = routes
        self.requests: list[Seen] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def seen(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _handler(service: FakeService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            with service._lock:
                service.requests.append(Seen(self.path, dict(self.headers.items())))
            route = service.routes.get(self.path.split("?")[0], 404)
            if route == TRICKLE:
                body = b'{"ok": true}' + b" " * 200
                head = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                )
                for byte in head + body:
                    if service.stop.wait(TRICKLE_PAUSE):
                        return
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return
                self.close_connection = True
                return
            assert isinstance(route, int)
            body = b'{"status": "ok"}' if 200 <= route < 300 else b'{"error": "no"}'
            self.send_response(route)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

    return Handler
