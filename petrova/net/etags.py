"""ETags kept between runs: ``{url: [etag, kept]}`` in one JSON file, for conditional
GitHub requests (an unchanged answer is a ``304``, free of the rate limit).

One cache class for every client (the probes' ``probe-etags.json``, notify's
``notify-etags.json``); each says what shape of ``kept`` it stores for a URL. Any trouble
with the file (absent, corrupt, of another version, unwritable, a FIFO in its place) only
means asking again, never a failed run: every entry is checked on load, a bad one is
dropped, and the file is rewritten without it when the run ends.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from petrova.errors import PetrovaError
from petrova.files import json_strict
from petrova.files.disk import read_input, write_atomic

_VERSION = 1
_ETAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e]{0,500}"')


def valid_etag(value: object) -> bool:
    """An ETag as RFC 9110 spells it (visible ASCII, quoted, optionally weak): anything
    else (a newline, a non-Latin-1 character) is never sent back as ``If-None-Match``."""
    return isinstance(value, str) and _ETAG.fullmatch(value) is not None


class EtagCache:
    """``{url: [etag, kept]}`` in the file ``path`` (``None``: kept in memory only).

    ``valid_kept(url, kept)`` says whether ``kept`` has the shape its client stores for
    ``url``: an entry of another shape is dropped on load, never served for a ``304``.
    """

    def __init__(self, path: Path | None, valid_kept: Callable[[str, object], bool]) -> None:
        self.path = path
        self._valid_kept = valid_kept
        self._lock = threading.Lock()
        self._entries: dict[str, list[Any]] = {}
        self._dirty = False
        if path is None:
            return
        try:
            data = json_strict.loads(read_input(path))  # a key twice: corrupt
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
            if isinstance(v, list) and len(v) == 2 and valid_etag(v[0]) and valid_kept(k, v[1])
        }
        self._dirty = len(self._entries) != len(entries)

    def get(self, url: str) -> tuple[str, Any] | None:
        with self._lock:
            entry = self._entries.get(url)
        return None if entry is None else (entry[0], entry[1])

    def put(self, url: str, etag: str, kept: Any) -> None:
        if not (valid_etag(etag) and self._valid_kept(url, kept)):
            return  # an odd ETag is not kept: the next run asks in full
        with self._lock:
            if self._entries.get(url) != [etag, kept]:
                self._entries[url] = [etag, kept]
                self._dirty = True

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        document = {"version": _VERSION, "entries": dict(sorted(self._entries.items()))}
        # A cache that cannot be written (a full disk, a FIFO in its place) only means the
        # next run asks again: never a failed run.
        with contextlib.suppress(OSError, PetrovaError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(document, indent=0).encode(), durable=False)
