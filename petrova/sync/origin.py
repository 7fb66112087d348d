"""The one origin rule, for ``petrova sync`` and ``petrova bootstrap`` alike (SPEC §12).

A clone's origin is compared as configured (``git config --get remote.origin.url``),
never as ``url.<base>.insteadOf`` rewrites it: the registry holds the public url, a
mirror is the operator's transport, and the two commands must agree about which repo a
clone is. ssh, scp-like and https forms of one repo are the same repo.
"""

from __future__ import annotations

from urllib.parse import urlsplit

#: What to ask git for: the configured url, before any insteadOf rewriting.
ORIGIN_CONFIG_ARGS = ("config", "--get", "remote.origin.url")


def normalise_remote(url: str) -> str:
    """``host/owner/name``, lowercase: ssh, scp-like and https forms of one repo agree."""
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        path = parts.path
    elif ":" in text and "/" not in text.split(":", 1)[0]:  # git@host:owner/name
        host_part, path = text.split(":", 1)
        host = host_part.rsplit("@", 1)[-1].lower()
    else:
        return text.lower().rstrip("/").removesuffix(".git")
    path = path.strip("/").removesuffix(".git").rstrip("/")
    return f"{host}/{path}".lower()


def same_repo(origin: str, registry_url: str) -> bool:
    """Whether a configured origin names the registry's repo."""
    return normalise_remote(origin) == normalise_remote(registry_url)
