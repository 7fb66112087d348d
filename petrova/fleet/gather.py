"""Reading each migrated repo's contract and ledger, for the snapshot and the gate.

:func:`gather_fleet` loads the registry and reads what it names, the two overlapping
(:mod:`petrova.fleet.readers`); :func:`gather` matches each read to its repo and turns
per-repo trouble (an unreadable contract, a drifted pin, a missing ledger) into
warnings, derived afresh on every run from the registry as it is now.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from petrova.documents.catalogue import Catalogue
from petrova.documents.registry import LoadedRegistry, load_registry, read_registry_text
from petrova.fleet.readers import Looked, Progress, Readers, prefetch
from petrova.fleet.reads import (
    ContractRead,
    Declared,
    Identity,
    Job,
    LedgerRead,
    Places,
    Read,
    ReadCache,
)
from petrova.ledger.rules import Observation
from petrova.models import RepoEntry, SnapshotWarning, applicability_value


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


def gather_fleet(
    registry: Path,
    catalogue: Catalogue,
    *,
    state_dir: Path,
    workspace: Path | None,
    today: date,
    progress: Progress | None = None,
    text: str | None = None,
) -> FleetInputs:
    """Load the registry and read what it names, the two overlapping (see :func:`prefetch`).

    ``text``: the registry's text, when the caller has read it already.
    """
    if text is None:
        text = read_registry_text(registry)
    with prefetch(text, catalogue, state_dir=state_dir, workspace=workspace) as started:
        loaded = load_registry(registry, catalogue, today=today, text=text)
        return gather(
            loaded, state_dir=state_dir, workspace=workspace, progress=progress, started=started
        )


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
    places = Places(state_dir=state_dir, workspace=workspace, control_plane=loaded.path.parent)
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
        cache = ReadCache.for_run(catalogue, state_dir, workspace)
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
