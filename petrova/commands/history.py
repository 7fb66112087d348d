"""``petrova history``: a cell's transitions over its whole life, from git."""

from __future__ import annotations

import re
from datetime import date

import click

from petrova.commands._options import FleetOptions, fleet_options, json_option
from petrova.commands._output import emit, say
from petrova.errors import Location, UsageError
from petrova.files.json_strict import to_json_bytes
from petrova.models import Transition
from petrova.render.formats import text_table


@click.command()
@click.argument("slug")
@click.argument("integration", required=False)
@click.option(
    "--since",
    metavar="DATE",
    default=None,
    help="Only transitions on or after this day (YYYY-MM-DD, UTC).",
)
@json_option
@fleet_options(workspace=False)
def history(
    slug: str, integration: str | None, since: str | None, as_json: bool, fleet: FleetOptions
) -> None:
    """Print the transitions of SLUG's cells (or of one INTEGRATION) over their whole life.

    Read from the git history of state/SLUG.yaml in the control-plane checkout (the
    commits `petrova daily --commit-state` makes) and of the humans' promotions file
    state/promotions/SLUG.yaml when there is one: each status change, the needs-human
    flag raised or cleared, each promotion or override (who and why), and each change
    of the contract the probes checked (evidence_sha). The ledger itself keeps only the last
    20 outcomes; git keeps every version. Oldest first.
    """
    day = _day(since)
    catalogue = fleet.catalogue()
    wanted = None
    if integration is not None:
        wanted = catalogue.require(integration, location=Location(field="INTEGRATION"))
    from petrova.fleet.history import cell_history

    found = cell_history(
        fleet.states,
        slug,
        integration=wanted,
        since=day,
        rename=lambda name: catalogue.resolve(name) or name,
    )
    if as_json:
        document = {
            "slug": slug,
            "integration": wanted,
            "since": since,
            "transitions": [t.model_dump(mode="json") for t in found],
        }
        emit(to_json_bytes(document), None)
        return
    if not found:
        say(f"{slug}: no transition" + (f" since {since}" if since else ""))
        return
    rows = [[t.at, t.commit[:12], t.integration or "-", describe(t)] for t in found]
    emit(text_table(["at", "commit", "integration", "what"], rows).encode(), None)


def describe(t: Transition) -> str:
    """One transition in words."""
    detail = f" ({t.detail})" if t.detail else ""
    if t.kind == "appeared":
        return f"first recorded: {t.after}"
    if t.kind == "status":
        return f"status {t.before} -> {t.after}{detail}"
    if t.kind == "needs_human":
        if t.after == "true":
            return "needs a human: a probe saw a recovery to promote"
        return "no longer needs a human"
    if t.kind == "promotion":
        return f"promoted to {t.after} by {t.by}{': ' + t.detail if t.detail else ''}"
    if t.kind == "override":
        return f"overridden to {t.after} by {t.by} without an observed recovery" + (
            f": {t.detail}" if t.detail else ""
        )
    if t.kind == "contract":
        return f"probes checked contract {t.after}" + (f" (was {t.before})" if t.before else "")
    if t.kind == "removed":
        return f"cell removed from the ledger (was {t.before})"
    return f"unreadable version{detail}"


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--since {value!r} is not a date in the form YYYY-MM-DD",
            location=Location(field="--since"),
        ) from None
