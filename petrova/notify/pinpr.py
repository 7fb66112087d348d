"""The pin PR that proposes itself: the exact edit ``petrova registry pin`` makes, on a
branch of the control plane's remote, built without touching anyone's work tree.

The edit is :mod:`petrova.migrate.pin`'s splice (the same plan, the same check that the
edited registry says exactly what the pin means), applied to the registry as it is on
the control plane's default branch at the remote. The commit is made with git's
plumbing alone (``hash-object``, ``ls-tree``, ``mktree``, ``commit-tree``), so the
operator's checkout, index and branches stay as they are; the branch
``petrova/pin-<slug>`` is then force-pushed (it belongs to the bot). Every git command
goes through petrova's one git runner (:mod:`petrova.net.git`). Nothing here merges.
"""

from __future__ import annotations

import os
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
from petrova.net.git import Git
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
    except (PetrovaError, OSError):
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
    top: Path, *args: str, env: Mapping[str, str] | None = None, data: str | None = None
) -> str:
    result = Git(timeout=_TIMEOUT).run(list(args), cwd=top, env=env, stdin=data)
    if not result.ok:
        raise PinFailed(f"{result.command()} failed: {result.reason()}")
    return result.stdout.strip()


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
    blob = Git(timeout=_TIMEOUT).run(["cat-file", "blob", f"{commit}:{rel}"], cwd=top)
    if not blob.ok:
        raise PinFailed(f"the remote's {branch} has no {rel}")
    return Base(top, rel, branch, commit, blob.raw)


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
    """A commit on top of the base whose only change is the registry file, built from
    objects alone (no index, no work tree: the operator's are never touched)."""
    ident = {
        "GIT_AUTHOR_NAME": os.environ.get("GIT_AUTHOR_NAME", BOT_NAME),
        "GIT_AUTHOR_EMAIL": os.environ.get("GIT_AUTHOR_EMAIL", BOT_EMAIL),
        "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME", BOT_NAME),
        "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL", BOT_EMAIL),
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
    }
    try:
        text = after.decode("utf-8")
    except UnicodeDecodeError:
        raise PinFailed("the edited registry is not UTF-8 text") from None
    blob = _git(base.top, "hash-object", "-w", "--stdin", data=text)
    tree = _replace(base.top, f"{base.commit}^{{tree}}", base.registry_rel.split("/"), blob)
    return _git(base.top, "commit-tree", tree, "-p", base.commit, "-m", message, env=ident)


def _replace(top: Path, tree: str, parts: list[str], blob: str) -> str:
    """``tree`` with the blob at ``parts`` replaced by ``blob``: the new tree's id."""
    listed = _git(top, "ls-tree", "-z", tree)
    entries = [e for e in listed.split("\0") if e]
    out: list[str] = []
    found = False
    for entry in entries:
        meta, name = entry.split("\t", 1)
        mode, kind, obj = meta.split(" ")
        if name == parts[0]:
            found = True
            if len(parts) == 1:
                obj = blob
            elif kind == "tree":
                obj = _replace(top, obj, parts[1:], blob)
        out.append(f"{mode} {kind} {obj}\t{name}")
    if not found:
        raise PinFailed(f"{'/'.join(parts)} is not in the base commit")
    return _git(top, "mktree", "-z", data="".join(f"{e}\0" for e in out))


def push_branch(base: Base, commit: str, branch: str) -> None:
    _git(base.top, "push", "--quiet", "--force", "origin", f"{commit}:refs/heads/{branch}")
