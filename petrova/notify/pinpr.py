"""The pin PR that proposes itself: the exact edit ``petrova registry pin`` makes, on a
branch of the control plane's remote, built without touching anyone's work tree.

The edit is :mod:`petrova.migrate.pin`'s splice (the same plan, the same check that the
edited registry says exactly what the pin means), applied to the registry as it is on
the control plane's default branch at the remote. The commit is made with git's
plumbing on a temporary index (``hash-object``, ``read-tree``, ``update-index``,
``write-tree``, ``commit-tree``), so the operator's checkout, index and branches stay
as they are; the branch ``petrova/pin-<slug>`` is then force-pushed (it belongs to the
bot). Nothing here merges anything.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from petrova.documents.catalogue import Catalogue
from petrova.documents.contract import load_contract_bytes
from petrova.documents.registry import LoadedRegistry
from petrova.errors import PetrovaError
from petrova.migrate.merged import read_merged
from petrova.migrate.pin import load_edited, plan_pin, verify
from petrova.models import RepoEntry, applicability_value
from petrova.notify.conditions import PinView

BOT_NAME = "petrova-bot"
BOT_EMAIL = "petrova-bot@users.noreply.github.com"
_TIMEOUT = 120.0


class PinFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Merged:
    """A consumer's merged contract as the workspace clone holds it."""

    slug: str
    sha: str
    commit: str
    raw: bytes


def branch_for(slug: str) -> str:
    return f"petrova/pin-{slug}"


def read_consumer(entry: RepoEntry, workspace: Path, catalogue: Catalogue) -> Merged | None:
    """The valid contract on the synced clone's default branch, or None (no clone, no
    contract, an invalid one: the snapshot warns about those already)."""
    clone = workspace / entry.slug
    if entry.role == "control-plane" or not (clone / ".git").exists():
        return None
    try:
        merged = read_merged(
            clone, default_branch=entry.default_branch, head_is_default=True, how="workspace"
        )
        contract = load_contract_bytes(merged.raw, catalogue, display=merged.display)
    except (PetrovaError, OSError, subprocess.SubprocessError):
        return None
    if contract.contract.slug != entry.slug:
        return None
    return Merged(entry.slug, contract.sha, merged.commit, merged.raw)


def pin_view(loaded: LoadedRegistry, merged: Merged, *, pr: int | None) -> PinView:
    """What the pin would do against the registry as loaded (conflicts included)."""
    entry = loaded.require(merged.slug)
    contract = load_contract_bytes(merged.raw, loaded.catalogue, display=merged.slug)
    adds: tuple[tuple[str, str], ...] = ()
    conflict = None
    try:
        plan = plan_pin(loaded, loaded.path.read_bytes(), merged.slug, contract)
        adds = tuple((k, applicability_value(v)) for k, v in plan.added.items())
    except PetrovaError as exc:
        conflict = exc.message
    return PinView(merged.slug, merged.sha, merged.commit, entry.contract_sha, adds, conflict, pr)


# --- git ----------------------------------------------------------------------------------


def _git(
    top: Path, *args: str, env: Mapping[str, str] | None = None, data: bytes | None = None
) -> str:
    proc = subprocess.run(
        ["git", "-C", str(top), *args],
        input=data,
        capture_output=True,
        check=False,
        timeout=_TIMEOUT,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
    )
    if proc.returncode != 0:
        said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PinFailed(f"git {args[0]} failed: {said[-1] if said else proc.returncode}")
    return proc.stdout.decode("utf-8", "replace").strip()


@dataclass(frozen=True)
class Base:
    top: Path
    registry_rel: str
    branch: str
    commit: str
    raw: bytes


def fetch_base(registry: Path, branch: str) -> Base:
    """The control plane's default branch at its remote (fetched now), and the registry
    file as it is there: what a pin PR must apply to."""
    top = Path(_git(registry.parent, "rev-parse", "--show-toplevel"))
    rel = registry.resolve().relative_to(top.resolve()).as_posix()
    _git(top, "fetch", "--quiet", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}")
    commit = _git(top, "rev-parse", "--verify", f"refs/remotes/origin/{branch}^{{commit}}")
    raw = subprocess.run(
        ["git", "-C", str(top), "cat-file", "blob", f"{commit}:{rel}"],
        capture_output=True,
        check=False,
        timeout=_TIMEOUT,
    )
    if raw.returncode != 0:
        raise PinFailed(f"the remote's {branch} has no {rel}")
    return Base(top, rel, branch, commit, raw.stdout)


def planned_registry(base: Base, loaded: LoadedRegistry, merged: Merged) -> bytes:
    """The base's registry with exactly the pin's edit, checked as ``registry pin`` does."""
    try:
        at_base = load_edited(base.raw, loaded)
        contract = load_contract_bytes(merged.raw, loaded.catalogue, display=merged.slug)
        if at_base.entry(merged.slug) is None:
            raise PinFailed(f"{merged.slug} is not in the registry on the remote's {base.branch}")
        plan = plan_pin(at_base, base.raw, merged.slug, contract)
        verify(plan, at_base)
    except PetrovaError as exc:
        raise PinFailed(exc.message) from None
    return plan.after


def commit_pin(base: Base, after: bytes, *, message: str, when: str) -> str:
    """A commit on top of the base whose only change is the registry: built on a
    temporary index, so the operator's index and work tree are never touched."""
    ident = {
        "GIT_AUTHOR_NAME": os.environ.get("GIT_AUTHOR_NAME", BOT_NAME),
        "GIT_AUTHOR_EMAIL": os.environ.get("GIT_AUTHOR_EMAIL", BOT_EMAIL),
        "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME", BOT_NAME),
        "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL", BOT_EMAIL),
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
    }
    blob = _git(base.top, "hash-object", "-w", "--stdin", data=after)
    with tempfile.TemporaryDirectory(prefix="petrova-pin-") as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(base.top, "read-tree", base.commit, env=index)
        mode = _git(base.top, "ls-tree", base.commit, "--", base.registry_rel).split(" ")[0]
        _git(
            base.top,
            "update-index",
            "--cacheinfo",
            f"{mode or '100644'},{blob},{base.registry_rel}",
            env=index,
        )
        tree = _git(base.top, "write-tree", env=index)
    return _git(base.top, "commit-tree", tree, "-p", base.commit, "-m", message, env=ident)


def push_branch(base: Base, commit: str, branch: str) -> None:
    _git(base.top, "push", "--quiet", "--force", "origin", f"{commit}:refs/heads/{branch}")
