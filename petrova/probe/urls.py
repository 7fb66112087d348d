"""A URL a probe may ask: parsed, encoded and checked before any request is made.

Evidence is written by consumer repos, so a URL built from it may hold anything: an empty
host label (``https://traceo..example.com/x``), a path that is not ASCII
(``https://host/vérif``), a space, a control character, credentials. ``http.client``
would fail on some of these deep inside a request (an IDNA error in name resolution, an
encoding error in the request line). :func:`safe_url` turns a text into the one ASCII URL
that is sent, or says why there is none, so a check never has to find out by crashing. The
parsing and encoding are the HTTP layer's own (:func:`petrova.net.http.parse_url`): this
module only holds evidence to more on top.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse

from petrova.net.http import NoAnswer, parse_url

_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
MAX_URL = 2048


class UrlRefused(ValueError):
    """Why a text is not a URL petrova will ask; ``reason`` is short and safe to record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _check_host(host: str) -> str:
    """The wire form of a host :func:`~petrova.net.http.parse_url` accepted, with every
    label of a name checked (not empty, letters, digits, ``_`` and inner ``-``): IDNA
    alone lets ``-bad-`` or a bare ``xn--`` through to name resolution."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return f"[{address.compressed}]" if address.version == 6 else address.compressed
    name = host.removesuffix(".")
    if not name or len(name) > 253:
        raise UrlRefused("the host name is empty or too long")
    for label in name.split("."):
        if not label:
            raise UrlRefused("the host name has an empty label (two dots in a row)")
        if not _LABEL.fullmatch(label):
            raise UrlRefused("the host name has a label that is not letters, digits, _ and -")
    return name.lower()


def _name_problem(url: str) -> str:
    """Why IDNA refused the host of ``url`` (which parsed), in a person's words."""
    labels = (urllib.parse.urlsplit(url).hostname or "").removesuffix(".").split(".")
    if any(not label for label in labels):
        return "the host name has an empty label (two dots in a row)"
    if any(len(label) > 63 for label in labels):
        return "the host name has a label longer than 63 characters"
    return "the host name is not a valid international name"


def safe_url(text: str) -> str:
    """The ASCII ``http(s)://`` URL to send for ``text``, or :class:`UrlRefused`.

    The HTTP layer's :func:`~petrova.net.http.parse_url` parses and encodes (one rule for
    every request petrova makes); evidence is held to more on top: no backslash, at most
    :data:`MAX_URL` characters, every host label checked before name resolution, a lone
    ``%`` sent as ``%25``. A non-ASCII path or query is percent-encoded as UTF-8
    (``/vérif`` is sent as ``/v%C3%A9rif``); a fragment is dropped (it is never sent).
    What comes out is already safe: ``safe_url(safe_url(x)) == safe_url(x)``.
    """
    if len(text) > MAX_URL:
        raise UrlRefused(f"the URL is longer than {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 or ch == "\\" for ch in text):
        raise UrlRefused("the URL holds a space, a control character or a backslash")
    before_fragment = text.split("#", 1)[0]
    try:
        target = parse_url(_LONE_PERCENT.sub("%25", before_fragment))
    except NoAnswer as exc:
        if "DNS name" in exc.reason:
            raise UrlRefused(_name_problem(before_fragment)) from None
        raise UrlRefused(exc.reason) from None
    host = _check_host(target.host)
    default = 443 if target.scheme == "https" else 80
    netloc = host if target.port == default else f"{host}:{target.port}"
    return f"{target.scheme}://{netloc}{target.path}"
