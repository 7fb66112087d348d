"""``petrova contract …``: check a consumer contract where it lives (and in its CI)."""

from __future__ import annotations

from pathlib import Path

import click

from petrova.clock import today
from petrova.commands._options import FleetOptions, fleet_options, json_option
from petrova.commands._output import emit, say
from petrova.documents.catalogue import Catalogue
from petrova.documents.contract import LoadedContract, load_contract
from petrova.documents.registry import LoadedRegistry, default_registry_path, load_registry
from petrova.errors import (
    LEGACY_INTEGRATION_ID,
    ContractInvalid,
    ErrorsShown,
    EvidenceInvalid,
    PetrovaError,
)
from petrova.files.json_strict import to_json_bytes
from petrova.files.yaml_strict import load_yaml_file
from petrova.migrate.answers import explain_wired
from petrova.migrate.hook import check_slug, overdue_reviews
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


@click.group()
def contract() -> None:
    """Validate a consumer contract (.petrova/contract.yaml) and print its sha."""


def _registry_for_hook(registry_path: Path | None, catalogue: Catalogue) -> LoadedRegistry | None:
    """The registry when one is there (given, $PETROVA_REGISTRY or ./registry.yaml)."""
    path = registry_path or default_registry_path()
    if registry_path is None and not path.is_file():
        return None
    return load_registry(path, catalogue)


@contract.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@fleet_options(state=False, workspace=False)
@json_option
def validate(
    paths: tuple[Path, ...],
    fleet: FleetOptions,
    as_json: bool,
) -> None:
    """Check each contract against the catalogue; exit 2 if any is invalid.

    Every problem is named with its file, line, integration and field; a wired
    integration's problems say which evidence it needs. When the registry is
    found (--registry, $PETROVA_REGISTRY, ./registry.yaml) and tells which repo
    this is (by its origin url, or because it lives in this repo), a slug that is
    not that repo's fails (CONTRACT_SLUG_MISMATCH). A review_by in the past is a
    warning (REVIEW_OVERDUE). This is what the `petrova-contract` pre-commit hook
    runs.
    """
    catalogue = fleet.catalogue()
    known = _registry_for_hook(fleet.registry_path, catalogue)
    results: list[dict[str, object]] = []
    failed: list[PetrovaError] = []
    for path in paths:
        try:
            loaded = _load(path, catalogue)
            check_slug(path, loaded, known)
        except PetrovaError as exc:
            failed.append(exc)
            results.append({"path": str(path), "valid": False, "error": exc.as_dict()})
            if not as_json:
                say(f"petrova: {error_text(exc)}")
            continue
        renamed = [{"old": old, "new": new} for old, new in loaded.renamed]
        overdue = overdue_reviews(loaded, today())
        results.append(
            {
                "path": str(path),
                "valid": True,
                "contract_sha": loaded.sha,
                "renamed": renamed,
                "warnings": [
                    {"code": w.code, "message": w.message, "location": str(w.location)}
                    for w in overdue
                ],
            }
        )
        if not as_json:
            for warning in overdue:
                say(f"warning: {warning}")
            for old, new in loaded.renamed:
                say(f"warning: {LEGACY_INTEGRATION_ID}: {path}: {old!r} was renamed to {new!r}")
            count = len(loaded.contract.integrations)
            click.echo(visible(f"{path}: valid ({count} integrations, contract_sha {loaded.sha})"))
    if as_json:
        emit(to_json_bytes(results), None)
    if failed:
        raise ErrorsShown(failed)


@contract.command()
@click.argument("path", type=click.Path(path_type=Path))
@fleet_options(registry=False, state=False, workspace=False)
def sha(path: Path, fleet: FleetOptions) -> None:
    """Print the contract's sha: what `sha256sum PATH | cut -c1-12` prints.

    The contract is validated first: the sha of a contract that does not load is
    not something to pin.
    """
    loaded = _load(path, fleet.catalogue())
    click.echo(loaded.sha)
