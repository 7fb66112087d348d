"""``petrova probe`` at fleet scale against a fake GitHub API with real latency.

A synthetic fleet of N migrated repos, each with ARES (two GitHub requests: the repo's
hooks, then the latest delivery) and CRUMB (a file check) wired, probed three times by
the installed command, each against the same fake API on 127.0.0.1 that waits
``--latency`` seconds before every answer:

1. one request at a time (``--jobs 1``), from a cold ETag cache;
2. the default concurrency, from a cold ETag cache;
3. the default concurrency again, nothing changed: how many requests still counted
   against the rate limit (the goal is none: every answer is a ``304``).

    python -m benchmarks.probe --repos 1000 [--latency 0.05] [--results FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from petrova.files.disk import sha12
from tests.fake_github import FakeGitHub

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "contracts" / "contract.schema.json"
IDS = ("ares", "traceo", "crumb", "lore_cairnet")


def make_fleet(root: Path, n: int, github: FakeGitHub) -> None:
    """``registry.yaml``, the catalogue and ``workspace/<slug>`` for ``n`` repos."""
    (root / "contracts").mkdir(parents=True)
    shutil.copy(CATALOGUE, root / "contracts" / "contract.schema.json")
    entries = []
    for i in range(n):
        slug = f"repo-{i:05d}"
        clone = root / "workspace" / slug
        cards = clone / "content" / "cards"
        cards.mkdir(parents=True)
        for c in range(3):
            (cards / f"card-{c}.md").write_text(f"card {c}\n")
        contract = {
            "schema_version": 1,
            "slug": slug,
            "integrations": {
                "ares": {"status": "wired", "evidence": {"org_or_repo_scope": f"org/{slug}"}},
                "traceo": {"status": "pending"},
                "crumb": {
                    "status": "wired",
                    "evidence": {
                        "content_path": "content/cards",
                        "project_prefix": "BEN",
                        "card_count": 3,
                    },
                },
                "lore_cairnet": {"status": "pending"},
            },
        }
        data = yaml.safe_dump(contract, sort_keys=False).encode()
        (clone / ".petrova").mkdir()
        (clone / ".petrova" / "contract.yaml").write_bytes(data)
        github.add_hook(f"org/{slug}", delivery=200 if i % 10 else 502)
        entries.append(
            {
                "slug": slug,
                "url": f"https://github.com/org/{slug}",
                "role": "production",
                "tier": 2,
                "contract_sha": sha12(data),
                "integrations_applicability": dict.fromkeys(IDS, "required"),
            }
        )
    registry = {"schema_version": 1, "repos": entries}
    (root / "registry.yaml").write_text(yaml.safe_dump(registry, sort_keys=False))


def probe(root: Path, github: FakeGitHub, cache: Path, *extra: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETROVA_")}
    env.update(
        {
            "GITHUB_API_URL": github.url,
            "GITHUB_TOKEN": github.token,
            "SOURCE_DATE_EPOCH": "1795676400",
        }
    )
    before_requests, before_counted = len(github.requests), github.counted()
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "petrova",
            "probe",
            "--registry",
            str(root / "registry.yaml"),
            "--workspace",
            str(root / "workspace"),
            "--cache-dir",
            str(cache),
            "--json",
            *extra,
        ],
        env=env,
        capture_output=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"petrova probe failed ({proc.returncode}): {proc.stderr.decode()}")
    document = json.loads(proc.stdout)
    return {
        "wall_s": round(wall, 2),
        "outcomes": len(document["outcomes"]),
        "github_requests": len(github.requests) - before_requests,
        "counted_against_rate_limit": github.counted() - before_counted,
    }


def bench(n: int, latency: float) -> dict[str, Any]:
    github = FakeGitHub(limit=10 * n + 100, latency=latency)
    try:
        with tempfile.TemporaryDirectory(prefix="petrova-probe-bench-") as tmp:
            root = Path(tmp)
            make_fleet(root, n, github)
            serial = probe(root, github, root / "cache-serial", "--jobs", "1")
            cold = probe(root, github, root / "cache")
            warm = probe(root, github, root / "cache")
    finally:
        github.close()
    return {
        "repos": n,
        "latency_s": latency,
        "one_at_a_time": serial,
        "default_concurrency": cold,
        "second_run_unchanged": warm,
        "speedup": round(serial["wall_s"] / cold["wall_s"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args()
    result = bench(args.repos, args.latency)
    text = json.dumps(result, indent=2)
    print(text)
    if args.results is not None:
        args.results.write_text(text + "\n")


if __name__ == "__main__":
    main()
