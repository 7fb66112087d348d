"""Every HTTP request petrova sends, under one set of rules.

Standard library only (``http.client``), one attempt per call: **retries are the
caller's policy** (publish retries transient failures, a probe's retry is the next run).
The rules, each written once here:

- **Deadline.** Each attempt has one total deadline (connect, TLS, headers and body). A
  shared :class:`Watchdog` thread shuts the attempt's sockets down when it passes, so a
  server that trickles a byte at a time cannot hold a run (a per-read socket timeout
  alone would not stop it).
- **Secret.** A token lives in a :class:`Secret` (its ``repr`` hides it), travels only in
  the ``Authorization`` header, never in clear text (plain ``http://``) except to the
  loopback interface, and every reason this module gives is scrubbed of it.
- **Loopback.** :func:`is_loopback`: ``localhost``, ``127.0.0.0/8``, ``::1`` (with or
  without brackets) and IPv4-mapped forms of those. Nothing else counts as this machine.
- **Proxy.** :func:`proxy_for`: the usual ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``
  variables, never for the loopback interface (that would hand a clear-text token to
  another hop). HTTPS goes through a ``CONNECT`` tunnel, so the token stays inside TLS.
- **Redirects are never followed.** A 3xx comes back to the caller as an answer
  (:attr:`Answer.location` says where it points); following it would carry the token to
  wherever it points, and would need the address rule again. Callers report it.
- **Addresses.** With ``allow_inward=False`` (what probes use), every address a name
  resolves to is checked by :func:`address_allowed` before any connection, and the
  connection goes to the vetted address (TLS SNI and ``Host`` keep the name): loopback,
  link-local, private, shared (CGNAT), multicast, unspecified, reserved and documentation
  ranges are refused, also when embedded in IPv6 (IPv4-mapped, 6to4).
- **Bounded body.** At most ``max_body`` bytes are read; :attr:`Answer.truncated` says
  whether there was more.

Failures without an HTTP answer raise :class:`NoAnswer`, whose ``kind`` is one of
:data:`KINDS` (callers choose how much of the reason to show).
"""

from __future__ import annotations

import base64
import contextlib
import heapq
import http.client
import ipaddress
import itertools
import json
import os
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from petrova import __version__

#: Bytes of an answer read at most unless the caller says otherwise.
MAX_BODY = 4 * 1024 * 1024
USER_AGENT = f"petrova/{__version__}"

Kind = Literal[
    "bad_url",  # not a URL petrova can send to
    "insecure",  # a token would travel in clear text
    "not_allowed",  # every address of the host is refused by the address rule
    "resolve",  # the name does not resolve
    "connect",  # refused, unreachable, reset before an answer
    "tls",  # the TLS handshake or certificate failed
    "timeout",  # the deadline passed
    "reset",  # the connection broke after the request was sent
    "broken",  # an answer that is not HTTP
]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
#: Kinds worth trying again (the caller's retry policy decides whether it does).
TRANSIENT: frozenset[str] = frozenset({"connect", "timeout", "reset", "broken"})


class Secret:
    """A value that must never be shown: ``repr``/``str`` print stars, :meth:`scrub` hides it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")

    def scrub(self, text: str) -> str:
        """``text`` with the secret (raw, percent-encoded or JSON-escaped) replaced by ***."""
        if not self._value:
            return text
        forms = {
            self._value,
            urllib.parse.quote(self._value, safe=""),
            json.dumps(self._value)[1:-1],
        }
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return text


def scrub(text: str, secret: Secret | None) -> str:
    return secret.scrub(text) if secret is not None else text


def is_token_text(value: str) -> bool:
    """Could ``value`` travel in a header? Visible ASCII only, no spaces."""
    return bool(value) and all(0x21 <= ord(c) <= 0x7E for c in value)


# --- the address rules ---------------------------------------------------------------------

_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = host.strip().strip("[]")
    text = text.split("%", 1)[0]  # an IPv6 zone (fe80::1%eth0) names the same address
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _embedded(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (IPv4-mapped, 6to4), which is where
    a packet to it may end up."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    inner = [ip.ipv4_mapped, ip.sixtofour]
    return [a for a in inner if a is not None]


def is_loopback(host: str) -> bool:
    """Is ``host`` (a name or an address, brackets allowed) this machine's loopback?"""
    if host.strip().lower() in _LOOPBACK_NAMES:
        return True
    ip = _ip(host)
    if ip is None:
        return False
    return ip.is_loopback or any(a.is_loopback for a in _embedded(ip))


def address_allowed(address: str) -> bool:
    """May a probe connect to ``address`` (an IP literal)? Only a global unicast address.

    Refused: loopback, link-local (``169.254.0.0/16``, ``fe80::/10``), private
    (``10/8``, ``172.16/12``, ``192.168/16``, ``fc00::/7``), shared/CGNAT (``100.64/10``),
    multicast, unspecified (``0.0.0.0``, ``::``), reserved, documentation and benchmark
    ranges, and IPv6 forms that carry any of those IPv4 addresses. Not an address: refused.
    """
    ip = _ip(address)
    if ip is None:
        return False
    for candidate in [ip, *_embedded(ip)]:
        if (
            not candidate.is_global
            or candidate.is_multicast
            or candidate.is_reserved
            or candidate.is_unspecified
            or candidate.is_loopback
            or candidate.is_link_local
            or candidate.is_private
        ):
            return False
    return True


# --- the proxy rule ------------------------------------------------------------------------


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    authorization: str | None  # a ``Proxy-Authorization`` value, from the proxy URL


def proxy_for(scheme: str, host: str) -> Proxy | None:
    """The proxy the environment names for ``scheme://host``; never one for loopback."""
    if is_loopback(host):
        return None
    url = urllib.request.getproxies().get(scheme)
    if not url or urllib.request.proxy_bypass(host):
        return None
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or 8080
    except ValueError:
        return None
    if not parts.hostname:
        return None
    authorization = None
    if parts.username is not None:
        pair = (
            f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        )
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    return Proxy(parts.hostname, port, authorization)


# --- the deadline --------------------------------------------------------------------------


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


_WATCHDOG = Watchdog()


class Deadline:
    """One attempt's total time: when it is up, every socket the attempt opened is shut
    down (through a duplicate of its descriptor, so a descriptor reused by then is never
    touched), which ends any connect, handshake or read at once."""

    def __init__(self, seconds: float, watchdog: Watchdog) -> None:
        self.seconds = seconds
        self.expired = False
        self._start = time.monotonic()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._watchdog = watchdog
        self._handle: int | None = None

    def __enter__(self) -> Deadline:
        self._handle = self._watchdog.watch(self.seconds, self._expire)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._watchdog.cancel(self._handle)
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def remaining(self) -> float:
        return max(0.001, self.seconds - (time.monotonic() - self._start))

    def watch(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            duplicate = sock.dup()
            self._sockets.append(duplicate)
            if self.expired:
                _shut(duplicate)
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


# --- requests ------------------------------------------------------------------------------


@dataclass
class Transport:
    """What a run's requests share: the total deadline per attempt, the TLS context, the
    watchdog, and whether addresses off the public internet may be connected to."""

    timeout: float = 30.0
    context: ssl.SSLContext = field(default_factory=ssl.create_default_context)
    watchdog: Watchdog = field(default=_WATCHDOG)
    allow_inward: bool = True


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, whatever its status (3xx included: redirects are not followed)."""

    status: int
    reason: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    truncated: bool = False  # the body was longer than the caller's bound

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def location(self) -> str | None:
        """Where a redirect points (it is not followed)."""
        return self.headers.get("location")

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not (or was cut at the bound)."""
        if self.truncated:
            raise ValueError("the answer was cut at the size bound")
        return json.loads(self.body)


class NoAnswer(Exception):
    """No HTTP answer came back; ``reason`` is scrubbed of the token."""

    def __init__(self, kind: Kind, reason: str) -> None:
        super().__init__(reason)
        self.kind: Kind = kind
        self.reason = reason

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # the request target: path and query, percent-encoded


def parse_url(url: str) -> Target:
    """``url`` checked and encoded for a request line, or :class:`NoAnswer` ``bad_url``.

    Credentials in the URL are refused (they would end up in messages), spaces and control
    characters are refused, non-ASCII in the path or query is percent-encoded, and the
    host must be encodable (IDNA) before anything is sent.
    """
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise NoAnswer("bad_url", "the URL holds spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise NoAnswer("bad_url", "not a usable URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise NoAnswer("bad_url", "not an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise NoAnswer("bad_url", "the URL carries credentials; petrova does not send those")
    if _ip(host) is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise NoAnswer("bad_url", "the host name is not a valid DNS name") from None
    path = urllib.parse.quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + urllib.parse.quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, host.strip("[]"), port or default, path)


def request(
    method: str,
    url: str,
    *,
    transport: Transport,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    token: Secret | None = None,
    max_body: int = MAX_BODY,
    allow_inward: bool | None = None,
) -> Answer:
    """Send one request; return the answer whatever its status, or raise :class:`NoAnswer`.

    ``allow_inward`` overrides the transport's address rule for this request (the
    operator's own endpoints are trusted; what a consumer or catalogue names is not).
    """
    try:
        return _request(method, url, transport, headers, body, token, max_body, allow_inward)
    except NoAnswer as exc:
        raise NoAnswer(exc.kind, scrub(exc.reason, token)) from None


def _request(
    method: str,
    url: str,
    transport: Transport,
    headers: Mapping[str, str] | None,
    body: bytes | None,
    token: Secret | None,
    max_body: int,
    allow_inward: bool | None,
) -> Answer:
    target = parse_url(url)
    if token is not None and target.scheme == "http" and not is_loopback(target.host):
        raise NoAnswer(
            "insecure",
            f"will not send a token in clear text over http:// to {target.host} "
            "(http:// is accepted for 127.0.0.1, ::1 and localhost only)",
        )
    sent = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    sent.update(headers or {})
    if body is not None and not any(k.lower() == "content-type" for k in sent):
        sent["Content-Type"] = "application/json"
    if token is not None:
        sent["Authorization"] = "Bearer " + token.reveal()
    inward = transport.allow_inward if allow_inward is None else allow_inward
    return _attempt(method, target, sent, body, transport, max_body, inward)


def request_json(
    method: str,
    url: str,
    *,
    transport: Transport,
    payload: Any = None,
    headers: Mapping[str, str] | None = None,
    token: Secret | None = None,
    etag: str | None = None,
    max_body: int = MAX_BODY,
    allow_inward: bool | None = None,
) -> Answer:
    """A JSON request (``payload`` encoded when given), with ``If-None-Match: etag`` when
    an ETag is known: what API clients (GitHub, chat, token exchange) build on. The answer
    is returned whatever its status; :meth:`Answer.json` decodes it."""
    sent = dict(headers or {})
    if etag is not None:
        if not is_token_text(etag.replace(" ", "")) or not etag.isascii():
            etag = None  # a cached ETag that cannot be a header is simply not sent
        else:
            sent["If-None-Match"] = etag
    body = None if payload is None else json.dumps(payload, separators=(",", ":")).encode()
    return request(
        method,
        url,
        transport=transport,
        headers=sent,
        body=body,
        token=token,
        max_body=max_body,
        allow_inward=allow_inward,
    )


def _resolve(host: str, port: int) -> list[tuple[int, str]]:
    """``(family, address)`` of every address ``host`` resolves to, in resolver order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise NoAnswer("resolve", f"cannot resolve {host}") from None
    seen: list[tuple[int, str]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        item = (int(family), str(sockaddr[0]))
        if item not in seen:
            seen.append(item)
    return seen


def vetted_addresses(host: str, port: int) -> list[tuple[int, str]]:
    """The addresses of ``host`` a probe may connect to; :class:`NoAnswer` ``not_allowed``
    when none is (every address tried is checked, not only the first)."""
    allowed = [(f, a) for f, a in _resolve(host, port) if address_allowed(a)]
    if not allowed:
        raise NoAnswer("not_allowed", "not allowed")
    return allowed


def _connector(
    deadline: Deadline, addresses: Iterable[tuple[int, str]] | None
) -> Callable[..., socket.socket]:
    """``http.client``'s ``_create_connection``: every socket watched by the deadline, and,
    when ``addresses`` is given, only those (vetted) addresses connected to."""

    def create(address: tuple[str, int], timeout: Any = None, source: Any = None) -> socket.socket:
        if addresses is None:
            sock = socket.create_connection(address, deadline.remaining(), source)
            return deadline.watch(sock)
        last: OSError | None = None
        for family, ip in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            deadline.watch(sock)
            sock.settimeout(deadline.remaining())
            try:
                sock.connect((ip, address[1]))
                return sock
            except OSError as exc:
                last = exc
                sock.close()
            if deadline.expired:
                break
        raise last or ConnectionRefusedError("no address to connect to")

    return create


def _attempt(
    method: str,
    target: Target,
    headers: dict[str, str],
    body: bytes | None,
    transport: Transport,
    max_body: int,
    allow_inward: bool,
) -> Answer:
    with Deadline(transport.timeout, transport.watchdog) as deadline:
        try:
            return _send(method, target, headers, body, transport, max_body, allow_inward, deadline)
        except NoAnswer as exc:
            if deadline.expired and exc.kind != "not_allowed":
                raise NoAnswer("timeout", f"no answer within {deadline.seconds:g}s") from None
            raise


def _send(
    method: str,
    target: Target,
    headers: dict[str, str],
    body: bytes | None,
    transport: Transport,
    max_body: int,
    allow_inward: bool,
    deadline: Deadline,
) -> Answer:
    proxy = proxy_for(target.scheme, target.host)
    addresses: list[tuple[int, str]] | None = None
    if not allow_inward:
        # Through a proxy the proxy connects, but the name is still vetted here first.
        ip = _ip(target.host)
        if ip is not None:
            if not address_allowed(target.host):
                raise NoAnswer("not_allowed", "not allowed")
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            addresses = [(int(family), str(ip))]
        else:
            addresses = vetted_addresses(target.host, target.port)
    timeout = deadline.remaining()
    path = target.path
    conn: http.client.HTTPConnection
    if proxy is None:
        if target.scheme == "https":
            conn = http.client.HTTPSConnection(
                target.host, target.port, timeout=timeout, context=transport.context
            )
        else:
            conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
        conn._create_connection = _connector(deadline, addresses)  # type: ignore[attr-defined]
    else:
        proxy_headers = (
            {} if proxy.authorization is None else {"Proxy-Authorization": proxy.authorization}
        )
        if target.scheme == "https":
            conn = http.client.HTTPSConnection(
                proxy.host, proxy.port, timeout=timeout, context=transport.context
            )
            conn.set_tunnel(target.host, target.port, headers=proxy_headers)
        else:
            conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)
            path = f"http://{_netloc(target)}{path}"  # the request line names the whole URL
            headers = {**headers, **proxy_headers}
        conn._create_connection = _connector(deadline, None)  # type: ignore[attr-defined]
    sent_request = False
    try:
        conn.request(method, path, body=body, headers=headers)
        sent_request = True
        response = conn.getresponse()
        data = response.read(max_body + 1)
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
        if deadline.expired:
            raise NoAnswer("timeout", "deadline")
        return Answer(
            response.status,
            response.reason or "",
            answer_headers,
            data[:max_body],
            truncated=len(data) > max_body,
        )
    except NoAnswer:
        raise
    except TimeoutError:
        raise NoAnswer("timeout", f"no answer within {transport.timeout:g}s") from None
    except ssl.SSLError as exc:
        raise NoAnswer(
            "tls", f"TLS failed: {getattr(exc, 'reason', None) or 'handshake'}"
        ) from None
    except socket.gaierror:
        raise NoAnswer("resolve", f"cannot resolve {target.host}") from None
    except (UnicodeError, ValueError, http.client.InvalidURL):
        # a header or URL http.client refuses to put on the wire (a newline, non-Latin-1)
        raise NoAnswer("bad_url", "the request cannot be encoded (its URL or a header)") from None
    except ConnectionRefusedError:
        raise NoAnswer("connect", "connection refused") from None
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        if deadline.expired:
            raise NoAnswer("timeout", "deadline") from None
        if isinstance(exc, http.client.RemoteDisconnected | ConnectionError):
            kind: Kind = "reset" if sent_request else "connect"
            raise NoAnswer(kind, "connection reset") from None
        if isinstance(exc, http.client.HTTPException):
            raise NoAnswer("broken", f"broken answer ({type(exc).__name__})") from None
        text = exc.strerror or type(exc).__name__
        raise NoAnswer("connect", f"cannot connect: {text}") from None
    finally:
        conn.close()


def _netloc(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def inward_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """The operator's switch ``PETROVA_PROBE_ALLOW_PRIVATE=1``: probes may connect to
    loopback, private and other non-public addresses (a lab, or the test suite)."""
    env = os.environ if environ is None else environ
    return env.get("PETROVA_PROBE_ALLOW_PRIVATE", "").strip().lower() in ("1", "yes", "true", "on")
