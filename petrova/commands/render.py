"""``petrova render``: look at a snapshot that was written earlier (an archived artefact)."""

from __future__ import annotations

from pathlib import Path

import click

from petrova.commands._common import catalogue_option, emit, guard_output, say
from petrova.documents.catalogue import find_catalogue, load_catalogue
from petrova.documents.registry import default_registry_path
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
@catalogue_option
def render(snapshot_file: Path, output: Path | None, catalogue_path: Path | None) -> None:
    """Render SNAPSHOT_FILE (a fleet.json) as one self-contained HTML page.

    The file is checked against the snapshot schema for its own integration ids,
    so a snapshot taken before the catalogue changed still renders; the catalogue
    only supplies column titles (an id it no longer knows is shown as the id).
    The page loads nothing from the network and opens from disk.
    """
    from petrova.render.html import render_html

    catalogue_file = find_catalogue(catalogue_path, default_registry_path())
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
