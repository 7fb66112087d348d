"""Which cells a run probes, which it skips and why, and in what order.

A cell is probed when the repo is migrated, the registry does not mark the integration
not applicable, the catalogue declares a probe for it, and the repo's contract (read
from its synced clone, or beside the registry for the control plane) declares it
``wired``. The contract is read exactly as the snapshot reads it
(:func:`~petrova.fleet.gather.read_contract` and
:func:`~petrova.fleet.gather.declared_for`): one the snapshot refuses as
``CONTRACT_UNREADABLE`` (another repo's slug, a link, invalid) is not probed. Cells
are ordered longest-unobserved first (the ledger's ``last_verified_at``, never observed
before all), so that when the rate limit runs out the cells left for the next run are
the freshest ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from petrova.documents.registry import LoadedRegistry
from petrova.documents.shard import ALL, Shard
from petrova.errors import (
    CONTRACT_UNREADABLE,
    PetrovaError,
    UsageError,
)
from petrova.fleet.gather import clone_root, declared_for, read_contract
from petrova.ledger.store import ledger_path, read_observations
from petrova.models import applicability_value


@dataclass(frozen=True)
class Planned:
    slug: str
    integration: str
    repo_url: str
    clone: Path
    evidence: dict[str, Any]
    evidence_sha: str
    last_verified_at: str | None


@dataclass(frozen=True)
class Skipped:
    slug: str
    integration: str | None
    reason: str
    #: True when the probe wanted to look and could not (the run then exits 1).
    blind: bool = False


@dataclass(frozen=True)
class Plan:
    cells: tuple[Planned, ...]
    skipped: tuple[Skipped, ...]


def make_plan(
    loaded: LoadedRegistry,
    *,
    workspace: Path | None,
    state_dir: Path,
    slugs: Sequence[str] = (),
    integration: str | None = None,
    shard: Shard = ALL,
) -> Plan:
    catalogue = loaded.catalogue
    wanted_ids = catalogue.ids
    if integration is not None:
        wanted_ids = (catalogue.require(integration),)
    for slug in slugs:
        loaded.require(slug)  # REPO_NOT_IN_REGISTRY naming the closest slugs
    entries = [
        e for e in loaded.registry.repos if (not slugs or e.slug in slugs) and shard.holds(e.slug)
    ]
    cells: list[Planned] = []
    skipped: list[Skipped] = []
    for entry in entries:
        if not entry.migrated:
            skipped.append(Skipped(entry.slug, None, "not migrated (no contract_sha)"))
            continue
        candidates = []
        for iid in wanted_ids:
            applicability = entry.integrations_applicability.get(iid)
            if applicability is not None and applicability_value(applicability) == (
                "not_applicable"
            ):
                skipped.append(Skipped(entry.slug, iid, "not applicable by the registry"))
            elif catalogue.get(iid).probe is None:
                skipped.append(Skipped(entry.slug, iid, "the catalogue declares no probe"))
            else:
                candidates.append(iid)
        if not candidates:
            continue
        if workspace is None and entry.role != "control-plane":
            raise UsageError(
                "probes read the synced clones: give --workspace or set PETROVA_WORKSPACE "
                "(the folder `petrova sync` fills)"
            )
        root = clone_root(entry, registry_path=loaded.path, workspace=workspace)
        assert root is not None
        read = read_contract(root, catalogue)
        declared, why = declared_for(entry, read, catalogue, [])
        if declared is None or read.loaded is None:
            skipped.append(
                Skipped(
                    entry.slug, None, f"contract not read: {CONTRACT_UNREADABLE}: {why or ''}", True
                )
            )
            continue
        contract = read.loaded
        observed = _observed(loaded, state_dir, entry.slug)
        for iid in candidates:
            cell = contract.contract.integrations.get(iid)
            if cell is None:
                skipped.append(Skipped(entry.slug, iid, "not in the contract"))
            elif cell.status != "wired":
                skipped.append(Skipped(entry.slug, iid, f"declared {cell.status}"))
            else:
                cells.append(
                    Planned(
                        entry.slug,
                        iid,
                        entry.url,
                        root,
                        dict(cell.evidence or {}),
                        contract.sha,
                        observed.get(iid),
                    )
                )
    order = {iid: n for n, iid in enumerate(catalogue.ids)}
    cells.sort(key=lambda c: (c.last_verified_at or "", c.slug, order[c.integration]))
    return Plan(tuple(cells), tuple(skipped))


def _observed(loaded: LoadedRegistry, state_dir: Path, slug: str) -> dict[str, str | None]:
    """Each cell's ``last_verified_at``; an unreadable ledger counts as never observed
    (``state record`` will refuse to write over it and say why)."""
    try:
        cells = read_observations(ledger_path(state_dir, slug), loaded.catalogue, slug=slug)
    except (FileNotFoundError, PetrovaError, OSError):
        return {}
    return {iid: obs.last_verified_at for iid, obs in cells.items()}
