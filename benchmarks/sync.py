"""`python -m benchmarks.sync --repos 1000`: ``petrova sync`` against the shell loop.

Builds N local bare repositories (each with a contract, a VTM and some source files),
a registry whose ``https://github.com/...`` urls reach them through git's
``url.<base>.insteadOf``, then in the same run measures, as whole processes:

- the workflow's sequential shell loop (``git clone --depth 1 --filter=blob:none
  --sparse`` + ``sparse-checkout set .petrova`` per repo; then, on the second run, a
  ``fetch --depth 1`` + ``reset --hard`` per repo), cold and with nothing changed;
- ``petrova sync`` cold, with nothing changed, and after 1% of the repos changed.

Wall time, and the git commands each started (a ``git`` wrapper early on PATH appends a
line to a counter file; git's own helpers, such as upload-pack or a lazy fetch, run from
git's exec-path and are not counted). Nothing here asserts a time.
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

BIN = Path(sys.executable).parent
GITHUB = "https://github.com/"

LOOP = r"""
set -u
while read -r slug url branch; do
  dest="$WORKSPACE/$slug"
  if [ -d "$dest" ]; then
    { git -C "$dest" fetch --quiet --depth 1 origin "$branch" \
      && git -C "$dest" reset --quiet --hard FETCH_HEAD; } || echo "failed: $slug" >&2
  else
    { git clone --quiet --depth 1 --branch "$branch" --filter=blob:none --sparse \
        "$url" "$dest" \
      && git -C "$dest" sparse-checkout set .petrova; } || echo "failed: $slug" >&2
  fi
done < "$LIST"
"""

CONTRACT = """\
schema_version: 1
slug: {slug}
contract_committers: [humans]
integrations:
  ares: {{status: pending}}
  traceo:
    status: wired
    evidence: {{baseline_id: bl-1, vtm_path: docs/spec/vtm.md}}
  crumb: {{status: pending}}
  lore_cairnet: {{status: pending}}
"""


def _blob(data: bytes) -> bytes:
    return b"data %d\n" % len(data) + data + b"\n"


def make_remote(bare: Path, slug: str, *, revision: int = 0) -> None:
    """A bare repo with one commit on main, written by one ``git fast-import``."""
    if not bare.exists():
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        with (bare / "config").open("a") as config:
            config.write("[uploadpack]\n\tallowFilter = true\n\tallowAnySHA1InWant = true\n")
    files = {
        ".petrova/contract.yaml": CONTRACT.format(slug=slug).encode(),
        "docs/spec/vtm.md": f"# VTM of {slug}, revision {revision}\n".encode(),
        "README.md": f"# {slug}\n".encode() + b"words " * 300,
    }
    for n in range(20):
        files[f"src/module_{n:02d}.py"] = (f"# {slug} {n}\n" + "x = 1\n" * 300).encode()
    stream = [b"commit refs/heads/main\n", b"committer b <b@example.com> 1795676400 +0000\n"]
    stream.append(_blob(f"revision {revision}".encode()))
    if revision:
        stream.append(b"from refs/heads/main^0\n")
    for path, data in files.items():
        stream.append(b"M 100644 inline " + path.encode() + b"\n" + _blob(data))
    subprocess.run(
        ["git", "fast-import", "--quiet", "--force"],
        cwd=bare,
        input=b"".join(stream),
        check=True,
        env={**os.environ, "GIT_DIR": str(bare)},
    )


def build(root: Path, count: int) -> tuple[Path, list[str]]:
    """The bare repos, the registry and the catalogue; returns the registry and slugs."""
    remotes = root / "remotes" / "bench"
    remotes.mkdir(parents=True)
    slugs = [f"repo-{n:05d}" for n in range(count)]
    for slug in slugs:
        make_remote(remotes / slug, slug)
    fleet = root / "fleet"
    (fleet / "contracts").mkdir(parents=True)
    catalogue = json.loads(
        (Path(__file__).resolve().parent.parent / "contracts" / "contract.schema.json").read_text()
    )
    catalogue["$defs"]["integration_traceo"]["x-probe"] = {
        "checks": [{"id": "vtm", "kind": "file", "path_field": "vtm_path", "fail": "failing"}]
    }
    (fleet / "contracts" / "contract.schema.json").write_text(json.dumps(catalogue, indent=2))
    lines = ["schema_version: 1", "repos:"]
    for slug in slugs:
        lines += [
            f"  - slug: {slug}",
            f"    url: {GITHUB}bench/{slug}",
            "    role: production",
            "    tier: 2",
        ]
    registry = fleet / "registry.yaml"
    registry.write_text("\n".join(lines) + "\n")
    (root / "list.txt").write_text("".join(f"{s} {GITHUB}bench/{s} main\n" for s in slugs))
    return registry, slugs


def counting_path(root: Path) -> tuple[str, Path]:
    """A PATH whose first ``git`` counts its calls before running the real one."""
    real = shutil.which("git")
    assert real is not None, "git is not installed"
    wrapper_dir = root / "bin"
    wrapper_dir.mkdir()
    counter = root / "git-calls"
    wrapper = wrapper_dir / "git"
    wrapper.write_text(f'#!/bin/sh\necho >> "{counter}"\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return f"{wrapper_dir}{os.pathsep}{os.environ.get('PATH', '')}", counter


def measure(argv: list[str], env: dict[str, str], counter: Path) -> dict[str, float | int]:
    counter.write_text("")
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or proc.stderr:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    calls = len(counter.read_text().splitlines())
    return {"seconds": round(seconds, 3), "git_commands": calls}


def report(
    rows: dict[str, dict[str, float | int]], repos: int, setup: float, results: Path | None
) -> None:
    cold = rows["petrova sync, cold"]
    print(f"sync benchmark: {repos} repos, {os.cpu_count()} cpus, setup {setup:.1f}s")
    print()
    print("| run | wall (s) | git commands | vs petrova cold (time) |")
    print("|---|---:|---:|---:|")
    for name, row in rows.items():
        share = f"{row['seconds'] / cold['seconds']:.0%}"
        print(f"| {name} | {row['seconds']:.2f} | {row['git_commands']} | {share} |")
    if results is not None:
        document = {"repos": repos, "cpus": os.cpu_count(), "rows": rows}
        results.write_text(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=None, help="petrova sync --jobs")
    parser.add_argument("--results", type=Path, default=None, help="also write JSON here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="petrova-sync-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        registry, slugs = build(root, args.repos)
        setup = time.perf_counter() - started
        path, counter = counting_path(root)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PETROVA_", "GIT_"))},
            "PATH": path,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"url.file://{root / 'remotes'}/.insteadOf",
            "GIT_CONFIG_VALUE_0": GITHUB,
        }
        loop_env = {**env, "WORKSPACE": str(root / "loop"), "LIST": str(root / "list.txt")}
        (root / "loop").mkdir()
        loop = ["bash", "-c", LOOP]
        sync = [str(BIN / "petrova"), "sync", "--registry", str(registry)]
        sync += ["--workspace", str(root / "ws")]
        if args.jobs:
            sync += ["--jobs", str(args.jobs)]
        rows = {
            "shell loop, cold": measure(loop, loop_env, counter),
            "shell loop, nothing changed": measure(loop, loop_env, counter),
            "petrova sync, cold": measure(sync, env, counter),
            "petrova sync, nothing changed": measure(sync, env, counter),
        }
        changed = slugs[::100]  # 1% of the fleet, at least one repo
        for slug in changed:
            make_remote(root / "remotes" / "bench" / slug, slug, revision=1)
        rows[f"petrova sync, {len(changed)} changed"] = measure(sync, env, counter)
        for slug in changed:
            vtm = (root / "ws" / slug / "docs" / "spec" / "vtm.md").read_text()
            assert "revision 1" in vtm, f"{slug} was not updated"
        # the figures first: removing 3,000 repositories takes a while
        report(rows, args.repos, setup, args.results)

    return 0


if __name__ == "__main__":
    raise SystemExit(main())
