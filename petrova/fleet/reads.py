"""What is read of one contract or one ledger file, and the cache that keeps it.

A snapshot needs little of each file: of a contract, its slug, sha and what it declares
for each integration; of a ledger, an :class:`~petrova.ledger.Observation` per cell. The
reads here are that and no more, small enough to hold for a whole fleet, to send back
from a worker process, and to keep in the read cache. The cache is keyed by each file's
identity (size, mtime, inode, ctime) and by the catalogue the read was checked against
(its content hash); what is kept per file does not depend on the registry's pins or
applicability, so a cached read is never stale policy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import orjson

from petrova import __version__
from petrova.documents.catalogue import Catalogue
from petrova.documents.contract import CONTRACT_RELPATH, load_contract
from petrova.errors import PetrovaError
from petrova.files.disk import confined, read_input, write_atomic
from petrova.files.yaml_strict import limits_in_force
from petrova.ledger.rules import Observation
from petrova.ledger.store import read_observations
from petrova.models import DeclaredStatus, RepoEntry

#: What says a file is unchanged: [size, mtime_ns, inode, ctime_ns].
Identity = list[int]
#: Files whose ctime is this recent are not cached (see :meth:`ReadCache.entry`).
RACY_NS = 2_000_000_000


class Declared(NamedTuple):
    """What a contract declares for one integration, as the snapshot reads it."""

    status: DeclaredStatus
    review_by: str | None


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
    places = Places(workspace=workspace, control_plane=registry_path.parent)
    root = places.clone(entry.slug, entry.role)
    return None if root is None else confined(Path(root), CONTRACT_RELPATH)


class Places:
    """Where a repo's files are, as strings: its ledger (as ``ledger.ledger_path`` says)
    and its clone, the registry's folder for the control plane itself. Strings, because
    20,000 Path objects cost 0.2 s of a snapshot at 10,000 repos."""

    def __init__(
        self,
        *,
        state_dir: Path | None = None,
        workspace: Path | None = None,
        control_plane: Path | None = None,
    ) -> None:
        self.state_dir = None if state_dir is None else str(state_dir)
        self.workspace = None if workspace is None else str(workspace)
        self.control_plane = None if control_plane is None else str(control_plane)

    def ledger(self, slug: str) -> str:
        assert self.state_dir is not None, "a state folder is needed to place ledgers"
        return os.path.join(self.state_dir, f"{slug}.yaml")  # noqa: PTH118

    def clone(self, slug: str, role: str = "") -> str | None:
        if role == "control-plane":
            return self.control_plane
        return None if self.workspace is None else os.path.join(self.workspace, slug)  # noqa: PTH118


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


def lstat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (OSError, ValueError):
        return None


def identity_of(st: os.stat_result | None) -> Identity | None:
    return None if st is None else [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


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
    return identity_of(lstat_or_none(str(path)))


def folder_identity(path: str | Path) -> Identity | None:
    """A folder's inode and mode: they change when it is replaced (by a link, say), but
    not when files inside it change."""
    return folder_identity_of(lstat_or_none(str(path)))


def folder_identity_of(st: os.stat_result | None) -> Identity | None:
    return None if st is None else [st.st_ino, st.st_mode]


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
        with contextlib.suppress(OSError, PetrovaError, orjson.JSONDecodeError, TypeError):
            data = orjson.loads(read_input(self.path))
            if isinstance(data, dict):
                self.entries = data

    @classmethod
    def for_run(cls, catalogue: Catalogue, state_dir: Path, workspace: Path | None) -> ReadCache:
        """The cache for reads of this state folder and workspace, in :func:`cache_dir`."""
        return cls(cache_dir(), catalogue, cache_scope(state_dir, workspace))

    def get(self, job: Job, identity: Identity | None) -> Read | None:
        hit = self.entries.get(f"{job[0]}:{job[1]}")
        if hit is None or identity is None or hit[0] != identity:
            return None
        try:
            return decode_read(job[0], hit[1])
        except (ValueError, TypeError, KeyError):
            return None

    def entry(self, identity: Identity | None, read: Read) -> list[Any] | None:
        """What to keep of a read just made, or ``None`` when it is not to be kept.

        A file changed within the last seconds may change again within the file
        system's timestamp resolution without its identity changing ("racy git"):
        read it again next time rather than trust it. A read that failed is not kept
        either: the failure may have been the disk's, not the file's, and failures are
        few and cheap to repeat.
        """
        if self.path is None or identity is None or identity[3] > self.racy_after:
            return None
        if read.error is not None:
            return None
        return [identity, encode_read(read)]

    def keep(self, kind: str, path: str, entry: list[Any]) -> None:
        self.entries[f"{kind}:{path}"] = entry
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        write_cache_file(self.path, orjson.dumps(self.entries))


#: Cache files of one kind kept per folder: one per setup (registry, state folder,
#: workspace, options) in use; the least recently written go first.
CACHE_FILES_KEPT = 8


def write_cache_file(path: Path, data: bytes) -> None:
    """Write a cache file, then drop the oldest of its kind beyond :data:`CACHE_FILES_KEPT`
    (setups come and go: test runs, temporary clones). Any trouble only loses a cache."""
    with contextlib.suppress(OSError, PetrovaError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data, durable=False)
        kind = path.name.split("-", 1)[0]
        same_kind = sorted(
            path.parent.glob(f"{kind}-*{path.suffix}"),
            key=lambda p: p.stat().st_mtime_ns,
            reverse=True,
        )
        for old in same_kind[CACHE_FILES_KEPT:]:
            old.unlink()


def encode_read(read: Read) -> dict[str, Any]:
    if isinstance(read, ContractRead):
        if read.declared is None:
            return {"error": read.error}
        declared = {k: list(v) for k, v in read.declared.items()}
        return {"slug": read.slug, "sha": read.sha, "declared": declared}
    if read.observed is None:
        return {"missing": read.missing, "error": read.error}
    return {"observed": {k: list(v) for k, v in read.observed.items()}}


def decode_read(kind: str, data: dict[str, Any]) -> Read:
    if kind == "contract":
        if "declared" not in data:
            return ContractRead(error=str(data["error"]))
        declared = {str(k): Declared(*v) for k, v in data["declared"].items()}
        return ContractRead(str(data["slug"]), str(data["sha"]), declared)
    if "observed" not in data:
        return LedgerRead(missing=bool(data["missing"]), error=data["error"])
    return LedgerRead({str(k): Observation(*v) for k, v in data["observed"].items()})


def cache_scope(state_dir: Path, workspace: Path | None) -> str:
    """What a cached read depends on besides the file and the catalogue."""
    where = f"{Path(state_dir).resolve()}\0{workspace.resolve() if workspace else ''}"
    return f"{where}\0{limits_in_force()}"
