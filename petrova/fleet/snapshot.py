"""The fleet snapshot (SPEC §7), from the registry to the checked JSON document.

The pipeline, top to bottom (:func:`make_snapshot`):

1. **load**: the registry, checked against the catalogue (``documents.registry``);
2. **read**: every migrated repo's contract and ledger (``fleet.gather``); per-repo
   trouble becomes a warning, never a stop;
3. **derive**: rows and cells by the rules below (pure functions, no file touched);
4. **gate**: each tier's rollout gate over those very dots (``fleet.rollout``);
5. **check**: the document against ``contracts/snapshot.schema.json``;
6. **encode**: deterministic JSON bytes.

The command then renders (``render``) and writes (``files.disk.write_atomic``) or
publishes (``delivery``). Nothing here reaches back up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from petrova import __version__, clock
from petrova.documents.catalogue import Catalogue
from petrova.documents.registry import load_registry
from petrova.documents.schemas import check_snapshot
from petrova.errors import APPLICABILITY_CONFLICT, REVIEW_OVERDUE, TIMESTAMP_IN_FUTURE
from petrova.files.json_strict import to_json_bytes
from petrova.fleet.gather import FleetInputs, RepoInputs, gather
from petrova.fleet.rollout import gates_document, rollout_report
from petrova.fleet.runs import last_run
from petrova.ledger.rules import DEFAULT_STALE_AFTER, FUTURE_SKEW, Observation, observed_status
from petrova.models import (
    CELL_HISTORY_LIMIT,
    ApplicabilityDetail,
    CellStatus,
    RepoEntry,
    Snapshot,
    applicability_value,
    format_timestamp,
    parse_timestamp,
)

#: The window the snapshot's ``gates`` use: the runbook's "green for 7 days".
GATE_DAYS = 7


@dataclass(frozen=True)
class Made:
    """A snapshot as the command writes it: the JSON document, checked against its schema."""

    data: bytes
    warnings: tuple[tuple[str, str | None, str], ...]
    repos: int
    migrated: int

    def model(self) -> Snapshot:
        """The models, for formats other than JSON."""
        return Snapshot.model_validate_json(self.data)


def make_snapshot(
    registry: Path,
    catalogue: Catalogue,
    *,
    state_dir: Path,
    workspace: Path | None,
    now: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> Made:
    """The fleet snapshot at ``now``: load, read, derive, gate, check, encode."""
    loaded = load_registry(registry, catalogue, today=now.date())
    inputs = gather(loaded, state_dir=state_dir, workspace=workspace)
    document = snapshot_document(inputs, now=now, stale_after=stale_after)
    report = rollout_report(inputs, document, now=now, days=GATE_DAYS)
    document["gates"] = gates_document(report)
    run = last_run(state_dir)
    if run is not None:
        document["last_run"] = run.model_dump(mode="json")
    check_snapshot(document, catalogue)
    return Made(
        to_json_bytes(document),
        tuple((w["code"], w["slug"], w["message"]) for w in document["warnings"]),
        document["totals"]["repos"],
        document["totals"]["migrated"],
    )


def snapshot_time() -> datetime:
    """Now, by the one clock (``SOURCE_DATE_EPOCH`` when set, for reproducible snapshots)."""
    return clock.now()


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


def snapshot_document(
    inputs: FleetInputs, *, now: datetime, stale_after: timedelta = DEFAULT_STALE_AFTER
) -> dict[str, Any]:
    """The snapshot as the JSON document it is written as: keys in the models' order.

    Built as plain data because at fleet scale constructing and dumping 50,000 models
    cost more than deriving them. The :class:`~petrova.models.Snapshot` models still
    define the shape: the published schema is generated from them, every document is
    checked against it before it is written, and a test holds this function's key
    order to theirs.
    """
    loaded = inputs.loaded
    catalogue = loaded.catalogue
    warnings: list[dict[str, Any]] = [
        _warning(f.slug, f.code, f"{f.location}: {f.message}") for f in loaded.findings
    ]
    warnings.extend(_warning(w.slug, w.code, w.message) for w in inputs.warnings)
    rows: list[dict[str, Any]] = []
    migrated = 0
    for entry in loaded.registry.repos:
        row: dict[str, Any] = {
            "slug": entry.slug,
            "url": entry.url,
            "role": entry.role,
            "profile": entry.profile,
            "tier": entry.tier,
            "default_branch": entry.default_branch,
            "contract_sha": entry.contract_sha,
        }
        if entry.migrated:
            migrated += 1
            repo_inputs = inputs.repos.get(entry.slug, RepoInputs(None, None))
            if repo_inputs.commit is not None:
                row["contract_commit"] = repo_inputs.commit
            warnings.extend(_warning(w.slug, w.code, w.message) for w in repo_inputs.warnings)
            row["integrations"] = {
                integration_id: _cell(
                    entry, integration_id, repo_inputs, now, stale_after, warnings
                )
                for integration_id in catalogue.ids
            }
        rows.append(row)
    return {
        "schema_version": "1.0",
        "generated_at": format_timestamp(now),
        "generator": f"petrova {__version__}",
        "integration_ids": list(catalogue.ids),
        "totals": {"repos": len(rows), "migrated": migrated},
        "warnings": warnings,
        "rows": rows,
    }


def _warning(slug: str | None, code: str, message: str) -> dict[str, Any]:
    return {"slug": slug, "code": code, "message": message}


def _cell(
    entry: RepoEntry,
    integration_id: str,
    repo_inputs: RepoInputs,
    now: datetime,
    stale_after: timedelta,
    warnings: list[dict[str, Any]],
) -> dict[str, Any]:
    policy = entry.integrations_applicability.get(integration_id)
    applicability = applicability_value(policy) if policy is not None else None
    declared_cell = repo_inputs.declared.get(integration_id) if repo_inputs.declared else None
    declared = declared_cell.status if declared_cell is not None else None
    seen = repo_inputs.observed.get(integration_id) if repo_inputs.observed else None
    observed = observed_status(seen, now=now, stale_after=stale_after) if seen is not None else None
    if applicability == "not_applicable" and declared == "wired":
        warnings.append(
            _warning(
                entry.slug,
                APPLICABILITY_CONFLICT,
                f"{integration_id}: the contract declares it wired but the registry "
                "says not_applicable; the registry wins until one of them is changed",
            )
        )
    if seen is not None:
        _future_check(entry.slug, integration_id, seen, now, warnings)
    review_by = None
    if isinstance(policy, ApplicabilityDetail) and policy.review_by is not None:
        review_by = policy.review_by
    elif declared_cell is not None and declared_cell.review_by is not None:
        review_by = declared_cell.review_by
        if now > _review_deadline(review_by):
            warnings.append(
                _warning(
                    entry.slug,
                    REVIEW_OVERDUE,
                    f"{integration_id}: the contract's not_applicable was due for "
                    f"review on {review_by}",
                )
            )
    # No applicability yet (the catalogue gained the id since the pin): policy has not
    # spoken, so the dot is pending whatever the contract or the probes say.
    status: CellStatus = (
        "pending"
        if policy is None
        else derive_status(applicability=applicability, declared=declared, observed=observed)
    )
    cell: dict[str, Any] = {
        "status": status,
        "applicability": applicability,
        "declared": declared,
        "observed": observed,
        "last_verified_at": seen.last_verified_at if seen is not None else None,
        "review_by": review_by,
    }
    if seen is not None and seen.needs_human:
        cell["needs_human"] = True
    if seen is not None and seen.override is not None and status == "ok":
        cell["override"] = {k: seen.override[k] for k in ("at", "by", "reason")}
    if seen is not None and seen.history:
        cell["history"] = cell_history(seen.history)
    return cell


def cell_history(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The newest ledger entries as the snapshot carries them: time, outcome (or
    ``promoted``) and the probe's detail (or the promotion's reason), oldest first."""
    marks: list[dict[str, Any]] = []
    for entry in history[-CELL_HISTORY_LIMIT:]:
        promoted = "outcome" not in entry
        mark: dict[str, Any] = {
            "at": entry["at"],
            "outcome": "promoted" if promoted else entry["outcome"],
        }
        detail = entry.get("reason") if promoted else entry.get("detail")
        if detail is not None:
            mark["detail"] = detail
        marks.append(mark)
    return marks


def _future(seen: Observation) -> str | None:
    """The latest time the cell's ledger entry claims (``last_verified_at`` or its newest)."""
    times = [t for t in (seen.last_verified_at, seen.newest_at) if t is not None]
    return max(times, key=parse_timestamp) if times else None


def _future_check(
    slug: str, integration_id: str, seen: Observation, now: datetime, warnings: list[Any]
) -> None:
    """A ledger entry later than the snapshot's time: a replay wrote the future into it."""
    latest = _future(seen)
    # Future while now <= latest - skew: a probe runner's clock may drift a little.
    if latest is not None and now <= parse_timestamp(latest) - FUTURE_SKEW:
        warnings.append(
            _warning(
                slug,
                TIMESTAMP_IN_FUTURE,
                f"{integration_id}: the ledger has an entry at {latest}, later than this "
                f"snapshot's time ({format_timestamp(now)}); a replay with --now may have "
                "written the future into the real ledger",
            )
        )


def _review_deadline(review_by: str) -> datetime:
    """Overdue once the day is over: ``now`` past the last instant of ``review_by``."""
    return datetime.combine(date.fromisoformat(review_by), time.max, tzinfo=UTC)
