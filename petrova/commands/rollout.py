"""``petrova rollout``: tier status, and the gate that says when the next tier may start."""

from __future__ import annotations

from datetime import timedelta

import click

from petrova.commands._options import DURATION, FleetOptions, fleet_options, json_option
from petrova.commands._output import emit, say
from petrova.errors import GateClosed, Location, UsageError
from petrova.fleet.gather import gather
from petrova.fleet.rollout import rollout_report
from petrova.fleet.snapshot import derive_snapshot
from petrova.ledger.record import clock
from petrova.ledger.rules import DEFAULT_STALE_AFTER
from petrova.models import RolloutReport
from petrova.render.rollout import gate_json, gate_text, status_json, status_text


def _window_options(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option(
        "--days",
        type=click.IntRange(min=1, max=36500),
        default=7,
        show_default=True,
        help="How long a tier must have been green.",
    )(func)
    func = click.option(
        "--now",
        default=None,
        help="The clock, RFC 3339 (for tests and replays). [default: the system clock]",
    )(func)
    func = click.option(
        "--stale-after",
        type=DURATION,
        default=DEFAULT_STALE_AFTER,
        help="A cell with no conclusive probe outcome for this long reads 'stale', as in "
        "the snapshot. [default: 72h]",
    )(func)
    func = json_option(func)
    return fleet_options()(func)


def _report(
    *,
    days: int,
    now: str | None,
    stale_after: timedelta,
    fleet: FleetOptions,
) -> RolloutReport:
    moment = clock(now)
    loaded = fleet.load(today=moment.date())
    inputs = gather(loaded, state_dir=fleet.states, workspace=fleet.workspace)
    derived = derive_snapshot(inputs, now=moment, stale_after=stale_after)
    report = rollout_report(inputs, derived, now=moment, days=days)
    for warning in report.warnings:
        say(f"warning: {warning.code} [{warning.slug or '-'}]: {warning.message}")
    return report


@click.group()
def rollout() -> None:
    """Tier status and the rollout gate: a tier must be green for --days before the next.

    Green for a repo: migrated, and every applicable integration shows ok and has been
    observed ok at every outcome for the whole window (`unreachable` does not count).
    Not-applicable cells never hold a tier back; pending ones always do.
    """


@rollout.command()
@_window_options
def status(
    days: int,
    now: str | None,
    stale_after: timedelta,
    as_json: bool,
    fleet: FleetOptions,
) -> None:
    """Each tier: its repos, migrated or not, every dot, and whether the tier is green."""
    report = _report(
        days=days,
        now=now,
        stale_after=stale_after,
        fleet=fleet,
    )
    emit(status_json(report) if as_json else status_text(report), None)


@rollout.command()
@click.argument("tier", type=click.IntRange(min=1))
@_window_options
def gate(
    tier: int,
    days: int,
    now: str | None,
    stale_after: timedelta,
    as_json: bool,
    fleet: FleetOptions,
) -> None:
    """Exit 0 when TIER has been green for the whole window, 1 otherwise.

    Fails closed: a repo is green only when its contract was read from the workspace
    (`petrova sync` keeps it) and matches the pin, its ledger was read, its last sync
    did not fail, and every applicable integration is declared wired and has been
    observed ok, against the pinned contract, for the whole window. Anything unknown
    holds the tier. Needs --workspace (or PETROVA_WORKSPACE) for every tier with a
    migrated consumer repo; without one it refuses rather than guess.

    When held back, says which repo and integration holds it, since when, and when
    the tier can be green at the earliest.

    \b
    What it needs to be right (it fails closed: anything unknown holds the tier):
      - the registry with every repo of the tier pinned (`petrova registry pin`);
      - the consumers' merged contracts, in fresh clones at <workspace>/<slug>
        (--workspace or $PETROVA_WORKSPACE, kept up to date by `petrova sync`);
      - the probe ledgers in --state-dir (default state/ beside the registry),
        fed daily by the probes (`petrova state record`), with the history of
        the whole window (--days) in them;
      - the real clock: --now is for replays of a scratch copy, not for deciding.
    """
    if fleet.workspace is None:
        _refuse_without_workspace(tier, fleet)
    report = _report(
        days=days,
        now=now,
        stale_after=stale_after,
        fleet=fleet,
    )
    view = report.tier(tier)
    emit(gate_json(view, report) if as_json else gate_text(view, report), None)
    if not view.green:
        first = view.holds[0]
        more = f" (and {len(view.holds) - 1} more)" if len(view.holds) > 1 else ""
        raise GateClosed(f"tier {tier} is not green for {days} days: {first.message}{more}")


def _refuse_without_workspace(tier: int, fleet: FleetOptions) -> None:
    """The gate never guesses: a tier with migrated consumers needs their contracts."""
    loaded = fleet.load()
    consumers = [
        e.slug
        for e in loaded.registry.repos
        if e.tier == tier and e.migrated and e.role != "control-plane"
    ]
    if consumers:
        raise UsageError(
            f"tier {tier} has migrated repos ({', '.join(consumers[:3])}"
            f"{', ...' if len(consumers) > 3 else ''}) whose contracts are read from the "
            "workspace; run `petrova sync --workspace DIR` and pass --workspace DIR (or set "
            "PETROVA_WORKSPACE): the gate does not guess",
            location=Location(field="--workspace"),
        )
