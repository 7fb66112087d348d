"""One HTTP request with a total deadline: what every probe check sends.

Standard library only (``http.client``), one attempt (the next scheduled run is the
retry). Promises:

- **A total deadline per attempt.** A watchdog shuts the socket down when the deadline
  passes, so a server that trickles its headers or body a byte at a time cannot hold a
  probe past it (a per-read socket timeout alone would not stop it).
- **The token stays where it belongs.** It travels only in the ``Authorization`` header,
  never over plain ``http://`` except to the loopback interface, redirects are never
  followed, and every reason this module gives is scrubbed of it.
- **No proxy for the loopback interface**; other hosts honour the usual ``HTTPS_PROXY``
  / ``HTTP_PROXY`` / ``NO_PROXY`` variables (HTTPS through a ``CONNECT`` tunnel).
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import ipaddress
import itertools
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from petrova import __version__
from petrova.delivery.publish import Secret

#: Bytes read of an answer at most; probes only need small JSON documents.
MAX_BODY = 4 * 1024 * 1024
_LOOPBACK_NAMES = frozenset({"localhost"})


class CouldNotLook(Exception):
    """The request got no usable answer: the probe could not look (``unreachable``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class Watchdog:
    """One thread that runs each registered callback when its deadline passes (unless
    cancelled first): cheaper than a timer thread per request at fleet scale."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float, callback: Callable[[], None]) -> int:
        handle = next(self._ids)
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + seconds, handle, callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True)
                self._thread.start()
            self._cond.notify()
        return handle

    def cancel(self, handle: int) -> None:
        with self._cond:
            self._cancelled.add(handle)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                due, handle, callback = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                if handle in self._cancelled:
                    self._cancelled.discard(handle)
                    continue
            callback()


@dataclass
class Transport:
    """What a run shares between its requests: the TLS context, the deadline, the watchdog."""

    timeout: float = 10.0
    context: ssl.SSLContext = field(default_factory=ssl.create_default_context)
    watchdog: Watchdog = field(default_factory=Watchdog)


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def request(
    url: str,
    *,
    transport: Transport,
    headers: Mapping[str, str] | None = None,
    token: Secret | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> Answer:
    """Send one request; return the answer whatever its status, or raise :class:`CouldNotLook`.

    ``body`` (JSON) is for callers that change things (``petrova notify``); probes only read.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise CouldNotLook("not a usable URL") from None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise CouldNotLook("not an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise CouldNotLook("the URL carries credentials; petrova does not send those")
    if token is not None and parts.scheme == "http" and not is_loopback(host):
        raise CouldNotLook(f"will not send a token in clear text over http:// to {host}")
    sent = {"User-Agent": f"petrova/{__version__}", "Accept": "application/json"}
    sent.update(headers or {})
    if token is not None:
        sent["Authorization"] = "Bearer " + token.reveal()
    if body is not None:
        sent["Content-Type"] = "application/json"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        return _send(parts.scheme, host, port, method, target, sent, transport, body)
    except CouldNotLook as exc:
        raise CouldNotLook(_scrub(exc.reason, token)) from None


def _connection(
    scheme: str, host: str, port: int | None, transport: Transport
) -> tuple[http.client.HTTPConnection, bool]:
    """A connection to ``host``, through a proxy when the environment names one for it."""
    proxy = None if is_loopback(host) else _proxy_for(scheme, host)
    timeout = transport.timeout
    if proxy is None:
        if scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=transport.context
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        return conn, False
    proxy_parts = urllib.parse.urlsplit(proxy)
    proxy_host = proxy_parts.hostname or ""
    if scheme == "https":
        conn = http.client.HTTPSConnection(
            proxy_host, proxy_parts.port or 8080, timeout=timeout, context=transport.context
        )
        conn.set_tunnel(host, port or 443)
        return conn, False
    return http.client.HTTPConnection(proxy_host, proxy_parts.port or 8080, timeout=timeout), True


def _proxy_for(scheme: str, host: str) -> str | None:
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy


def _send(
    scheme: str,
    host: str,
    port: int | None,
    method: str,
    target: str,
    headers: dict[str, str],
    transport: Transport,
    body: bytes | None = None,
) -> Answer:
    conn, absolute = _connection(scheme, host, port, transport)
    if absolute:  # plain http through a proxy: the request line names the whole URL
        target = f"http://{host}{':' + str(port) if port else ''}{target}"
    expired = threading.Event()

    def cut_off() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watch = transport.watchdog.watch(transport.timeout, cut_off)
    try:
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        body = response.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise CouldNotLook(f"the answer is over {MAX_BODY} bytes")
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
        if expired.is_set():
            raise CouldNotLook(f"no complete answer within {transport.timeout:g}s")
        return Answer(response.status, answer_headers, body)
    except CouldNotLook:
        raise
    except TimeoutError:
        raise CouldNotLook(f"no answer within {transport.timeout:g}s") from None
    except socket.gaierror:
        raise CouldNotLook(f"cannot resolve {host}") from None
    except ConnectionRefusedError:
        raise CouldNotLook("connection refused") from None
    except ssl.SSLError as exc:
        raise CouldNotLook(f"TLS failed: {getattr(exc, 'reason', None) or 'handshake'}") from None
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise CouldNotLook(f"no complete answer within {transport.timeout:g}s") from None
        if isinstance(exc, ConnectionError):
            raise CouldNotLook("connection reset") from None
        if isinstance(exc, http.client.HTTPException):
            raise CouldNotLook(f"broken answer ({type(exc).__name__})") from None
        raise CouldNotLook(f"cannot connect: {exc.strerror or type(exc).__name__}") from None
    finally:
        transport.watchdog.cancel(watch)
        conn.close()


def _scrub(text: str, token: Secret | None) -> str:
    return token.scrub(text) if token is not None else text
