"""``petrova notify``: tell the humans what needs them, once per change (SPEC §13).

One run: read the fleet as the snapshot does; under the notify lock, re-read what was
told (:mod:`petrova.notify.state`); work out the conditions and transitions
(:mod:`petrova.notify.conditions`, pure); then, in this order, the pin PRs (so that
issues can name them: :mod:`~petrova.notify.pins`), one issue per condition and the
fleet's tracking issue (:mod:`~petrova.notify.issues`), and the chat messages (here);
and write back what was told. Each thing told is recorded only once it
was told, so a failure is retried next run and a success is never repeated. With
``dry_run`` every step says what it would do and nothing is sent, pushed or written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from petrova.documents.registry import LoadedRegistry, load_registry
from petrova.documents.shard import Shard
from petrova.errors import IssuesRepoUnknown, Location
from petrova.fleet.gather import FleetInputs, gather
from petrova.fleet.snapshot import fleet_snapshot
from petrova.models import FleetSnapshot
from petrova.net.http import Secret
from petrova.notify import body as bodies
from petrova.notify import pinpr
from petrova.notify import state as told_state
from petrova.notify.cache import NotifyCache
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
from petrova.notify.github import Issues, check_repo, repo_from_url
from petrova.notify.issues import condition_issues, tracking_issue
from petrova.notify.pins import pin_prs
from petrova.notify.session import (
    DEFAULT_REMINDERS,
    ISSUES_REPO_ENV,
    TOKEN_ENV,
    Action,
    NotifyPlan,
    NotifyReport,
    Session,
    Wiring,
)
from petrova.probe.github import Budget, default_cache_dir

__all__ = [
    "DEFAULT_REMINDERS",
    "TOKEN_ENV",
    "NotifyPlan",
    "NotifyReport",
    "Wiring",
    "github_wiring",
    "resolve_issues_repo",
    "run_notify",
]


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


def github_wiring(token: Secret | None, *, timeout: float = 30.0) -> Callable[[str], Issues] | None:
    """Issues clients for the trusted API host (``GITHUB_API_URL``), with the run's
    shared budget and ETags; ``None`` without a token (then GitHub is left alone)."""
    if token is None:
        return None
    from petrova.net.http import Transport
    from petrova.notify.github import http_send

    send = http_send(token=token, transport=Transport(timeout=timeout))
    budget = Budget()
    cache = NotifyCache(default_cache_dir())
    return lambda repo: Issues(repo, send, budget, cache)


# --- reading the fleet ----------------------------------------------------------------------


def read_fleet(plan: NotifyPlan) -> tuple[LoadedRegistry, FleetInputs, FleetSnapshot]:
    loaded = load_registry(plan.registry, plan.catalogue, today=plan.now.date())
    inputs = gather(loaded, state_dir=plan.state_dir, workspace=plan.workspace)
    snapshot = fleet_snapshot(
        inputs, state_dir=plan.state_dir, now=plan.now, stale_after=plan.stale_after
    )
    return loaded, inputs, snapshot


def _cells(snapshot: FleetSnapshot, inputs: FleetInputs, shard: Shard) -> list[CellView]:
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
        run = Session(plan, wiring, report)
        mine = [r.slug for r in loaded.registry.repos if plan.shard.holds(r.slug)]
        view, contracts = _view(plan, loaded, inputs, snapshot, told, mine)
        if (
            wiring.github is not None
            and plane is not None
            and pulls_repo is not None
            and plan.workspace is not None
        ):
            view = pin_prs(run, connect(pulls_repo), loaded, view, told, plane, contracts)
        found = conditions(view)
        issues_by_key: dict[str, dict[str, Any]] = {}
        if wiring.github is not None and issues_repo is not None:
            client = connect(issues_repo)
            ok, listed = run.read("listing petrova's issues", client.petrova_issues)
            if ok:
                issues_by_key = _by_key(run, client, listed, set(mine))
                _unlabelled(run, client, found, issues_by_key, told)
                condition_issues(run, client, found, issues_by_key, told, set(mine))
                if plan.shard.index == 1:
                    tracking_issue(run, client, view, found, issues_by_key, told)
        _chat(run, view, told, set(mine))
        if not plan.dry_run:
            told_state.save(told, slugs=set(mine), fleet=plan.shard.index == 1)
    for client in clients:
        client.cache.save()
    return report


def _by_key(
    run: Session, client: Issues, listed: list[dict[str, Any]], mine: set[str]
) -> dict[str, dict[str, Any]]:
    """petrova's issues by their marker's key: the oldest is the one. Should a race
    (two hosts at once) ever have opened a second, it is closed as a duplicate."""
    by_key: dict[str, dict[str, Any]] = {}
    later: list[tuple[str, dict[str, Any]]] = []
    for issue in sorted(listed, key=lambda i: int(i.get("number", 0))):
        marker = bodies.find_key(issue.get("body"))
        if marker is None:
            continue
        if marker[0] in by_key:
            later.append((marker[0], issue))
        else:
            by_key[marker[0]] = issue
    for key, issue in later:
        parts = key.split("/")
        ours = parts[1] in mine if len(parts) == 3 else run.plan.shard.index == 1
        if not ours or issue.get("state") != "open":
            continue
        first = int(by_key[key]["number"])
        number = int(issue["number"])
        ok, _ = run.change(
            "comment",
            f"issue #{number}",
            f"duplicate of #{first}",
            client.comment,
            number,
            f"A duplicate of #{first}; petrova keeps that one up to date.",
        )
        if ok:
            run.change(
                "close",
                f"issue #{number}",
                f"duplicate of #{first}",
                client.edit_issue,
                number,
                state="closed",
                state_reason="not_planned",
            )
    return by_key


def _unlabelled(
    run: Session,
    client: Issues,
    found: list[Condition],
    by_key: dict[str, dict[str, Any]],
    told: told_state.NotifyState,
) -> None:
    """Issues petrova knows by number that the label listing missed (someone took the
    label off): asked for one by one, and kept only if they still carry their marker,
    so that removing a label never makes a duplicate."""
    for condition in found:
        record = told.repo(condition.slug).get("issues", {}).get(condition.key)
        if condition.key in by_key or not record or "number" not in record:
            continue
        ok, issue = run.read(f"issue #{record['number']}", client.issue, int(record["number"]))
        marker = bodies.find_key(issue.get("body")) if ok and isinstance(issue, dict) else None
        if issue is not None and marker is not None and marker[0] == condition.key:
            by_key[condition.key] = issue


def _view(
    plan: NotifyPlan,
    loaded: LoadedRegistry,
    inputs: FleetInputs,
    snapshot: FleetSnapshot,
    told: told_state.NotifyState,
    mine: list[str],
) -> tuple[FleetView, dict[str, pinpr.Merged]]:
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
    contracts: dict[str, pinpr.Merged] = {}
    if plan.workspace is not None:
        for entry in loaded.registry.repos:
            if entry.slug not in mine:
                continue
            mine_told = told.repo(entry.slug)
            record = manifest.get(entry.slug)
            seen = mine_told.get("contract") or {}
            if (
                record is not None
                and record.commit is not None
                and seen.get("commit") == record.commit
                and seen.get("sha") == entry.contract_sha
                and not (mine_told.get("pin_pr") or {}).get("open")
            ):
                # Pinned, and the clone has not moved since: nothing to propose, and no
                # git process to spend (a fleet of thousands reads only what moved).
                continue
            merged = pinpr.read_consumer(entry, plan.workspace, loaded.catalogue)
            if merged is None and record is not None and record.commit is not None:
                mine_told["contract"] = {"commit": record.commit, "sha": None}  # none valid
            if merged is not None:
                mine_told["contract"] = {"commit": merged.commit, "sha": merged.sha}
                contracts[entry.slug] = merged
                pr = (mine_told.get("pin_pr") or {}).get("number")
                pins.append(pinpr.pin_view(loaded, merged, pr=pr))
    cells = tuple(_cells(snapshot, inputs, plan.shard))
    view = FleetView(snapshot, cells, tuple(syncs), tuple(pins), snapshot.last_run)
    return view, contracts


def _manifest(workspace: Path | None) -> dict[str, Any]:
    if workspace is None:
        return {}
    from petrova.sync.workspace import read_manifest

    return read_manifest(workspace)


# --- chat ---------------------------------------------------------------------------------


def _chat(run: Session, view: FleetView, told: told_state.NotifyState, mine: set[str]) -> None:
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
