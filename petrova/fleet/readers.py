"""Reading many contracts and ledgers at once: across the machine's cores, and starting
before the registry that names them has been parsed.

At fleet scale reading is most of a snapshot's work. :class:`Readers` forks workers
(on Linux, for fleets of thousands, or as ``PETROVA_WORKERS`` says) that inherit the
loaded catalogue and read cache and send back plain lists and strings; :func:`prefetch`
starts them on the files a registry's text most likely names while the registry is
still being parsed.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import re
import signal
import stat
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, NamedTuple

from petrova.documents.catalogue import Catalogue
from petrova.documents.contract import CONTRACT_RELPATH
from petrova.errors import PetrovaError
from petrova.files.disk import confined
from petrova.fleet.reads import (
    ContractRead,
    Identity,
    Job,
    LedgerRead,
    Places,
    Read,
    ReadCache,
    ReadT,
    decode_read,
    encode_read,
    folder_identity_of,
    identity_of,
    lstat_or_none,
    read_contract,
    read_ledger,
)

Progress = Callable[[int, int], None]


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
        st = lstat_or_none(where)
        identity = identity_of(st)
        if st is not None and stat.S_ISLNK(st.st_mode):  # only petrova writes ledgers
            return Looked(where, identity, _refused(Path(where).parent, where, LedgerRead), None)
        hit = cache.get(job, identity)
        if hit is not None:
            return Looked(where, identity, hit, None)
        read: Read = read_ledger(Path(where), catalogue, slug)
        return Looked(where, identity, read, cache.entry(identity, read))
    # Strings, not Paths: pathlib's parsing cost 0.4 s a snapshot at 10,000 repos.
    path = os.path.join(where, *CONTRACT_RELPATH.parts)  # noqa: PTH118
    folder_st = lstat_or_none(os.path.dirname(path))  # noqa: PTH120
    folder = folder_identity_of(folder_st)
    st = lstat_or_none(path)
    identity = identity_of(st)
    if any(s is not None and stat.S_ISLNK(s.st_mode) for s in (folder_st, st)):
        refused = _refused(Path(where), path, ContractRead)  # a link: not read, not cached
        return Looked(path, identity, refused, None, folder)
    hit = cache.get(("contract", path, slug), identity)
    if hit is not None:
        return Looked(path, identity, hit, None, folder)
    read = read_contract(Path(path), catalogue)
    return Looked(path, identity, read, cache.entry(identity, read), folder)


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

    The workers never outlive the parent (they are killed when it dies, by a signal
    or a timeout), leave Ctrl-C to it, and a worker that dies (the OOM killer) or a
    fork that fails only means the parent reads what is left itself.
    """

    def __init__(self, jobs: list[Job], catalogue: Catalogue, cache: ReadCache) -> None:
        self.jobs = jobs
        self.catalogue = catalogue
        self.cache = cache
        self.found: dict[Job, Looked] = {}
        self._pool: ProcessPoolExecutor | None = None
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
        self._pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_worker_started,
            initargs=(os.getpid(),),
        )
        try:
            self._pending = self._pool.map(_look_chunk, self._chunks)
        except OSError:  # no processes to be had (limits): the parent reads it all
            self._stop()

    def take(self, progress: Progress | None = None) -> dict[Job, Looked]:
        """Every job's result, waiting for the workers (or doing the work, with none)."""
        if self._pending is not None:
            try:
                for chunk, sent in zip(self._chunks, self._pending, strict=False):
                    self.found.update(
                        (job, _received(job[0], *item))
                        for job, item in zip(chunk, sent, strict=True)
                    )
                    if progress is not None:
                        progress(len(self.found), len(self.jobs))
            except BrokenProcessPool:  # a worker died: what it had is read again, here
                self._stop()
            self._pending = None
        for job in self.jobs:
            if job not in self.found:
                self.found[job] = _look(job, self.catalogue, self.cache)
                if progress is not None and len(self.found) % 250 == 0:
                    progress(len(self.found), len(self.jobs))
        return self.found

    def __enter__(self) -> Readers:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        """Done, or given up: either way the workers go, now."""
        global _WORKER_STATE
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        self._pending = None
        processes = list(getattr(pool, "_processes", None) or {})
        pool.shutdown(wait=False, cancel_futures=True)
        for pid in processes:  # idle or not, nothing they hold is wanted any more
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        pool.shutdown(wait=True)
        _WORKER_STATE = None


def _worker_started(parent: int) -> None:
    """In each worker: die with the parent, and leave Ctrl-C to it.

    A worker inherits the parent's open files, the lock on ``-o FILE`` among them; one
    that outlived a parent stopped by ``timeout`` would keep that lock from the next
    run. Linux kills it when the parent dies (``PR_SET_PDEATHSIG``).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(0)


_PR_SET_PDEATHSIG = 1


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
    places = Places(state_dir=state_dir, workspace=workspace)
    for slug in slugs:
        root = places.clone(slug)
        if root is not None:
            jobs.append(("contract", root, slug))
        jobs.append(("ledger", places.ledger(slug), slug))
    if _workers(len(jobs)) < 2:
        jobs = []  # on one core there is nothing to overlap: read what is asked, later
    cache = ReadCache.for_run(catalogue, state_dir, workspace)
    return Readers(jobs, catalogue, cache)


_SLUG_LINE = re.compile(
    r"(?m)^[ \t]*(?:-[ \t]+)?slug[ \t]*:[ \t]*[\"']?([a-z0-9][a-z0-9-]*)[\"']?[ \t]*$"
)


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
        encoded = looked.keep[1] if looked.keep is not None else encode_read(looked.read)
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
    return Looked(path, identity, decode_read(kind, encoded), entry, folder)
