"""Bring the workspace up to date with the fleet: one cheap git clone per registry repo.

A clone is shallow (depth 1), blobless and sparse: it holds ``.petrova/`` and the paths
the catalogue's probes read, at the remote's head of the repo's default branch. A new
clone is made in the workspace's scratch folder and renamed into place when complete; an
existing one is checked (its ``origin`` must be the registry's url), asked for the
remote's head and fetched and moved only when that changed, so unchanged files keep their
identity on disk. Per-repo trouble is a :class:`RepoResult` with a stable code, never an
exception: the rest of the fleet is still synced.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from petrova import clock
from petrova.documents.catalogue import Catalogue
from petrova.documents.contract import CONTRACT_RELPATH, load_contract
from petrova.documents.registry import LoadedRegistry
from petrova.documents.shard import ALL, Shard
from petrova.errors import (
    SYNC_AUTH_FAILED,
    SYNC_BRANCH_MISSING,
    SYNC_BUSY,
    SYNC_CLONE_CORRUPT,
    SYNC_CLONE_TOO_LARGE,
    SYNC_FAILED,
    SYNC_LOCK_UNUSABLE,
    SYNC_NO_CONTRACT,
    SYNC_NOT_A_CLONE,
    SYNC_NOT_IN_REGISTRY,
    SYNC_ORIGIN_MISMATCH,
    LockTimeout,
    PetrovaError,
    ProbePathUnsafe,
    UsageError,
)
from petrova.files.disk import confined
from petrova.files.lock import file_lock
from petrova.models import RepoEntry
from petrova.net.git import TRUSTED_HOSTS_HINT, Git, Result
from petrova.sync.origin import ORIGIN_CONFIG_ARGS, same_repo
from petrova.sync.paths import probe_paths, sparse_patterns
from petrova.sync.workspace import SCRATCH_NAME, SyncRecord, read_manifest, update_manifest

_COMMIT = re.compile(r"[0-9a-f]{40}")
#: What one clone's work tree may hold at most (``.git`` not counted); the environment
#: variables of the same names raise or lower them (docs/SYNC.md).
DEFAULT_MAX_CLONE_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_CLONE_FILES = 2_000
Action = Literal["cloned", "updated", "unchanged", "failed", "read"]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RepoResult:
    slug: str
    action: Action
    record: SyncRecord

    @property
    def failed(self) -> bool:
        return self.record.status == "failed"


@dataclass(frozen=True)
class Notice:
    """Something a person should know that is not a repo's failure (a stray folder)."""

    slug: str
    code: str
    message: str


@dataclass(frozen=True)
class SyncReport:
    results: tuple[RepoResult, ...]
    notices: tuple[Notice, ...] = field(default=())

    @property
    def failures(self) -> tuple[RepoResult, ...]:
        return tuple(r for r in self.results if r.failed)


class _RepoProblem(Exception):
    """One repo's failure on its way out of :func:`_sync_repo` (never leaves this module)."""

    def __init__(self, code: str, message: str, *, timed_out: bool = False) -> None:
        self.code = code
        self.message = message
        self.timed_out = timed_out
        super().__init__(message)


def default_jobs() -> int:
    """A few git commands per core: they mostly wait on the network."""
    return min(32, 4 * (os.cpu_count() or 1))


def _classify(result: Result, url: str, *, timeout: float, git: Git | None = None) -> _RepoProblem:
    if result.timed_out:
        return _RepoProblem(SYNC_FAILED, f"{url}: git timed out after {timeout:g}s", timed_out=True)
    text = result.stderr
    lowered = text.lower()
    reason = result.reason()
    if ("remote branch" in lowered and "not found" in lowered) or "couldn't find remote ref" in (
        lowered
    ):
        return _RepoProblem(SYNC_BRANCH_MISSING, f"{url}: {reason}")
    auth = (
        "authentication failed",
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
        "permission denied",
        "the requested url returned error: 401",
        "the requested url returned error: 403",
    )
    if any(marker in lowered for marker in auth):
        if git is not None and git.token_withheld(url):
            reason += f" (the token is not given to this host: {TRUSTED_HOSTS_HINT})"
        return _RepoProblem(SYNC_AUTH_FAILED, f"{url}: {reason}")
    return _RepoProblem(SYNC_FAILED, f"{url}: {reason}")


@dataclass(frozen=True)
class CloneLimits:
    """Bounds on one clone's work tree, checked after every checkout."""

    max_bytes: int = DEFAULT_MAX_CLONE_BYTES
    max_files: int = DEFAULT_MAX_CLONE_FILES


def clone_limits(environ: Mapping[str, str]) -> CloneLimits:
    """The limits from ``PETROVA_MAX_CLONE_BYTES`` and ``PETROVA_MAX_CLONE_FILES``; a value
    that is not a positive whole number is a usage error (exit 2), before any clone."""

    def read(name: str, default: int) -> int:
        raw = environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise UsageError(f"{name}={raw!r} is not a positive whole number")
        return value

    return CloneLimits(
        read("PETROVA_MAX_CLONE_BYTES", DEFAULT_MAX_CLONE_BYTES),
        read("PETROVA_MAX_CLONE_FILES", DEFAULT_MAX_CLONE_FILES),
    )


def oversize(tree: Path, limits: CloneLimits) -> str | None:
    """How a checked-out work tree passes ``limits``, or None when it does not: files
    (links included) and their bytes, ``.git`` left out. Walked with an explicit stack,
    and stopped as soon as a limit is passed, so a huge tree costs little to refuse."""
    files = size = 0
    stack = [tree]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            continue
        for entry in entries:
            if folder == tree and entry.name == ".git":
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
                continue
            files += 1
            with contextlib.suppress(OSError):
                size += entry.stat(follow_symlinks=False).st_size
            if files > limits.max_files:
                return f"more than {limits.max_files} files (PETROVA_MAX_CLONE_FILES)"
            if size > limits.max_bytes:
                return f"more than {limits.max_bytes} bytes (PETROVA_MAX_CLONE_BYTES)"
    return None


@dataclass(frozen=True)
class _Context:
    workspace: Path
    scratch: Path
    git: Git
    catalogue: Catalogue
    previous: dict[str, SyncRecord]
    limits: CloneLimits = field(default_factory=CloneLimits)


def _too_large(ctx: _Context, entry: RepoEntry, tree: Path) -> _RepoProblem | None:
    over = oversize(tree, ctx.limits)
    if over is None:
        return None
    return _RepoProblem(
        SYNC_CLONE_TOO_LARGE,
        f"{entry.url}: the checkout holds {over}; the clone is not kept, so its contract is "
        "not read (the repo's .petrova/ and probe paths must stay small)",
    )


def _wanted_paths(repo: Path, catalogue: Catalogue) -> tuple[list[str], _RepoProblem | None]:
    """The probe paths of the contract checked out in ``repo`` (none without a valid one)."""
    try:
        path = confined(repo, CONTRACT_RELPATH)
        contract = load_contract(path, catalogue)
    except PetrovaError:
        return [], None  # the snapshot says what is wrong with it, at its line
    try:
        return probe_paths(catalogue, contract.contract), None
    except ProbePathUnsafe as exc:
        return exc.safe, _RepoProblem(exc.code, exc.message)


def _has_contract(repo: Path) -> bool:
    try:
        return confined(repo, CONTRACT_RELPATH).is_file()
    except PetrovaError:
        return False


def _sparse_file(repo: Path) -> Path:
    return repo / ".git" / "info" / "sparse-checkout"


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _git_ok(ctx: _Context, args: Sequence[str], *, cwd: Path, url: str | None) -> Result:
    result = ctx.git.run(args, cwd=cwd, url=url)
    if not result.ok:
        raise _classify(result, url or str(cwd), timeout=ctx.git.timeout, git=ctx.git)
    return result


def _apply_paths(ctx: _Context, repo: Path, url: str) -> _RepoProblem | None:
    """Check out the paths the contract's probes need, when they differ from what is."""
    paths, problem = _wanted_paths(repo, ctx.catalogue)
    wanted = sparse_patterns(paths)
    current = _read_text(_sparse_file(repo))
    if current != wanted:
        result = ctx.git.run(
            ["sparse-checkout", "set", "--no-cone", "--stdin"], cwd=repo, url=url, stdin=wanted
        )
        if not result.ok:
            raise _classify(result, url, timeout=ctx.git.timeout, git=ctx.git)
    return problem


def _loose_head(repo: Path) -> str | None:
    """HEAD's commit when it is what ``git clone`` and ``git reset`` leave in a clone of
    ours (a symbolic ref to a loose branch ref): a read, not a process per repo."""
    head = _read_text(repo / ".git" / "HEAD")
    if head is None or not head.startswith("ref: refs/heads/"):
        return None
    ref = head[5:].strip()
    if ".." in ref:
        return None
    commit = (_read_text(repo / ".git" / ref) or "").strip()
    return commit if _COMMIT.fullmatch(commit) else None


def _head(ctx: _Context, repo: Path) -> str | None:
    """The commit checked out in ``repo``; git answers whenever the fast read cannot."""
    loose = _loose_head(repo)
    if loose is not None:
        return loose
    result = ctx.git.run(["rev-parse", "--verify", "-q", "HEAD"], cwd=repo)
    commit = result.stdout.strip()
    return commit if result.ok and len(commit) == 40 else None


def _clone(ctx: _Context, entry: RepoEntry, dest: Path) -> tuple[str, _RepoProblem | None]:
    """A new clone in the scratch folder, renamed into place only when it is complete."""
    tmp = ctx.scratch / f"{entry.slug}.{os.getpid()}.tmp"
    try:
        _git_ok(
            ctx,
            [
                "clone",
                "--quiet",
                "--no-checkout",
                "--depth=1",
                "--filter=blob:none",
                "--single-branch",
                "--no-tags",
                "--branch",
                entry.default_branch,
                "--config",
                "core.sparseCheckout=true",
                "--config",
                "core.sparseCheckoutCone=false",
                "--",
                entry.url,
                str(tmp),
            ],
            cwd=ctx.scratch,
            url=entry.url,
        )
        (tmp / ".git" / "info").mkdir(exist_ok=True)
        _sparse_file(tmp).write_text(sparse_patterns([]))
        _git_ok(ctx, ["checkout", "--quiet"], cwd=tmp, url=entry.url)
        problem = _apply_paths(ctx, tmp, entry.url)
        too_large = _too_large(ctx, entry, tmp)
        if too_large is not None:
            raise too_large  # the unfinished clone is removed below, never renamed in
        commit = _head(ctx, tmp)
        if commit is None:
            raise _RepoProblem(SYNC_FAILED, f"{entry.url}: the new clone has no HEAD")
        if dest.is_dir():  # an empty folder stood there (checked by the caller)
            dest.rmdir()
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return commit, problem


def _clear_stale_locks(git_dir: Path, older_than: float) -> None:
    """Remove git's lock files left by a git petrova killed (timeout, or a killed run):
    we hold the repo's sync lock, and any git petrova started is gone after the timeout."""
    limit = time.time() - older_than
    spots = [git_dir, git_dir / "info"]
    refs = git_dir / "refs"
    candidates = [p for spot in spots if spot.is_dir() for p in spot.glob("*.lock")]
    if refs.is_dir():
        candidates += list(refs.rglob("*.lock"))
    for lock in candidates:
        with contextlib.suppress(OSError):
            if lock.is_file() and not lock.is_symlink() and lock.stat().st_mtime < limit:
                lock.unlink()


def _refuse_if_corrupt(ctx: _Context, dest: Path, origin: Result) -> None:
    """A clone git cannot read as its own repository is damaged, not someone else's: say
    so (``SYNC_CLONE_CORRUPT``) rather than "its origin is no origin". git would look
    past a broken ``.git`` for a repository in a folder above; that one is not ours."""
    where = ctx.git.run(["rev-parse", "--absolute-git-dir"], cwd=dest)
    ours = os.path.realpath(dest / ".git")
    broken = origin.returncode not in (0, 1) or not where.ok
    if broken or os.path.realpath(where.stdout.strip()) != ours:
        reason = (where if not where.ok else origin).reason() if broken else "not a repository"
        raise _RepoProblem(
            SYNC_CLONE_CORRUPT,
            f"{dest} is a damaged clone (git: {reason}); left as it is: delete it and sync "
            "again to clone it afresh",
        )


def _update(ctx: _Context, entry: RepoEntry, dest: Path) -> tuple[Action, str, _RepoProblem | None]:
    git_dir = dest / ".git"
    _clear_stale_locks(git_dir, ctx.git.timeout)
    origin = ctx.git.run(list(ORIGIN_CONFIG_ARGS), cwd=dest)
    if not same_repo(origin.stdout.strip(), entry.url):
        _refuse_if_corrupt(ctx, dest, origin)
        shown = origin.stdout.strip() or "no origin"
        raise _RepoProblem(
            SYNC_ORIGIN_MISMATCH,
            f"{dest}: its origin is {shown}, not the registry's {entry.url}; left as it is "
            "(move it away and sync again to clone the registry's repo)",
        )
    head = _head(ctx, dest)
    branch = entry.default_branch
    remote = ctx.git.run(
        ["ls-remote", "--exit-code", "origin", f"refs/heads/{branch}"], cwd=dest, url=entry.url
    )
    if remote.returncode == 2 and not remote.timed_out:
        raise _RepoProblem(
            SYNC_BRANCH_MISSING, f"{entry.url}: branch {branch!r} is not on the remote"
        )
    if not remote.ok:
        raise _classify(remote, entry.url, timeout=ctx.git.timeout, git=ctx.git)
    remote_head = remote.stdout.split()[0] if remote.stdout.split() else None
    before = ctx.previous.get(entry.slug)
    settled = (
        before is not None
        and before.status == "ok"
        and before.commit == head
        and before.url == entry.url
        and before.branch == branch
    )
    action: Action = "unchanged"
    if head is None or head != remote_head or not settled:
        _git_ok(
            ctx,
            [
                "fetch",
                "--quiet",
                "--depth=1",
                "--no-tags",
                "origin",
                f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
            ],
            cwd=dest,
            url=entry.url,
        )
        # --hard: the workspace is petrova's; this also repairs a tree a killed run left
        _git_ok(
            ctx,
            ["reset", "--quiet", "--hard", f"refs/remotes/origin/{branch}"],
            cwd=dest,
            url=entry.url,
        )
        new_head = _head(ctx, dest)
        if new_head is None:
            raise _RepoProblem(SYNC_FAILED, f"{dest}: no HEAD after the update")
        action = "unchanged" if new_head == head else "updated"
        head = new_head
    problem = _apply_paths(ctx, dest, entry.url)
    too_large = _too_large(ctx, entry, dest)
    if too_large is not None:
        # the clone is petrova's (its origin is the registry's url): removed, so that
        # neither the snapshot nor a probe reads a checkout past the limits
        shutil.rmtree(dest, ignore_errors=True)
        raise too_large
    return action, head, problem


def _sync_locked(ctx: _Context, entry: RepoEntry, dest: Path) -> tuple[Action, str | None]:
    """Clone or update ``dest``, holding the repo's lock; trouble is a _RepoProblem."""
    for stale in ctx.scratch.glob(f"{entry.slug}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise _RepoProblem(
            SYNC_NOT_A_CLONE,
            f"{dest} is not a folder petrova cloned (a file or a link); left as it is",
        )
    empty = dest.is_dir() and not any(dest.iterdir())
    problem: _RepoProblem | None
    if dest.is_dir() and not empty:
        if not (dest / ".git").is_dir() or (dest / ".git").is_symlink():
            raise _RepoProblem(
                SYNC_NOT_A_CLONE,
                f"{dest} is not a git clone; left as it is (move it away and sync again)",
            )
        try:
            action, commit, problem = _update(ctx, entry, dest)
        except _RepoProblem as exc:
            if exc.timed_out:
                # the killed git and its helpers are gone (their process group was
                # killed) and this run holds the repo's lock: any git lock left is stale
                _clear_stale_locks(dest / ".git", older_than=0)
            raise
    else:
        commit, problem = _clone(ctx, entry, dest)
        action = "cloned"
    if problem is None and entry.migrated and not _has_contract(dest):
        problem = _RepoProblem(
            SYNC_NO_CONTRACT,
            f"{entry.url}: no {CONTRACT_RELPATH} on {entry.default_branch} at "
            f"{commit}, though the registry pins one; has its PR merged?",
        )
    if problem is not None:
        raise problem
    return action, commit


def _sync_repo(ctx: _Context, entry: RepoEntry) -> RepoResult:
    dest = ctx.workspace / entry.slug
    commit: str | None = None
    action: Action = "failed"
    problem: _RepoProblem | None = None
    try:
        with file_lock(ctx.scratch / entry.slug, wait=ctx.git.timeout):
            action, commit = _sync_locked(ctx, entry, dest)
    except _RepoProblem as exc:
        problem = exc
    except LockTimeout:
        problem = _RepoProblem(SYNC_BUSY, f"{dest}: another petrova sync is still working on it")
    except PetrovaError as exc:  # the repo's lock cannot be made (a link planted there)
        problem = _RepoProblem(
            SYNC_LOCK_UNUSABLE,
            f"{exc.render()}; this repo was not synced (remove that file and sync again)",
        )
    except OSError as exc:
        problem = _RepoProblem(SYNC_FAILED, f"{dest}: {exc.strerror or exc}")
    corrupt = problem is not None and problem.code == SYNC_CLONE_CORRUPT
    if problem is not None and not corrupt and (dest / ".git").is_dir() and not dest.is_symlink():
        commit = _head(ctx, dest)  # what is on disk, for the record
    record = SyncRecord(
        url=entry.url,
        branch=entry.default_branch,
        commit=commit,
        synced_at=clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        status="failed" if problem is not None else "ok",
        code=None if problem is None else problem.code,
        message=None if problem is None else problem.message,
    )
    return RepoResult(entry.slug, "failed" if problem is not None else action, record)


def _control_plane(ctx: _Context, entry: RepoEntry, folder: Path) -> RepoResult:
    """The control plane's contract is read from the registry's own checkout: its HEAD."""
    plain = Git(timeout=ctx.git.timeout)
    result = plain.run(["rev-parse", "--verify", "-q", "HEAD"], cwd=folder)
    commit = result.stdout.strip() if result.ok else ""
    record = SyncRecord(
        url=entry.url,
        branch=entry.default_branch,
        commit=commit if len(commit) == 40 else None,
        synced_at=clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        status="ok",
    )
    return RepoResult(entry.slug, "read", record)


def select_entries(loaded: LoadedRegistry, slugs: Sequence[str], shard: Shard) -> list[RepoEntry]:
    """The named repos (each must be in the registry) or all, then this shard's share."""
    chosen = (
        [loaded.require(s) for s in dict.fromkeys(slugs)] if slugs else list(loaded.registry.repos)
    )
    return [e for e in chosen if shard.holds(e.slug)]


def _strays(workspace: Path, known: set[str]) -> list[Notice]:
    notices = []
    for child in sorted(workspace.iterdir()):
        if child.name.startswith(".") or child.name in known or not child.is_dir():
            continue
        notices.append(
            Notice(
                child.name,
                SYNC_NOT_IN_REGISTRY,
                f"{child} is not a registry repo (it left the registry?); left as it is, "
                "remove it when it is no longer needed",
            )
        )
    return notices


def sync_fleet(
    loaded: LoadedRegistry,
    *,
    workspace: Path,
    git: Git,
    slugs: Sequence[str] = (),
    shard: Shard = ALL,
    jobs: int | None = None,
    progress: Progress | None = None,
    limits: CloneLimits | None = None,
) -> SyncReport:
    """Sync every selected repo, ``jobs`` at a time; record each in the manifest."""
    entries = select_entries(loaded, slugs, shard)
    workspace = workspace.absolute()  # git runs in other folders; paths must not move
    workspace.mkdir(parents=True, exist_ok=True)
    scratch = workspace / SCRATCH_NAME
    scratch.mkdir(exist_ok=True)
    ctx = _Context(
        workspace, scratch, git, loaded.catalogue, read_manifest(workspace), limits or CloneLimits()
    )
    results: dict[str, RepoResult] = {}
    clones = [e for e in entries if e.role != "control-plane"]
    for entry in entries:
        if entry.role == "control-plane":
            results[entry.slug] = _control_plane(ctx, entry, loaded.path.parent)
    done = len(results)
    if progress is not None:
        progress(done, len(entries))
    with ThreadPoolExecutor(max_workers=max(1, jobs or default_jobs())) as pool:
        futures = [pool.submit(_sync_repo, ctx, entry) for entry in clones]
        for future in as_completed(futures):
            result = future.result()
            results[result.slug] = result
            done += 1
            if progress is not None:
                progress(done, len(entries))
    ordered = tuple(results[e.slug] for e in entries)
    update_manifest(workspace, [(r.slug, r.record) for r in ordered], wait=git.timeout)
    notices: list[Notice] = []
    if not slugs and shard.index == 1:
        notices = _strays(workspace, {e.slug for e in loaded.registry.repos})
    return SyncReport(ordered, tuple(notices))


def results_json(report: SyncReport) -> dict[str, Any]:
    """The ``--json`` document: one stable shape."""
    return {
        "repos": [
            {"slug": r.slug, "action": r.action, **r.record.as_json()} for r in report.results
        ],
        "notices": [{"slug": n.slug, "code": n.code, "message": n.message} for n in report.notices],
        "failed": len(report.failures),
    }
