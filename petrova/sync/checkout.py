"""``petrova sync --self``: the control-plane checkout brought up to date, never merged.

A cron host reads the registry from its own checkout of the control-plane repo; without
a pull, a merged registry PR never reaches it. This is a fast-forward to the upstream and
nothing more: a diverged history is the operator's to reconcile.

The checkout is shared with humans (SPEC §12): a promotion made on the cron host leaves a
file in ``state/promotions/`` for its human to commit, and the daily job's own ledgers
may be uncommitted. Neither stops the refresh: only a local change to a file the
fast-forward would change refuses it (git would refuse too, less clearly), naming the
files. Everything else is left exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

from petrova.errors import SyncSelfRefused
from petrova.net.git import Git


def local_changes(porcelain: str) -> set[str]:
    """The paths ``git status --porcelain`` names (both sides of a rename)."""
    paths: set[str] = set()
    for line in porcelain.splitlines():
        if len(line) < 4:
            continue
        for part in line[3:].split(" -> "):
            paths.add(part.strip().strip('"'))
    return paths


def sync_self(folder: Path, git: Git) -> tuple[str | None, str | None]:
    """Fast-forward the checkout holding ``folder`` (the registry's) to its upstream.

    Refuses, touching nothing, when a locally changed file is one the fast-forward would
    change, or when the checkout has diverged from its upstream; never merges. Returns
    the commits before and after.
    """

    def refuse(message: str) -> SyncSelfRefused:
        return SyncSelfRefused(message)

    top = git.run(["rev-parse", "--show-toplevel"], cwd=folder)
    if not top.ok:
        raise refuse(f"{folder} is not in a git checkout: {top.reason()}")
    root = Path(top.stdout.strip())
    url = git.run(["ls-remote", "--get-url"], cwd=root).stdout.strip() or None
    fetch = git.run(["fetch", "--quiet"], cwd=root, url=url)
    if not fetch.ok:
        raise refuse(f"{root}: git fetch failed: {fetch.reason()}")
    status = git.run(["status", "--porcelain", "--untracked-files=all"], cwd=root)
    if not status.ok:
        raise refuse(f"{root}: git status failed: {status.reason()}")
    changed = local_changes(status.stdout)
    if changed:
        incoming = git.run(["diff", "--name-only", "HEAD", "@{upstream}"], cwd=root)
        if not incoming.ok:
            raise refuse(f"{root}: cannot compare with the upstream: {incoming.reason()}")
        both = sorted(changed & set(incoming.stdout.split("\n")) - {""})
        if both:
            shown = ", ".join(both[:5]) + (f" and {len(both) - 5} more" if len(both) > 5 else "")
            raise refuse(
                f"{root} has local changes to files the update would change ({shown}); "
                "commit or discard them, then run `petrova sync --self` again"
            )
    before = git.run(["rev-parse", "--verify", "-q", "HEAD"], cwd=root).stdout.strip() or None
    merge = git.run(["merge", "--quiet", "--ff-only", "@{upstream}"], cwd=root)
    if not merge.ok:
        reason = merge.reason()
        if "fast-forward" in merge.stderr.lower() or "diverg" in merge.stderr.lower():
            reason = (
                "the checkout has diverged from its upstream and cannot fast-forward; "
                "nothing was merged (reconcile it by hand)"
            )
        raise refuse(f"{root}: git pull --ff-only failed: {reason}")
    after = git.run(["rev-parse", "--verify", "-q", "HEAD"], cwd=root).stdout.strip() or None
    return before, after
