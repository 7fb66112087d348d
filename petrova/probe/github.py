"""GitHub's REST API, asked politely: ETags, and a rate-limit budget shared by a run.

Every answer's ``ETag`` is kept (with the little of the body the probes need) in the
:class:`EtagCache`; the next request for the same URL sends ``If-None-Match``, and a
``304 Not Modified`` answer, which GitHub does not count against the rate limit, is
served from the cache. The :class:`Budget` reads ``x-ratelimit-remaining``,
``x-ratelimit-reset`` and ``retry-after``; once asking again could run the budget out,
it refuses (:class:`BudgetSpent`), so the cells not yet probed wait for the next run.
A shard of a matrix (``--shard K/N``) spends at most ``1/N`` of what GitHub said was
left when its run began, so N shards starting together never turn into 403s.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from petrova.net import etags
from petrova.net.http import Secret
from petrova.probe.http import Answer, CouldNotLook, Transport, request

DEFAULT_API = "https://api.github.com"
CACHE_FILE = "probe-etags.json"
#: Requests kept in hand: a run stops asking while this many or fewer remain.
RESERVE = 0


class BudgetSpent(Exception):
    """The rate limit would run out: this cell is left for the next run."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Budget:
    """What is left of the rate limit, as GitHub last said, less requests in flight."""

    def __init__(self, *, shares: int = 1, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Condition()
        #: Runs sharing the rate limit at once (a matrix's shards): this one may spend
        #: ``allowance``, its share of what was left when it first heard from GitHub.
        self.shares = max(1, shares)
        self.allowance: int | None = None
        #: Answers of this run that counted against the limit (every status but 304).
        self.counted = 0
        self._monotonic = monotonic
        #: Has any answer come back yet? Until then one request at a time, so that a
        #: run with many jobs learns the budget before spending it.
        self._learned = False
        self.remaining: int | None = None
        self.reset: int | None = None
        self.blocked_until: float | None = None
        self.in_flight = 0
        self.spent_reason: str | None = None

    @contextlib.contextmanager
    def ask(self) -> Iterator[None]:
        with self._lock:
            while not self._learned and self.in_flight > 0:
                self._lock.wait()
            reason = self._refusal()
            if reason is not None:
                self.spent_reason = self.spent_reason or reason
                raise BudgetSpent(reason)
            self.in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1
                self._learned = True  # an answer, or none: either way, stop queueing
                self._lock.notify_all()

    def _refusal(self) -> str | None:
        if self.allowance is not None and self.counted + self.in_flight >= self.allowance:
            return (
                f"this shard's share of the GitHub rate limit is spent (1/{self.shares} of "
                f"what was left: {self.allowance} requests)"
            )
        if self.blocked_until is not None and self._monotonic() < self.blocked_until:
            return "GitHub asked to wait (retry-after)"
        if self.remaining is not None and self.remaining - self.in_flight <= RESERVE:
            if self.reset is not None and time.time() >= self.reset:
                self.remaining = None  # a new window has begun
                return None
            return "the GitHub rate limit is spent" + self._until()
        return None

    def _until(self) -> str:
        if self.reset is None:
            return ""
        return f" until {time.strftime('%H:%M:%SZ', time.gmtime(self.reset))}"

    def update(self, answer: Answer) -> None:
        """Learn from one answer's headers (the lowest ``remaining`` of a window wins)."""
        headers = answer.headers
        with self._lock:
            remaining = _int(headers.get("x-ratelimit-remaining"))
            reset = _int(headers.get("x-ratelimit-reset"))
            if answer.status != 304:
                self.counted += 1
            if remaining is not None:
                if reset is not None and reset != self.reset:
                    if self.reset is not None:  # a new window: a new share of it
                        self.allowance, self.counted = None, int(answer.status != 304)
                    self.remaining, self.reset = remaining, reset
                elif self.remaining is None or remaining < self.remaining:
                    self.remaining = remaining
            if self.shares > 1 and self.allowance is None and self.remaining is not None:
                self.allowance = (self.remaining + self.counted) // self.shares
            after = _int(headers.get("retry-after"))
            if after is not None and answer.status in (403, 429):
                self.blocked_until = self._monotonic() + after


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def default_cache_dir() -> Path | None:
    """Where the ETags live: ``PETROVA_CACHE_DIR``, else ``$XDG_CACHE_HOME/petrova``
    (``~/.cache/petrova``); ``None`` when ``PETROVA_CACHE=off``. The only cache petrova
    keeps: it saves GitHub requests, never changes an outcome, and any trouble with it
    only means asking again."""
    if os.environ.get("PETROVA_CACHE", "").lower() in ("off", "0", "no", "false"):
        return None
    explicit = os.environ.get("PETROVA_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "petrova"


#: An entity tag as RFC 9110 writes it, visible ASCII only: anything else (a newline, a
#: character outside Latin-1) could not be sent back in ``If-None-Match``.
def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def valid_kept(url: str, kept: object) -> bool:
    """Is ``kept`` what this module keeps for ``url`` (see ``_keep_hooks`` and
    ``_keep_deliveries`` in :mod:`petrova.probe.kinds`)? A cache entry of another shape
    is dropped on load, never served for a ``304``."""
    path = url.split("?", 1)[0]
    if not isinstance(kept, list):
        return False
    if path.endswith("/deliveries"):
        return len(kept) <= 1 and all(k is None or _is_int(k) for k in kept)
    if path.endswith("/hooks"):
        return all(
            isinstance(h, dict)
            and set(h) == {"id", "active", "host"}
            and _is_int(h["id"])
            and isinstance(h["active"], bool)
            and isinstance(h["host"], str)
            for h in kept
        )
    return False


class EtagCache(etags.EtagCache):
    """The probes' ETags (``probe-etags.json``).

    Only what a ``304`` needs to recompute the same outcome is kept (hook ids, their
    ``active`` flag and the *host* of their URL; a delivery's status code), never a
    token and never a full webhook URL, which may carry a secret in its query.
    """

    def __init__(self, directory: Path | None) -> None:
        super().__init__(None if directory is None else directory / CACHE_FILE, valid_kept)


@dataclass
class Stats:
    requests: int = 0
    not_modified: int = 0


class GitHub:
    """A small client: ``get(path, keep)`` → what ``keep`` extracts from the JSON answer."""

    def __init__(
        self,
        *,
        transport: Transport,
        cache: EtagCache,
        budget: Budget,
        api: str | None = None,
    ) -> None:
        self.api = (api or os.environ.get("GITHUB_API_URL") or DEFAULT_API).rstrip("/")
        self.transport = transport
        self.cache = cache
        self.budget = budget
        self.stats = Stats()
        self._lock = threading.Lock()

    def get(self, path: str, token: Secret, keep: Callable[[Any], Any]) -> tuple[int, Any]:
        """``(status, kept)``: kept is ``keep(json)`` for 2xx (or its cached form on 304).

        Raises :class:`CouldNotLook` (no answer, 401/403/5xx and other statuses a probe
        cannot read meaning into) and :class:`BudgetSpent`. A 404 is returned, not raised.
        """
        url = self.api + path
        cached = self.cache.get(url)
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if cached is not None:
            headers["If-None-Match"] = cached[0]
        with self.budget.ask():
            # The API base is the operator's (GITHUB_API_URL), so any address of it is allowed.
            answer = request(
                url, transport=self.transport, headers=headers, token=token, trusted=True
            )
            self.budget.update(answer)
        with self._lock:
            self.stats.requests += 1
            if answer.status == 304:
                self.stats.not_modified += 1
        if answer.status == 304 and cached is not None:
            return 200, cached[1]
        if 200 <= answer.status < 300:
            try:
                kept = keep(json.loads(answer.body))
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                raise CouldNotLook(
                    f"GitHub answered {answer.status} with an unreadable body"
                ) from None
            etag = answer.headers.get("etag")
            if etag:
                self.cache.put(url, etag, kept)
            return answer.status, kept
        if answer.status == 404:
            return 404, None
        if answer.status in (403, 429) and (
            answer.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in answer.headers
        ):
            self.budget.spent_reason = self.budget.spent_reason or "GitHub's rate limit answer"
            raise BudgetSpent(f"GitHub answered {answer.status}: rate limit exceeded")
        if answer.status == 401:
            raise CouldNotLook("GitHub answered 401: the token was refused")
        if answer.status == 403:
            raise CouldNotLook("GitHub answered 403: the token may not read webhooks")
        raise CouldNotLook(f"GitHub answered {answer.status}")
