"""notify's ETags: ``{url: [etag, {"data": …, "next": …}]}`` in one JSON file of its own.

Beside the probes' cache (``probe-etags.json``), in the same folder
(:func:`petrova.probe.github.default_cache_dir`; ``PETROVA_CACHE=off`` turns both off).
It keeps only the fields notify reads of an issue or pull request (see
:data:`petrova.notify.github.KEPT`), never a token. Any trouble with it (absent,
corrupt, unwritable) only means asking again: every entry is checked on load and a bad
one is dropped.
"""

from __future__ import annotations

from pathlib import Path

from petrova.net.etags import EtagCache

CACHE_FILE = "notify-etags.json"


def valid_kept(kept: object) -> bool:
    """``{"data": list or object or null, "next": str or null}``, nothing else."""
    return (
        isinstance(kept, dict)
        and set(kept) == {"data", "next"}
        and isinstance(kept["data"], list | dict | type(None))
        and isinstance(kept["next"], str | type(None))
    )


class NotifyCache(EtagCache):
    def __init__(self, directory: Path | None) -> None:
        path = None if directory is None else directory / CACHE_FILE
        super().__init__(path, lambda _url, kept: valid_kept(kept))
