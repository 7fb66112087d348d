"""The probe benchmark keeps working (run tiny; it never judges time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_probe_benchmark_runs_tiny(tmp_path: Path) -> None:
    results = tmp_path / "probe.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.probe",
            "--repos",
            "6",
            "--latency",
            "0",
            "--results",
            str(results),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(results.read_text())
    assert report["repos"] == 6
    for run in ("one_at_a_time", "default_concurrency", "second_run_unchanged"):
        assert report[run]["outcomes"] == 12
    assert report["default_concurrency"]["counted_against_rate_limit"] == 12
    assert report["second_run_unchanged"]["github_requests"] == 12
    assert report["second_run_unchanged"]["counted_against_rate_limit"] == 0
