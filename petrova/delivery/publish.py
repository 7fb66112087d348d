"""Sending documents to the dashboards' ingest endpoint, safe to run unattended.

Standard-library HTTP only (``urllib.request``, so the usual ``HTTPS_PROXY``/``NO_PROXY``
variables work). Three promises shape this module:

- **The token never leaks.** It comes from the environment, lives in a :class:`Secret`
  whose ``repr`` and ``str`` hide it, travels only in the ``Authorization`` header, is
  refused over plain ``http://`` to anything but the loopback interface, and is scrubbed
  from every message, including response bodies that might echo it. Redirects are never
  followed, so the header can never be forwarded to another host.
- **Transient trouble is retried, the rest fails at once.** Connection refused or reset,
  timeouts, 502/503/504 and 429 are retried with bounded exponential backoff (a server's
  ``Retry-After`` wins, capped); any other non-2xx answer is final. A full snapshot is
  idempotent, so posting it twice is harmless.
- **Tests never wait.** The sleep function and the wall clock are injectable
  (:data:`SYSTEM_CLOCK`, looked up at call time).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

from petrova import clock
from petrova.errors import (
    EndpointUrlInvalid,
    IngestFailed,
    IngestTokenMissing,
    Location,
    PetrovaError,
    UsageError,
)

DEFAULT_TOKEN_ENV = "PETROVA_INGEST_TOKEN"
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
#: How much of an answer's body is kept for a failure message.
EXCERPT_CHARS = 200
#: Bytes read from an answer whose body only feeds a message.
SMALL_BODY = 64 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOOPBACK_NAMES = frozenset({"localhost"})


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


def token_from_env(
    name: str, *, environ: Mapping[str, str] | None = None, required: bool = True
) -> Secret | None:
    """The bearer token in environment variable ``name``; errors name the variable only.

    Surrounding whitespace (a newline left by ``$(cat token-file)``) is dropped. A token
    must be visible ASCII, because anything else would break (or smuggle) a header.
    """
    check_env_name(name)
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    if not value:
        if not required:
            return None
        if name in {v.strip() for v in env.values()}:
            # A token pasted where the variable's name goes: never echo it.
            name = "named by --token-env (not shown: it is the value of another variable)"
        raise IngestTokenMissing(
            f"environment variable {name} is not set or empty; export the ingest token "
            f"there (never on the command line), or name another variable with --token-env",
            location=Location(field="--token-env"),
        )
    if any(not (0x21 <= ord(c) <= 0x7E) for c in value):
        raise IngestTokenMissing(
            f"the value of environment variable {name} is not a usable bearer token "
            "(it must be visible ASCII characters without spaces)",
            location=Location(field="--token-env"),
        )
    return Secret(value)


def check_env_name(name: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise UsageError(
            "the value given is not an environment variable name (letters, digits and _); "
            "it is not shown, in case it is the token itself: name the variable that holds it",
            location=Location(field="--token-env"),
        )
    return name


def check_url(url: str, *, option: str, sends_token: bool) -> str:
    """Refuse URLs that cannot work or would expose the token; returns the URL unchanged.

    Credentials in the URL are refused (they would be printed in messages and logs);
    plain ``http://`` with a token is allowed only to the loopback interface.
    """
    where = Location(field=option)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EndpointUrlInvalid(f"not a URL: {exc}", location=where) from None
    del port  # only parsed to reject a bad port early
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointUrlInvalid(
            "must be an http:// or https:// URL with a host, "
            "e.g. https://dashboard.example/api/petrova/snapshot",
            location=where,
        )
    if parts.username is not None or parts.password is not None:
        raise EndpointUrlInvalid(
            "must not carry credentials; the token comes from the environment (--token-env)",
            location=where,
        )
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise EndpointUrlInvalid("must not contain spaces or control characters", location=where)
    if sends_token and parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise EndpointUrlInvalid(
            f"plain http:// would send the bearer token in clear text to {parts.hostname}; "
            "use https:// (http:// is accepted for 127.0.0.1, ::1 and localhost only)",
            location=where,
        )
    return url


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: ``retries`` more attempts after the first."""

    retries: int = 4
    timeout: float = 30.0
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, retry_number: int) -> float:
        """Seconds before retry ``retry_number`` (1-based): 1, 2, 4, ... capped."""
        return float(min(self.max_backoff, self.backoff * 2 ** (retry_number - 1)))


@dataclass(frozen=True)
class Clock:
    sleep: Callable[[float], None]
    now: Callable[[], datetime]


SYSTEM_CLOCK = Clock(sleep=time.sleep, now=clock.system_now)  # HTTP dates: the real clock


@dataclass(frozen=True)
class RetryNote:
    """Said (by the caller, if it wants) before each retry."""

    attempt: int
    reason: str
    delay: float


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    body: bytes
    attempts: int


@dataclass(frozen=True)
class _Outcome:
    status: int | None  # None: no HTTP answer at all
    reason: str
    body: bytes = b""
    headers: Message | None = None
    transient: bool = False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would carry the bearer token to wherever it points."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class _Deadline:
    """One attempt's total time: when it is up, the attempt's connections are shut down.

    A socket timeout bounds each read, not the request: a server that sends one byte every
    half second would hold a run for ever. The watchdog shuts the connection down (on a
    duplicate of its descriptor, so it never touches a descriptor reused by then), which
    ends any read at once; the attempt then counts as a timeout, whatever was read.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

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


def _watched(base: type[http.client.HTTPConnection], deadline: _Deadline) -> Any:
    """``base`` whose every new socket is handed to ``deadline``."""

    class Watched(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            create = self._create_connection  # type: ignore[has-type]
            self._create_connection = lambda *a, **k: deadline.watch(create(*a, **k))

    return Watched


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPConnection, self._deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(
            _watched(http.client.HTTPSConnection, self._deadline),
            req,
            context=self._context,  # type: ignore[attr-defined]
        )


def _opener(url: str, deadline: _Deadline) -> urllib.request.OpenerDirector:
    """No redirects, the attempt's deadline, and proxies only for hosts off the loopback:
    a loopback URL is this machine, and sending it to a proxy would hand the token (in
    clear, over ``http://``) to another hop and take the proxy's answer for the endpoint's.
    An ``https://`` URL through a proxy is tunnelled (``CONNECT``): the token stays inside
    TLS."""
    host = urllib.parse.urlsplit(url).hostname or ""
    proxies = urllib.request.ProxyHandler({} if _is_loopback(host) else None)
    return urllib.request.build_opener(
        _NoRedirect, proxies, _HTTPHandler(deadline), _HTTPSHandler(deadline)
    )


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    token: Secret | None = None,
    policy: RetryPolicy | None = None,
    clock: Clock | None = None,
    on_retry: Callable[[RetryNote], None] | None = None,
    max_body: int = SMALL_BODY,
    token_env: str | None = None,
    error: type[PetrovaError] = IngestFailed,
) -> Response:
    """Send one request, retrying transient failures; return the 2xx answer or raise ``error``.

    The error names the URL, what went wrong, how many attempts were made and the start of
    the answer's body, with the token scrubbed out of all of it.
    """
    policy = policy or RetryPolicy()
    clock = clock or SYSTEM_CLOCK
    headers = {"Accept": "application/json", "User-Agent": "petrova"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token is not None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" and not _is_loopback(parts.hostname or ""):
            raise EndpointUrlInvalid(  # check_url said so already; the last line of defence
                "the bearer token travels in clear text only to the loopback interface",
                location=Location(field="url"),
            )
        headers["Authorization"] = "Bearer " + token.reveal()
    attempt = 0
    while True:
        attempt += 1
        outcome = _attempt(method, url, body, headers, policy.timeout, max_body)
        if outcome.status is not None and 200 <= outcome.status < 300:
            return Response(outcome.status, outcome.reason, outcome.body, attempt)
        if not outcome.transient or attempt > policy.retries:
            raise _failure(error, method, url, outcome, attempt, token=token, token_env=token_env)
        delay = _retry_after(outcome, clock, policy)
        if delay is None:
            delay = policy.delay(attempt)
        if on_retry is not None:
            on_retry(RetryNote(attempt, scrub(_reason(outcome), token), delay))
        clock.sleep(delay)


def _attempt(
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    timeout: float,
    max_body: int,
) -> _Outcome:
    """One request within ``timeout`` seconds in all (connect, headers and body)."""
    with _Deadline(timeout) as deadline:
        outcome = _attempt_within(method, url, body, headers, deadline, max_body)
        if deadline.expired:
            return _Outcome(None, f"no answer within {timeout:g}s", transient=True)
    return outcome


def _attempt_within(
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    deadline: _Deadline,
    max_body: int,
) -> _Outcome:
    timeout = deadline.seconds
    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with _opener(url, deadline).open(req, timeout=timeout) as resp:
            data = resp.read(max_body + 1)
            return _Outcome(resp.status, resp.reason, data, resp.headers)
    except urllib.error.HTTPError as exc:
        try:
            data = exc.read(SMALL_BODY)
        except (OSError, http.client.HTTPException):
            data = b""
        finally:
            exc.close()
        return _Outcome(
            exc.code, str(exc.reason), data, exc.headers, transient=exc.code in RETRIED_STATUSES
        )
    except urllib.error.URLError as exc:
        cause = exc.reason
        if isinstance(cause, ConnectionError | TimeoutError):
            return _Outcome(None, _describe_oserror(cause, timeout), transient=True)
        if isinstance(cause, ssl.SSLError):
            return _Outcome(None, f"TLS failed: {getattr(cause, 'reason', None) or cause}")
        if isinstance(cause, OSError):
            return _Outcome(None, _describe_oserror(cause, timeout))
        return _Outcome(None, str(cause))
    except (ConnectionError, TimeoutError) as exc:
        return _Outcome(None, _describe_oserror(exc, timeout), transient=True)
    except http.client.HTTPException as exc:
        # A garbled or cut-off answer: the connection broke mid-way, as good as a reset.
        return _Outcome(None, f"broken answer ({type(exc).__name__})", transient=True)
    except OSError as exc:
        return _Outcome(None, _describe_oserror(exc, timeout))


def _describe_oserror(exc: OSError, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return "connection reset"
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot connect: {text}"


def _retry_after(outcome: _Outcome, clock: Clock, policy: RetryPolicy) -> float | None:
    """The server's ``Retry-After`` in seconds (number or HTTP date), capped; else None."""
    if outcome.headers is None:
        return None
    raw = (outcome.headers.get("Retry-After") or "").strip()
    if not raw:
        return None
    if raw.isdigit():
        seconds = float(raw)
    else:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - clock.now()).total_seconds()
    return max(0.0, min(seconds, policy.max_retry_after))


def _reason(outcome: _Outcome) -> str:
    if outcome.status is None:
        return outcome.reason
    return f"HTTP {outcome.status} {outcome.reason}".rstrip()


def excerpt(data: bytes, secret: Secret | None, *, limit: int = EXCERPT_CHARS) -> str:
    """The start of a body as one printable line, scrubbed before it is cut."""
    text = scrub(data.decode("utf-8", "replace"), secret)
    text = " ".join(text.split())
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _failure(
    error: type[PetrovaError],
    method: str,
    url: str,
    outcome: _Outcome,
    attempts: int,
    *,
    token: Secret | None,
    token_env: str | None,
) -> PetrovaError:
    if outcome.status is None:
        message = f"{method} failed: {outcome.reason}"
    else:
        message = f"{method} answered {_reason(outcome)}"
    if attempts > 1:
        message += f" after {attempts} attempts"
    if outcome.status in (401, 403):
        if token is None:
            message += " (no token was sent"
            message += f": {token_env} is not set)" if token_env else ")"
        elif token_env:
            message += f" (check the token in {token_env})"
    if outcome.status is not None and 300 <= outcome.status < 400 and outcome.headers:
        target = outcome.headers.get("Location")
        message += " (redirects are not followed; use the final URL"
        message += f": {target})" if target else ")"
    if outcome.body:
        message += f": {excerpt(outcome.body, token)}"
    return error(scrub(message, token), location=Location(scrub(url, token)))
