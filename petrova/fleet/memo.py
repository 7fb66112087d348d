"""The snapshot memo: a finished snapshot, reused while nothing it was made from changed.

Cron runs ``petrova snapshot`` on inputs that mostly did not change since the last run.
A snapshot is a function of the registry's and the catalogue's bytes, of every contract
and ledger it read, of the options, and of the time. The memo records all of them: the
two documents by content hash, each contract and ledger by its identity (size, mtime,
inode, ctime; a file that did not exist is recorded as absent), and the time as an
interval. Time enters a snapshot only through deadlines (a cell goes stale when its
staleness window ends; a review date becomes overdue the day after), so the same inputs
give the same document at every instant between the last deadline before the run and
the first one after it. Within that interval, with every identity unchanged, the memo's
document is the snapshot, with only ``generated_at`` rewritten.

Like the read cache (:mod:`petrova.fleet.reads`) it lives in the cache directory, is written
atomically, is never trusted when a file changed within the last seconds (racy
timestamps), and any trouble with it only means the snapshot is made again.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from petrova import __version__
from petrova.documents.catalogue import Catalogue
from petrova.documents.registry import read_registry_text
from petrova.documents.schemas import check_snapshot
from petrova.errors import PetrovaError
from petrova.files.disk import read_input
from petrova.files.yaml_strict import limits_in_force
from petrova.fleet import reads
from petrova.fleet.gather import FleetInputs, gather_fleet
from petrova.fleet.readers import Progress
from petrova.fleet.reads import (
    Identity,
    cache_dir,
    file_identity,
    folder_identity,
    write_cache_file,
)
from petrova.fleet.snapshot import snapshot_document, validity
from petrova.models import Snapshot, format_timestamp
from petrova.render.formats import to_json_bytes

#: Bump when the memo's layout or meaning changes.
MEMO_FORMAT = 1
_STAMP = b'"generated_at": "'


class SnapshotMemo:
    """The memo for one setup: registry, catalogue, state folder, workspace, window."""

    def __init__(
        self,
        registry: Path,
        registry_text: str,
        catalogue: Catalogue,
        *,
        state_dir: Path,
        workspace: Path | None,
        stale_after: timedelta,
    ) -> None:
        self.path: Path | None = None
        self.registry_sha: str | None = None
        self.catalogue_sha = hashlib.sha256(catalogue.raw).hexdigest()
        directory = cache_dir()
        if directory is None:
            return
        with contextlib.suppress(OSError):  # a path that cannot be resolved: no memo
            self.registry_sha = _text_sha(registry_text)
            # Each path as given too: warnings quote paths the way they were given.
            places = [registry, state_dir, *([workspace] if workspace is not None else [])]
            setup = "\0".join(
                [
                    __version__,
                    *(f"{p}\0{p.resolve()}" for p in places),
                    str(int(stale_after.total_seconds())),
                    limits_in_force(),
                ]
            )
            digest = hashlib.sha256(setup.encode()).hexdigest()[:24]
            self.path = directory / f"snapshot-{digest}.memo"

    @property
    def enabled(self) -> bool:
        return self.path is not None and self.registry_sha is not None

    def lookup(self, now: datetime) -> Made | None:
        """The snapshot at ``now``, when the memo holds it; else ``None``."""
        if self.path is None or self.registry_sha is None:
            return None
        try:
            raw = read_input(self.path)
            header_end = raw.index(b"\n")
            header = orjson.loads(raw[:header_end])
            data = raw[header_end + 1 :]
            return self._hit(header, data, now)
        except (OSError, PetrovaError, ValueError, TypeError, KeyError, IndexError):
            return None

    def _hit(self, header: dict[str, Any], data: bytes, now: datetime) -> Made | None:
        if (
            header["format"] != MEMO_FORMAT
            or header["registry"] != self.registry_sha
            or header["catalogue"] != self.catalogue_sha
        ):
            return None
        after, until = header["after"], header["until"]
        if after is not None and not now > datetime.fromisoformat(after):
            return None
        if until is not None and not now <= datetime.fromisoformat(until):
            return None
        files = [(p, file_identity(p)) for p in header["paths"]]
        folders = [(p, folder_identity(p)) for p in header["folders"]]
        if _digest(files, folders) != header["digest"]:
            return None
        if hashlib.sha256(data).hexdigest() != header["document"]:
            return None  # cut short or damaged on disk
        start, length = header["stamp"]
        stamp = format_timestamp(now).encode()
        if len(stamp) != length:
            return None
        data = data[:start] + stamp + data[start + length :]
        warnings = tuple((str(c), s, str(m)) for c, s, m in header["warnings"])
        return Made(data, warnings, int(header["repos"]), int(header["migrated"]))

    def store(
        self,
        made: Made,
        *,
        inputs: FleetInputs,
        valid: tuple[datetime | None, datetime | None],
    ) -> None:
        """Remember a snapshot just made from ``inputs``, valid for ``now`` in
        ``(after, until]`` (either end open when ``None``).

        Not when any file read changed within the last seconds: it could change again
        without its identity showing it.
        """
        if self.path is None or self.registry_sha is None:
            return
        racy_after = time.time_ns() - reads.RACY_NS
        if any(i is not None and i[3] > racy_after for i in inputs.sources.values()):
            return
        data = made.data
        start = data.find(_STAMP)
        if start < 0:
            return
        start += len(_STAMP)
        after, until = valid
        header = {
            "format": MEMO_FORMAT,
            # The text that was parsed, which an edit during the run may have made
            # other than the text looked up at the start.
            "registry": _text_sha(inputs.loaded.text),
            "catalogue": self.catalogue_sha,
            "after": after.isoformat() if after is not None else None,
            "until": until.isoformat() if until is not None else None,
            "paths": list(inputs.sources),
            "folders": list(inputs.folders),
            "digest": _digest(list(inputs.sources.items()), list(inputs.folders.items())),
            "document": hashlib.sha256(data).hexdigest(),
            "stamp": [start, data.index(b'"', start) - start],
            "warnings": made.warnings,
            "repos": made.repos,
            "migrated": made.migrated,
        }
        write_cache_file(self.path, orjson.dumps(header) + b"\n" + data)


def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(
    files: list[tuple[str, Identity | None]], folders: list[tuple[str, Identity | None]]
) -> str:
    return hashlib.sha256(orjson.dumps([files, folders])).hexdigest()


@dataclass(frozen=True)
class Made:
    """A snapshot as the command writes it: the JSON document, checked against its schema."""

    data: bytes
    warnings: tuple[tuple[str, str | None, str], ...]
    repos: int
    migrated: int

    def model(self) -> Snapshot:
        """The models, for formats other than JSON."""
        return Snapshot.model_validate_json(self.data)


def make_snapshot(
    registry: Path,
    catalogue: Catalogue,
    *,
    state_dir: Path,
    workspace: Path | None,
    now: datetime,
    stale_after: timedelta,
    progress: Progress | None = None,
) -> Made:
    """The fleet snapshot at ``now``: from the memo when it holds it, else made and memoised.

    The registry is read once: its text is what the memo is looked up by, what is parsed,
    and what the memo is stored under.
    """
    text = read_registry_text(registry)
    memo = SnapshotMemo(
        registry,
        text,
        catalogue,
        state_dir=state_dir,
        workspace=workspace,
        stale_after=stale_after,
    )
    hit = memo.lookup(now)
    if hit is not None:
        return hit
    inputs = gather_fleet(
        registry,
        catalogue,
        state_dir=state_dir,
        workspace=workspace,
        today=now.date(),
        progress=progress,
        text=text,
    )
    document = snapshot_document(inputs, now=now, stale_after=stale_after)
    check_snapshot(document, catalogue)
    made = Made(
        to_json_bytes(document),
        tuple((w["code"], w["slug"], w["message"]) for w in document["warnings"]),
        document["totals"]["repos"],
        document["totals"]["migrated"],
    )
    if memo.enabled:
        memo.store(made, inputs=inputs, valid=validity(inputs, now=now, stale_after=stale_after))
    return made
