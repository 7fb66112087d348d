"""The fleet as metrics: what Prometheus scrapes, built with ``prometheus_client``.

The snapshot is a daily document, not a live process, so the metrics are a file: the
node exporter's textfile collector reads it (or a Pushgateway receives it). Two forms,
one collector:

- ``petrova snapshot --format openmetrics`` writes OpenMetrics text (``# UNIT`` lines,
  ``# EOF``), for tools that read OpenMetrics;
- ``petrova daily --metrics FILE`` writes the Prometheus text format 0.0.4, the format
  the node exporter's textfile collector and the Pushgateway read.

Labels are bounded by design: ``tier`` (at most 99), ``integration`` (the catalogue),
``status`` (six), ``migrated`` (two), ``code`` (the warning codes of ``errors.py``),
``step`` (the daily's steps, at most eight). No family carries a slug or any free text: a slug label
multiplies the series by the fleet's size (10,000 repos x 4 integrations x 6 statuses is
240,000 series from one file, each a new series whenever a repo is added), which is the
cardinality Prometheus' own guidance warns against. Which repo is behind a number is what
the page and ``petrova history`` are for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest as prometheus_text
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_text
from prometheus_client.registry import Collector, CollectorRegistry

from petrova.models import CELL_STATUSES, FleetSnapshot, parse_timestamp

PREFIX = "petrova"


@dataclass(frozen=True)
class StepRun:
    """One step of a daily run as the metrics need it."""

    name: str
    exit_code: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class DailyRun:
    """A daily run, whichever way it is known: the run record, or the daily's own steps.

    ``last_success`` is the end of the newest run that succeeded (this one when ``ok``),
    ``None`` when none is known.
    """

    started: datetime
    ended: datetime
    ok: bool
    steps: Sequence[StepRun]
    last_success: datetime | None = None

    @property
    def seconds(self) -> float:
        return max(0.0, (self.ended - self.started).total_seconds())


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


class FleetCollector(Collector):
    """The families of one snapshot (and optionally one daily run), collected once."""

    def __init__(self, snapshot: FleetSnapshot | None, daily: DailyRun | None = None) -> None:
        self.snapshot = snapshot
        self.daily = daily

    def collect(self) -> Iterator[Metric]:
        if self.snapshot is not None:
            yield from snapshot_families(self.snapshot)
        if self.daily is not None:
            yield from daily_families(self.daily)


def _gauge(name: str, doc: str, labels: Sequence[str] = (), unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels), unit=unit)


def snapshot_families(snapshot: FleetSnapshot) -> Iterator[Metric]:
    """The fleet's families: dots, repos, gates, cells awaiting a human, warnings."""
    now = parse_timestamp(snapshot.generated_at)
    generated = _gauge(
        "snapshot_generated_timestamp_seconds",
        "When the snapshot these figures come from was generated (Unix time).",
        unit="seconds",
    )
    generated.add_metric([], _epoch(now))
    yield generated

    tiers = [str(t) for t in sorted({row.tier for row in snapshot.rows})]
    dots: Counter[tuple[str, str, str]] = Counter()
    waiting: Counter[tuple[str, str]] = Counter()
    repos: Counter[tuple[str, str]] = Counter()
    for row in snapshot.rows:
        repos[str(row.tier), "true" if row.integrations is not None else "false"] += 1
        for integration, cell in (row.integrations or {}).items():
            dots[str(row.tier), integration, cell.status] += 1
            waiting[str(row.tier), integration] += bool(cell.needs_human)

    family = _gauge(
        "dots",
        "Dots of migrated repos by tier, integration and derived status (zeros included, "
        "so that a status that empties reads 0, not absent).",
        ("tier", "integration", "status"),
    )
    for tier in tiers:
        for integration in snapshot.integration_ids:
            for status in CELL_STATUSES:
                key = (tier, integration, status)
                family.add_metric(list(key), dots[key])
    yield family

    family = _gauge("repos", "Registry repos by tier, migrated or not.", ("tier", "migrated"))
    for tier in tiers:
        for migrated in ("true", "false"):
            family.add_metric([tier, migrated], repos[tier, migrated])
    yield family

    family = _gauge(
        "cells_awaiting_human",
        "Cells where a probe saw a recovery that waits for a human (petrova state promote).",
        ("tier", "integration"),
    )
    for tier in tiers:
        for integration in snapshot.integration_ids:
            family.add_metric([tier, integration], waiting[tier, integration])
    yield family

    codes = Counter(w.code for w in snapshot.warnings)
    family = _gauge("warnings", "Snapshot warnings by code.", ("code",))
    for code in sorted(codes):
        family.add_metric([code], codes[code])
    yield family

    yield from _gate_families(snapshot, now)


def _gate_families(snapshot: FleetSnapshot, now: datetime) -> Iterator[Metric]:
    if snapshot.gates is None:  # a snapshot from before gates were added
        return
    green = _gauge("gate_green", "1 when the tier's rollout gate is green, else 0.", ("tier",))
    since = _gauge(
        "gate_green_seconds",
        "How long the tier's gate has counted green time (0 while nothing counts).",
        ("tier",),
        unit="seconds",
    )
    until = _gauge(
        "gate_until_green_seconds",
        "Seconds until the tier's gate can be green at the earliest (0 when green); "
        "absent while a hold has no end in sight (a failing cell).",
        ("tier",),
        unit="seconds",
    )
    window = _gauge(
        "gate_window_seconds", "The green time the tier's gate needs.", ("tier",), unit="seconds"
    )
    for gate in snapshot.gates:
        tier = [str(gate.tier)]
        green.add_metric(tier, 1 if gate.green else 0)
        window.add_metric(tier, gate.days * 86400)
        counted = 0.0
        if gate.green_since is not None:
            counted = max(0.0, (now - parse_timestamp(gate.green_since)).total_seconds())
        since.add_metric(tier, counted)
        if gate.green:
            until.add_metric(tier, 0)
        elif gate.green_at is not None:
            left = (parse_timestamp(gate.green_at) - now).total_seconds()
            until.add_metric(tier, max(0.0, left))
    yield from (green, since, until, window)


def daily_families(run: DailyRun) -> Iterator[Metric]:
    """The daily run's families: start, end, last success, duration, each step."""
    family = _gauge(
        "daily_last_start_timestamp_seconds", "When the last daily run started.", unit="seconds"
    )
    family.add_metric([], _epoch(run.started))
    yield family
    family = _gauge(
        "daily_last_end_timestamp_seconds", "When the last daily run ended.", unit="seconds"
    )
    family.add_metric([], _epoch(run.ended))
    yield family
    family = _gauge(
        "daily_last_success_timestamp_seconds",
        "When the newest daily run that succeeded ended; alert when it is older than a "
        "day and a bit.",
        unit="seconds",
    )
    if run.last_success is not None:
        family.add_metric([], _epoch(run.last_success))
    yield family
    family = _gauge("daily_success", "1 when the last daily run succeeded, else 0.")
    family.add_metric([], 1 if run.ok else 0)
    yield family
    family = _gauge("daily_duration_seconds", "How long the last daily run took.", unit="seconds")
    family.add_metric([], run.seconds)
    yield family
    duration = _gauge(
        "daily_step_duration_seconds",
        "How long each step of the last daily run took.",
        ("step",),
        unit="seconds",
    )
    success = _gauge(
        "daily_step_success", "1 when the step of the last daily run exited 0.", ("step",)
    )
    code = _gauge(
        "daily_step_exit_code", "The exit code of each step of the last daily run.", ("step",)
    )
    for step in run.steps:
        duration.add_metric([step.name], step.seconds)
        success.add_metric([step.name], 1 if step.ok else 0)
        code.add_metric([step.name], step.exit_code)
    yield from (duration, success, code)


def _registry(snapshot: FleetSnapshot | None, daily: DailyRun | None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(snapshot, daily))
    return registry


def snapshot_openmetrics(snapshot: FleetSnapshot) -> bytes:
    """OpenMetrics text of the snapshot (``--format openmetrics``)."""
    data: bytes = openmetrics_text(_registry(snapshot, None))  # type: ignore[no-untyped-call]
    return data


def textfile(snapshot: FleetSnapshot | None, daily: DailyRun | None) -> bytes:
    """Prometheus text format, for the node exporter's textfile collector or a Pushgateway."""
    return prometheus_text(_registry(snapshot, daily))


def last_success_in(text: str) -> datetime | None:
    """``petrova_daily_last_success_timestamp_seconds`` from an earlier metrics file, so
    that a failed run keeps saying when the last good one was; ``None`` when the text
    does not parse or has no such sample (a first run, a file someone else wrote)."""
    from prometheus_client.parser import text_string_to_metric_families

    name = f"{PREFIX}_daily_last_success_timestamp_seconds"
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.value == sample.value:  # not NaN
                    return datetime.fromtimestamp(sample.value, UTC)
    except (ValueError, TypeError, OverflowError, OSError):
        return None
    return None
