"""``petrova render``: look at a snapshot that was written earlier (an archived artefact)."""

from __future__ import annotations

from pathlib import Path

import click

from petrova.commands._options import FleetOptions, fleet_options
from petrova.commands._output import emit, guard_output, say
from petrova.documents.catalogue import load_catalogue
from petrova.documents.snapshot_file import read_snapshot


@click.command()
@click.argument("snapshot_file", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the page here (atomically replaced) instead of stdout.",
)
@fleet_options(registry=False, state=False, workspace=False)
def render(snapshot_file: Path, output: Path | None, fleet: FleetOptions) -> None:
    """Render SNAPSHOT_FILE (a fleet.json) as one self-contained HTML page.

    The file is checked against the snapshot schema for its own integration ids,
    so a snapshot taken before the catalogue changed still renders; the catalogue
    only supplies column titles (an id it no longer knows is shown as the id).
    The page loads nothing from the network and opens from disk.
    """
    from petrova.render.html import render_html

    catalogue_file = fleet.catalogue_file()
    guard_output(output, inputs=[snapshot_file, catalogue_file])
    catalogue = load_catalogue(catalogue_file)
    loaded = read_snapshot(snapshot_file, catalogue)
    verb = emit(render_html(loaded.snapshot, titles=loaded.titles), output)
    if output is not None:
        snap = loaded.snapshot
        say(
            f"{verb} {output}: {snap.totals.repos} repos, {snap.totals.migrated} migrated, "
            f"generated {snap.generated_at}"
        )
