"""Reading each migrated repo's contract and ledger, for the snapshot and the gate.

A snapshot needs little of each file: of a contract, its slug, sha and what it declares
for each integration; of a ledger, an :class:`~petrova.ledger.rules.Observation` per
cell. :func:`gather` reads exactly that for every migrated repo, in one process. Per-repo
trouble (no workspace, an unreadable or drifted contract, a missing or broken ledger, a
failed sync) is kept twice, once for each reader: as typed fields of :class:`RepoInputs`
(what the gate decides on) and as the snapshot's warnings, worded here once. One bad
repo never hides the rest of the fleet.
"""

from __future__ import annotations

import os
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from petrova.documents.catalogue import Catalogue
from petrova.documents.contract import CONTRACT_RELPATH, LoadedContract, load_contract
from petrova.documents.registry import LoadedRegistry
from petrova.errors import (
    CONTRACT_INCOMPLETE,
    CONTRACT_SHA_DRIFT,
    CONTRACT_UNREADABLE,
    STATE_MISSING,
    STATE_UNREADABLE,
    SYNC_FAILED,
    SYNC_MANIFEST_INVALID,
    PetrovaError,
)
from petrova.files.disk import StrPath, confined, max_input_bytes
from petrova.ledger.rules import Observation
from petrova.ledger.store import ledger_name, promotion_names, read_observations
from petrova.models import DeclaredStatus, Notice, RepoEntry, applicability_value
from petrova.sync.workspace import SyncRecord, read_manifest


class Declared(NamedTuple):
    """What a contract declares for one integration, as the snapshot reads it."""

    status: DeclaredStatus
    review_by: str | None


class ContractRead(NamedTuple):
    """One contract as read: ``declared`` is ``None`` when it could not be (``error``).

    This and the other values made per repo are named tuples: a frozen dataclass costs
    a microsecond or two more to make, times three per repo of a 10,000-repo fleet."""

    path: str
    slug: str | None = None
    sha: str | None = None
    declared: dict[str, Declared] | None = None
    error: str | None = None
    #: The contract itself, for readers that need more than the snapshot (probe's evidence).
    loaded: LoadedContract | None = None


class LedgerRead(NamedTuple):
    """One ledger as read: ``observed`` is ``None`` when missing or broken (``error``)."""

    path: str
    observed: dict[str, Observation] | None = None
    missing: bool = False
    error: str | None = None


class RepoInputs(NamedTuple):
    """What could be read for one migrated repo; ``None`` where it could not.

    The typed problems (``contract_unread``, ``ledger_unreadable``, ``sync_failure``) are
    what the gate holds a tier on; ``warnings`` words them (and the rest) for people.
    """

    declared: dict[str, Declared] | None
    observed: dict[str, Observation] | None
    warnings: tuple[Notice, ...] = ()
    #: The contract's sha as read (``None`` when unreadable): the gate compares it to the pin.
    contract_sha: str | None = None
    #: The commit ``petrova sync`` last brought the clone to (``None``: not synced by it).
    commit: str | None = None
    #: Why the repo's last sync failed (``None``: it did not, or it was never synced).
    sync_failure: str | None = None
    #: Why the contract was not read (``None``: it was).
    contract_unread: str | None = None
    #: Why the ledger could not be read (``None``: it was, or it does not exist yet).
    ledger_unreadable: str | None = None


#: A migrated repo nothing could be read for (no entry in :attr:`FleetInputs.repos`).
NOTHING_READ = RepoInputs(None, None, contract_unread="the contract was not read")


@dataclass(frozen=True)
class FleetInputs:
    loaded: LoadedRegistry
    repos: dict[str, RepoInputs] = field(default_factory=dict)
    #: Trouble that belongs to no one repo (a sync manifest that cannot be read).
    warnings: tuple[Notice, ...] = ()


def clone_root(entry: RepoEntry, *, registry_path: Path, workspace: Path | None) -> Path | None:
    """Where a repo's files are: the registry's own folder for the control plane itself,
    else ``<workspace>/<slug>``; ``None`` without a workspace."""
    if entry.role == "control-plane":
        return registry_path.parent
    return None if workspace is None else workspace / entry.slug


def contract_location(
    entry: RepoEntry, *, registry_path: Path, workspace: Path | None
) -> Path | None:
    """Where a repo's contract lives; a symbolic link on the way is ``UNSAFE_PATH``:
    consumer repos are not trusted, and a link could make petrova read any file."""
    root = clone_root(entry, registry_path=registry_path, workspace=workspace)
    return None if root is None else confined(root, CONTRACT_RELPATH)


def read_contract(root: StrPath, catalogue: Catalogue, *, limit: int | None = None) -> ContractRead:
    """The contract in the clone at ``root``; every failure is an ``error``, never raised.
    ``limit``: the input limit (:func:`~petrova.files.disk.max_input_bytes`), looked up
    once by a caller that reads a fleet."""
    shown = os.path.join(root, *CONTRACT_RELPATH.parts)  # noqa: PTH118
    try:
        loaded = load_contract(shown, catalogue, display=shown, root=root, limit=limit)
    except PetrovaError as exc:
        return ContractRead(shown, error=exc.render())
    cells = loaded.contract.integrations
    declared = {i: Declared(c.status, c.review_by) for i, c in cells.items()}
    return ContractRead(shown, loaded.contract.slug, loaded.sha, declared, loaded=loaded)


def read_ledger(
    state_dir: StrPath,
    slug: str,
    catalogue: Catalogue,
    promotions: Container[str] | None = None,
    limit: int | None = None,
) -> LedgerRead:
    """A ledger's observations; only petrova writes ledgers, so a link is refused (the
    read opens it without following one: ``UNSAFE_PATH``). ``promotions``: see
    :func:`petrova.ledger.store.read_observations`; ``limit``: as for :func:`read_contract`."""
    shown = ledger_name(state_dir, slug)
    try:
        return LedgerRead(
            shown,
            read_observations(shown, catalogue, slug=slug, promotions=promotions, limit=limit),
        )
    except FileNotFoundError:
        return LedgerRead(shown, missing=True)
    except PetrovaError as exc:
        return LedgerRead(shown, error=exc.render())


def gather(loaded: LoadedRegistry, *, state_dir: Path, workspace: Path | None) -> FleetInputs:
    """Read every migrated repo's contract and ledger; per-repo trouble becomes typed
    problems (for the gate) and warnings (for people), never a stop.

    With a workspace, ``petrova sync``'s manifest says which commit each clone is at and
    which repos failed to sync (a repo never synced by petrova, say a clone made by hand,
    has neither). A manifest that cannot be read is one warning, and every consumer is
    then taken as failed to sync: the gate must not trust clones it cannot vouch for.
    """
    catalogue = loaded.catalogue
    synced, manifest_problem = _manifest(workspace)
    fleet_warnings: list[Notice] = []
    if manifest_problem is not None:
        fleet_warnings.append(Notice(None, SYNC_MANIFEST_INVALID, manifest_problem))
    repos: dict[str, RepoInputs] = {}
    own = str(loaded.path.parent)  # strings, not pathlib: this loop runs once per repo
    states = os.fspath(state_dir)
    clones = None if workspace is None else os.fspath(workspace)
    promotions = promotion_names(states)
    limit = max_input_bytes()  # once, not 18,000 lookups of the environment
    for entry in loaded.registry.repos:
        if not entry.migrated:
            continue
        warnings: list[Notice] = []
        root = (
            own
            if entry.role == "control-plane"
            else None
            if clones is None
            else os.path.join(clones, entry.slug)  # noqa: PTH118
        )
        contract = read_contract(root, catalogue, limit=limit) if root is not None else None
        declared, unread = declared_for(entry, contract, catalogue, warnings)
        ledger = read_ledger(states, entry.slug, catalogue, promotions, limit)
        observed = _observed_for(entry, ledger, warnings)
        sha = contract.sha if contract is not None and declared is not None else None
        record = synced.get(entry.slug)
        failure = None
        if record is not None and record.status != "ok":
            failure = f"{record.code or SYNC_FAILED}: {record.message or 'no reason given'}"
            warnings.append(
                Notice(
                    entry.slug,
                    SYNC_FAILED,
                    f"its last sync ({record.synced_at}) failed, so the contract "
                    f"read may be out of date: {failure}",
                )
            )
        elif manifest_problem is not None and entry.role != "control-plane":
            failure = "the sync manifest could not be read"
        commit = record.commit if record is not None and declared is not None else None
        repos[entry.slug] = RepoInputs(
            declared,
            observed,
            tuple(warnings),
            sha,
            commit,
            failure,
            unread,
            ledger.error,
        )
    return FleetInputs(loaded, repos, tuple(fleet_warnings))


def _manifest(workspace: Path | None) -> tuple[dict[str, SyncRecord], str | None]:
    if workspace is None:
        return {}, None
    try:
        return read_manifest(workspace), None
    except PetrovaError as exc:
        return {}, exc.render()


def declared_for(
    entry: RepoEntry,
    contract: ContractRead | None,
    catalogue: Catalogue,
    warnings: list[Notice],
) -> tuple[dict[str, Declared] | None, str | None]:
    """What the contract declares, or ``None`` and why the snapshot will not take it (a
    ``CONTRACT_UNREADABLE`` warning words the same reason). ``petrova probe`` plans by the
    same rule: a contract the snapshot refuses is never probed."""

    def unreadable(message: str) -> tuple[None, str]:
        warnings.append(Notice(entry.slug, CONTRACT_UNREADABLE, message))
        return None, message

    if contract is None:
        return unreadable(
            "no workspace to find the contract in; run `petrova sync` and pass --workspace "
            "or set PETROVA_WORKSPACE (consumer clones at <workspace>/<slug>)"
        )
    where = contract.path
    if contract.declared is None:
        return unreadable(contract.error or "unreadable")
    if contract.slug != entry.slug:
        return unreadable(
            f"{where}: the contract is for slug {contract.slug!r}, not {entry.slug!r}"
        )
    missing = [i for i in catalogue.ids if i not in contract.declared]
    if missing:
        warnings.append(
            Notice(
                entry.slug,
                CONTRACT_INCOMPLETE,
                f"{where} does not declare {', '.join(missing)} yet (the catalogue "
                "gained it); re-run `petrova bootstrap --resume --phase 6` in that repo",
            )
        )
    if contract.sha != entry.contract_sha:
        warnings.append(
            Notice(
                entry.slug,
                CONTRACT_SHA_DRIFT,
                f"{where} has sha {contract.sha} but the registry pins "
                f"{entry.contract_sha}; run `petrova registry pin {entry.slug}` after review",
            )
        )
    return contract.declared, None


def _observed_for(
    entry: RepoEntry, read: LedgerRead, warnings: list[Notice]
) -> dict[str, Observation] | None:
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
                Notice(
                    entry.slug,
                    STATE_MISSING,
                    f"{read.path} does not exist yet: nothing observed for {', '.join(applicable)}",
                )
            )
        return None
    warnings.append(Notice(entry.slug, STATE_UNREADABLE, read.error or ""))
    return None
