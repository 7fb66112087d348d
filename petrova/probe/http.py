"""What a probe check sends: :mod:`petrova.net.http` with the probes' own policy.

One attempt (the next scheduled run is the retry). On top of the HTTP layer's rules:

- **No probe aimed inward.** What a consumer's evidence or the catalogue names is
  connected to only at public addresses (checked after name resolution, for every
  address tried), unless the operator sets ``PETROVA_PROBE_ALLOW_PRIVATE=1``. The GitHub
  API the operator configured is the operator's and is trusted (``trusted=True``).
- **Nothing recorded tells why a connection failed.** Refused, reset, TLS version,
  certificate, name resolution, an answer that is not HTTP: all are recorded as the one
  phrase "could not connect", and a refused address as "address not allowed", so the
  committed ledgers cannot serve as a port scanner's report. A timeout stays a timeout.
- **Tokens only from the operator's allowlist.** A catalogue's ``x-probe`` may name a
  token variable only from :func:`allowed_token_vars` (``PETROVA_PROBE_TOKEN_VARS``), and
  the GitHub token goes only to the GitHub hosts the operator trusts.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from petrova.net import http as net
from petrova.net.http import Answer, NoAnswer, Secret, inward_allowed, is_token_text
from petrova.net.trust import GITHUB_TOKEN_VARS, is_trusted_github_host

#: Bytes read of an answer at most; probes only need small JSON documents.
MAX_BODY = 4 * 1024 * 1024
#: The token variables the shipped catalogue names; ``PETROVA_PROBE_TOKEN_VARS`` replaces them.
DEFAULT_TOKEN_VARS = ("GITHUB_TOKEN", "PETROVA_PEBBLE_TOKEN")
TOKEN_VARS_ENV = "PETROVA_PROBE_TOKEN_VARS"
COULD_NOT_CONNECT = "could not connect"
NOT_ALLOWED = "address not allowed"

__all__ = ["Answer", "CouldNotLook", "Transport", "probe_token", "request"]


class CouldNotLook(Exception):
    """The request got no usable answer: the probe could not look (``unreachable``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Transport(net.Transport):
    """A probe run's transport: a 10 s deadline, and addresses off the public internet
    refused unless the operator allows them."""

    timeout: float = 10.0
    allow_inward: bool = field(default_factory=inward_allowed)


def request(
    url: str,
    *,
    transport: net.Transport,
    headers: Mapping[str, str] | None = None,
    token: Secret | None = None,
    method: str = "GET",
    trusted: bool = False,
) -> Answer:
    """Send one request; return the answer whatever its status, or raise :class:`CouldNotLook`.

    ``trusted``: the URL is the operator's own (the configured GitHub API), so any
    address is allowed and failures keep their detail.
    """
    try:
        answer = net.request(
            method,
            url,
            transport=transport,
            headers=headers,
            token=token,
            max_body=MAX_BODY,
            allow_inward=True if trusted else None,
        )
    except NoAnswer as exc:
        raise CouldNotLook(exc.reason if trusted else _phrase(exc)) from None
    if answer.truncated:
        raise CouldNotLook(f"the answer is over {MAX_BODY} bytes")
    return answer


def _phrase(exc: NoAnswer) -> str:
    """What may be recorded of a failure: nothing that tells a closed port from a TLS
    server from a firewall."""
    if exc.kind == "not_allowed":
        return NOT_ALLOWED
    if exc.kind in ("bad_url", "insecure", "timeout"):
        return exc.reason  # said before any connection, or only that time ran out
    return COULD_NOT_CONNECT


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def allowed_token_vars(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The token variables a catalogue may name: ``PETROVA_PROBE_TOKEN_VARS`` (names
    separated by commas or spaces) when set, else :data:`DEFAULT_TOKEN_VARS`."""
    env = os.environ if environ is None else environ
    raw = env.get(TOKEN_VARS_ENV)
    if raw is None or not raw.strip():
        return frozenset(DEFAULT_TOKEN_VARS)
    return frozenset(n for n in re.split(r"[\s,]+", raw.strip()) if _NAME.fullmatch(n))


def probe_token(name: str, environ: Mapping[str, str], *, url: str | None = None) -> Secret | str:
    """The token in variable ``name`` for a check, or the short reason it is not sent.

    Refused: a variable not on the operator's allowlist, and a GitHub token for a ``url``
    whose host is not one of the trusted GitHub hosts.
    """
    if name not in allowed_token_vars(environ):
        return f"{name} is not an allowed token variable ({TOKEN_VARS_ENV})"
    value = environ.get(name, "").strip()
    if not is_token_text(value):
        return f"{name} not set"
    if url is not None and name in GITHUB_TOKEN_VARS:
        try:
            parts = urllib.parse.urlsplit(url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            host, port = "", 0
        if not is_trusted_github_host(host, environ, port=port):
            return f"will not send {name} to {host or '?'}, which is not a trusted GitHub host"
    return Secret(value)
