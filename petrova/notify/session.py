"""One notify run's shared parts: what it was asked (:class:`NotifyPlan`), how it reaches
the outside (:class:`Wiring`), what it did (:class:`NotifyReport`), and the
:class:`Session` through which every read and change goes, so that ``--dry-run``, a
spent rate budget and one item's failure are handled in one place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from petrova.documents.catalogue import Catalogue
from petrova.documents.shard import ALL, Shard
from petrova.ledger.rules import DEFAULT_STALE_AFTER
from petrova.notify import chat, pinpr
from petrova.notify.github import BudgetSpent, GitHubFailed, Issues

DEFAULT_REMINDERS = (3, 7, 14, 28)
ISSUES_REPO_ENV = "PETROVA_ISSUES_REPO"
TOKEN_ENV = "GITHUB_TOKEN"


@dataclass(frozen=True)
class NotifyPlan:
    registry: Path
    catalogue: Catalogue
    state_dir: Path
    workspace: Path | None
    now: datetime
    issues_repo: str | None = None
    dry_run: bool = False
    reminders: tuple[int, ...] = DEFAULT_REMINDERS
    shard: Shard = ALL
    wait: float = 600.0
    stale_after: timedelta = DEFAULT_STALE_AFTER


@dataclass(frozen=True)
class Action:
    """One thing told (or, under ``--dry-run``, that would be)."""

    verb: str  # open, edit, reopen, comment, close, label, send, push, open-pr, edit-pr, close-pr
    target: str
    what: str

    def as_json(self) -> dict[str, str]:
        return {"verb": self.verb, "target": self.target, "what": self.what}


@dataclass
class NotifyReport:
    dry_run: bool
    actions: list[Action] = field(default_factory=list)
    #: What could not be told this run (it is tried again next run).
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "actions": [a.as_json() for a in self.actions],
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class Wiring:
    """How a run reaches the outside: injectable so tests can count and refuse."""

    github: Callable[[str], Issues] | None
    chat_targets: list[chat.Target]
    chat_send: Callable[[chat.Target, str], str | None] = chat.send


class Session:
    def __init__(self, plan: NotifyPlan, wiring: Wiring, report: NotifyReport) -> None:
        self.plan = plan
        self.wiring = wiring
        self.report = report
        self.github_stopped: str | None = None
        self.labelled = False

    def read(self, what: str, fn: Callable[..., Any], /, *args: Any) -> tuple[bool, Any]:
        """A read (or local git work): ``(done, result)``; trouble is this item's problem,
        a spent budget stops GitHub work for the rest of the run."""
        if self.github_stopped is not None:
            return False, None
        try:
            return True, fn(*args)
        except BudgetSpent as exc:
            self.github_stopped = exc.reason
            self.report.problems.append(f"GitHub: {exc.reason}")
        except GitHubFailed as exc:
            self.report.problems.append(f"GitHub: {what}: {exc.reason}")
        except pinpr.PinFailed as exc:
            self.report.problems.append(f"{what}: {exc.reason}")
        return False, None

    def change(
        self, verb: str, target: str, what: str, fn: Callable[..., Any], /, *args: Any, **kw: Any
    ) -> tuple[bool, Any]:
        """One change, said first; under ``--dry-run`` only said: ``(True, None)``."""
        if self.github_stopped is not None:
            return False, None
        self.report.actions.append(Action(verb, target, what))
        if self.plan.dry_run:
            return True, None
        return self.read(f"{verb} {target}", lambda: fn(*args, **kw))
