"""The pin PRs of a run: propose, follow the contract, close when the pin landed."""

from __future__ import annotations

import hashlib
from typing import Any

from petrova.documents.registry import LoadedRegistry
from petrova.models import RepoEntry
from petrova.notify import pinpr
from petrova.notify import state as told_state
from petrova.notify.conditions import FleetView, PinView
from petrova.notify.escape import safe
from petrova.notify.github import Issues
from petrova.notify.session import Session


def pin_prs(
    run: Session,
    client: Issues,
    loaded: LoadedRegistry,
    view: FleetView,
    told: told_state.NotifyState,
    plane: RepoEntry,
    contracts: dict[str, pinpr.Merged],
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
        number = _propose(
            run, client, loaded, base, contracts.get(pin.slug), pin, told, open_record
        )
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
    run: Session,
    client: Issues,
    loaded: LoadedRegistry,
    base: pinpr.Base,
    merged: pinpr.Merged | None,
    pin: PinView,
    told: told_state.NotifyState,
    record: dict[str, Any] | None,
) -> int | None:
    """Push the pin's branch and open (or update) its PR; the PR's number once done.

    The branch is rebuilt only when what it should hold changed: the contract moved, or
    the registry on the default branch changed under it (the branch follows, as a
    rebase would); otherwise nothing is pushed or asked.
    """
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


def _close_pr(run: Session, client: Issues, pin: PinView, record: dict[str, Any]) -> None:
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
