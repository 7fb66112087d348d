"""Synthetic fleets of N repos for the benchmarks.

A fleet is a control-plane folder: ``registry.yaml``, ``contracts/contract.schema.json``,
the control plane's own ``.petrova/contract.yaml``, a ``workspace/<slug>/`` per
consumer with its contract, and ``state/<slug>.yaml`` ledgers. Ledgers are made by the
real rules (``petrova.ledger.apply_outcome``), so every one of them loads. Two shapes:

- ``mature`` (the default): every ledger holds the full 20 outcomes for every
  integration, from a few dozen outcome patterns; the mix of statuses is realistic:
  mostly ok, some degraded, failing, awaiting a human, pending, stale or not applicable.
- ``young``: a fleet a few days into its migration. A quarter of the cells are declared
  ``pending``, a quarter are not applicable (by the registry and the contract), the rest
  ``wired``; each wired cell's ledger holds three outcomes, recorded against the pinned
  contract (``evidence_sha``), so the gate counts real green time. Small ledgers make
  the parse floor cheap: the contracts and the per-file costs weigh the most here.
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


#: The fleet shapes :func:`generate` makes.
SHAPES = ("mature", "young")


def _young_outcomes(rng: random.Random) -> list[str]:
    """Three outcomes, oldest first: mostly ok, some trouble."""
    roll = rng.random()
    if roll < 0.08:
        return ["ok", "failing", "failing"]
    if roll < 0.14:
        return ["ok", "unreachable", "ok"]
    if roll < 0.2:
        return ["ok", "ok", "degraded"]
    return ["ok", "ok", "ok"]


def _young_cell(rng: random.Random, sha: str) -> LedgerCell:
    stale = rng.random() < 0.05
    end = NOW - (timedelta(days=4) if stale else timedelta(hours=rng.randrange(1, 20)))
    step = timedelta(days=1)
    cell = LedgerCell()
    outcomes = _young_outcomes(rng)
    for i, outcome in enumerate(outcomes):
        at = end - step * (len(outcomes) - 1 - i)
        detail = None if outcome == "ok" else f"probe saw {outcome}"
        entry = ProbeEntry(
            at=format_timestamp(at), outcome=outcome, detail=detail, evidence_sha=sha
        )
        cell = apply_outcome(cell, entry)
    return cell


def generate(root: Path, n: int, *, seed: int = 7, shape: str = "mature") -> None:
    """Write a fleet of ``n`` repos (the control plane plus n-1 consumers) under ``root``."""
    if shape not in SHAPES:
        raise ValueError(f"unknown fleet shape {shape!r}; one of {', '.join(SHAPES)}")
    young = shape == "young"
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
        if young:  # a quarter not applicable, a quarter pending, half wired
            kinds = {i: rng.choice(["n/a", "pending", "wired", "wired"]) for i in ids}
            applicability = {
                i: "not_applicable" if kinds[i] == "n/a" else rng.choice(["required", "optional"])
                for i in ids
            }
        else:
            applicability = {
                i: rng.choice(["required", "required", "required", "optional", "not_applicable"])
                for i in ids
            }
            kinds = {
                i: "n/a"
                if applicability[i] == "not_applicable"
                else ("pending" if rng.random() < 0.1 else "wired")
                for i in ids
            }
        integrations = {}
        for i in ids:
            if kinds[i] == "n/a":
                integrations[i] = ContractCell(
                    status="not_applicable",
                    not_applicable_reason="no surface yet",
                    review_by="2027-06-01",
                )
            elif kinds[i] == "pending":
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
        sha = sha12(data)
        if young:
            observed = {i: _young_cell(rng, sha) for i in ids if kinds[i] == "wired"}
        else:
            observed = {i: rng.choice(cells) for i in ids}
        ledger = Ledger(schema_version=1, slug=slug, integrations=observed)
        (root / "state" / f"{slug}.yaml").write_bytes(render_ledger(ledger))
    (root / "registry.yaml").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--shape", choices=SHAPES, default="mature")
    args = parser.parse_args()
    generate(args.root, args.n, seed=args.seed, shape=args.shape)


if __name__ == "__main__":
    main()
