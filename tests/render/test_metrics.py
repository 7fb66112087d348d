"""The fleet's metrics, read back with prometheus_client's own parsers.

Each file must satisfy what the node exporter's textfile collector demands (every
family with HELP and TYPE, no series twice) and say what the snapshot says.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from petrova.fleet.trend import daily_run, previous_success
from petrova.models import CELL_STATUSES, FleetSnapshot, Snapshot
from petrova.render.metrics import textfile
from tests.conftest import Fleet, Petrova, run_inprocess, snapshot_args

DOC_FAMILIES = {
    "petrova_snapshot_generated_timestamp_seconds",
    "petrova_dots",
    "petrova_repos",
    "petrova_cells_awaiting_human",
    "petrova_warnings",
    "petrova_gate_green",
    "petrova_gate_green_seconds",
    "petrova_gate_until_green_seconds",
    "petrova_gate_window_seconds",
}
DAILY_FAMILIES = {
    "petrova_daily_last_start_timestamp_seconds",
    "petrova_daily_last_end_timestamp_seconds",
    "petrova_daily_last_success_timestamp_seconds",
    "petrova_daily_success",
    "petrova_daily_duration_seconds",
    "petrova_daily_step_duration_seconds",
    "petrova_daily_step_success",
    "petrova_daily_step_exit_code",
}
#: Bounded labels only: never a slug, never free text.
ALLOWED_LABELS = {"tier", "integration", "status", "migrated", "code", "step"}


def textfile_rules(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The textfile collector's rules: HELP and TYPE once per family, before its samples,
    and no series twice. Returns every sample by (name, sorted labels)."""
    helps = re.findall(r"^# HELP (\S+) ", text, re.MULTILINE)
    types = re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)
    assert len(helps) == len(set(helps)), "a family's HELP twice"
    assert helps == types, "every family needs HELP and TYPE, in the same order"
    series: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        assert family.name in helps
        assert family.documentation
        assert family.type == "gauge"
        for sample in family.samples:
            assert set(sample.labels) <= ALLOWED_LABELS, sample
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in series, f"duplicate series {key}"
            series[key] = sample.value
    return series


def value(series: dict[Any, float], name: str, **labels: str) -> float | None:
    return series.get((name, tuple(sorted(labels.items()))))


def test_openmetrics_format_says_what_the_snapshot_says(statuses: Path) -> None:
    json_run = run_inprocess(*snapshot_args(statuses))
    om_run = run_inprocess(*snapshot_args(statuses, "--format", "openmetrics"))
    assert json_run.exit_code == 0, json_run.stderr
    assert om_run.exit_code == 0, om_run.stderr
    text = om_run.stdout
    assert text.endswith("# EOF\n")
    document = json.loads(json_run.stdout)
    snapshot = FleetSnapshot.from_model(Snapshot.model_validate(document))

    families = {f.name: f for f in openmetrics_families(text)}
    assert DOC_FAMILIES - {"petrova_warnings"} <= set(families)
    series = textfile_rules(text.replace("# EOF\n", ""))

    dots: Counter[tuple[str, str, str]] = Counter()
    waiting: Counter[tuple[str, str]] = Counter()
    for row in document["rows"]:
        for integration, cell in (row.get("integrations") or {}).items():
            dots[str(row["tier"]), integration, cell["status"]] += 1
            waiting[str(row["tier"]), integration] += bool(cell.get("needs_human"))
    tiers = sorted({str(r["tier"]) for r in document["rows"]})
    for tier in tiers:
        for integration in document["integration_ids"]:
            for status in CELL_STATUSES:
                got = value(
                    series, "petrova_dots", tier=tier, integration=integration, status=status
                )
                assert got == dots[tier, integration, status], (tier, integration, status)
            got = value(series, "petrova_cells_awaiting_human", tier=tier, integration=integration)
            assert got == waiting[tier, integration]
        rows = [r for r in document["rows"] if str(r["tier"]) == tier]
        migrated = sum("integrations" in r for r in rows)
        assert value(series, "petrova_repos", tier=tier, migrated="true") == migrated
        assert value(series, "petrova_repos", tier=tier, migrated="false") == len(rows) - migrated
    assert sum(v for (n, _), v in series.items() if n == "petrova_dots") == 8
    assert sum(waiting.values()) == 1  # the all-statuses fleet has one flag
    now = datetime.fromisoformat(document["generated_at"].replace("Z", "+00:00"))
    assert value(series, "petrova_snapshot_generated_timestamp_seconds") == now.timestamp()
    for gate in snapshot.gates or []:
        tier = str(gate.tier)
        assert value(series, "petrova_gate_green", tier=tier) == (1 if gate.green else 0)
        assert value(series, "petrova_gate_window_seconds", tier=tier) == gate.days * 86400
        if gate.green:
            assert value(series, "petrova_gate_until_green_seconds", tier=tier) == 0
        elif gate.green_at is None:
            assert value(series, "petrova_gate_until_green_seconds", tier=tier) is None
    # unit metadata is there for OpenMetrics readers
    assert families["petrova_gate_green_seconds"].unit == "seconds"


def test_warnings_are_counted_per_code(statuses: Path) -> None:
    (statuses / "state" / "alpha-hq.yaml").write_text("{not a ledger")
    run = run_inprocess(*snapshot_args(statuses, "--format", "openmetrics"))
    assert run.exit_code == 0, run.stderr
    series = textfile_rules(run.stdout.replace("# EOF\n", ""))
    document = json.loads(run_inprocess(*snapshot_args(statuses)).stdout)
    codes = Counter(w["code"] for w in document["warnings"])
    assert codes  # the broken ledger is a warning
    for code, count in codes.items():
        assert value(series, "petrova_warnings", code=code) == count
    text = run.stdout
    assert "alpha-hq" not in text and "beta-hq" not in text  # no slug anywhere


def test_textfile_has_the_daily_families_and_keeps_the_last_success(
    statuses: Path, tmp_path: Path
) -> None:
    document = json.loads(run_inprocess(*snapshot_args(statuses)).stdout)
    snapshot = FleetSnapshot.from_model(Snapshot.model_validate(document))
    start = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    good = daily_run(
        [("sync", 0, 12.5), ("probe", 1, 30.0), ("snapshot", 0, 2.0)],
        started=start,
        ok=True,
        previous_success=None,
    )
    text = textfile(snapshot, good).decode()
    series = textfile_rules(text)
    declared = {f.name for f in text_string_to_metric_families(text)}
    assert declared >= DAILY_FAMILIES | (DOC_FAMILIES - {"petrova_warnings"})
    assert value(series, "petrova_daily_last_start_timestamp_seconds") == start.timestamp()
    assert value(series, "petrova_daily_duration_seconds") == 44.5
    assert value(series, "petrova_daily_last_success_timestamp_seconds") == start.timestamp() + 44.5
    assert value(series, "petrova_daily_step_success", step="probe") == 0
    assert value(series, "petrova_daily_step_exit_code", step="probe") == 1
    assert value(series, "petrova_daily_step_duration_seconds", step="sync") == 12.5
    first = tmp_path / "petrova.prom"
    first.write_text(text)

    # The next day fails: the file still says when the last good run ended.
    bad = daily_run(
        [("snapshot", 1, 3.0)],
        started=datetime(2026, 12, 2, 7, 0, tzinfo=UTC),
        ok=False,
        previous_success=previous_success(first),
    )
    series = textfile_rules(textfile(None, bad).decode())
    assert value(series, "petrova_daily_success") == 0
    assert value(series, "petrova_daily_last_success_timestamp_seconds") == start.timestamp() + 44.5
    assert value(series, "petrova_dots", tier="2", integration="ares", status="ok") is None
    assert previous_success(tmp_path / "missing.prom") is None
    (tmp_path / "junk.prom").write_text("not { metrics")
    assert previous_success(tmp_path / "junk.prom") is None


def test_daily_writes_its_metrics_file_atomically_after_the_run(
    petrova: Petrova, fleet: Fleet, tmp_path: Path
) -> None:
    out = fleet.root / "fleet.json"
    metrics = tmp_path / "textfile" / "petrova.prom"
    metrics.parent.mkdir()
    args = ["daily", "--no-self-update", "-o", str(out), "--metrics", str(metrics)]
    run = petrova(*args, *fleet.args("--workspace", str(fleet.workspace)))
    assert run.exit_code == 0, run.stderr
    series = textfile_rules(metrics.read_text())
    document = json.loads(out.read_bytes())
    assert value(series, "petrova_daily_success") == 1
    steps = {labels[0][1] for (name, labels) in series if name == "petrova_daily_step_success"}
    assert steps == {"sync", "probe", "snapshot", "notify", "page"}
    total = sum(v for (n, _), v in series.items() if n == "petrova_repos")
    assert total == document["totals"]["repos"]
    assert [p.name for p in metrics.parent.iterdir()] == ["petrova.prom"]  # no temp file left


def test_a_failed_daily_still_writes_its_metrics_and_keeps_the_last_success(
    petrova: Petrova, fleet: Fleet, tmp_path: Path
) -> None:
    out = fleet.root / "fleet.json"
    metrics = tmp_path / "petrova.prom"
    args = ["daily", "--no-self-update", "-o", str(out), "--metrics", str(metrics)]
    args += fleet.args("--workspace", str(fleet.workspace))
    assert petrova(*args).exit_code == 0
    good = textfile_rules(metrics.read_text())
    last_success = value(good, "petrova_daily_last_success_timestamp_seconds")
    assert last_success is not None
    fleet.registry.write_text("schema_version: 1\nrepos: [{slug: Not A Slug}]\n")
    run = petrova(*args)
    assert run.exit_code == 1  # the snapshot step failed
    series = textfile_rules(metrics.read_text())
    assert value(series, "petrova_daily_success") == 0
    assert value(series, "petrova_daily_step_success", step="snapshot") == 0
    assert value(series, "petrova_daily_step_exit_code", step="snapshot") == 2
    assert value(series, "petrova_daily_last_success_timestamp_seconds") == last_success
    # the fleet's figures are the last snapshot written, and say how old it is
    assert value(series, "petrova_snapshot_generated_timestamp_seconds") == value(
        good, "petrova_snapshot_generated_timestamp_seconds"
    )
