"""Synthetic fleets of N repos for the benchmarks.

A fleet is a control-plane folder: ``registry.yaml``, ``contracts/contract.schema.json``,
the control plane's own ``.petrova/contract.yaml``, a ``workspace/<slug>/`` per
consumer with its contract, and ``state/<slug>.yaml`` ledgers holding the full 20
outcomes for every integration. Ledgers are made by the real rules
(``petrova.ledger.apply_outcome``) from a few dozen outcome patterns, so every one
of them loads, and the mix of statuses is realistic: mostly ok, some degraded,
failing, awaiting a human, pending, stale or not applicable.
"""

from __future__ import annotations

import argparse
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from petrova.documents.catalogue import load_catalogue
from petrova.documents.contract import render_contract
from petrova.files.disk import sha12
from petrova.ledger.rules import apply_outcome
from petrova.ledger.store import render_ledger
from petrova.models import (
    Contract,
    ContractCell,
    Ledger,
    LedgerCell,
    ProbeEntry,
    format_timestamp,
)

ROOT = Path(__file__).resolve().parent.parent
#: The clock the fleets are made for; the harness runs with SOURCE_DATE_EPOCH set to it.
NOW = datetime(2026, 11, 26, 7, 0, 0, tzinfo=UTC)
HISTORY = 20
EVIDENCE = {
    "ares": {"org_or_repo_scope": "example-org"},
    "traceo": {
        "baseline_id": "bl-7",
        "vtm_path": "docs/spec/vtm.md",
        "mermaid_validated": True,
        "mermaid_diagram_count": 4,
    },
    "crumb": {"content_path": "content/", "project_prefix": "EX", "card_count": 42},
    "lore_cairnet": {"lore_collection_slug": "example", "cairnet_agent_id": "agent-1"},
}


def _pattern(rng: random.Random) -> list[str]:
    """Twenty outcomes, oldest first: mostly clean, some troubled."""
    roll = rng.random()
    outcomes = ["ok"] * HISTORY
    if roll < 0.08:  # a failing streak at the end
        start = rng.randrange(10, 18)
        outcomes[start:] = ["failing"] * (HISTORY - start)
    elif roll < 0.14:  # degraded briefly, then recovered (waits for a human)
        start = rng.randrange(5, 15)
        outcomes[start : start + 2] = ["degraded", "degraded"]
    elif roll < 0.22:  # probes could not always look
        for i in rng.sample(range(HISTORY), 4):
            outcomes[i] = "unreachable"
    elif roll < 0.26:
        outcomes[-1] = "degraded"
    return outcomes


def _cell(outcomes: list[str], *, end: datetime, step: timedelta) -> LedgerCell:
    cell = LedgerCell()
    for i, outcome in enumerate(outcomes):
        at = end - step * (len(outcomes) - 1 - i)
        detail = None if outcome == "ok" else f"probe saw {outcome}"
        cell = apply_outcome(
            cell, ProbeEntry(at=format_timestamp(at), outcome=outcome, detail=detail)
        )
    return cell


def generate(root: Path, n: int, *, seed: int = 7) -> None:
    """Write a fleet of ``n`` repos (the control plane plus n-1 consumers) under ``root``."""
    rng = random.Random(seed)
    if root.exists():
        shutil.rmtree(root)
    (root / "contracts").mkdir(parents=True)
    (root / "state").mkdir()
    shutil.copy(ROOT / "contracts" / "contract.schema.json", root / "contracts")
    shutil.copytree(ROOT / ".petrova", root / ".petrova")
    catalogue = load_catalogue(root / "contracts" / "contract.schema.json")
    ids = catalogue.ids
    self_sha = sha12((root / ".petrova" / "contract.yaml").read_bytes())

    # A few dozen ledger cells made by the real rules, reused across repos.
    cells = []
    for _ in range(40):
        stale = rng.random() < 0.1
        end = NOW - (timedelta(days=5) if stale else timedelta(hours=rng.randrange(1, 12)))
        cells.append(_cell(_pattern(rng), end=end, step=timedelta(hours=8)))

    lines = [
        "# Synthetic fleet for benchmarks (benchmarks/fleetgen.py).",
        "schema_version: 1",
        "repos:",
        "  - slug: petrova-codes",
        "    url: https://github.com/devarno-cloud/petrova-codes",
        "    role: control-plane",
        "    profile: strict",
        "    tier: 1",
        f"    contract_sha: {self_sha}",
        "    integrations_applicability:",
        *[
            f"      {i}: {{value: not_applicable, review_by: '2027-04-30', reason: control plane}}"
            for i in ids
        ],
    ]
    roles = ["production", "production", "experimental", "canary", "scaffold"]
    for k in range(1, n):
        slug = f"repo-{k:05d}"
        migrated = rng.random() < 0.9
        lines += [
            f"  - slug: {slug}",
            f"    url: https://github.com/org-{k % 97}/{slug}",
            "    default_branch: main",
            f"    role: {roles[k % len(roles)]}",
            "    profile: standard",
            f"    tier: {2 + k % 3}",
            "    fleets_allowed: [implementer]",
            '    added: "2026-04-29"',
        ]
        if not migrated:
            lines.append("    notes: not migrated yet")
            continue
        applicability = {
            i: rng.choice(["required", "required", "required", "optional", "not_applicable"])
            for i in ids
        }
        integrations = {}
        for i in ids:
            if applicability[i] == "not_applicable":
                integrations[i] = ContractCell(
                    status="not_applicable",
                    not_applicable_reason="no surface yet",
                    review_by="2027-06-01",
                )
            elif rng.random() < 0.1:
                integrations[i] = ContractCell(status="pending")
            else:
                integrations[i] = ContractCell(status="wired", evidence=EVIDENCE.get(i, {}))
        data = render_contract(
            Contract(schema_version=1, slug=slug, integrations=integrations), catalogue
        )
        contract_dir = root / "workspace" / slug / ".petrova"
        contract_dir.mkdir(parents=True)
        (contract_dir / "contract.yaml").write_bytes(data)
        lines.append(f"    contract_sha: {sha12(data)}")
        lines.append("    integrations_applicability:")
        for i in ids:
            if applicability[i] == "not_applicable":
                lines.append(
                    f'      {i}: {{value: not_applicable, review_by: "2027-06-01", '
                    'reason: "no surface yet"}'
                )
            else:
                lines.append(f"      {i}: {applicability[i]}")
        ledger = Ledger(
            schema_version=1, slug=slug, integrations={i: rng.choice(cells) for i in ids}
        )
        (root / "state" / f"{slug}.yaml").write_bytes(render_ledger(ledger))
    (root / "registry.yaml").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    generate(args.root, args.n, seed=args.seed)


if __name__ == "__main__":
    main()
