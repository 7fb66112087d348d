"""Chat messages through apprise: Slack, Teams, Discord, Matrix, mail, ``json://``, ….

``PETROVA_NOTIFY_URLS`` holds apprise URLs separated by spaces or new lines. They often
carry a secret (a Slack token in the path), so a URL is never shown, logged or written:
failures name it by its position, and what was delivered where is kept by a short
digest of the URL. Each send has a bounded time (:data:`SEND_TIMEOUT`); apprise's own
log lines, which may hold a URL, go nowhere.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

ENV = "PETROVA_NOTIFY_URLS"
SEND_TIMEOUT = 15.0
TITLE = "petrova"

logging.getLogger("apprise").addHandler(logging.NullHandler())
logging.getLogger("apprise").propagate = False


@dataclass(frozen=True)
class Target:
    """One notification URL: ``index`` (1-based) is how messages name it."""

    index: int
    url: str

    @property
    def id(self) -> str:
        """A stable name for what was delivered where (a digest: never the URL)."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"Target({self.index}, '***')"


def targets(environ: Mapping[str, str] | None = None) -> list[Target]:
    raw = (os.environ if environ is None else environ).get(ENV, "")
    return [Target(i, u) for i, u in enumerate(raw.split(), start=1)]


def send(target: Target, text: str, *, timeout: float = SEND_TIMEOUT) -> str | None:
    """Deliver ``text`` (already :func:`~petrova.notify.escape.safe` where it quotes
    input); ``None`` when delivered, else why not (without the URL)."""
    with warnings.catch_warnings():
        # apprise's plugins import the standard library's deprecated imghdr: its business,
        # not a failure of this send (the test suite turns warnings into errors).
        warnings.simplefilter("ignore", DeprecationWarning)
        return _send(target, text, timeout)


def _send(target: Target, text: str, timeout: float) -> str | None:
    import apprise  # only a run that has something to say pays for the import

    sender = apprise.Apprise()
    if not sender.add(target.url):
        return f"notification URL #{target.index} in {ENV} is not one apprise understands"
    try:
        result = sender.notify(
            body=text,
            title=TITLE,
            body_format=apprise.NotifyFormat.MARKDOWN,
            timeout=timeout,
        )
    except Exception as exc:  # a plugin's failure is one failed send, never a crash
        return f"notification URL #{target.index}: {type(exc).__name__}"
    if not result:
        return f"notification URL #{target.index} did not accept the message"
    return None
