"""The GitHub REST calls notify makes (issues, comments, labels, pulls), asked politely.

Every request goes through one narrow function, :data:`Send`, over petrova's one HTTP
layer (:func:`petrova.net.http.request`: one attempt, a total deadline, the token only in
the ``Authorization`` header, no redirects, no clear text off the loopback interface),
and only to a trusted GitHub host (:mod:`petrova.net.trust`: ``api.github.com`` or the
operator's ``GITHUB_API_URL``), whatever a ``Link`` header says. Manners (SPEC §10): reads send
``If-None-Match`` with the ETag kept from last time (a ``304`` costs no rate limit);
every answer's ``x-ratelimit-*`` feeds the run's :class:`Budget`; a ``Retry-After`` or a
secondary-limit ``403`` stops the run's GitHub work (:class:`BudgetSpent`) and the rest
waits for the next run. Nothing here decides what to send: :mod:`petrova.notify.run` does.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from petrova.net.http import Answer, NoAnswer, Secret, Transport, request
from petrova.net.trust import is_trusted_github_host
from petrova.notify.cache import NotifyCache
from petrova.probe.github import DEFAULT_API, Budget, BudgetSpent

__all__ = ["BudgetSpent", "GitHubFailed", "Issues", "Send", "http_send"]

#: ``(method, url, headers, body) -> answer``: the one way a request leaves notify.
Send = Callable[[str, str, Mapping[str, str], "bytes | None"], Answer]
LABEL = "petrova"
_LINK_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
MAX_PAGES = 50


class GitHubFailed(Exception):
    """GitHub did not do what was asked; the reason never holds the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def http_send(*, token: Secret, transport: Transport) -> Send:
    """:data:`Send` over the one HTTP layer: the token rides only in its header, and only
    to a trusted GitHub host (the operator's API is theirs: its address is not vetted)."""

    def send(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Answer:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if not is_trusted_github_host(host, port=parts.port):
            raise NoAnswer("bad_url", f"{host} is not a trusted GitHub host; the token stays")
        return request(
            method,
            url,
            transport=transport,
            headers=headers,
            body=body,
            token=token,
            allow_inward=True,
        )

    return send


def repo_from_url(url: str) -> str | None:
    """``owner/name`` of a ``https://github.com/owner/name(.git)`` url, else None."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname != "github.com":
        return None
    path = parts.path.strip("/").removesuffix(".git")
    return path if _REPO.fullmatch(path) else None


def check_repo(text: str) -> bool:
    return bool(_REPO.fullmatch(text))


@dataclass
class Mutation:
    """A request that changed something (for ``--json`` and the tests' accounting)."""

    method: str
    path: str


@dataclass
class Issues:
    """One repo's issues and pulls as petrova needs them."""

    repo: str
    send: Send
    budget: Budget
    cache: NotifyCache
    api: str = field(default_factory=lambda: os.environ.get("GITHUB_API_URL") or DEFAULT_API)
    mutations: list[Mutation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.api = self.api.rstrip("/")

    # --- the two kinds of request ---

    def _headers(self) -> dict[str, str]:
        return {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

    def _ask(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Answer:
        with self.budget.ask():
            try:
                answer = self.send(method, url, headers, body)
            except NoAnswer as exc:
                raise GitHubFailed(f"{method} {_path(url)}: {exc.reason}") from None
            self.budget.update(answer)
        if answer.status in (403, 429) and (
            answer.headers.get("x-ratelimit-remaining") == "0"
            or "retry-after" in answer.headers
            or b"secondary rate limit" in answer.body.lower()
        ):
            if "retry-after" not in answer.headers and answer.status == 403:
                self.budget.blocked_until = float("inf")  # no time given: not this run
            raise BudgetSpent(f"GitHub answered {answer.status}: rate limited; the rest waits")
        return answer

    def get(self, path: str) -> tuple[Any, str | None]:
        """``(json, next page url)`` of a read, served from the kept ETag's copy on ``304``
        (the copy keeps the ``Link`` too, so paging works on cached pages)."""
        url = path if path.startswith(("http://", "https://")) else self.api + path
        headers = self._headers()
        cached = self.cache.get(url)
        if cached is not None:
            headers["If-None-Match"] = cached[0]
        answer = self._ask("GET", url, headers, None)
        if answer.status == 304 and cached is not None and isinstance(cached[1], dict):
            return cached[1].get("data"), cached[1].get("next")
        if answer.status == 404:
            return None, None
        if not 200 <= answer.status < 300:
            raise GitHubFailed(f"GET {_path(url)} answered {answer.status}")
        try:
            data = json.loads(answer.body)
        except ValueError:
            raise GitHubFailed(f"GET {_path(url)} answered with unreadable JSON") from None
        match = _LINK_NEXT.search(answer.headers.get("link", ""))
        following = match.group(1) if match else None
        if following is not None and not following.startswith(self.api + "/"):
            following = None  # a Link elsewhere would carry the token there: never
        data = _trim(data)
        etag = answer.headers.get("etag")
        if etag:
            self.cache.put(url, etag, {"data": data, "next": following})
        return data, following

    def change(self, method: str, path: str, payload: Mapping[str, Any]) -> Any:
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
        answer = self._ask(method, self.api + path, self._headers(), body)
        self.mutations.append(Mutation(method, path))
        if not 200 <= answer.status < 300:
            raise GitHubFailed(f"{method} {path} answered {answer.status}{_message(answer)}")
        try:
            return json.loads(answer.body) if answer.body else None
        except ValueError:
            return None

    # --- issues ---

    def petrova_issues(self) -> list[dict[str, Any]]:
        """Every issue (open or closed, not pull requests) with petrova's label.

        Newest first, so that a new issue changes the first page's ETag: with the oldest
        first, a cached last page would answer ``304`` and hide the pages added after it.
        """
        url: str | None = (
            f"{self.api}/repos/{self.repo}/issues?labels={LABEL}&state=all"
            "&sort=created&direction=desc&per_page=100"
        )
        found: list[dict[str, Any]] = []
        pages = 0
        while url is not None and pages < MAX_PAGES:
            data, following = self.get(url)
            pages += 1
            if not isinstance(data, list):
                if data is None:
                    raise GitHubFailed(f"the issues repo {self.repo} was not found (404)")
                raise GitHubFailed("the issues list is not a list")
            found += [i for i in data if isinstance(i, dict) and "pull_request" not in i]
            url = following
        return found

    def has_label(self) -> bool:
        data, _ = self.get(f"/repos/{self.repo}/labels/{LABEL}")
        return data is not None

    def create_label(self) -> None:
        self.change(
            "POST",
            f"/repos/{self.repo}/labels",
            {"name": LABEL, "color": "5319e7", "description": "Opened by petrova notify"},
        )

    def issue(self, number: int) -> dict[str, Any] | None:
        data, _ = self.get(f"/repos/{self.repo}/issues/{number}")
        return data if isinstance(data, dict) and "pull_request" not in data else None

    def open_issue(self, title: str, body: str) -> int:
        made = self.change(
            "POST", f"/repos/{self.repo}/issues", {"title": title, "body": body, "labels": [LABEL]}
        )
        return int(made["number"])

    def edit_issue(self, number: int, **fields: Any) -> None:
        self.change("PATCH", f"/repos/{self.repo}/issues/{number}", fields)

    def comment(self, number: int, body: str) -> None:
        self.change("POST", f"/repos/{self.repo}/issues/{number}/comments", {"body": body})

    # --- pulls ---

    def open_pull(self, head: str) -> dict[str, Any] | None:
        owner = self.repo.split("/")[0]
        query = urllib.parse.urlencode({"head": f"{owner}:{head}", "state": "open"})
        data, _ = self.get(f"/repos/{self.repo}/pulls?{query}")
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return data[0]
        return None

    def pull(self, number: int) -> dict[str, Any] | None:
        data, _ = self.get(f"/repos/{self.repo}/pulls/{number}")
        return data if isinstance(data, dict) else None

    def create_pull(self, *, head: str, base: str, title: str, body: str) -> int:
        made = self.change(
            "POST",
            f"/repos/{self.repo}/pulls",
            {"head": head, "base": base, "title": title, "body": body},
        )
        return int(made["number"])

    def edit_pull(self, number: int, **fields: Any) -> None:
        self.change("PATCH", f"/repos/{self.repo}/pulls/{number}", fields)


#: What notify reads of an issue or pull: all that is kept (in memory and in the ETag
#: cache); the rest of GitHub's answer (users, reactions, urls) is dropped.
KEPT = ("number", "state", "title", "body", "created_at", "pull_request", "merged", "name")


def _trim(data: Any) -> Any:
    if isinstance(data, list):
        return [_trim(item) for item in data]
    if isinstance(data, dict):
        return {k: data[k] for k in KEPT if k in data}
    return data


def _path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.path


def _message(answer: Answer) -> str:
    try:
        message = json.loads(answer.body).get("message")
    except (ValueError, AttributeError):
        return ""
    return f": {str(message)[:200]}" if message else ""
