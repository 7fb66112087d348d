"""What was told, kept in git beside the ledgers: ``state/notify/`` (bot-owned).

One file per repo (``repos/<slug>.json``) and one for the fleet (``fleet.json``), so
shards that notify about their own repos and push one after another never touch the
same file, as with the ledgers. A run holds ``state/notify/.run.lock`` from reading
the state to writing it back, so overlapping runs on one host never tell twice: the
second waits, re-reads what the first wrote, and finds nothing new. Writes are atomic.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from petrova.errors import Location, NotifyStateInvalid
from petrova.files import json_strict
from petrova.files.disk import read_as, write_atomic
from petrova.files.lock import file_lock

FORMAT = 1
FOLDER = "notify"
FLEET_FILE = "fleet.json"
REPOS_FOLDER = "repos"


@dataclass
class NotifyState:
    """``repos[slug]`` and ``fleet``: plain JSON objects, as the files hold them."""

    folder: Path
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    fleet: dict[str, Any] = field(default_factory=dict)

    def repo(self, slug: str) -> dict[str, Any]:
        return self.repos.setdefault(slug, {})


def folder_for(state_dir: Path) -> Path:
    return state_dir / FOLDER


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = read_as(path, NotifyStateInvalid, what="the notify state", missing=None, follow=False)
    except FileNotFoundError:
        return {}
    try:
        data = json_strict.loads(raw)  # a key given twice is refused, as everywhere
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise NotifyStateInvalid(
            f'is not a notify state file of format {FORMAT} (an object with "format": 1); '
            "petrova writes it: restore it from git (git checkout -- it), or delete it and "
            "petrova finds its issues again by their markers",
            location=Location(str(path)),
        )
    return data


def load(state_dir: Path) -> NotifyState:
    folder = folder_for(state_dir)
    state = NotifyState(folder)
    fleet = _read(folder / FLEET_FILE)
    fleet.pop("format", None)
    state.fleet = fleet
    repos = folder / REPOS_FOLDER
    if repos.is_dir():
        for path in sorted(repos.glob("*.json")):
            data = _read(path)
            data.pop("format", None)
            state.repos[path.stem] = data
    return state


def _bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps({"format": FORMAT, **data}, indent=2, sort_keys=True) + "\n").encode()


def save(state: NotifyState, *, slugs: set[str] | None = None, fleet: bool = True) -> None:
    """Write the repos in ``slugs`` (all when None) and, if asked, the fleet file."""
    repos = state.folder / REPOS_FOLDER
    repos.mkdir(parents=True, exist_ok=True)
    for slug, data in sorted(state.repos.items()):
        if slugs is None or slug in slugs:
            write_atomic(repos / f"{slug}.json", _bytes(data))
    if fleet:
        write_atomic(state.folder / FLEET_FILE, _bytes(state.fleet))


@contextlib.contextmanager
def locked(state_dir: Path, *, wait: float) -> Iterator[None]:
    """The run's lock: held from reading the state to writing it back."""
    folder = folder_for(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(folder / "run", wait=wait):
        yield
