"""A cell's whole life, read from the git history of its ledger (``petrova history``).

A ledger keeps only each cell's newest 20 entries; the control-plane repo keeps every
version the daily job committed. Two git processes read them all, whatever the number
of commits: ``git log --raw`` lists the commits that changed the ledger with the blob of
each version, and one ``git cat-file --batch`` hands over every blob. Each version is
then compared with the one before it (:func:`transitions`): the status, the
needs-human flag, promotions, and the contract the probes checked (``evidence_sha``)
as it changes.

Nothing here writes anything. Versions that do not parse (a bad hand edit that was
committed) are reported as ``unreadable`` and skipped, never fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import yaml

from petrova.errors import LedgerHistoryMissing, Location, NotAGitRepo
from petrova.ledger.store import ledger_path
from petrova.models import Transition, TransitionKind, format_timestamp, parse_timestamp
from petrova.net.git import Git

#: Field separator in ``git log --format`` (a byte no path, name or date holds).
_SEP = "\x1f"


@dataclass(frozen=True)
class Version:
    """One committed version of a ledger: its commit, the commit's time and its bytes."""

    commit: str
    committed_at: str
    data: bytes


#: Where the humans' promotions of a repo live, beside the ledgers (SPEC §12).
PROMOTIONS_DIR = "promotions"


@dataclass(frozen=True)
class Versions:
    """Every committed version of a repo's ledger and of its promotions file."""

    ledger: list[Version]
    promotions: list[Version]


def ledger_versions(state_dir: Path, slug: str, *, git: Git | None = None) -> Versions:
    """Every committed version of ``state/<slug>.yaml`` and ``state/promotions/<slug>.yaml``,
    oldest first (deleted ones left out), from one ``git log`` and one ``git cat-file``.
    Raises when the state folder is not in a git repo or no commit has the ledger."""
    runner = git or Git()
    path = ledger_path(state_dir, slug)
    # A state folder that is gone now may still be in the commits: ask from its parent.
    where = state_dir if state_dir.is_dir() else state_dir.parent
    top = runner.run(["rev-parse", "--show-toplevel"], cwd=where).check_timeout(str(where))
    if not top.ok:
        raise NotAGitRepo(
            f"the state folder is not inside a git checkout ({top.reason()}); the history of "
            "a ledger is read from the control-plane repo's commits",
            location=Location(str(state_dir)),
        )
    root = Path(top.stdout.strip())
    try:
        relative = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise NotAGitRepo(
            f"the ledger {path} is outside the git checkout {root}",
            location=Location(str(state_dir)),
        ) from None
    folder, _, name = relative.rpartition("/")
    humans = f"{folder}/{PROMOTIONS_DIR}/{name}" if folder else f"{PROMOTIONS_DIR}/{name}"
    log = runner.run(
        [
            "log",
            "--reverse",
            "--no-renames",
            "--raw",
            "--no-abbrev",
            f"--format={_SEP}%H{_SEP}%cI",
            "--",
            relative,
            humans,
        ],
        cwd=root,
    ).check_timeout(relative)
    if not log.ok:
        raise LedgerHistoryMissing(f"git log failed: {log.reason()}", location=Location(relative))
    changes = list(_parse_log(log.stdout, {relative, humans}))
    if not any(changed == relative for changed, _, _, _ in changes):
        raise LedgerHistoryMissing(
            f"no commit of {root} has this ledger: commit state/ (petrova daily "
            "--commit-state does) to keep its history",
            location=Location(relative),
        )
    blobs = _cat_blobs(runner, root, [blob for _, _, _, blob in changes])
    found = Versions([], [])
    for changed, commit, when, blob in changes:
        kept = found.ledger if changed == relative else found.promotions
        kept.append(Version(commit, when, blobs[blob]))
    return found


def _parse_log(text: str, paths: set[str]) -> Iterator[tuple[str, str, str, str]]:
    """(path, commit, committer time, blob) per commit that left one of ``paths`` in place."""
    commit = when = ""
    for line in text.splitlines():
        if line.startswith(_SEP):
            _, commit, when = line.split(_SEP)
        elif line.startswith(":") and "\t" in line:
            meta, _, name = line.partition("\t")
            fields = meta.split()
            # :old_mode new_mode old_blob new_blob status; D leaves no version to read
            if name in paths and fields[4] != "D":
                yield name, commit, format_timestamp(parse_timestamp(when)), fields[3]


def _cat_blobs(runner: Git, root: Path, blobs: Sequence[str]) -> dict[str, bytes]:
    """Every blob's bytes from one ``git cat-file --batch``."""
    wanted = list(dict.fromkeys(blobs))
    result = runner.run(["cat-file", "--batch"], cwd=root, stdin="\n".join(wanted) + "\n")
    if not result.check_timeout(str(root)).ok:
        raise LedgerHistoryMissing(f"git cat-file failed: {result.reason()}")
    raw = result.raw  # git's bytes: sizes in the headers count bytes
    found: dict[str, bytes] = {}
    offset = 0
    for blob in wanted:
        end = raw.index(b"\n", offset)
        header = raw[offset:end].decode("ascii", "replace").split()
        if len(header) != 3 or header[0] != blob or header[1] != "blob":
            raise LedgerHistoryMissing(
                f"git cat-file answered {' '.join(header)!r} for blob {blob}, not its content"
            )
        size = int(header[2])
        found[blob] = raw[end + 1 : end + 1 + size]
        offset = end + 1 + size + 1  # the content is followed by a newline
    return found


def _parse(data: bytes, *, key: str = "integrations") -> Mapping[str, Any] | None:
    """A version as data: JSON (what petrova writes) or YAML (a hand edit, the humans'
    file); ``None`` unless it is a mapping whose ``key``, if present, has the right shape."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            parsed = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            return None
    shape = dict if key == "integrations" else list
    if not isinstance(parsed, dict) or not isinstance(parsed.get(key, shape()), shape):
        return None
    return parsed


@dataclass
class _Cell:
    """What the comparison remembers of a cell between versions."""

    status: str | None = None
    needs_human: bool = False
    newest_at: str = ""
    evidence: str | None = None
    present: bool = False


def transitions(
    versions: Iterable[Version],
    *,
    integration: str | None = None,
    since: date | None = None,
    rename: Callable[[str], str] | None = None,
) -> list[Transition]:
    """Each change a ledger's versions show, oldest first; ``integration`` keeps one
    cell's, ``since`` those on or after that day (UTC). ``rename`` maps an id as an old
    version wrote it (a legacy id) to today's, so that a renamed cell stays one cell."""
    cells: dict[str, _Cell] = {}
    found: list[Transition] = []
    for version in versions:
        document = _parse(version.data)
        if document is None:
            found.append(
                Transition(
                    at=version.committed_at,
                    commit=version.commit,
                    integration=None,
                    kind="unreadable",
                    detail="this version of the ledger does not parse; it is skipped",
                )
            )
            continue
        current = document.get("integrations") or {}
        if rename is not None:
            current = {rename(str(k)): v for k, v in current.items()}
        names = [integration] if integration is not None else sorted({*cells, *current})
        for name in names:
            cell = current.get(name)
            memory = cells.setdefault(name, _Cell())
            found += _compare(name, memory, cell if isinstance(cell, dict) else None, version)
    if since is not None:
        found = [t for t in found if parse_timestamp(t.at).date() >= since]
    return found


def _compare(
    name: str, memory: _Cell, cell: Mapping[str, Any] | None, version: Version
) -> list[Transition]:
    def event(kind: TransitionKind, at: str | None, **fields: str | None) -> Transition:
        return Transition(
            at=_time(at) or version.committed_at,
            commit=version.commit,
            integration=name,
            kind=kind,
            **fields,
        )

    if cell is None:
        if not memory.present:
            return []
        memory.present = False
        return [event("removed", None, before=memory.status)]
    out: list[Transition] = []
    history = [e for e in cell.get("history") or () if isinstance(e, dict)]
    fresh = [e for e in history if str(e.get("at", "")) > memory.newest_at]
    for entry in fresh:
        at = str(entry.get("at"))
        if "by" in entry or "promoted_to" in entry:
            out.append(
                event(
                    "override" if entry.get("override") is True else "promotion",
                    at,
                    after=str(entry.get("promoted_to", "ok")),
                    by=_str(entry.get("by")),
                    detail=_str(entry.get("reason")),
                )
            )
            continue
        sha = _str(entry.get("evidence_sha"))
        if sha is not None and sha != memory.evidence:
            out.append(event("contract", at, before=memory.evidence, after=sha))
            memory.evidence = sha
    if history:
        memory.newest_at = max(memory.newest_at, str(history[-1].get("at", "")))
    status = str(cell.get("current_status", "pending"))
    since = _str(cell.get("status_since"))
    if not memory.present:
        out.insert(0, event("appeared", since, after=status))
    elif status != memory.status:
        newest = fresh[-1] if fresh else None
        detail = _str(newest.get("detail")) if newest is not None else None
        out.append(event("status", since, before=memory.status, after=status, detail=detail))
    needs_human = cell.get("needs_human") is True
    if needs_human != memory.needs_human and (memory.present or needs_human):
        flagged_at = str(fresh[-1].get("at")) if fresh else None
        out.append(
            event(
                "needs_human",
                flagged_at,
                before=_flag(memory.needs_human),
                after=_flag(needs_human),
            )
        )
    memory.present, memory.status, memory.needs_human = True, status, needs_human
    return out


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _time(value: str | None) -> str | None:
    """A ledger's own time, normalised; ``None`` when absent or not a time."""
    if value is None:
        return None
    try:
        return format_timestamp(parse_timestamp(value))
    except ValueError:
        return None


def human_promotions(
    versions: Iterable[Version],
    *,
    integration: str | None = None,
    rename: Callable[[str], str] | None = None,
) -> list[Transition]:
    """Each promotion or override as it first appears in the humans' promotions file
    (``state/promotions/<slug>.yaml``, append-only), at the time it records."""
    seen: set[tuple[str, str, str]] = set()
    found: list[Transition] = []
    for version in versions:
        document = _parse(version.data, key="promotions")
        entries = document.get("promotions") if document is not None else None
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, dict):
                continue
            name = str(entry.get("integration", ""))
            name = rename(name) if rename is not None else name
            key = (name, str(entry.get("at")), str(entry.get("by")))
            if key in seen or (integration is not None and name != integration):
                continue
            seen.add(key)
            found.append(
                Transition(
                    at=_time(_str(entry.get("at"))) or version.committed_at,
                    commit=version.commit,
                    integration=name,
                    kind="override" if entry.get("override") is True else "promotion",
                    after="ok",
                    by=_str(entry.get("by")),
                    detail=_str(entry.get("reason")),
                )
            )
    return found


def merged(ledger: list[Transition], humans: list[Transition]) -> list[Transition]:
    """The ledger's transitions and the humans' promotions it does not already show (the
    daily merges them into the ledger too), in time order; equal times keep their order."""
    shown = {(t.integration, t.at, t.by) for t in ledger if t.kind in ("promotion", "override")}
    extra = [t for t in humans if (t.integration, t.at, t.by) not in shown]
    if not extra:
        return ledger
    return sorted([*ledger, *extra], key=lambda t: parse_timestamp(t.at))


def cell_history(
    state_dir: Path,
    slug: str,
    *,
    integration: str | None = None,
    since: date | None = None,
    rename: Callable[[str], str] | None = None,
    git: Git | None = None,
) -> list[Transition]:
    """``petrova history``: the transitions of one repo's cells (or one cell), from the
    ledger's versions and the humans' promotions file."""
    versions = ledger_versions(state_dir, slug, git=git)
    found = merged(
        transitions(versions.ledger, integration=integration, rename=rename),
        human_promotions(versions.promotions, integration=integration, rename=rename),
    )
    if since is not None:
        found = [t for t in found if parse_timestamp(t.at).date() >= since]
    return found
