"""The issues of a run: one per condition, and the fleet's tracking issue."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from petrova.models import DailyRun, format_timestamp, parse_timestamp
from petrova.notify import body as bodies
from petrova.notify import state as told_state
from petrova.notify.conditions import Condition, FleetView
from petrova.notify.escape import safe
from petrova.notify.github import LABEL, Issues
from petrova.notify.session import Session

_CLEARED_WHY = {
    "awaiting_promotion": "the cell no longer awaits a promotion (promoted, or the probes no "
    "longer see the recovery)",
    "unhealthy": "the dot is no longer degraded, failing or stale",
    "sync_failing": "the repo synced again",
    "unpinned": "the registry pins the merged contract",
}


def condition_issues(
    run: Session,
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
        awaiting = f"awaiting_promotion/{slug}/{parts[2]}"
        successor = None
        if parts[0] == "unhealthy" and awaiting in current:
            why = "the probes see it working again; what it waits for now is a human's promotion"
            successor = told.repo(slug).get("issues", {}).get(awaiting, {}).get("number")
        text = bodies.rewrite(
            issue.get("body"), key, "cleared", bodies.cleared_section(key, why, see=successor)
        )
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


def _ensure_label(run: Session, client: Issues) -> None:
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
    run: Session, client: Issues, condition: Condition, record: dict[str, Any], number: int
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
    if view.daily is not None:
        lines += ["", "## Last daily run", "", last_run_line(view.daily)]
    lines += ["", bodies.FOOTER]
    return "\n".join(lines)


def last_run_line(run: DailyRun) -> str:
    """The last daily run in one line that changes only when its outcome does (not every
    day with its times): the issue is edited when a run breaks, not because one ran."""
    if run.finished_at is None:
        return f"- started {safe(run.started_at)} and **never finished**"
    bad = {
        outcome: [s.name for s in run.steps if s.outcome == outcome]
        for outcome in ("failed", "warned")
    }
    if not bad["failed"] and not bad["warned"]:
        return "- completed, every step ok"
    said = [f"{o}: {safe(', '.join(names))}" for o, names in bad.items() if names]
    return "- completed; " + "; ".join(said) + " (`state/runs/daily.json` has the times)"


def tracking_issue(
    run: Session,
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
