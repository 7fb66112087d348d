"""The fleet snapshot (SPEC §7): gather inputs, derive every dot, report per-repo trouble.

Two steps, kept apart so the rules stay pure: :func:`gather` reads each migrated repo's
contract and ledger, turning any per-repo failure into a warning; :func:`build_snapshot`
derives rows and cells from what was gathered and touches no file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from petrova import __version__
from petrova.catalogue import Catalogue
from petrova.contract import (
    CONTRACT_RELPATH,
    LoadedContract,
    load_contract,
    missing_integrations,
)
from petrova.errors import PetrovaError, UsageError
from petrova.io import confined
from petrova.ledger import DEFAULT_STALE_AFTER, ledger_path, load_ledger, observed_status
from petrova.models import (
    ApplicabilityDetail,
    CellStatus,
    ContractCell,
    Ledger,
    LedgerCell,
    RepoEntry,
    Snapshot,
    SnapshotCell,
    SnapshotRow,
    SnapshotTotals,
    SnapshotWarning,
    applicability_value,
    format_timestamp,
)
from petrova.registry import LoadedRegistry


@dataclass(frozen=True)
class RepoInputs:
    """What could be read for one migrated repo; ``None`` where it could not."""

    contract: LoadedContract | None
    ledger: Ledger | None
    warnings: tuple[SnapshotWarning, ...] = ()


@dataclass(frozen=True)
class FleetInputs:
    loaded: LoadedRegistry
    repos: dict[str, RepoInputs] = field(default_factory=dict)


def snapshot_time() -> datetime:
    """Now, or ``SOURCE_DATE_EPOCH`` when set, for reproducible snapshots."""
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return datetime.now(UTC).replace(microsecond=0)
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (ValueError, OverflowError, OSError):
        raise UsageError(
            f"SOURCE_DATE_EPOCH={raw!r} is not a whole number of seconds since 1970-01-01 UTC"
        ) from None


def contract_location(
    entry: RepoEntry, *, registry_path: Path, workspace: Path | None
) -> Path | None:
    """Where a repo's contract lives: beside the registry for the control plane itself.

    A symbolic link inside the repo on the way to it is ``UNSAFE_PATH``: consumer repos
    are not trusted, and a link could make petrova read (and quote) any file.
    """
    if entry.role == "control-plane":
        return confined(registry_path.parent, CONTRACT_RELPATH)
    if workspace is None:
        return None
    return confined(workspace / entry.slug, CONTRACT_RELPATH)


def gather(loaded: LoadedRegistry, *, state_dir: Path, workspace: Path | None) -> FleetInputs:
    catalogue = loaded.catalogue
    repos: dict[str, RepoInputs] = {}
    for entry in loaded.registry.repos:
        if not entry.migrated:
            continue
        warnings: list[SnapshotWarning] = []
        contract = _read_contract(entry, loaded, workspace, catalogue, warnings)
        ledger = _read_ledger(entry, state_dir, catalogue, warnings)
        repos[entry.slug] = RepoInputs(contract, ledger, tuple(warnings))
    return FleetInputs(loaded, repos)


def _read_contract(
    entry: RepoEntry,
    loaded: LoadedRegistry,
    workspace: Path | None,
    catalogue: Catalogue,
    warnings: list[SnapshotWarning],
) -> LoadedContract | None:
    try:
        path = contract_location(entry, registry_path=loaded.path, workspace=workspace)
    except PetrovaError as exc:
        warnings.append(
            SnapshotWarning(slug=entry.slug, code="CONTRACT_UNREADABLE", message=exc.render())
        )
        return None
    if path is None:
        warnings.append(
            SnapshotWarning(
                slug=entry.slug,
                code="CONTRACT_UNREADABLE",
                message="no workspace to find the contract in; pass --workspace or set "
                "PETROVA_WORKSPACE (consumer clones at <workspace>/<slug>)",
            )
        )
        return None
    try:
        contract = load_contract(path, catalogue)
    except PetrovaError as exc:
        warnings.append(
            SnapshotWarning(slug=entry.slug, code="CONTRACT_UNREADABLE", message=exc.render())
        )
        return None
    if contract.contract.slug != entry.slug:
        warnings.append(
            SnapshotWarning(
                slug=entry.slug,
                code="CONTRACT_UNREADABLE",
                message=f"{path}: the contract is for slug {contract.contract.slug!r}, "
                f"not {entry.slug!r}",
            )
        )
        return None
    missing = missing_integrations(catalogue, contract.contract)
    if missing:
        warnings.append(
            SnapshotWarning(
                slug=entry.slug,
                code="CONTRACT_INCOMPLETE",
                message=f"{path} does not declare {', '.join(missing)} yet (the catalogue "
                "gained it); re-run `petrova bootstrap --resume --phase 6` in that repo",
            )
        )
    if contract.sha != entry.contract_sha:
        warnings.append(
            SnapshotWarning(
                slug=entry.slug,
                code="CONTRACT_SHA_DRIFT",
                message=f"{path} has sha {contract.sha} but the registry pins "
                f"{entry.contract_sha}; run `petrova registry pin {entry.slug}` after review",
            )
        )
    return contract


def _read_ledger(
    entry: RepoEntry, state_dir: Path, catalogue: Catalogue, warnings: list[SnapshotWarning]
) -> Ledger | None:
    path = ledger_path(state_dir, entry.slug)
    try:
        confined(state_dir, Path(path.name))  # only petrova writes ledgers, never as links
        return load_ledger(path, catalogue, slug=entry.slug)
    except FileNotFoundError:
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
    except PetrovaError as exc:
        warnings.append(
            SnapshotWarning(slug=entry.slug, code="STATE_UNREADABLE", message=exc.render())
        )
        return None


def derive_status(
    *, applicability: str | None, declared: str | None, observed: str | None
) -> CellStatus:
    """SPEC §7, in order: not applicable by policy or intent; declared pending; observation."""
    if applicability == "not_applicable" or declared == "not_applicable":
        return "not_applicable"
    if declared == "pending":
        return "pending"
    if observed is None:
        return "pending"
    return observed  # type: ignore[return-value]  # ObservedStatus is a subset of CellStatus


def build_snapshot(
    inputs: FleetInputs, *, now: datetime, stale_after: timedelta = DEFAULT_STALE_AFTER
) -> Snapshot:
    loaded = inputs.loaded
    catalogue = loaded.catalogue
    warnings: list[SnapshotWarning] = [
        SnapshotWarning(slug=f.slug, code=f.code, message=f"{f.location}: {f.message}")
        for f in loaded.findings
    ]
    rows: list[SnapshotRow] = []
    for entry in loaded.registry.repos:
        integrations = None
        if entry.migrated:
            repo_inputs = inputs.repos.get(entry.slug, RepoInputs(None, None))
            warnings.extend(repo_inputs.warnings)
            integrations = {
                integration_id: _cell(
                    entry, integration_id, repo_inputs, now, stale_after, warnings
                )
                for integration_id in catalogue.ids
            }
        rows.append(
            SnapshotRow(
                slug=entry.slug,
                url=entry.url,
                role=entry.role,
                profile=entry.profile,
                tier=entry.tier,
                default_branch=entry.default_branch,
                contract_sha=entry.contract_sha,
                integrations=integrations,
            )
        )
    return Snapshot(
        generated_at=format_timestamp(now),
        generator=f"petrova {__version__}",
        integration_ids=list(catalogue.ids),
        totals=SnapshotTotals(
            repos=len(rows), migrated=sum(1 for r in loaded.registry.repos if r.migrated)
        ),
        warnings=warnings,
        rows=rows,
    )


def _cell(
    entry: RepoEntry,
    integration_id: str,
    repo_inputs: RepoInputs,
    now: datetime,
    stale_after: timedelta,
    warnings: list[SnapshotWarning],
) -> SnapshotCell:
    policy = entry.integrations_applicability.get(integration_id)
    applicability = applicability_value(policy) if policy is not None else None
    declared_cell: ContractCell | None = None
    if repo_inputs.contract is not None:
        declared_cell = repo_inputs.contract.contract.integrations.get(integration_id)
    declared = declared_cell.status if declared_cell is not None else None
    ledger_cell: LedgerCell | None = None
    if repo_inputs.ledger is not None:
        ledger_cell = repo_inputs.ledger.integrations.get(integration_id)
    observed = (
        observed_status(ledger_cell, now=now, stale_after=stale_after)
        if ledger_cell is not None
        else None
    )
    if applicability == "not_applicable" and declared == "wired":
        warnings.append(
            SnapshotWarning(
                slug=entry.slug,
                code="APPLICABILITY_CONFLICT",
                message=f"{integration_id}: the contract declares it wired but the registry "
                "says not_applicable; the registry wins until one of them is changed",
            )
        )
    review_by = None
    if isinstance(policy, ApplicabilityDetail) and policy.review_by is not None:
        review_by = policy.review_by
    elif declared_cell is not None and declared_cell.review_by is not None:
        review_by = declared_cell.review_by
        if date.fromisoformat(review_by) < now.date():
            warnings.append(
                SnapshotWarning(
                    slug=entry.slug,
                    code="REVIEW_OVERDUE",
                    message=f"{integration_id}: the contract's not_applicable was due for "
                    f"review on {review_by}",
                )
            )
    status = derive_status(applicability=applicability, declared=declared, observed=observed)
    needs_human = ledger_cell is not None and ledger_cell.needs_human
    return SnapshotCell(
        status=status,
        applicability=applicability,
        declared=declared,
        observed=observed,
        last_verified_at=ledger_cell.last_verified_at if ledger_cell is not None else None,
        review_by=review_by,
        needs_human=True if needs_human else None,
    )
