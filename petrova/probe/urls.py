"""A URL a probe may ask: parsed, encoded and checked before any request is made.

Evidence is written by consumer repos, so a URL built from it may hold anything: an empty
host label (``https://traceo..example.com/x``), a path that is not ASCII
(``https://host/vérif``), a space, a control character, credentials. ``http.client``
would fail on some of these deep inside a request (an IDNA error in name resolution, an
encoding error in the request line). :func:`safe_url` turns a text into the one ASCII URL
that is sent, or says why there is none, so a check never has to find out by crashing.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse

#: Characters kept as they are in a path; everything else is percent-encoded (UTF-8).
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
MAX_URL = 2048


class UrlRefused(ValueError):
    """Why a text is not a URL petrova will ask; ``reason`` is short and safe to record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def ascii_host(host: str) -> str:
    """The host as it goes on the wire: an IP literal as it is, a name IDNA-encoded with
    every label checked (not empty, at most 63 octets, letters, digits and inner ``-``)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return f"[{address.compressed}]" if address.version == 6 else address.compressed
    name = host.removesuffix(".")
    if not name or len(name) > 253:
        raise UrlRefused("the host name is empty or too long")
    labels = []
    for label in name.split("."):
        if not label:
            raise UrlRefused("the host name has an empty label (two dots in a row)")
        try:
            encoded = label.encode("idna").decode("ascii") if not label.isascii() else label
        except UnicodeError:
            raise UrlRefused("the host name is not a valid international name") from None
        if not _LABEL.fullmatch(encoded):
            raise UrlRefused("the host name has a label that is not letters, digits, _ and -")
        labels.append(encoded.lower())
    return ".".join(labels)


def safe_url(text: str) -> str:
    """The ASCII ``http(s)://`` URL to send for ``text``, or :class:`UrlRefused`.

    Refused: anything but ``http``/``https``, no host or a bad one, credentials, a bad
    port, whitespace, control characters or backslashes anywhere, more than
    :data:`MAX_URL` characters. A non-ASCII path or query is percent-encoded as UTF-8
    (``/vérif`` is sent as ``/v%C3%A9rif``), a lone ``%`` as ``%25``; a fragment is
    dropped (it is never sent). The same text always gives the same URL.
    """
    if len(text) > MAX_URL:
        raise UrlRefused(f"the URL is longer than {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 or ch == "\\" for ch in text):
        raise UrlRefused("the URL holds a space, a control character or a backslash")
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        raise UrlRefused("not a URL (its host or port cannot be read)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("the URL carries credentials; petrova does not send those")
    if not hostname:
        raise UrlRefused("the URL has no host")
    host = ascii_host(hostname)
    netloc = host if port is None else f"{host}:{port}"
    path = urllib.parse.quote(_LONE_PERCENT.sub("%25", parts.path), safe=_PATH_SAFE) or "/"
    query = urllib.parse.quote(_LONE_PERCENT.sub("%25", parts.query), safe=_QUERY_SAFE)
    return urllib.parse.urlunsplit((scheme, netloc, path, query, ""))
