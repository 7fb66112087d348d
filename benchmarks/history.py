"""`python -m benchmarks.history --repos 1000 --days 365`: ``petrova history`` on a year.

Builds a control-plane repo as a year of the daily job leaves it: N ledgers (4 cells,
each keeping its newest 20 outcomes, in the JSON petrova writes), and one bot commit a
day in which every ledger gained an outcome per cell (a status change now and then, a
promotion, and the contract the probes check changing twice a year). The commits are
written with ``git fast-import`` (each ledger's versions one after another, so that git
stores them as deltas, as ``git gc`` would).

Then it measures, as whole processes: ``petrova history SLUG INTEGRATION --json`` and
``petrova history SLUG --json`` on a ledger in the middle of the fleet; the floor, git
alone (``git log --raw`` and one ``git cat-file --batch`` of the versions, what petrova
runs); and the straightforward way, one ``git show COMMIT:PATH`` per commit. Wall time
is the median of ``--runs`` runs; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
IDS = ("ares", "traceo", "crumb", "lore_cairnet")
START = datetime(2025, 12, 1, 6, 0, tzinfo=UTC)
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "petrova-bot",
    "GIT_AUTHOR_EMAIL": "bot@example.org",
    "GIT_COMMITTER_NAME": "petrova-bot",
    "GIT_COMMITTER_EMAIL": "bot@example.org",
}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ledger_year(slug: str, days: int, seed: int) -> list[bytes]:
    """One ledger's version after each day: outcomes, statuses, a promotion, two contracts."""
    rng = random.Random(seed)
    cells: dict[str, dict[str, object]] = {
        i: {"current_status": "pending", "streak": 0, "history": []} for i in IDS
    }
    shas = [f"{rng.getrandbits(48):012x}" for _ in range(3)]
    versions: list[bytes] = []
    for day in range(days):
        at = stamp(START + timedelta(days=day))
        sha = shas[min(day * 3 // days, 2)]
        for cell in cells.values():
            history: list[dict[str, object]] = cell["history"]  # type: ignore[assignment]
            failing = rng.random() < 0.03
            entry: dict[str, object] = {"at": at, "outcome": "failing" if failing else "ok"}
            if failing:
                entry["detail"] = "the probe saw no deploy key"
                cell["streak"] = int(cell["streak"]) + 1  # type: ignore[call-overload]
                if cell["streak"] == 2 and cell["current_status"] == "ok":
                    cell["current_status"], cell["status_since"] = "degraded", at
                    cell.pop("ok_since", None)
            else:
                entry["evidence_sha"] = sha
                cell["streak"] = 0
                if cell["current_status"] == "pending":
                    cell["current_status"], cell["status_since"], cell["ok_since"] = "ok", at, at
                elif cell["current_status"] == "degraded":
                    cell["needs_human"] = True
            history.append(entry)
            if cell.get("needs_human") and rng.random() < 0.5:
                promoted = {
                    "at": at[:11] + "09:00:00Z",
                    "promoted_to": "ok",
                    "by": "human:ana",
                    "reason": "checked the key",
                }
                history.append(promoted)
                cell.pop("needs_human")
                cell["current_status"], cell["status_since"] = "ok", promoted["at"]
                cell["ok_since"] = promoted["at"]
            del history[:-20]
            cell["last_verified_at"] = at
        document = {"schema_version": 1, "slug": slug, "integrations": cells}
        versions.append(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    return versions


def build(root: Path, repos: int, days: int) -> tuple[Path, str]:
    """The control-plane repo with a year of daily commits; returns it and a slug."""
    plane = root / "plane"
    plane.mkdir()
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "main", str(plane)], check=True, env=env)
    (plane / "contracts").mkdir()
    shutil.copy(ROOT / "contracts" / "contract.schema.json", plane / "contracts")
    slugs = [f"repo-{n:05d}" for n in range(repos)]
    registry = ["schema_version: 1", "repos:"] + [
        f"  - {{slug: {s}, url: 'https://github.com/bench/{s}', role: production, tier: 2}}"
        for s in slugs
    ]
    (plane / "registry.yaml").write_text("\n".join(registry) + "\n")
    importer = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--depth=50"],
        cwd=plane,
        stdin=subprocess.PIPE,
        env=env,
    )
    assert importer.stdin is not None
    out = importer.stdin
    # Blobs first, each ledger's year in a row (so each version is stored as a delta
    # against the day before), then the commits referring to them by mark.
    for n, slug in enumerate(slugs):
        for day, data in enumerate(ledger_year(slug, days, seed=n)):
            out.write(b"blob\nmark :%d\ndata %d\n" % (1 + n * days + day, len(data)))
            out.write(data + b"\n")
    for name in ("registry.yaml", "contracts/contract.schema.json"):
        data = (plane / name).read_bytes()
        out.write(
            b"blob\nmark :%d\ndata %d\n" % (repos * days + 1 + (name != "registry.yaml"), len(data))
        )
        out.write(data + b"\n")
    for day in range(days):
        when = int((START + timedelta(days=day, minutes=5)).timestamp())
        message = f"state: probe outcomes of {stamp(START + timedelta(days=day))}".encode()
        out.write(b"commit refs/heads/main\n")
        out.write(b"committer petrova-bot <bot@example.org> %d +0000\n" % when)
        out.write(b"data %d\n%s\n" % (len(message), message))
        if day == 0:
            out.write(b"M 100644 :%d registry.yaml\n" % (repos * days + 1))
            out.write(b"M 100644 :%d contracts/contract.schema.json\n" % (repos * days + 2))
        for n, slug in enumerate(slugs):
            out.write(b"M 100644 :%d state/%s.yaml\n" % (1 + n * days + day, slug.encode()))
    out.close()
    if importer.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=plane, check=True, env=env)
    return plane, slugs[repos // 2]


def median_wall(argv: list[str], cwd: Path, runs: int) -> tuple[float, bytes]:
    times: list[float] = []
    output = b""
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, env={**os.environ, **GIT_ENV})
        times.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise SystemExit(f"{argv} failed: {proc.stderr.decode()}")
        output = proc.stdout
    return statistics.median(times), output


def git_floor(plane: Path, path: str) -> None:
    """What petrova asks git for, done by git alone."""
    log = subprocess.run(
        [
            "git",
            "log",
            "--reverse",
            "--no-renames",
            "--raw",
            "--no-abbrev",
            "--format=%H",
            "--",
            path,
        ],
        cwd=plane,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    blobs = [line.split()[3] for line in log.splitlines() if line.startswith(":")]
    subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=plane,
        input="\n".join(blobs) + "\n",
        capture_output=True,
        check=True,
        text=True,
    )


def one_show_per_commit(plane: Path, path: str) -> None:
    """The straightforward way: list the commits, then one ``git show`` each."""
    commits = subprocess.run(
        ["git", "log", "--format=%H", "--", path],
        cwd=plane,
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split()
    for commit in commits:
        subprocess.run(
            ["git", "show", f"{commit}:{path}"], cwd=plane, capture_output=True, check=True
        )


def timed(func: object, runs: int, *args: object) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        func(*args)  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None, help="build here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="petrova-history-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        plane, slug = build(root, args.repos, args.days)
        built = time.perf_counter() - started
        size = sum(f.stat().st_size for f in (plane / ".git").rglob("*") if f.is_file())
        commits = int(
            subprocess.run(
                ["git", "rev-list", "--count", "HEAD"],
                cwd=plane,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        petrova = [str(BIN / "petrova"), "history", slug]
        common = ["--json", "--registry", str(plane / "registry.yaml")]
        one, out = median_wall([*petrova, "ares", *common], plane, args.runs)
        found = len(json.loads(out)["transitions"])
        every, out_all = median_wall([*petrova, *common], plane, args.runs)
        found_all = len(json.loads(out_all)["transitions"])
        path = f"state/{slug}.yaml"
        floor = timed(git_floor, args.runs, plane, path)
        naive = timed(one_show_per_commit, 1, plane, path)
        results = {
            "repos": args.repos,
            "days": args.days,
            "commits": commits,
            "git_dir_mb": round(size / 1e6, 1),
            "build_s": round(built, 1),
            "history_one_cell_s": round(one, 3),
            "transitions_one_cell": found,
            "history_all_cells_s": round(every, 3),
            "transitions_all_cells": found_all,
            "git_floor_s": round(floor, 3),
            "git_show_per_commit_s": round(naive, 3),
        }
        print(json.dumps(results, indent=2))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
