"""``petrova contract …``: check a consumer contract where it lives (and in its CI)."""

from __future__ import annotations

from pathlib import Path

import click

from petrova.commands._common import catalogue_option, emit, json_option, open_catalogue, say
from petrova.documents.catalogue import Catalogue
from petrova.documents.contract import LoadedContract, load_contract
from petrova.documents.registry import default_registry_path
from petrova.errors import ContractInvalid, EvidenceInvalid, PetrovaError
from petrova.files.json_strict import to_json_bytes
from petrova.files.yaml_strict import load_yaml_file
from petrova.migrate.answers import explain_wired
from petrova.terminal import error_text, visible


def _load(path: Path, catalogue: Catalogue) -> LoadedContract:
    try:
        return load_contract(path, catalogue)
    except (ContractInvalid, EvidenceInvalid) as exc:
        try:
            data = load_yaml_file(path).data
        except (OSError, PetrovaError):
            raise exc from None
        raise explain_wired(exc, data, catalogue) from None


def _catalogue(catalogue_path: Path | None) -> Catalogue:
    return open_catalogue(catalogue_path, default_registry_path())


@click.group()
def contract() -> None:
    """Validate a consumer contract (.petrova/contract.yaml) and print its sha."""


@contract.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@catalogue_option
@json_option
def validate(paths: tuple[Path, ...], catalogue_path: Path | None, as_json: bool) -> None:
    """Check each contract against the catalogue; exit 2 if any is invalid.

    Every problem is named with its file, line, integration and field; a wired
    integration's problems say which evidence it needs. This is what the
    `petrova-contract` pre-commit hook runs.
    """
    catalogue = _catalogue(catalogue_path)
    results: list[dict[str, object]] = []
    worst = 0
    for path in paths:
        try:
            loaded = _load(path, catalogue)
        except PetrovaError as exc:
            worst = max(worst, exc.exit_code)
            results.append({"path": str(path), "valid": False, "error": exc.as_dict()})
            if not as_json:
                say(f"petrova: {error_text(exc)}")
            continue
        renamed = [{"old": old, "new": new} for old, new in loaded.renamed]
        results.append(
            {"path": str(path), "valid": True, "contract_sha": loaded.sha, "renamed": renamed}
        )
        if not as_json:
            for old, new in loaded.renamed:
                say(f"warning: LEGACY_INTEGRATION_ID: {path}: {old!r} was renamed to {new!r}")
            count = len(loaded.contract.integrations)
            click.echo(visible(f"{path}: valid ({count} integrations, contract_sha {loaded.sha})"))
    if as_json:
        emit(to_json_bytes(results), None)
    if worst:
        raise click.exceptions.Exit(worst)


@contract.command()
@click.argument("path", type=click.Path(path_type=Path))
@catalogue_option
def sha(path: Path, catalogue_path: Path | None) -> None:
    """Print the contract's sha: what `sha256sum PATH | cut -c1-12` prints.

    The contract is validated first: the sha of a contract that does not load is
    not something to pin.
    """
    loaded = _load(path, _catalogue(catalogue_path))
    click.echo(loaded.sha)
