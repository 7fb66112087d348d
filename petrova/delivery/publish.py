"""Sending documents to the dashboards' ingest endpoint, safe to run unattended.

Every request goes through :mod:`petrova.net.http` (its deadline, secret, loopback, proxy
and redirect rules); this module adds the ingest's own policy. Three promises shape it:

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

import os
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from petrova import clock
from petrova.delivery.policy import RetryNote, RetryPolicy
from petrova.errors import (
    EndpointUrlInvalid,
    IngestFailed,
    IngestTokenMissing,
    Location,
    PetrovaError,
    UsageError,
)
from petrova.net.http import (
    Answer,
    NoAnswer,
    Secret,
    Transport,
    is_loopback,
    is_token_text,
    scrub,
)
from petrova.net.http import request as _http_request

RETRIED_STATUSES = frozenset({429, 502, 503, 504})
#: How much of an answer's body is kept for a failure message.
EXCERPT_CHARS = 200
#: Bytes read from an answer whose body only feeds a message.
SMALL_BODY = 64 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
    if not is_token_text(value):
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
    if sends_token and parts.scheme == "http" and not is_loopback(parts.hostname):
        raise EndpointUrlInvalid(
            f"plain http:// would send the bearer token in clear text to {parts.hostname}; "
            "use https:// (http:// is accepted for 127.0.0.1, ::1 and localhost only)",
            location=where,
        )
    return url


@dataclass(frozen=True)
class Clock:
    sleep: Callable[[float], None]
    now: Callable[[], datetime]


SYSTEM_CLOCK = Clock(sleep=time.sleep, now=clock.system_now)  # HTTP dates: the real clock


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    body: bytes
    attempts: int
    truncated: bool = False  # the body was longer than ``max_body``


@dataclass(frozen=True)
class _Outcome:
    status: int | None  # None: no HTTP answer at all
    reason: str
    body: bytes = b""
    headers: Mapping[str, str] | None = None
    transient: bool = False
    truncated: bool = False


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
    if token is not None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" and not is_loopback(parts.hostname or ""):
            raise EndpointUrlInvalid(  # check_url said so already; the last line of defence
                "the bearer token travels in clear text only to the loopback interface",
                location=Location(field="url"),
            )
    # The operator's own endpoint: any address it resolves to is the operator's choice.
    transport = Transport(timeout=policy.timeout, allow_inward=True)
    attempt = 0
    while True:
        attempt += 1
        outcome = _attempt(method, url, body, token, transport, max_body)
        if outcome.status is not None and 200 <= outcome.status < 300:
            return Response(
                outcome.status, outcome.reason, outcome.body, attempt, outcome.truncated
            )
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
    token: Secret | None,
    transport: Transport,
    max_body: int,
) -> _Outcome:
    """One request within the policy's timeout in all (connect, headers and body)."""
    try:
        answer: Answer = _http_request(
            method, url, transport=transport, body=body, token=token, max_body=max_body
        )
    except NoAnswer as exc:
        return _Outcome(None, exc.reason, transient=exc.transient)
    return _Outcome(
        answer.status,
        answer.reason,
        answer.body,
        answer.headers,
        transient=answer.status in RETRIED_STATUSES,
        truncated=answer.truncated,
    )


def _retry_after(outcome: _Outcome, clock: Clock, policy: RetryPolicy) -> float | None:
    """The server's ``Retry-After`` in seconds (number or HTTP date), capped; else None."""
    if outcome.headers is None:
        return None
    raw = (outcome.headers.get("retry-after") or "").strip()
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
        target = outcome.headers.get("location")
        message += " (redirects are not followed; use the final URL"
        message += f": {target})" if target else ")"
    if outcome.body:
        message += f": {excerpt(outcome.body, token)}"
    return error(scrub(message, token), location=Location(scrub(url, token)))
