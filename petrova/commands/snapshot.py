"""``petrova snapshot``: the dashboard JSON that cron writes every day."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import click

from petrova.commands._common import (
    DURATION,
    catalogue_option,
    emit,
    is_tty,
    open_registry,
    registry_option,
    resolve_state_dir,
    say,
    state_dir_option,
    workspace_option,
)
from petrova.errors import CheckFailed
from petrova.ledger import DEFAULT_STALE_AFTER
from petrova.output import SNAPSHOT_FORMATS
from petrova.schemas import check_snapshot
from petrova.snapshot import build_snapshot, gather, snapshot_time


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write here (atomically replaced) instead of stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(SNAPSHOT_FORMATS)),
    default="json",
    show_default=True,
    help="Output format.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when there are warnings (after writing).")
@click.option(
    "--stale-after",
    type=DURATION,
    default=DEFAULT_STALE_AFTER,
    help="A cell with no conclusive probe outcome for this long reads 'stale'. [default: 72h]",
)
@registry_option
@catalogue_option
@state_dir_option
@workspace_option
def snapshot(
    output: Path | None,
    fmt: str,
    strict: bool,
    stale_after: timedelta,
    registry_path: Path | None,
    catalogue_path: Path | None,
    state_dir: Path | None,
    workspace: Path | None,
) -> None:
    """Write the fleet snapshot: one row per registry entry, in registry order.

    Migrated rows (contract_sha set) carry `integrations`, one cell per catalogue
    integration; the others leave the key out. Per-repo problems (an unreadable
    contract or ledger, a drifted pin) become warnings and the rest of the fleet
    is still reported. The document is checked against
    contracts/snapshot.schema.json before anything is written. generated_at
    honours SOURCE_DATE_EPOCH.
    """
    now = snapshot_time()
    loaded = open_registry(registry_path, catalogue_path, today=now.date())
    inputs = gather(
        loaded, state_dir=resolve_state_dir(state_dir, loaded.path), workspace=workspace
    )
    snap = build_snapshot(inputs, now=now, stale_after=stale_after)
    check_snapshot(snap.model_dump(mode="json"), loaded.catalogue)
    verb = emit(SNAPSHOT_FORMATS[fmt](snap), output)
    for warning in snap.warnings:
        say(f"warning: {warning.code} [{warning.slug or '-'}]: {warning.message}")
    if output is not None and is_tty(sys.stderr):
        say(
            f"{verb} {output}: {snap.totals.repos} repos, {snap.totals.migrated} migrated, "
            f"{len(snap.warnings)} warning(s)"
        )
    if strict and snap.warnings:
        raise CheckFailed(f"{len(snap.warnings)} warning(s) under --strict")
