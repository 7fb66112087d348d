"""``petrova notify``: tell the humans what needs them, once per change (SPEC §13).

One run: read the fleet as the snapshot does; under the notify lock, re-read what was
told (:mod:`petrova.notify.state`); work out the conditions and transitions
(:mod:`petrova.notify.conditions`, pure); then, in this order, the pin PRs (so that
issues can name them), one issue per condition, the fleet's tracking issue, and the
chat messages; and write back what was told. Each thing told is recorded only once it
was told, so a failure is retried next run and a success is never repeated. With
``dry_run`` every step says what it would do and nothing is sent, pushed or written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from petrova.delivery.publish import Secret
from petrova.documents.catalogue import Catalogue
from petrova.documents.registry import LoadedRegistry, load_registry
from petrova.documents.shard import ALL, Shard
from petrova.errors import IssuesRepoUnknown, Location
from petrova.fleet.gather import FleetInputs, gather
from petrova.fleet.rollout import gates_document, rollout_report
from petrova.fleet.snapshot import GATE_DAYS, snapshot_document
from petrova.ledger.rules import DEFAULT_STALE_AFTER
from petrova.models import RepoEntry, Snapshot, format_timestamp, parse_timestamp
from petrova.notify import body as bodies
from petrova.notify import chat, pinpr
from petrova.notify import state as told_state
from petrova.notify.conditions import (
    CellView,
    Condition,
    FleetView,
    PinView,
    SyncView,
    Transition,
    cell_transition,
    conditions,
    count_sync_failures,
    gate_transition,
    history_of,
    sync_transition,
)
from petrova.notify.escape import safe
from petrova.notify.github import (
    LABEL,
    BudgetSpent,
    GitHubFailed,
    Issues,
    check_repo,
    repo_from_url,
)
from petrova.probe.github import Budget, EtagCache, default_cache_dir

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


def resolve_issues_repo(option: str | None, loaded: LoadedRegistry) -> str:
    chosen = option or os.environ.get(ISSUES_REPO_ENV) or None
    if chosen is not None:
        if not check_repo(chosen):
            raise IssuesRepoUnknown(
                f"{chosen!r} is not OWNER/NAME of a GitHub repo",
                location=Location(field="--issues-repo"),
            )
        return chosen
    plane = next((r for r in loaded.registry.repos if r.role == "control-plane"), None)
    found = repo_from_url(plane.url) if plane is not None else None
    if found is None:
        raise IssuesRepoUnknown(
            "no issues repo: pass --issues-repo OWNER/NAME or set PETROVA_ISSUES_REPO (the "
            "default, the control plane's own repo, needs a control-plane entry whose url "
            "is https://github.com/OWNER/NAME)",
            location=Location(field="--issues-repo"),
        )
    return found


def github_wiring(token: Secret | None, *, timeout: float = 20.0) -> Callable[[str], Issues] | None:
    """Issues clients for the trusted API host (``GITHUB_API_URL``), with the run's
    shared budget and ETags; ``None`` without a token (then GitHub is left alone)."""
    if token is None:
        return None
    from petrova.notify.github import http_send
    from petrova.probe.http import Transport

    send = http_send(token=token, transport=Transport(timeout=timeout))
    budget = Budget()
    cache = EtagCache(default_cache_dir())
    return lambda repo: Issues(repo, send, budget, cache)


# --- reading the fleet ----------------------------------------------------------------------


def read_fleet(plan: NotifyPlan) -> tuple[LoadedRegistry, FleetInputs, Snapshot]:
    loaded = load_registry(plan.registry, plan.catalogue, today=plan.now.date())
    inputs = gather(loaded, state_dir=plan.state_dir, workspace=plan.workspace)
    document = snapshot_document(inputs, now=plan.now, stale_after=plan.stale_after)
    report = rollout_report(inputs, document, now=plan.now, days=GATE_DAYS)
    document["gates"] = gates_document(report)
    return loaded, inputs, Snapshot.model_validate(document)


def _cells(snapshot: Snapshot, inputs: FleetInputs, shard: Shard) -> list[CellView]:
    cells = []
    for row in snapshot.rows:
        if row.integrations is None or not shard.holds(row.slug):
            continue
        observed = inputs.repos[row.slug].observed if row.slug in inputs.repos else None
        for iid, cell in row.integrations.items():
            seen = (observed or {}).get(iid)
            cells.append(
                CellView(
                    row.slug,
                    iid,
                    row.tier,
                    cell.status,
                    bool(cell.needs_human),
                    seen.status_since if seen is not None else None,
                    history_of(seen.history) if seen is not None else (),
                )
            )
    return cells


# --- the run --------------------------------------------------------------------------------


class _Run:
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


def run_notify(plan: NotifyPlan, wiring: Wiring) -> NotifyReport:
    """Tell what is new; the report lists what was (or would be) told and what failed.

    With no GitHub token and no chat URL there is no one to tell: nothing is read or
    written (the daily runs this step on every host, configured or not).
    """
    if wiring.github is None and not wiring.chat_targets:
        return NotifyReport(plan.dry_run)
    loaded, inputs, snapshot = read_fleet(plan)
    report = NotifyReport(plan.dry_run)
    issues_repo = resolve_issues_repo(plan.issues_repo, loaded) if wiring.github else None
    plane = next((r for r in loaded.registry.repos if r.role == "control-plane"), None)
    pulls_repo = repo_from_url(plane.url) if plane is not None else None
    clients: list[Issues] = []
    github = wiring.github

    def connect(repo: str) -> Issues:
        assert github is not None
        client = github(repo)
        clients.append(client)
        return client

    with told_state.locked(plan.state_dir, wait=plan.wait):
        told = told_state.load(plan.state_dir)
        run = _Run(plan, wiring, report)
        mine = [r.slug for r in loaded.registry.repos if plan.shard.holds(r.slug)]
        view = _view(plan, loaded, inputs, snapshot, told, mine)
        if (
            wiring.github is not None
            and plane is not None
            and pulls_repo is not None
            and plan.workspace is not None
        ):
            view = _pin_prs(run, connect(pulls_repo), loaded, view, told, plane)
        found = conditions(view)
        issues_by_key: dict[str, dict[str, Any]] = {}
        if wiring.github is not None and issues_repo is not None:
            client = connect(issues_repo)
            ok, listed = run.read("listing petrova's issues", client.petrova_issues)
            if ok:
                for issue in listed:
                    marker = bodies.find_key(issue.get("body"))
                    if marker is not None and marker[0] not in issues_by_key:
                        issues_by_key[marker[0]] = issue
                _issues(run, client, found, issues_by_key, told, set(mine))
                if plan.shard.index == 1:
                    _tracking(run, client, view, found, issues_by_key, told)
        _chat(run, view, told, set(mine))
        if not plan.dry_run:
            told_state.save(told, slugs=set(mine), fleet=plan.shard.index == 1)
    for client in clients:
        client.cache.save()
    return report


def _view(
    plan: NotifyPlan,
    loaded: LoadedRegistry,
    inputs: FleetInputs,
    snapshot: Snapshot,
    told: told_state.NotifyState,
    mine: list[str],
) -> FleetView:
    syncs: list[SyncView] = []
    manifest = _manifest(plan.workspace)
    for slug in mine:
        record = manifest.get(slug)
        counted = count_sync_failures(
            told.repo(slug).get("sync"),
            status=record.status if record else None,
            synced_at=record.synced_at if record else None,
        )
        told.repo(slug)["sync"] = counted
        syncs.append(
            SyncView(
                slug,
                counted["failed_runs"],
                counted.get("since"),
                record.code if record else None,
                record.message if record else None,
            )
        )
    pins: list[PinView] = []
    if plan.workspace is not None:
        for entry in loaded.registry.repos:
            if entry.slug not in mine:
                continue
            merged = pinpr.read_consumer(entry, plan.workspace, loaded.catalogue)
            if merged is not None:
                pr = told.repo(entry.slug).get("pin_pr", {}).get("number")
                pins.append(pinpr.pin_view(loaded, merged, pr=pr))
    return FleetView(
        snapshot, tuple(_cells(snapshot, inputs, plan.shard)), tuple(syncs), tuple(pins)
    )


def _manifest(workspace: Path | None) -> dict[str, Any]:
    if workspace is None:
        return {}
    from petrova.sync.workspace import read_manifest

    return read_manifest(workspace)


# --- pin PRs ------------------------------------------------------------------------------


def _pin_prs(
    run: _Run,
    client: Issues,
    loaded: LoadedRegistry,
    view: FleetView,
    told: told_state.NotifyState,
    plane: RepoEntry,
) -> FleetView:
    pins: list[PinView] = []
    base: pinpr.Base | None = None
    for pin in view.pins:
        record = told.repo(pin.slug).get("pin_pr")
        open_record = record if record and record.get("open") else None
        if pin.sha == pin.pinned or pin.conflict is not None:
            if open_record is not None and pin.sha == pin.pinned:
                _close_pr(run, client, pin, open_record)
            pins.append(pin)
            continue
        if base is None:
            ok, base = run.read(
                "reading the control plane's default branch",
                pinpr.fetch_base,
                run.plan.registry,
                plane.default_branch,
            )
            if not ok or base is None:
                pins.append(pin)
                continue
        number = _propose(run, client, loaded, base, pin, told, open_record)
        pr = number if number is not None else pin.pr
        pins.append(PinView(pin.slug, pin.sha, pin.commit, pin.pinned, pin.adds, pin.conflict, pr))
    return FleetView(view.snapshot, view.cells, view.syncs, tuple(pins), view.daily)


def _pr_body(pin: PinView, base: pinpr.Base) -> str:
    adds = ", ".join(f"{safe(k)}: {safe(v)}" for k, v in pin.adds) or "none (all keys present)"
    return "\n".join(
        [
            f"Pins the contract merged on {safe(pin.slug)}'s default branch.",
            "",
            f"- consumer commit: {safe(pin.commit)}",
            f"- contract\\_sha: {safe(pin.pinned or '(none)')} → {safe(pin.sha)}",
            f"- applicability added: {adds}",
            "",
            f"Exactly the edit `petrova registry pin {pin.slug}` makes on {safe(base.branch)}: "
            "nothing outside this repo's registry entry changes. petrova proposes it and "
            "follows the contract when it moves; a human merges it (petrova never does).",
        ]
    )


def _propose(
    run: _Run,
    client: Issues,
    loaded: LoadedRegistry,
    base: pinpr.Base,
    pin: PinView,
    told: told_state.NotifyState,
    record: dict[str, Any] | None,
) -> int | None:
    """Push the pin's branch and open (or update) its PR; the PR's number once done.

    The branch is rebuilt only when what it should hold changed: the contract moved, or
    the registry on the default branch changed under it (the branch follows, as a
    rebase would); otherwise nothing is pushed or asked.
    """
    workspace = run.plan.workspace
    merged = (
        pinpr.read_consumer(loaded.require(pin.slug), workspace, loaded.catalogue)
        if (workspace is not None)
        else None
    )
    if merged is None:
        return None
    branch = pinpr.branch_for(pin.slug)
    title = f"registry: pin {pin.slug} at {pin.sha}"
    after: bytes | None
    ok, after = run.read(f"the pin of {pin.slug}", pinpr.planned_registry, base, loaded, merged)
    if not ok or after is None:
        return None
    planned = hashlib.sha256(base.commit.encode() + b"\0" + after).hexdigest()[:16]
    same_contract = record is not None and record.get("sha") == pin.sha
    if same_contract and record is not None and record.get("planned") == planned:
        return int(record["number"])
    if (
        same_contract
        and record is not None
        and record.get("after") == hashlib.sha256(after).hexdigest()[:16]
    ):
        record["planned"] = planned  # main moved elsewhere: the branch still applies as is
        return int(record["number"])
    commit = "(not built: dry run)"
    if not run.plan.dry_run:
        when = f"{int(run.plan.now.timestamp())} +0000"
        message = f"registry: pin {pin.slug} at {pin.sha}\n\nThe contract of commit {pin.commit}."
        ok, commit = run.read(
            f"committing the pin of {pin.slug}",
            lambda: pinpr.commit_pin(base, after, message=message, when=when),
        )
        if not ok:
            return None
    ok, _ = run.change(
        "push", branch, f"{pin.slug} at {pin.sha}", pinpr.push_branch, base, commit, branch
    )
    if not ok:
        return None
    kept = {
        "sha": pin.sha,
        "commit": commit,
        "open": True,
        "planned": planned,
        "after": hashlib.sha256(after).hexdigest()[:16],
    }
    if same_contract and record is not None:
        if not run.plan.dry_run:
            record.update(kept)  # the same PR, its body unchanged: the branch moved under it
        return int(record["number"])
    ok, existing = run.read(f"finding the pin PR of {pin.slug}", client.open_pull, branch)
    if not ok:
        return None
    body = _pr_body(pin, base)
    number: Any
    if existing is not None:
        number = int(existing["number"])
        ok, _ = run.change(
            "edit-pr", f"PR #{number}", title, client.edit_pull, number, title=title, body=body
        )
    else:
        ok, number = run.change(
            "open-pr",
            branch,
            title,
            client.create_pull,
            head=branch,
            base=base.branch,
            title=title,
            body=body,
        )
    if not ok or run.plan.dry_run or number is None:
        return None
    told.repo(pin.slug)["pin_pr"] = {"number": int(number), **kept}
    return int(number)


def _close_pr(run: _Run, client: Issues, pin: PinView, record: dict[str, Any]) -> None:
    number = int(record["number"])
    ok, pull = run.read(f"reading PR #{number}", client.pull, number)
    if not ok:
        return
    if pull is not None and pull.get("state") == "open":
        text = f"The registry now pins {safe(pin.sha)}, which landed another way: closing."
        ok, _ = run.change("comment", f"PR #{number}", "pin landed", client.comment, number, text)
        if ok:
            ok, _ = run.change(
                "close-pr",
                f"PR #{number}",
                f"{pin.slug} pinned",
                client.edit_pull,
                number,
                state="closed",
            )
    if ok and not run.plan.dry_run:
        record["open"] = False


# --- issues -------------------------------------------------------------------------------


_CLEARED_WHY = {
    "awaiting_promotion": "the cell no longer awaits a promotion (promoted, or the probes no "
    "longer see the recovery)",
    "unhealthy": "the dot is no longer degraded, failing or stale",
    "sync_failing": "the repo synced again",
    "unpinned": "the registry pins the merged contract",
}


def _issues(
    run: _Run,
    client: Issues,
    found: list[Condition],
    by_key: dict[str, dict[str, Any]],
    told: told_state.NotifyState,
    mine: set[str],
) -> None:
    now = run.plan.now
    for condition in found:
        records = told.repo(condition.slug).setdefault("issues", {})
        record = records.get(condition.key)
        issue = by_key.get(condition.key)
        title = bodies.title(condition)
        section = bodies.section(condition)
        if issue is None:
            _ensure_label(run, client)
            text = bodies.rewrite(None, condition.key, condition.digest, section)
            ok, made = run.change("open", client.repo, title, client.open_issue, title, text)
            if ok and made is not None:
                _remember(told, condition, int(made), now)
            continue
        number = int(issue["number"])
        if issue.get("state") != "open":
            if record is not None and (record.get("muted") or record.get("open")):
                # Closed by a person while petrova had it open: they know. Quiet until
                # the condition clears and comes back.
                record["muted"] = True
                continue
            text = bodies.rewrite(issue.get("body"), condition.key, condition.digest, section)
            ok, _ = run.change(
                "reopen",
                f"issue #{number}",
                title,
                client.edit_issue,
                number,
                state="open",
                body=text,
                title=title,
            )
            if ok and not run.plan.dry_run:
                _remember(told, condition, number, now)
            continue
        marker = bodies.find_key(issue.get("body"))
        if marker is None or marker[1] != condition.digest:
            text = bodies.rewrite(issue.get("body"), condition.key, condition.digest, section)
            ok, _ = run.change(
                "edit", f"issue #{number}", title, client.edit_issue, number, body=text
            )
            if not ok:
                continue
        if record is None or record.get("number") != number or not record.get("open"):
            # Found again by its marker (state lost, or another host opened it): adopt it,
            # counting the reminders already due as sent, so nobody gets a burst.
            opened = _opened(issue, now)
            record = _remember(told, condition, number, opened)
            record["reminders"] = _due(run.plan.reminders, opened, now)
        record["digest"] = condition.digest
        _remind(run, client, condition, record, number)
    current = {c.key for c in found}
    for key, issue in sorted(by_key.items()):
        parts = key.split("/")
        if key in current or len(parts) != 3 or parts[1] not in mine:
            continue
        slug = parts[1]
        record = told.repo(slug).setdefault("issues", {}).get(key)
        if record is not None and record.get("muted"):
            record.update({"muted": False, "open": False})  # cleared: the next one is news
        if issue.get("state") != "open":
            continue
        number = int(issue["number"])
        why = _CLEARED_WHY.get(parts[0], "the condition cleared")
        text = bodies.rewrite(issue.get("body"), key, "cleared", bodies.cleared_section(key, why))
        ok, _ = run.change(
            "close",
            f"issue #{number}",
            why,
            client.edit_issue,
            number,
            body=text,
            state="closed",
            state_reason="completed",
        )
        if ok and not run.plan.dry_run:
            told.repo(slug)["issues"][key] = {"number": number, "open": False, "digest": "cleared"}


def _ensure_label(run: _Run, client: Issues) -> None:
    """The label exists before the first issue that needs it (asked once a run)."""
    if run.labelled:
        return
    run.labelled, present = run.read("the petrova label", client.has_label)
    if run.labelled and not present:
        run.labelled, _ = run.change("label", client.repo, LABEL, client.create_label)


def _remember(
    told: told_state.NotifyState, condition: Condition, number: int, opened: datetime
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "number": number,
        "digest": condition.digest,
        "opened_at": format_timestamp(opened),
        "reminders": 0,
        "open": True,
    }
    told.repo(condition.slug).setdefault("issues", {})[condition.key] = record
    return record


def _opened(issue: Mapping[str, Any], now: datetime) -> datetime:
    try:
        return parse_timestamp(str(issue.get("created_at")))
    except (ValueError, TypeError):
        return now


def _due(reminders: tuple[int, ...], opened: datetime, now: datetime) -> int:
    """How many reminder thresholds (days open) have passed."""
    days = (now - opened).total_seconds() / 86400
    return sum(1 for d in reminders if days >= d)


def _remind(
    run: _Run, client: Issues, condition: Condition, record: dict[str, Any], number: int
) -> None:
    try:
        opened = parse_timestamp(record["opened_at"])
    except (KeyError, ValueError, TypeError):
        return
    due = _due(run.plan.reminders, opened, run.plan.now)
    if due <= int(record.get("reminders", 0)):
        return
    days = sorted(run.plan.reminders)[due - 1]
    text = bodies.reminder(days, condition)
    ok, _ = run.change(
        "comment", f"issue #{number}", f"reminder after {days} days", client.comment, number, text
    )
    if ok and not run.plan.dry_run:
        record["reminders"] = due  # thresholds passed while nobody ran are not sent late


# --- the tracking issue --------------------------------------------------------------------


def tracking_section(view: FleetView, found: list[Condition], numbers: Mapping[str, int]) -> str:
    """The fleet at a glance: the gates, what awaits a human, what waits for a pin."""
    snapshot = view.snapshot
    lines = ["## Tiers", ""]
    for gate in snapshot.gates or []:
        if gate.green:
            since = f", green since {safe(gate.green_since)}" if gate.green_since else ""
            lines.append(f"- **Tier {gate.tier}**: gate open{since}")
            continue
        when = f"; green at the earliest {safe(gate.green_at)}" if gate.green_at else ""
        lines.append(f"- **Tier {gate.tier}**: gate closed{when}")
        # Cells only waiting out the window are counted, not listed: their messages
        # count the hours, and the issue must not change every run for that.
        waiting = [h for h in gate.holds if h.reason == "too_young"]
        holds = [h for h in gate.holds if h.reason != "too_young"]
        if waiting:
            lines.append(f"  - {len(waiting)} cell(s) ok, waiting out the {gate.days}-day window")
        lines += [f"  - {safe(h.message, limit=200)}" for h in holds[:10]]
        if len(holds) > 10:
            lines.append(f"  - and {len(holds) - 10} more")
    if not snapshot.gates:
        lines.append("- no tiers")
    awaiting = [
        f"{safe(c.slug)}{' · ' + safe(c.integration) if c.integration else ''}: "
        f"{safe(bodies.KIND_WORDS[c.kind])}" + (f" (#{numbers[c.key]})" if c.key in numbers else "")
        for c in found
        if c.kind != "unpinned"
    ]
    lines += ["", "## Awaiting a human", "", *bodies.bullet_list(awaiting)]
    unpinned = [
        f"{safe(p.slug)}: {safe(p.sha)} (pinned: {safe(p.pinned or 'none')})"
        + (f", PR #{p.pr}" if p.pr else "")
        for p in view.pins
        if p.sha != p.pinned
    ]
    lines += ["", "## Contracts merged but not pinned", "", *bodies.bullet_list(unpinned)]
    if view.daily:
        lines += ["", "## Last daily run", ""]
        lines += [f"- {safe(str(k))}: {safe(str(v))}" for k, v in sorted(view.daily.items())]
    lines += ["", bodies.FOOTER]
    return "\n".join(lines)


def _tracking(
    run: _Run,
    client: Issues,
    view: FleetView,
    found: list[Condition],
    by_key: dict[str, dict[str, Any]],
    told: told_state.NotifyState,
) -> None:
    numbers = {k: int(i["number"]) for k, i in by_key.items() if i.get("state") == "open"}
    for condition in found:
        record = told.repo(condition.slug).get("issues", {}).get(condition.key)
        if condition.key not in numbers and record and record.get("open"):
            numbers[condition.key] = int(record["number"])
    section = tracking_section(view, found, numbers)
    digest = hashlib.sha256(section.encode()).hexdigest()[:16]
    issue = by_key.get(bodies.TRACKING_KEY)
    key, title = bodies.TRACKING_KEY, bodies.TRACKING_TITLE
    text = bodies.rewrite(issue.get("body") if issue else None, key, digest, section)
    if issue is None:
        _ensure_label(run, client)
        ok, made = run.change("open", client.repo, title, client.open_issue, title, text)
        if ok and made is not None:
            told.fleet["tracking"] = {"number": int(made), "digest": digest}
        return
    number = int(issue["number"])
    marker = bodies.find_key(issue.get("body"))
    if marker is not None and marker[1] == digest and issue.get("state") == "open":
        return
    fields: dict[str, Any] = {"body": text}
    if issue.get("state") != "open":
        fields["state"] = "open"
    ok, _ = run.change("edit", f"issue #{number}", title, client.edit_issue, number, **fields)
    if ok and not run.plan.dry_run:
        told.fleet["tracking"] = {"number": number, "digest": digest}


# --- chat ---------------------------------------------------------------------------------


def _chat(run: _Run, view: FleetView, told: told_state.NotifyState, mine: set[str]) -> None:
    pending: list[tuple[dict[str, Any], Transition]] = []
    for cell in view.cells:
        said = told.repo(cell.slug).setdefault("chat", {})
        transition = cell_transition(cell, said.get(f"cell/{cell.integration}"))
        if transition is not None:
            pending.append((said, transition))
    for sync in view.syncs:
        said = told.repo(sync.slug).setdefault("chat", {})
        transition = sync_transition(sync, said.get("sync"))
        if transition is not None:
            pending.append((said, transition))
    if run.plan.shard.index == 1:
        gates = told.fleet.setdefault("gates", {})
        for gate in view.snapshot.gates or []:
            previous = gates.get(str(gate.tier))
            transition = gate_transition(gate, None if previous is None else previous == "open")
            if transition is not None:
                pending.append((gates, transition))
    for said, transition in pending:
        slot = _slot(transition.key)
        if not transition.text or not run.wiring.chat_targets:
            said[slot] = transition.state  # remembered, nothing to say (or nowhere to)
            continue
        partial = said.setdefault("partial", {})
        already = (
            set(partial.get(slot, {}).get("to", []))
            if partial.get(slot, {}).get("state") == transition.state
            else set()
        )
        failed = False
        for target in run.wiring.chat_targets:
            if target.id in already:
                continue
            run.report.actions.append(Action("send", f"chat #{target.index}", transition.text))
            if run.plan.dry_run:
                continue
            problem = run.wiring.chat_send(target, transition.text)
            if problem is not None:
                run.report.problems.append(f"chat: {problem} (retried next run)")
                failed = True
            else:
                already.add(target.id)
        if run.plan.dry_run:
            continue
        if failed:
            partial[slot] = {"state": transition.state, "to": sorted(already)}
        else:
            partial.pop(slot, None)
            said[slot] = transition.state
        if not partial:
            said.pop("partial", None)


def _slot(key: str) -> str:
    """Where a transition's told state lives inside its repo's (or the fleet's) record."""
    kind, _, rest = key.partition("/")
    if kind == "cell":
        return "cell/" + rest.split("/", 1)[1]
    if kind == "gate":
        return rest
    return kind
