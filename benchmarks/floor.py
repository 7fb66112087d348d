"""The parse floor of `make bench`: PyYAML's C loader merely parsing every input, no checks.

It reads the registry, every migrated repo's contract and every ledger that a snapshot
reads, parses each with ``yaml.CSafeLoader`` (the fastest loader PyYAML has) and throws
the result away: no validation, no rules, no output. A snapshot that beats this floor
does so by reading less (the ledgers' JSON seal, the fast parser), never by skipping a
check.

    python -m benchmarks.floor REGISTRY WORKSPACE STATE_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def main(registry: Path, workspace: Path, state_dir: Path) -> int:
    doc = yaml.load(registry.read_bytes(), Loader=yaml.CSafeLoader)
    parsed = 1
    for repo in doc["repos"]:
        if not repo.get("contract_sha"):
            continue
        slug = repo["slug"]
        root = registry.parent if repo.get("role") == "control-plane" else workspace / slug
        for path in (root / ".petrova" / "contract.yaml", state_dir / f"{slug}.yaml"):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            yaml.load(data, Loader=yaml.CSafeLoader)
            parsed += 1
    return parsed


if __name__ == "__main__":
    count = main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
    print(f"parsed {count} files", file=sys.stderr)
