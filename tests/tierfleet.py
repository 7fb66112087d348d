"""A fleet whose tier 2 has migrated: the stage for the ledger and rollout tests.

kahn-hq: ares, traceo, crumb apply (lore_cairnet is not applicable by the registry).
stratt-hq: ares, crumb, lore_cairnet apply (traceo is optional in the registry but the
contract says not_applicable, which also takes it out of the gate).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from petrova.files.disk import sha12
from tests.conftest import Fleet

DAY0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)

APPLICABLE: dict[str, tuple[str, ...]] = {
    "kahn-hq": ("ares", "traceo", "crumb"),
    "stratt-hq": ("ares", "crumb", "lore_cairnet"),
}

_NA = {"not_applicable_reason": "not yet", "review_by": "2027-06-01"}
_EVIDENCE = {
    "ares": {"org_or_repo_scope": "org"},
    "traceo": {"baseline_id": "bl-1", "vtm_path": "docs/vtm.md"},
    "crumb": {"content_path": "content", "project_prefix": "K", "card_count": 3},
    "lore_cairnet": {"lore_collection_slug": "s", "cairnet_agent_id": "a"},
}
_APPLICABILITY: dict[str, dict[str, Any]] = {
    "kahn-hq": {
        "ares": "required",
        "traceo": "required",
        "crumb": "optional",
        "lore_cairnet": {"value": "not_applicable", "review_by": "2027-06-01", "reason": "none"},
    },
    "stratt-hq": {
        "ares": "required",
        "traceo": "optional",
        "crumb": "required",
        "lore_cairnet": "required",
    },
}


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def day(n: float, hours: float = 0) -> str:
    return ts(DAY0 + timedelta(days=n, hours=hours))


def epoch(n: float, hours: float = 0) -> str:
    return str(int((DAY0 + timedelta(days=n, hours=hours)).timestamp()))


def contract_text(slug: str) -> str:
    """The tier-2 repo's contract: every applicable integration wired."""
    cells: dict[str, Any] = {}
    for integration in _APPLICABILITY[slug]:
        if integration in APPLICABLE[slug]:
            cells[integration] = {"status": "wired", "evidence": _EVIDENCE[integration]}
        else:
            cells[integration] = {"status": "not_applicable", **_NA}
    contract = {"schema_version": 1, "slug": slug, "integrations": cells}
    return yaml.safe_dump(contract, sort_keys=False)


#: The sha each tier-2 contract is pinned at: what probes put in ``evidence_sha``.
PINNED = {slug: sha12(contract_text(slug).encode()) for slug in _APPLICABILITY}


def migrate_tier2(fleet: Fleet) -> None:
    """Write both contracts into the workspace and pin them in the registry."""
    registry = yaml.safe_load(fleet.registry.read_text())
    for repo in registry["repos"]:
        slug = repo["slug"]
        if slug not in _APPLICABILITY:
            continue
        fleet.write(f"workspace/{slug}/.petrova/contract.yaml", contract_text(slug))
        repo["contract_sha"] = PINNED[slug]
        repo["integrations_applicability"] = _APPLICABILITY[slug]
    fleet.registry.write_text(yaml.safe_dump(registry, sort_keys=False))


def batch(lines: Iterable[dict[str, str]]) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


def all_ok(at: str, *, overrides: dict[tuple[str, str], str] | None = None) -> str:
    """One day's batch: every applicable cell ok, except the ones overridden; each checked
    against the pinned contract, as a probe reports it."""
    overrides = overrides or {}
    return batch(
        {
            "slug": slug,
            "integration": i,
            "outcome": overrides.get((slug, i), "ok"),
            "at": at,
            "evidence_sha": PINNED[slug],
        }
        for slug, ids in APPLICABLE.items()
        for i in ids
    )


def fleet_args(fleet: Fleet, *extra: str) -> list[str]:
    return [*fleet.args("--workspace", str(fleet.workspace)), *extra]


def state_args(fleet: Fleet, *extra: str) -> list[str]:
    return [*fleet.args(), *extra]


def write_batch(fleet: Fleet, name: str, text: str) -> Path:
    return fleet.write(f"probes/{name}.jsonl", text)
