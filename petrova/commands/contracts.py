"""``petrova contracts …``: the artefacts other teams build against."""

from __future__ import annotations

from pathlib import Path

import click

from petrova.artefacts import write_artefacts
from petrova.commands._common import say
from petrova.errors import CheckFailed


@click.group()
def contracts() -> None:
    """Generated schemas and fixtures for the consumers of the snapshot."""


@contracts.command()
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path(),
    show_default=True,
    help="The petrova project root.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 when a checked-in artefact differs from the code.",
)
def generate(root: Path, check: bool) -> None:
    """Regenerate contracts/*.schema.json and contracts/fixtures/*.json from the code.

    The schemas come from the models, specialised by the catalogue; the fixtures
    are snapshots of the shipped registry and of contracts/fixtures/all-statuses/,
    taken at a fixed time so they are byte-for-byte reproducible.
    """
    results = write_artefacts(root, check=check)
    for path, verb in results:
        say(f"{verb:>9}  {path}")
    bad = [p for p, v in results if v in ("stale", "missing")]
    if bad:
        raise CheckFailed(
            f"{len(bad)} generated artefact(s) differ from the code: "
            + ", ".join(str(p) for p in bad)
            + "; run `make artefacts` and commit the result"
        )
