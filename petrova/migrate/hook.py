"""What the ``petrova-contract`` pre-commit hook checks beyond the schema.

The snapshot reads a contract under the slug of the repo it lives in; a contract whose
``slug`` names another repo is refused there, so the hook refuses it first, whenever it
can tell which repo this is: the registry is found, and the repo's ``origin`` matches
one of its urls (or the registry sits in this very repo: the control plane). A
``review_by`` already past is a warning, as in the registry and the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from petrova.documents.contract import CONTRACT_RELPATH, LoadedContract
from petrova.documents.registry import LoadedRegistry
from petrova.errors import REVIEW_OVERDUE, ContractSlugMismatch, Location, PetrovaError
from petrova.migrate.bootstrap import find_repo, read_origin
from petrova.sync.origin import normalise_remote


@dataclass(frozen=True)
class HookWarning:
    code: str
    message: str
    location: Location

    def __str__(self) -> str:
        return f"{self.code}: {self.location}: {self.message}"


def repo_slug(path: Path, loaded: LoadedRegistry) -> tuple[str, str] | None:
    """(slug, how it was known) of the repo whose contract ``path`` is, or None when
    unknown. Only the repo's own ``.petrova/contract.yaml`` counts: a contract kept
    elsewhere in a repo (an example, a fixture) is not that repo's."""
    try:
        repo = find_repo(path.resolve().parent)
    except PetrovaError:
        return None
    if path.resolve() != (repo.root / CONTRACT_RELPATH).resolve():
        return None
    origin = read_origin(repo)
    if origin is not None:
        wanted = normalise_remote(origin)
        for entry in loaded.registry.repos:
            if normalise_remote(entry.url) == wanted:
                return entry.slug, f"origin {origin} is {entry.slug}'s url in {loaded.path}"
    if loaded.path.resolve().parent == repo.root.resolve():
        for entry in loaded.registry.repos:
            if entry.role == "control-plane":
                return entry.slug, f"this repo holds the registry {loaded.path}"
    return None


def check_slug(path: Path, contract: LoadedContract, loaded: LoadedRegistry | None) -> None:
    """Refuse a contract whose slug is not the repo's, when the repo is known."""
    if loaded is None:
        return
    known = repo_slug(path, loaded)
    if known is None:
        return
    slug, how = known
    if contract.contract.slug != slug:
        raise ContractSlugMismatch(
            f"slug {contract.contract.slug!r} is not this repo's: {how}; the snapshot "
            f"would refuse it. Set `slug: {slug}`",
            location=contract.document.locate(("slug",)),
        )


def overdue_reviews(contract: LoadedContract, today: date) -> list[HookWarning]:
    """Cells whose ``review_by`` is already past: look again, and update the date."""
    out: list[HookWarning] = []
    for iid, cell in contract.contract.integrations.items():
        if cell.review_by is not None and date.fromisoformat(cell.review_by) < today:
            out.append(
                HookWarning(
                    REVIEW_OVERDUE,
                    f"{iid}: {cell.status} was due for review on {cell.review_by}; check it "
                    "still holds and move the date",
                    contract.document.locate(("integrations", iid, "review_by")),
                )
            )
    return out
