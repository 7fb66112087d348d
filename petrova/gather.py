"""Reading each migrated repo's contract and ledger, for the snapshot and the gate.

At fleet scale this is most of a snapshot's work, so each file is read once: results
are kept in a cache keyed by the file's identity (size, mtime, inode, ctime; the
catalogue they were checked against by its content hash), and the files the cache
does not have are read across the machine's cores. What is kept per file does not
depend on the registry's pins or applicability; the warnings that do are derived
afresh on every run, so a cached read is never stale policy.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import orjson

from petrova import __version__
from petrova.catalogue import Catalogue
from petrova.contract import CONTRACT_RELPATH, load_contract
from petrova.errors import PetrovaError
from petrova.io import confined, limits_in_force, read_input, write_atomic
from petrova.ledger import Observation, read_observations
from petrova.models import DeclaredStatus, RepoEntry, SnapshotWarning, applicability_value
from petrova.registry import LoadedRegistry, load_registry

Progress = Callable[[int, int], None]
#: What says a file is unchanged: [size, mtime_ns, inode, ctime_ns].
Identity = list[int]
#: Files whose ctime is this recent are not cached (see ``ReadCache.put``).
RACY_NS = 2_000_000_000


class Declared(NamedTuple):
    """What a contract declares for one integration, as the snapshot reads it."""

    status: DeclaredStatus
    review_by: str | None


@dataclass(frozen=True)
class RepoInputs:
    """What could be read for one migrated repo; ``None`` where it could not."""

    declared: dict[str, Declared] | None
    observed: dict[str, Observation] | None
    warnings: tuple[SnapshotWarning, ...] = ()


@dataclass(frozen=True)
class FleetInputs:
    loaded: LoadedRegistry
    repos: dict[str, RepoInputs] = field(default_factory=dict)
    #: Every contract and ledger path looked at, with its identity then (``None``: absent).
    sources: dict[str, Identity | None] = field(default_factory=dict)
    #: The folders on the way to each contract that must not become links (SECURITY.md):
    #: their inode and mode then.
    folders: dict[str, Identity | None] = field(default_factory=dict)


@dataclass(frozen=True)
class ContractRead:
    slug: str | None = None
    sha: str | None = None
    declared: dict[str, Declared] | None = None
    error: str | None = None


@dataclass(frozen=True)
class LedgerRead:
    observed: dict[str, Observation] | None = None
    missing: bool = False
    error: str | None = None


Read = ContractRead | LedgerRead
ReadT = TypeVar("ReadT", ContractRead, LedgerRead)
#: (kind, path, slug): what to read; kind is "contract" or "ledger".
Job = tuple[str, str, str]


def contract_location(
    entry: RepoEntry, *, registry_path: Path, workspace: Path | None
) -> Path | None:
    """Where a repo's contract lives: beside the registry for the control plane itself.

    A symbolic link inside the repo on the way to it is ``UNSAFE_PATH``: consumer repos
    are not trusted, and a link could make petrova read (and quote) any file.
    """
    root = _Places(None, workspace, control_plane=registry_path.parent).clone(
        entry.slug, entry.role
    )
    return None if root is None else confined(Path(root), CONTRACT_RELPATH)


def read_contract(path: Path, catalogue: Catalogue) -> ContractRead:
    try:
        loaded = load_contract(path, catalogue)
    except PetrovaError as exc:
        return ContractRead(error=exc.render())
    cells = loaded.contract.integrations
    declared = {i: Declared(c.status, c.review_by) for i, c in cells.items()}
    return ContractRead(loaded.contract.slug, loaded.sha, declared)


def read_ledger(path: Path, catalogue: Catalogue, slug: str) -> LedgerRead:
    """A ledger's observations (the caller has refused a linked ledger)."""
    try:
        return LedgerRead(read_observations(path, catalogue, slug=slug))
    except FileNotFoundError:
        return LedgerRead(missing=True)
    except PetrovaError as exc:
        return LedgerRead(error=exc.render())


class Looked(NamedTuple):
    """One file looked at: where, its identity then, and what was read of it."""

    path: str
    identity: Identity | None
    read: Read
    #: What the cache is to keep of a read made in this run (encoded where it was made,
    #: in a worker); ``None`` for a read from the cache, a refusal, or a racy file.
    keep: list[Any] | None
    #: For a contract, the ``.petrova`` folder's inode and mode (see ``folder_identity``).
    folder: Identity | None = None


def _look(job: Job, catalogue: Catalogue, cache: ReadCache) -> Looked:
    """Everything about one job that touches the disk, so that it can run in a worker.

    One ``lstat`` per file (and per contract folder) gives both the identity and
    whether it is a link: :func:`petrova.io.confined` is called only to refuse one.
    """
    kind, where, slug = job
    if kind == "ledger":
        st = _lstat(where)
        identity = _identity_of(st)
        if st is not None and stat.S_ISLNK(st.st_mode):  # only petrova writes ledgers
            return Looked(where, identity, _refused(Path(where).parent, where, LedgerRead), None)
        hit = cache.get(job, identity)
        if hit is not None:
            return Looked(where, identity, hit, None)
        read: Read = read_ledger(Path(where), catalogue, slug)
        return Looked(where, identity, read, cache.entry(identity, read))
    # Strings, not Paths: pathlib's parsing cost 0.4 s a snapshot at 10,000 repos.
    path = os.path.join(where, *CONTRACT_RELPATH.parts)  # noqa: PTH118
    folder_st = _lstat(os.path.dirname(path))  # noqa: PTH120
    folder = None if folder_st is None else [folder_st.st_ino, folder_st.st_mode]
    st = _lstat(path)
    identity = _identity_of(st)
    if any(s is not None and stat.S_ISLNK(s.st_mode) for s in (folder_st, st)):
        refused = _refused(Path(where), path, ContractRead)  # a link: not read, not cached
        return Looked(path, identity, refused, None, folder)
    hit = cache.get(("contract", path, slug), identity)
    if hit is not None:
        return Looked(path, identity, hit, None, folder)
    read = read_contract(Path(path), catalogue)
    return Looked(path, identity, read, cache.entry(identity, read), folder)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (OSError, ValueError):
        return None


def _identity_of(st: os.stat_result | None) -> Identity | None:
    return None if st is None else [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def _refused(root: Path, path: str, kind: type[ReadT]) -> ReadT:
    """The read of a file reached through a link: ``confined``'s refusal, as an error."""
    try:
        confined(root, Path(path).relative_to(root))
    except PetrovaError as exc:
        return kind(error=exc.render())
    raise AssertionError(f"{path} was a link a moment ago")  # pragma: no cover - a race


class Readers:
    """Forked workers looking at jobs while the parent goes on (with one core, none).

    Workers inherit the catalogue and the cache, and send back only what was read, a
    few strings per file, never parsed models: unpickling models in the parent once
    cost more than the reading saved. The parent looks at the first job of each kind
    itself first, so that the workers inherit what that sets up once (compiled
    validators and patterns, imports) instead of each doing it again.
    """

    def __init__(self, jobs: list[Job], catalogue: Catalogue, cache: ReadCache) -> None:
        self.jobs = jobs
        self.catalogue = catalogue
        self.cache = cache
        self.found: dict[Job, Looked] = {}
        self._pool: Any = None
        self._pending: Iterator[list[Sent]] | None = None
        workers = _workers(len(jobs))
        if workers < 2:
            return
        for kind in ("contract", "ledger"):
            first = next((job for job in jobs if job[0] == kind), None)
            if first is not None:
                self.found[first] = _look(first, catalogue, cache)
        rest = [job for job in jobs if job not in self.found]
        size = max(50, len(rest) // (workers * 8))
        self._chunks = [rest[i : i + size] for i in range(0, len(rest), size)]
        global _WORKER_STATE
        _WORKER_STATE = (catalogue, cache)  # forked workers inherit it; reset on exit
        try:
            self._pool = multiprocessing.get_context("fork").Pool(workers)
        except OSError:  # no processes to be had (limits): read here, in one process
            _WORKER_STATE = None
            return
        self._pending = self._pool.imap(_look_chunk, self._chunks)

    def take(self, progress: Progress | None = None) -> dict[Job, Looked]:
        """Every job's result, waiting for the workers (or doing the work, with none)."""
        total = len(self.jobs)
        if self._pending is None:
            for job in self.jobs:
                if job not in self.found:
                    self.found[job] = _look(job, self.catalogue, self.cache)
                    if progress is not None and len(self.found) % 250 == 0:
                        progress(len(self.found), total)
            return self.found
        for chunk, sent in zip(self._chunks, self._pending, strict=True):
            self.found.update(
                (job, _received(job[0], *item)) for job, item in zip(chunk, sent, strict=True)
            )
            if progress is not None:
                progress(len(self.found), total)
        self._pending = None
        return self.found

    def __enter__(self) -> Readers:
        return self

    def __exit__(self, *exc: object) -> None:
        global _WORKER_STATE
        if self._pool is not None:
            self._pool.terminate()  # done, or given up: either way nothing is left to read
            self._pool.join()
            self._pool = None
            _WORKER_STATE = None


def prefetch(
    registry_text: str, catalogue: Catalogue, *, state_dir: Path, workspace: Path | None
) -> Readers:
    """Start reading the files the registry most likely asks for, before it is parsed.

    Parsing a 10,000-entry registry takes about 0.5 s, and nothing else needs to wait
    for it: the slugs are picked out of the text with a pattern, and workers read the
    ledgers and consumer contracts at their usual places meanwhile. :func:`gather` uses
    only the reads of the jobs the parsed registry really has, and does any other
    itself, so a wrong guess costs time, never a wrong result.
    """
    slugs = dict.fromkeys(_SLUG_LINE.findall(registry_text))
    jobs: list[Job] = []
    places = _Places(state_dir, workspace)
    for slug in slugs:
        root = places.clone(slug)
        if root is not None:
            jobs.append(("contract", root, slug))
        jobs.append(("ledger", places.ledger(slug), slug))
    if _workers(len(jobs)) < 2:
        jobs = []  # on one core there is nothing to overlap: read what is asked, later
    cache = ReadCache(cache_dir(), catalogue, _scope(state_dir, workspace))
    return Readers(jobs, catalogue, cache)


def gather_fleet(
    registry: Path,
    catalogue: Catalogue,
    *,
    state_dir: Path,
    workspace: Path | None,
    today: date,
    progress: Progress | None = None,
) -> FleetInputs:
    """Load the registry and read what it names, the two overlapping (see :func:`prefetch`)."""
    try:
        text = read_input(registry).decode("utf-8", "replace")
    except (OSError, PetrovaError):
        text = ""  # load_registry says what is wrong
    with prefetch(text, catalogue, state_dir=state_dir, workspace=workspace) as started:
        loaded = load_registry(registry, catalogue, today=today)
        return gather(
            loaded, state_dir=state_dir, workspace=workspace, progress=progress, started=started
        )


_SLUG_LINE = re.compile(
    r"(?m)^[ \t]*(?:-[ \t]+)?slug[ \t]*:[ \t]*[\"']?([a-z0-9][a-z0-9-]*)[\"']?[ \t]*$"
)


class _Places:
    """Where a repo's files are, as strings: its ledger (as ``ledger.ledger_path`` says)
    and its clone, the registry's folder for the control plane itself. Strings, because
    20,000 Path objects cost 0.2 s of a snapshot at 10,000 repos."""

    def __init__(
        self, state_dir: Path | None, workspace: Path | None, control_plane: Path | None = None
    ) -> None:
        self.state_dir = str(state_dir)
        self.workspace = None if workspace is None else str(workspace)
        self.control_plane = None if control_plane is None else str(control_plane)

    def ledger(self, slug: str) -> str:
        return os.path.join(self.state_dir, f"{slug}.yaml")  # noqa: PTH118

    def clone(self, slug: str, role: str = "") -> str | None:
        if role == "control-plane":
            return self.control_plane
        return None if self.workspace is None else os.path.join(self.workspace, slug)  # noqa: PTH118


def _scope(state_dir: Path, workspace: Path | None) -> str:
    """What a cached read depends on besides the file and the catalogue."""
    where = f"{Path(state_dir).resolve()}\0{workspace.resolve() if workspace else ''}"
    return f"{where}\0{limits_in_force()}"


#: Below this many files one process is faster than starting workers.
PARALLEL_MIN = 2000
_WORKER_STATE: tuple[Catalogue, ReadCache] | None = None


def _workers(count: int) -> int:
    """How many processes read ``count`` files: ``PETROVA_WORKERS`` when set, else the
    cores this process may use, and one for small fleets (a fork costs more than it
    saves below :data:`PARALLEL_MIN` files)."""
    if count < 2 or sys.platform != "linux":  # fork is safe on Linux, not on macOS
        return 1
    with contextlib.suppress(ValueError):
        return max(1, int(os.environ.get("PETROVA_WORKERS", "")))
    if count < PARALLEL_MIN:
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: What a worker sends back for one job: path, identity, the read encoded as the cache
#: keeps it, whether the cache is to keep it, the folder's identity. Plain lists and
#: strings pickle in a third of the time the objects take.
Sent = tuple[str, Identity | None, dict[str, Any], bool, Identity | None]


def _look_chunk(jobs: list[Job]) -> list[Sent]:
    assert _WORKER_STATE is not None, "set before the fork"
    catalogue, cache = _WORKER_STATE
    sent: list[Sent] = []
    for job in jobs:
        looked = _look(job, catalogue, cache)
        encoded = looked.keep[1] if looked.keep is not None else _encode(looked.read)
        sent.append((looked.path, looked.identity, encoded, looked.keep is not None, looked.folder))
    return sent


def _received(
    kind: str,
    path: str,
    identity: Identity | None,
    encoded: dict[str, Any],
    keep: bool,
    folder: Identity | None,
) -> Looked:
    entry = [identity, encoded] if keep else None
    return Looked(path, identity, _decode(kind, encoded), entry, folder)


# --- the cache -------------------------------------------------------------------------------


def cache_dir() -> Path | None:
    """``PETROVA_CACHE_DIR``, else ``$XDG_CACHE_HOME/petrova``; ``None`` when
    ``PETROVA_CACHE=off``. The cache only ever saves time: any trouble with it is ignored."""
    if os.environ.get("PETROVA_CACHE", "").lower() in ("off", "0", "no", "false"):
        return None
    explicit = os.environ.get("PETROVA_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "petrova"


def file_identity(path: str | Path) -> Identity | None:
    """The file's identity, or ``None`` when there is no such file (or it cannot be seen)."""
    return _identity_of(_lstat(str(path)))


def folder_identity(path: str | Path) -> Identity | None:
    """A folder's inode and mode: they change when it is replaced (by a link, say), but
    not when files inside it change."""
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return None
    return [st.st_ino, st.st_mode]


class ReadCache:
    """Reads of contracts and ledgers from earlier runs, valid while the file is unchanged."""

    def __init__(self, directory: Path | None, catalogue: Catalogue, scope: str) -> None:
        self.path: Path | None = None
        self.entries: dict[str, list[Any]] = {}
        self.dirty = False
        self.racy_after = time.time_ns() - RACY_NS
        if directory is None:
            return
        digest = hashlib.sha256(
            catalogue.raw + b"\0" + scope.encode() + b"\0" + __version__.encode()
        )
        self.path = directory / f"reads-{digest.hexdigest()[:24]}.json"
        with contextlib.suppress(OSError, orjson.JSONDecodeError, TypeError):
            data = orjson.loads(self.path.read_bytes())
            if isinstance(data, dict):
                self.entries = data

    def get(self, job: Job, identity: Identity | None) -> Read | None:
        hit = self.entries.get(f"{job[0]}:{job[1]}")
        if hit is None or identity is None or hit[0] != identity:
            return None
        try:
            return _decode(job[0], hit[1])
        except (ValueError, TypeError, KeyError):
            return None

    def entry(self, identity: Identity | None, read: Read) -> list[Any] | None:
        """What to keep of a read just made, or ``None`` when it is not to be kept.

        A file changed within the last seconds may change again within the file
        system's timestamp resolution without its identity changing ("racy git"):
        read it again next time rather than trust it.
        """
        if self.path is None or identity is None or identity[3] > self.racy_after:
            return None
        return [identity, _encode(read)]

    def keep(self, kind: str, path: str, entry: list[Any]) -> None:
        self.entries[f"{kind}:{path}"] = entry
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        with contextlib.suppress(OSError, PetrovaError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, orjson.dumps(self.entries), durable=False)


def _encode(read: Read) -> dict[str, Any]:
    if isinstance(read, ContractRead):
        if read.declared is None:
            return {"error": read.error}
        declared = {k: list(v) for k, v in read.declared.items()}
        return {"slug": read.slug, "sha": read.sha, "declared": declared}
    if read.observed is None:
        return {"missing": read.missing, "error": read.error}
    return {"observed": {k: list(v) for k, v in read.observed.items()}}


def _decode(kind: str, data: dict[str, Any]) -> Read:
    if kind == "contract":
        if "declared" not in data:
            return ContractRead(error=str(data["error"]))
        declared = {str(k): Declared(*v) for k, v in data["declared"].items()}
        return ContractRead(str(data["slug"]), str(data["sha"]), declared)
    if "observed" not in data:
        return LedgerRead(missing=bool(data["missing"]), error=data["error"])
    return LedgerRead({str(k): Observation(*v) for k, v in data["observed"].items()})


# --- gathering ---------------------------------------------------------------------------------


def gather(
    loaded: LoadedRegistry,
    *,
    state_dir: Path,
    workspace: Path | None,
    progress: Progress | None = None,
    started: Readers | None = None,
) -> FleetInputs:
    """Read every migrated repo's contract and ledger; per-repo trouble becomes warnings.

    ``started``: reads begun before the registry was parsed (:func:`prefetch`).
    """
    catalogue = loaded.catalogue
    plans: list[tuple[RepoEntry, bool, str]] = []
    jobs: list[Job] = []
    places = _Places(state_dir, workspace, control_plane=loaded.path.parent)
    for entry in loaded.registry.repos:
        if not entry.migrated:
            continue
        root = places.clone(entry.slug, entry.role)
        if root is not None:
            jobs.append(("contract", root, entry.slug))
        ledger_file = places.ledger(entry.slug)
        jobs.append(("ledger", ledger_file, entry.slug))
        plans.append((entry, root is not None, ledger_file))

    if started is not None:
        cache = started.cache
        early = started.take(progress)
    else:
        cache = ReadCache(cache_dir(), catalogue, _scope(state_dir, workspace))
        early = {}
    todo = [job for job in jobs if job not in early]
    with Readers(todo, catalogue, cache) as readers:
        found = {**early, **readers.take(progress)}
    looked = [found[job] for job in jobs]
    sources: dict[str, Identity | None] = {}
    folders: dict[str, Identity | None] = {}
    reads: dict[tuple[str, str], Looked] = {}
    for job, seen in zip(jobs, looked, strict=True):
        reads[(job[0], job[2])] = seen
        sources[seen.path] = seen.identity
        if job[0] == "contract":
            folders[os.path.dirname(seen.path)] = seen.folder  # noqa: PTH120
        if seen.keep is not None:
            cache.keep(job[0], seen.path, seen.keep)
    cache.save()

    repos: dict[str, RepoInputs] = {}
    for entry, has_root, ledger_file in plans:
        warnings: list[SnapshotWarning] = []
        contract = reads[("contract", entry.slug)] if has_root else None
        declared = _declared_for(entry, contract, catalogue, warnings)
        observed = _observed_for(entry, ledger_file, reads[("ledger", entry.slug)].read, warnings)
        repos[entry.slug] = RepoInputs(declared, observed, tuple(warnings))
    return FleetInputs(loaded, repos, sources, folders)


def _declared_for(
    entry: RepoEntry,
    contract: Looked | None,
    catalogue: Catalogue,
    warnings: list[SnapshotWarning],
) -> dict[str, Declared] | None:
    def unreadable(message: str) -> None:
        warnings.append(
            SnapshotWarning(slug=entry.slug, code="CONTRACT_UNREADABLE", message=message)
        )

    if contract is None:
        unreadable(
            "no workspace to find the contract in; pass --workspace or set "
            "PETROVA_WORKSPACE (consumer clones at <workspace>/<slug>)"
        )
        return None
    where, read = contract.path, contract.read
    assert isinstance(read, ContractRead)
    if read.declared is None:
        unreadable(read.error or "unreadable")
        return None
    if read.slug != entry.slug:
        unreadable(f"{where}: the contract is for slug {read.slug!r}, not {entry.slug!r}")
        return None
    missing = [i for i in catalogue.ids if i not in read.declared]
    if missing:
        warnings.append(
            SnapshotWarning(
                slug=entry.slug,
                code="CONTRACT_INCOMPLETE",
                message=f"{where} does not declare {', '.join(missing)} yet (the catalogue "
                "gained it); re-run `petrova bootstrap --resume --phase 6` in that repo",
            )
        )
    if read.sha != entry.contract_sha:
        warnings.append(
            SnapshotWarning(
                slug=entry.slug,
                code="CONTRACT_SHA_DRIFT",
                message=f"{where} has sha {read.sha} but the registry pins "
                f"{entry.contract_sha}; run `petrova registry pin {entry.slug}` after review",
            )
        )
    return read.declared


def _observed_for(
    entry: RepoEntry, path: str, read: Read, warnings: list[SnapshotWarning]
) -> dict[str, Observation] | None:
    assert isinstance(read, LedgerRead)
    if read.observed is not None:
        return read.observed
    if read.missing:
        applicable = [
            i
            for i, item in entry.integrations_applicability.items()
            if applicability_value(item) != "not_applicable"
        ]
        if applicable:
            warnings.append(
                SnapshotWarning(
                    slug=entry.slug,
                    code="STATE_MISSING",
                    message=f"{path} does not exist yet: nothing observed for "
                    f"{', '.join(applicable)}",
                )
            )
        return None
    warnings.append(
        SnapshotWarning(slug=entry.slug, code="STATE_UNREADABLE", message=read.error or "")
    )
    return None
