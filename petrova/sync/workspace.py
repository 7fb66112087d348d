"""The workspace's manifest: which commit each clone was synced to, and how that went.

``<workspace>/.petrova-sync.json`` is written atomically under a lock and merged with the
entries already there, so several shards of one fleet can sync into one workspace. Readers
(the snapshot, the rollout gate) use :func:`read_manifest` to say at which commit each
contract was read and to hold back repos whose last sync failed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from petrova.errors import Location, SyncManifestInvalid
from petrova.files.disk import read_input, write_atomic
from petrova.files.json_strict import orjson_unique
from petrova.files.lock import file_lock

MANIFEST_NAME = ".petrova-sync.json"
#: Where sync keeps its per-repo locks and unfinished clones, inside the workspace.
SCRATCH_NAME = ".petrova-sync.d"
FORMAT = 1

Status = Literal["ok", "failed"]
_COMMIT = re.compile(r"[0-9a-f]{40}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_CODE = re.compile(r"[A-Z][A-Z0-9_]*")
_FIELDS = ("url", "branch", "commit", "synced_at", "status", "code", "message")


@dataclass(frozen=True)
class SyncRecord:
    """One repo's last sync: its clone is at ``commit`` (None: no clone yet).

    ``status`` is ``failed`` when the clone could not be brought to the remote's head
    (then ``commit`` is what is still on disk) or the repo must be looked at (``code``).
    """

    url: str
    branch: str
    commit: str | None
    synced_at: str
    status: Status
    code: str | None = None
    message: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def manifest_path(workspace: Path) -> Path:
    return workspace / MANIFEST_NAME


def _record(slug: str, raw: Any, shown: str) -> SyncRecord:
    def bad(field: str, what: str) -> SyncManifestInvalid:
        return SyncManifestInvalid(
            f"{what}; delete the file and run `petrova sync` to write it again",
            location=Location(shown, field=f"repos.{slug}{'.' + field if field else ''}"),
        )

    if not isinstance(raw, Mapping):
        raise bad("", "is not an object")
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown or any(f not in raw for f in _FIELDS):
        raise bad("", f"needs exactly the fields {', '.join(_FIELDS)}")
    for field in ("url", "branch", "synced_at"):
        if not isinstance(raw[field], str) or not raw[field]:
            raise bad(field, "is not a non-empty string")
    if not _TIMESTAMP.fullmatch(raw["synced_at"]):
        raise bad("synced_at", "is not an RFC 3339 UTC time such as 2026-11-26T07:00:00Z")
    commit = raw["commit"]
    if commit is not None and not (isinstance(commit, str) and _COMMIT.fullmatch(commit)):
        raise bad("commit", "is not null or 40 lowercase hex digits")
    if raw["status"] not in ("ok", "failed"):
        raise bad("status", "is not 'ok' or 'failed'")
    code = raw["code"]
    if code is not None and not (isinstance(code, str) and _CODE.fullmatch(code)):
        raise bad("code", "is not null or an UPPER_SNAKE code")
    if raw["message"] is not None and not isinstance(raw["message"], str):
        raise bad("message", "is not null or a string")
    return SyncRecord(
        raw["url"],
        raw["branch"],
        commit,
        raw["synced_at"],
        raw["status"],
        code,
        raw["message"],
    )


def read_manifest(workspace: Path) -> dict[str, SyncRecord]:
    """Every repo's last sync by slug; empty when nothing was synced into ``workspace`` yet.

    A manifest that is not what petrova writes is ``SYNC_MANIFEST_INVALID`` (exit 2),
    naming the file and the field.
    """
    path = manifest_path(workspace)
    shown = str(path)
    try:
        raw = read_input(path, display=shown)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SyncManifestInvalid(
            f"cannot read the manifest: {exc.strerror}", location=Location(shown)
        ) from None
    try:
        data = orjson_unique(raw)  # a key given twice is refused, as everywhere
    except ValueError as exc:
        raise SyncManifestInvalid(f"is not JSON: {exc}", location=Location(shown)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SyncManifestInvalid(
            f'is not a sync manifest of format {FORMAT} (an object with "format": 1 and "repos")',
            location=Location(shown, field="format"),
        )
    repos = data.get("repos")
    if not isinstance(repos, dict) or set(data) != {"format", "repos"}:
        raise SyncManifestInvalid(
            'needs exactly "format" and "repos" (an object by slug)',
            location=Location(shown, field="repos"),
        )
    return {str(slug): _record(str(slug), entry, shown) for slug, entry in repos.items()}


def render_manifest(records: Mapping[str, SyncRecord]) -> bytes:
    """Same records, same bytes: slugs sorted, two-space indent, a final newline."""
    document = {
        "format": FORMAT,
        "repos": {slug: records[slug].as_json() for slug in sorted(records)},
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def update_manifest(
    workspace: Path, records: Iterable[tuple[str, SyncRecord]], *, wait: float = 60.0
) -> None:
    """Merge ``records`` into the manifest: read, replace these slugs, write atomically,
    all under the manifest's lock so shards syncing at once lose no entry."""
    path = manifest_path(workspace)
    with file_lock(path, wait=wait):
        merged = read_manifest(workspace)
        merged.update(records)
        write_atomic(path, render_manifest(merged))
