"""notify's ETags: ``{url: [etag, {"data": …, "next": …}]}`` in one JSON file of its own.

Beside the probes' cache (``probe-etags.json``), in the same folder
(:func:`petrova.probe.github.default_cache_dir`; ``PETROVA_CACHE=off`` turns both off).
It keeps only the fields notify reads of an issue or pull request (see
:data:`petrova.notify.github.KEPT`), never a token. Any trouble with it (absent,
corrupt, unwritable) only means asking again: every entry is checked on load and a bad
one is dropped.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

from petrova.errors import PetrovaError
from petrova.files.disk import read_input, write_atomic
from petrova.probe.github import valid_etag

CACHE_FILE = "notify-etags.json"
_VERSION = 1


def valid_kept(kept: object) -> bool:
    """``{"data": list or object or null, "next": str or null}``, nothing else."""
    return (
        isinstance(kept, dict)
        and set(kept) == {"data", "next"}
        and isinstance(kept["data"], list | dict | type(None))
        and isinstance(kept["next"], str | type(None))
    )


class NotifyCache:
    def __init__(self, directory: Path | None) -> None:
        self.path = None if directory is None else directory / CACHE_FILE
        self._lock = threading.Lock()
        self._entries: dict[str, list[Any]] = {}
        self._dirty = False
        if self.path is None:
            return
        try:
            data = json.loads(read_input(self.path))
        except (OSError, ValueError, RecursionError, PetrovaError):
            self._dirty = True  # absent or corrupt: start afresh, replace it on save
            return
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            entries = None
        if not isinstance(entries, dict):
            self._dirty = True
            return
        self._entries = {
            k: v
            for k, v in entries.items()
            if isinstance(v, list) and len(v) == 2 and valid_etag(v[0]) and valid_kept(v[1])
        }
        self._dirty = len(self._entries) != len(entries)

    def get(self, url: str) -> tuple[str, Any] | None:
        with self._lock:
            entry = self._entries.get(url)
        return None if entry is None else (entry[0], entry[1])

    def put(self, url: str, etag: str, kept: Any) -> None:
        if not (valid_etag(etag) and valid_kept(kept)):
            return
        with self._lock:
            if self._entries.get(url) != [etag, kept]:
                self._entries[url] = [etag, kept]
                self._dirty = True

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        document = {"version": _VERSION, "entries": dict(sorted(self._entries.items()))}
        with contextlib.suppress(OSError, PetrovaError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(document, indent=0).encode(), durable=False)
