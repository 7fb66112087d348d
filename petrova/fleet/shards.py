"""The daily across N runners: each shard's hand-over, the final job's merge, and a push
that survives N shards pushing at once (SPEC §14).

A shard (``petrova daily --shard K/N``) syncs and probes its share and commits only its
own repos' ledgers (``state/<slug>.yaml`` for the slugs it holds). Ledgers are one file
per repo, so the shards' commits never touch the same file and rebase onto each other
cleanly; :func:`push_until` keeps rebasing and pushing, with jittered exponential backoff,
until a deadline rather than a fixed number of times, so four or forty shards pushing
together all land.

The final job (``petrova daily --final``) must not sync again. Each shard hands over what
the snapshot reads from its clones, a **bundle**: its part of the sync manifest
(``.petrova-sync.json``) and each repo's ``.petrova/`` folder, a few kilobytes per repo
(:func:`write_bundle`). The final job merges the bundles into its workspace
(:func:`merge_bundles`) and builds the snapshot from them and the merged ledgers, which
gives the same bytes as one runner given the same observations.
"""

from __future__ import annotations

import random
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from petrova.documents.shard import Shard
from petrova.errors import PetrovaError, StateNotPushed, SyncManifestInvalid
from petrova.net.git import Git, Result
from petrova.sync.workspace import MANIFEST_NAME, read_manifest, render_manifest, update_manifest

#: The folder of each repo that a bundle carries (all the snapshot reads from a clone).
CARRIED = ".petrova"
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
#: Seconds a shard keeps trying to push its ledgers before it gives up for this run.
PUSH_DEADLINE = 600.0
#: The backoff between attempts: a random wait in [0, min(CAP, BASE * 2**attempt)].
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0


def shard_ledgers(
    state_dir: Path, tracked: Sequence[str], relative: str, shard: Shard
) -> list[str]:
    """The shard's ledgers as literal pathspecs: ``state/<slug>.yaml`` for every ledger on
    disk or tracked whose slug the shard holds (a ledger removed from disk is included, so
    its removal is committed too)."""
    names = {p.name for p in state_dir.glob("*.yaml") if not p.name.startswith(".")}
    names |= {Path(t).name for t in tracked}
    mine = sorted(n for n in names if _SLUG.fullmatch(n[:-5]) and shard.holds(n[:-5]))
    return [f":(literal){relative}/{name}" for name in mine]


# --- the hand-over ----------------------------------------------------------------------


@dataclass(frozen=True)
class BundleReport:
    repos: int
    files: int
    bytes: int

    def describe(self) -> str:
        return f"{self.repos} repos, {self.files} files, {self.bytes} bytes"


def _copy_carried(source: Path, target: Path) -> tuple[int, int]:
    """``source/.petrova`` to ``target/.petrova`` as it is: a symbolic link stays a link
    (never followed), so the snapshot refuses it exactly as it would in the clone."""
    src = source / CARRIED
    dst = target / CARRIED
    if dst.is_symlink() or dst.is_file():
        dst.unlink()
    elif dst.exists():
        shutil.rmtree(dst)
    if src.is_symlink():
        target.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(src.readlink())
        return 1, 0
    if not src.is_dir():
        return 0, 0
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dst, symlinks=True)
    files = [p for p in dst.rglob("*") if p.is_file() and not p.is_symlink()]
    return len(files), sum(p.stat().st_size for p in files)


def write_bundle(workspace: Path, bundle: Path, shard: Shard) -> BundleReport:
    """Write the shard's hand-over to ``bundle`` (emptied first): its records of the sync
    manifest and each of its repos' ``.petrova/`` folder."""
    records = {s: r for s, r in read_manifest(workspace).items() if shard.holds(s)}
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    files = size = 0
    for slug in sorted(records):
        count, nbytes = _copy_carried(workspace / slug, bundle / slug)
        files, size = files + count, size + nbytes
    data = render_manifest(records)
    (bundle / MANIFEST_NAME).write_bytes(data)
    return BundleReport(len(records), files + 1, size + len(data))


def bundles_in(folder: Path) -> list[Path]:
    """The bundles under ``folder``: it, or its sub-folders, that hold a manifest."""
    if (folder / MANIFEST_NAME).is_file():
        return [folder]
    return sorted(p for p in folder.iterdir() if (p / MANIFEST_NAME).is_file())


def merge_bundles(folder: Path, workspace: Path) -> BundleReport:
    """Bring every shard's bundle under ``folder`` into ``workspace``: each repo's
    ``.petrova/`` replaced by the bundle's, the manifest records merged (under its lock).
    A bundle whose manifest is not petrova's is ``SYNC_MANIFEST_INVALID``; none at all is
    an error too (the shards did not hand anything over)."""
    found = bundles_in(folder) if folder.is_dir() else []
    if not found:
        raise SyncManifestInvalid(
            f"no shard bundle (a folder with {MANIFEST_NAME}) under {folder}: did the shards "
            "run with --bundle, and were their artifacts downloaded there?"
        )
    workspace.mkdir(parents=True, exist_ok=True)
    repos = files = size = 0
    for bundle in found:
        records = read_manifest(bundle)
        for slug in sorted(records):
            if not _SLUG.fullmatch(slug):
                raise SyncManifestInvalid(
                    f"{bundle / MANIFEST_NAME}: repos.{slug}: is not a slug; refusing the bundle"
                )
            count, nbytes = _copy_carried(bundle / slug, workspace / slug)
            files, size = files + count, size + nbytes
        update_manifest(workspace, records.items())
        repos += len(records)
    return BundleReport(repos, files, size)


# --- pushing with N shards at once ---------------------------------------------------------


def _git(top: Path, *args: str, env: Mapping[str, str] | None = None) -> Result:
    return Git(timeout=300.0).run(list(args), cwd=top, env=env).check_timeout(str(top))


def push_until(
    top: Path,
    branch: str,
    *,
    identity: Mapping[str, str],
    deadline: float = PUSH_DEADLINE,
    rng: random.Random | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Push ``HEAD`` to ``origin/branch``; on refusal wait a random while (full jitter,
    doubling up to :data:`BACKOFF_CAP`), rebase onto what landed, and try again, until
    ``deadline`` seconds have passed. Returns the number of attempts.

    A rebase conflict (someone else changed one of this shard's ledgers) or a local change
    to a file upstream changed too stops at once with :class:`StateNotPushed`; the commit
    stays local for the next run.
    """
    rng = rng or random.Random()
    end = time.monotonic() + deadline
    attempt = 0
    while True:
        attempt += 1
        pushed = _git(top, "push", "--quiet", "origin", f"HEAD:{branch}")
        if pushed.ok:
            return attempt
        left = end - time.monotonic()
        if left <= 0:
            raise StateNotPushed(
                f"git push of the ledgers did not succeed within {deadline:g}s "
                f"({attempt} attempts): {pushed.reason()}; the commit stays local and the "
                "next run pushes it"
            )
        sleep(min(left, rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))))
        _rebase(top, branch, identity)


def _rebase(top: Path, branch: str, identity: Mapping[str, str]) -> None:
    """Rebase onto what landed, carrying local changes across (``--autostash``: the run
    record is written in the work tree), unless one is to a file upstream changed too."""
    _git(top, "fetch", "--quiet", "origin", branch)
    changed = _git(top, "diff", "--name-only", f"HEAD...refs/remotes/origin/{branch}").stdout
    local = _git(top, "diff", "--name-only", "HEAD").stdout
    dirty = sorted(set(local.split()) & set(changed.split()))
    if dirty:
        raise StateNotPushed(
            f"the ledgers could not be rebased onto origin/{branch}: the checkout has "
            f"uncommitted changes to tracked files ({', '.join(dirty[:5])}) that "
            f"origin/{branch} changed too; the commit stays local and the next run tries again"
        )
    pulled = _git(top, "pull", "--rebase", "--autostash", "--quiet", "origin", branch, env=identity)
    if pulled.ok:
        return
    conflicted = _git(top, "diff", "--name-only", "--diff-filter=U").stdout.split()
    _git(top, "rebase", "--abort")
    raise StateNotPushed(
        f"the ledgers could not be rebased onto origin/{branch}: "
        + (
            f"a change to the same ledger landed meanwhile ({', '.join(sorted(conflicted))})"
            if conflicted
            else f"git pull --rebase failed: {pulled.reason()}"
        )
        + "; the commit stays local and the next run tries again"
    )


def in_process(name: str, work: Callable[[], str]) -> tuple[int, str]:
    """Run one in-process step of the daily: its exit code and what it says."""
    try:
        return 0, work()
    except PetrovaError as exc:
        return int(exc.exit_code), exc.render() + "\n"
    except OSError as exc:
        return 1, f"{name}: {exc.strerror or type(exc).__name__}: {exc.filename or ''}\n"
