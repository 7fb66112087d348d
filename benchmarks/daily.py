"""`python -m benchmarks.daily --repos 2000`: the whole daily, on one runner and on 4 shards.

Builds N local bare repositories (a contract with ARES and TRACEO wired, a VTM, a few
source files), a control plane (registry with every contract pinned, a catalogue with a
``file`` probe on traceo's VTM) pushed to a bare ``origin``, and a fake GitHub API on
127.0.0.1 that waits ``--latency`` seconds (50 ms) before every answer. Then, as whole
processes, with the suite's fixed clock:

- **day 1, one runner**: ``petrova daily -o fleet.json --commit-state --push``;
- **day 1, 4 shards at once**: ``petrova daily --shard K/4 --bundle ... --commit-state
  --push`` in four checkouts of a second origin, started together (each with its own
  workspace and ETag cache, as each matrix job has), then **the final step alone**
  (``--final --from-shards``), whose snapshot must be byte-identical to one runner's;
- **day 2, nothing changed** (the clock one day on), both ways again;
- **one shard alone** (``--shard 1/4`` on day 1, nothing else running): what one matrix
  job takes on a runner of its own, which is how the matrix runs on GitHub.

Where the time goes: each step's duration, from the daily's own ``--metrics`` file.

For each: wall time, git commands started (a counting ``git`` early on PATH; git's own
helpers are not counted) and how many of them fetched or cloned a consumer's repo (and how
many fetched the control plane: the state push's), GitHub requests and how
many counted against the rate limit, and the peak resident memory of the largest
process. Nothing here asserts a time; the figures go to benchmarks/RESULTS.md.
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
from collections import Counter
from pathlib import Path
from typing import Any

from petrova.files.disk import sha12
from tests.fake_github import FakeGitHub

ROOT = Path(__file__).resolve().parent.parent
GITHUB = "https://github.com/"
DAY1 = 1795676400  # 2026-11-26T07:00:00Z, the suite's clock
DAY2 = DAY1 + 86400
CONTRACT = """\
schema_version: 1
slug: {slug}
contract_committers: [humans]
integrations:
  ares:
    status: wired
    evidence: {{org_or_repo_scope: bench/{slug}}}
  traceo:
    status: wired
    evidence: {{baseline_id: bl-1, vtm_path: docs/spec/vtm.md}}
  crumb: {{status: pending}}
  lore_cairnet: {{status: pending}}
"""
#: Runs the command given, then writes its largest descendant's peak RSS (KiB) to the
#: descriptor ``PEAK_FD`` names.
PEAK = (
    "import resource, subprocess, sys, os\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "os.write(int(os.environ['PEAK_FD']), str(peak).encode())\n"
    "sys.exit(code)\n"
)


def _blob(data: bytes) -> bytes:
    return b"data %d\n" % len(data) + data + b"\n"


def make_remote(bare: Path, slug: str) -> bytes:
    """A bare repo with one commit (one ``git fast-import``); returns the contract."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    with (bare / "config").open("a") as config:
        config.write("[uploadpack]\n\tallowFilter = true\n\tallowAnySHA1InWant = true\n")
    contract = CONTRACT.format(slug=slug).encode()
    files = {
        ".petrova/contract.yaml": contract,
        "docs/spec/vtm.md": f"# VTM of {slug}\n".encode(),
        "README.md": f"# {slug}\n".encode() + b"words " * 300,
    }
    for n in range(5):
        files[f"src/module_{n:02d}.py"] = (f"# {slug} {n}\n" + "x = 1\n" * 300).encode()
    stream = [b"commit refs/heads/main\n", b"committer b <b@example.com> 1795676400 +0000\n"]
    stream.append(_blob(b"the repo"))
    for path, data in files.items():
        stream.append(b"M 100644 inline " + path.encode() + b"\n" + _blob(data))
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        input=b"".join(stream),
        check=True,
        env={**os.environ, "GIT_DIR": str(bare)},
    )
    return contract


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    env |= {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@e"}
    env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@e"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)
    return done.stdout.decode()


def build(root: Path, count: int, github: FakeGitHub) -> Path:
    """The remotes, the hooks on the fake GitHub, and the control plane's bare origin."""
    remotes = root / "remotes" / "bench"
    remotes.mkdir(parents=True)
    plane = root / "plane"
    (plane / "contracts").mkdir(parents=True)
    catalogue = json.loads((ROOT / "contracts" / "contract.schema.json").read_text())
    catalogue["$defs"]["integration_traceo"]["x-probe"] = {
        "checks": [{"id": "vtm", "kind": "file", "path_field": "vtm_path", "fail": "failing"}]
    }
    (plane / "contracts" / "contract.schema.json").write_text(json.dumps(catalogue, indent=2))
    lines = ["schema_version: 1", "repos:"]
    for n in range(count):
        slug = f"repo-{n:05d}"
        contract = make_remote(remotes / slug, slug)
        github.add_hook(f"bench/{slug}", delivery=200 if n % 10 else 502)
        lines += [
            f"  - slug: {slug}",
            f"    url: {GITHUB}bench/{slug}",
            "    role: production",
            "    tier: 2",
            f"    contract_sha: {sha12(contract)}",
            "    integrations_applicability: {ares: required, traceo: required, "
            "crumb: not_applicable, lore_cairnet: not_applicable}",
        ]
    (plane / "registry.yaml").write_text("\n".join(lines) + "\n")
    (plane / ".gitignore").write_text("workspace/\nfleet.json\n")
    origin = root / "origin.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(origin))
    git(plane, "init", "-q", "-b", "main")
    git(plane, "add", "-A")
    git(plane, "commit", "-q", "-m", "control plane")
    git(plane, "push", "-q", str(origin), "main")
    return origin


def counting_path(root: Path) -> tuple[str, Path]:
    """A PATH whose first ``git`` logs its subcommand before running the real one."""
    real = shutil.which("git")
    assert real is not None, "git is not installed"
    wrapper_dir = root / "bin"
    wrapper_dir.mkdir()
    counter = root / "git-calls"
    wrapper = wrapper_dir / "git"
    # the subcommand; "+consumer" when it fetches a consumer's clone (sync's shallow
    # fetches and clones), not the control plane (the state push's fetch and rebase)
    body = (
        'kind=""; for a in "$@"; do case "$a" in --depth=1|clone) kind="+consumer";; esac; done\n'
        'for a in "$@"; do case "$a" in -*) ;; *) echo "$a$kind" >> "{c}"; break;; esac; done\n'
    )
    wrapper.write_text("#!/bin/sh\n" + body.format(c=counter) + f'exec {real} "$@"\n')
    wrapper.chmod(0o755)
    return f"{wrapper_dir}{os.pathsep}{os.environ.get('PATH', '')}", counter


class Harness:
    def __init__(self, root: Path, github: FakeGitHub, latency_note: float) -> None:
        self.root = root
        self.github = github
        path, self.counter = counting_path(root)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PETROVA_", "GIT_"))},
            "PATH": path,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"url.file://{root / 'remotes'}/.insteadOf",
            "GIT_CONFIG_VALUE_0": GITHUB,
            "GITHUB_API_URL": github.url,
            "GITHUB_TOKEN": github.token,
            "PETROVA_PROBE_ALLOW_PRIVATE": "1",
        }
        self.latency = latency_note

    def checkout(self, origin: Path, name: str) -> Path:
        where = self.root / name
        if not where.exists():
            git(self.root, "clone", "-q", str(origin), str(where))
        return where

    def daily(self, checkout: Path, *args: str) -> list[str]:
        argv = [sys.executable, "-c", PEAK, sys.executable, "-m", "petrova", "daily"]
        argv += ["--registry", str(checkout / "registry.yaml"), "--no-self-update"]
        return [*argv, "--workspace", str(checkout / "workspace"), *args]

    def run(self, commands: list[tuple[list[str], dict[str, str]]]) -> dict[str, Any]:
        """Start every command at once; their figures together."""
        self.counter.write_text("")
        requests, counted = len(self.github.requests), self.github.counted()
        started = time.perf_counter()
        running = []
        for argv, extra in commands:
            read, write = os.pipe()
            proc = subprocess.Popen(
                argv,
                env={**self.env, **extra, "PEAK_FD": str(write)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write,),
            )
            os.close(write)
            running.append((proc, read))
        peaks = []
        for proc, read in running:
            _out, err = proc.communicate()
            peak = os.read(read, 64).decode() or "0"
            os.close(read)
            if proc.returncode != 0 or err:
                raise SystemExit(f"{proc.args} failed ({proc.returncode}): {err.decode()[-3000:]}")
            peaks.append(int(peak))
        wall = time.perf_counter() - started
        calls = Counter(self.counter.read_text().split())
        return {
            "wall_s": round(wall, 1),
            "git_commands": sum(calls.values()),
            "consumer_fetch_or_clone": calls["fetch+consumer"] + calls["clone+consumer"],
            "control_plane_fetch": calls["fetch"],
            "github_requests": len(self.github.requests) - requests,
            "counted_against_rate_limit": self.github.counted() - counted,
            "peak_rss_mib": round(max(peaks) / 1024, 1),
        }


def _without_last_run(snapshot: bytes) -> Any:
    document = json.loads(snapshot)
    document.pop("last_run", None)
    return document


def step_seconds(metrics: Path) -> dict[str, float]:
    """Each step's duration from a ``--metrics`` file (Prometheus text format)."""
    found: dict[str, float] = {}
    for line in metrics.read_text().splitlines():
        if line.startswith("petrova_daily_step_duration_seconds{"):
            name = line.split('step="', 1)[1].split('"', 1)[0]
            found[name] = round(float(line.rsplit(" ", 1)[1]), 1)
    return found


def bench(count: int, shards: int, latency: float) -> dict[str, Any]:
    github = FakeGitHub(limit=100 * count + 1000, latency=latency)
    rows: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="petrova-daily-bench-") as tmp:
            root = Path(tmp)
            started = time.perf_counter()
            origin = build(root, count, github)
            sharded_origin = root / "sharded.git"
            git(root, "clone", "-q", "--bare", str(origin), str(sharded_origin))
            alone_origin = root / "alone.git"
            git(root, "clone", "-q", "--bare", str(origin), str(alone_origin))
            setup = time.perf_counter() - started
            h = Harness(root, github, latency)
            one = h.checkout(origin, "one")
            cache = {"PETROVA_CACHE_DIR": str(root / "cache-one")}
            alone = h.checkout(alone_origin, "alone")
            alone_cmd = h.daily(alone, "--shard", f"1/{shards}", "--bundle", str(root / "b1"))
            alone_cmd += ["--commit-state", "--push", "--metrics", str(root / "alone.prom")]
            alone_env = {"PETROVA_CACHE_DIR": str(root / "cache-alone")}
            alone_env["SOURCE_DATE_EPOCH"] = str(DAY1)
            row = h.run([(alone_cmd, alone_env)])
            row["steps_s"] = step_seconds(root / "alone.prom")
            rows[f"day 1: shard 1/{shards} alone"] = row
            for day, epoch in (("day 1", DAY1), ("day 2, nothing changed", DAY2)):
                clock = {"SOURCE_DATE_EPOCH": str(epoch)}
                one_cmd = h.daily(one, "-o", str(one / "fleet.json"), "--commit-state", "--push")
                one_cmd += ["--metrics", str(root / "one.prom")]
                row = h.run([(one_cmd, {**cache, **clock})])
                row["steps_s"] = step_seconds(root / "one.prom")
                rows[f"{day}: one runner"] = row
                commands = []
                for k in range(1, shards + 1):
                    where = h.checkout(sharded_origin, f"shard-{k}")
                    argv = h.daily(
                        where,
                        "--shard", f"{k}/{shards}",
                        "--bundle", str(root / "bundles" / f"shard-{k}"),
                        "--commit-state", "--push",
                    )  # fmt: skip
                    shard_cache = {"PETROVA_CACHE_DIR": str(root / f"cache-{k}")}
                    commands.append((argv, {**shard_cache, **clock}))
                rows[f"{day}: {shards} shards at once"] = h.run(commands)
                final = h.checkout(sharded_origin, f"final-{epoch}")
                git(final, "pull", "-q", "--ff-only")
                final_cmd = h.daily(
                    final,
                    "--final", "--from-shards", str(root / "bundles"),
                    "-o", str(final / "fleet.json"),
                )  # fmt: skip
                rows[f"{day}: the final step alone"] = h.run([(final_cmd, clock)])
                ours, theirs = (
                    (final / "fleet.json").read_bytes(),
                    (one / "fleet.json").read_bytes(),
                )
                row = rows[f"{day}: the final step alone"]
                row["snapshot_identical_to_one_runner"] = ours == theirs
                # from day 2 each way's record of its own previous run differs, by nature
                row["identical_but_last_run"] = _without_last_run(ours) == _without_last_run(theirs)
                size = sum(p.stat().st_size for p in (root / "bundles").rglob("*") if p.is_file())
                rows[f"{day}: the final step alone"]["bundles_bytes"] = size
            commits = git(sharded_origin, "log", "--format=%s", "main").splitlines()
            rows["shard commits landed"] = sum(1 for s in commits if "(shard " in s)
    finally:
        github.close()
    return {
        "repos": count,
        "shards": shards,
        "latency_s": latency,
        "cpus": os.cpu_count(),
        "setup_s": round(setup, 1),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--results", type=Path, default=None, help="also write JSON here")
    args = parser.parse_args(argv)
    result = bench(args.repos, args.shards, args.latency)
    text = json.dumps(result, indent=2)
    print(text)
    if args.results is not None:
        args.results.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
