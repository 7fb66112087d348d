"""``petrova rollout``: tier status, and the gate that says when the next tier may start."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from petrova.commands._common import (
    DURATION,
    catalogue_option,
    emit,
    json_option,
    open_catalogue,
    progress_reporter,
    registry_option,
    resolve_registry_path,
    resolve_state_dir,
    say,
    state_dir_option,
    workspace_option,
)
from petrova.errors import GateClosed
from petrova.fleet.gather import gather_fleet
from petrova.fleet.rollout import (
    RolloutReport,
    gate_json,
    gate_text,
    rollout_report,
    status_json,
    status_text,
)
from petrova.ledger.record import clock
from petrova.ledger.rules import DEFAULT_STALE_AFTER


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
    for option in (json_option, registry_option, catalogue_option, state_dir_option):
        func = option(func)
    return workspace_option(func)


def _report(
    *,
    days: int,
    now: str | None,
    stale_after: timedelta,
    registry_path: Path | None,
    catalogue_path: Path | None,
    state_dir: Path | None,
    workspace: Path | None,
) -> RolloutReport:
    moment = clock(now)
    registry = resolve_registry_path(registry_path)
    inputs = gather_fleet(
        registry,
        open_catalogue(catalogue_path, registry),
        state_dir=resolve_state_dir(state_dir, registry),
        workspace=workspace,
        today=moment.date(),
        progress=progress_reporter("reading contracts and ledgers"),
    )
    report = rollout_report(inputs, now=moment, days=days, stale_after=stale_after)
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
    registry_path: Path | None,
    catalogue_path: Path | None,
    state_dir: Path | None,
    workspace: Path | None,
) -> None:
    """Each tier: its repos, migrated or not, every dot, and whether the tier is green."""
    report = _report(
        days=days,
        now=now,
        stale_after=stale_after,
        registry_path=registry_path,
        catalogue_path=catalogue_path,
        state_dir=state_dir,
        workspace=workspace,
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
    registry_path: Path | None,
    catalogue_path: Path | None,
    state_dir: Path | None,
    workspace: Path | None,
) -> None:
    """Exit 0 when TIER has been green for the whole window, 1 otherwise.

    When held back, says which repo and integration holds it and since when.

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
    report = _report(
        days=days,
        now=now,
        stale_after=stale_after,
        registry_path=registry_path,
        catalogue_path=catalogue_path,
        state_dir=state_dir,
        workspace=workspace,
    )
    view = report.tier(tier)
    emit(gate_json(view, report) if as_json else gate_text(view, report), None)
    if not view.green:
        first = view.holds[0]
        more = f" (and {len(view.holds) - 1} more)" if len(view.holds) > 1 else ""
        raise GateClosed(f"tier {tier} is not green for {days} days: {first.message}{more}")
