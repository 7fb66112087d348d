"""Which hosts may receive the GitHub token: the operator says, never an input file.

A registry entry's ``url:`` and a catalogue's probe are written by PRs; the token they
could collect is the fleet's. So the token goes only to the GitHub host(s) the operator
configured: ``github.com`` and ``api.github.com``, the host of ``GITHUB_API_URL`` (a
GitHub Enterprise server serves git and its API from one host), and whatever
``PETROVA_TRUSTED_GIT_HOSTS`` adds (hosts, optionally ``host:port``, separated by commas
or spaces). A host without a port is trusted on the default port only, as git matches.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping

TRUSTED_HOSTS_ENV = "PETROVA_TRUSTED_GIT_HOSTS"
DEFAULT_HOSTS = ("github.com", "api.github.com")
#: The variables that hold a GitHub token by convention.
GITHUB_TOKEN_VARS = frozenset({"GITHUB_TOKEN", "GH_TOKEN"})
_ENTRY = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?)+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?"
)


def trusted_github_hosts(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``host`` or ``host:port`` entries, lower-case, in a stable order."""
    env = os.environ if environ is None else environ
    found: list[str] = list(DEFAULT_HOSTS)
    api = env.get("GITHUB_API_URL", "").strip()
    if api:
        try:
            parts = urllib.parse.urlsplit(api)
            if parts.hostname and parts.scheme in ("http", "https"):
                found.append(parts.netloc.rpartition("@")[2].lower())
        except ValueError:
            pass
    for entry in re.split(r"[\s,]+", env.get(TRUSTED_HOSTS_ENV, "").strip()):
        if entry and _ENTRY.fullmatch(entry):
            found.append(entry.lower().rstrip("."))
    return tuple(dict.fromkeys(found))


def _split(entry: str) -> tuple[str, str | None]:
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, rest[1:] or None if rest.startswith(":") else None
    host, _, port = entry.partition(":")
    return host, port or None


def is_trusted_github_host(
    host: str, environ: Mapping[str, str] | None = None, *, port: int | None = None
) -> bool:
    """Is ``host`` (and ``port``, when the entry names one) a trusted GitHub host?"""
    wanted = host.lower().strip("[]").rstrip(".")
    for entry in trusted_github_hosts(environ):
        name, entry_port = _split(entry)
        if name != wanted or port is None:
            if name == wanted:
                return True
            continue
        if int(entry_port or 443) == port:  # as git matches: no port is the default one
            return True
    return False
