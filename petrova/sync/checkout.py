"""``petrova sync --self``: the control-plane checkout brought up to date, never merged.

A cron host reads the registry from its own checkout of the control-plane repo; without
a pull, a merged registry PR never reaches it. This is ``git pull --ff-only`` and nothing
more: local changes or a diverged history are the operator's to reconcile.
"""

from __future__ import annotations

from pathlib import Path

from petrova.errors import SyncSelfRefused
from petrova.net.git import Git


def sync_self(folder: Path, git: Git) -> tuple[str | None, str | None]:
    """``git pull --ff-only`` of the checkout holding ``folder`` (the registry's).

    Refuses, touching nothing, when the checkout has local changes or has diverged from
    its upstream; never merges. Returns the commits before and after.
    """

    def refuse(message: str) -> SyncSelfRefused:
        return SyncSelfRefused(message)

    top = git.run(["rev-parse", "--show-toplevel"], cwd=folder)
    if not top.ok:
        raise refuse(f"{folder} is not in a git checkout: {top.reason()}")
    root = Path(top.stdout.strip())
    status = git.run(["status", "--porcelain", "--untracked-files=no"], cwd=root)
    if not status.ok:
        raise refuse(f"{root}: git status failed: {status.reason()}")
    if status.stdout.strip():
        changed = ", ".join(line[3:] for line in status.stdout.splitlines()[:5])
        raise refuse(
            f"{root} has local changes ({changed}); commit or discard them, then run "
            "`petrova sync --self` again"
        )
    url = git.run(["ls-remote", "--get-url"], cwd=root).stdout.strip() or None
    before = git.run(["rev-parse", "--verify", "-q", "HEAD"], cwd=root).stdout.strip() or None
    pull = git.run(["pull", "--quiet", "--no-rebase", "--ff-only"], cwd=root, url=url)
    if not pull.ok:
        reason = pull.reason()
        if "fast-forward" in pull.stderr.lower() or "diverg" in pull.stderr.lower():
            reason = (
                "the checkout has diverged from its upstream and cannot fast-forward; "
                "nothing was merged (reconcile it by hand)"
            )
        raise refuse(f"{root}: git pull --ff-only failed: {reason}")
    after = git.run(["rev-parse", "--verify", "-q", "HEAD"], cwd=root).stdout.strip() or None
    return before, after
