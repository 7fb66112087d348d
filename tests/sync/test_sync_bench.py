"""The sync benchmark keeps working (run small; it never judges time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_sync_benchmark_runs_at_5_repos(tmp_path: Path) -> None:
    results = tmp_path / "sync.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.sync", "--repos", "5", "--results", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(results.read_text())["rows"]
    assert rows["petrova sync, cold"]["git_commands"] > 0
    # with nothing changed, no repo is cloned or fetched again: two commands a repo
    assert rows["petrova sync, nothing changed"]["git_commands"] == 2 * 5
    assert rows["shell loop, nothing changed"]["git_commands"] == 2 * 5
    assert "| petrova sync, nothing changed |" in proc.stdout
