"""``petrova registry fill-applicability``: roll a new catalogue integration out.

When the catalogue gains an integration, migrated entries lack applicability for it;
that is a warning (``APPLICABILITY_MISSING``) and the cell shows ``pending``, so the
fleet keeps running. This fills the missing keys, for the repos an operator names or
for all migrated ones, as a splice like ``registry pin``: every byte outside the lines
that change stays as it was, and the result is loaded again and compared, entry by
entry, with what was meant before it may replace the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from petrova.documents.registry import LoadedRegistry
from petrova.errors import Location, PinEditFailed, UsageError
from petrova.migrate.pin import load_edited, splice_entries
from petrova.models import Applicability, ApplicabilityDetail


@dataclass(frozen=True)
class FillPlan:
    #: slug -> the keys added, in catalogue order; only entries that change.
    added: dict[str, dict[str, Applicability]]
    before: bytes
    after: bytes

    @property
    def changed(self) -> bool:
        return bool(self.added)


def applicability_of(value: str, *, reason: str | None, review_by: str | None) -> Applicability:
    """What to fill in: a bare value, or a detail when paperwork is given (required for
    ``not_applicable``, as a contract requires it)."""
    if value == "not_applicable" and (reason is None or review_by is None):
        raise UsageError(
            "--value not_applicable needs --reason TEXT and --review-by YYYY-MM-DD: "
            "say why, and when to look again"
        )
    if reason is None and review_by is None:
        return value  # type: ignore[return-value]  # click.Choice checked it
    try:
        return ApplicabilityDetail.model_validate(
            {"value": value, "reason": reason, "review_by": review_by}
        )
    except ValueError:
        raise UsageError(
            f"--review-by {review_by!r} is not a date YYYY-MM-DD",
            location=Location(field="--review-by"),
        ) from None


def plan_fill(
    loaded: LoadedRegistry,
    raw: bytes,
    *,
    slugs: Sequence[str],
    every: bool,
    value: Applicability,
    only: Sequence[str] = (),
) -> FillPlan:
    """Which entries gain which keys. ``slugs`` are filled whether migrated or not;
    ``every`` takes the migrated entries. ``only`` limits the integration ids."""
    catalogue = loaded.catalogue
    if bool(slugs) == every:
        raise UsageError("name the repos to fill (SLUG...), or pass --all for every migrated one")
    for iid in only:
        if iid not in catalogue.ids:
            raise UsageError(
                f"{iid!r} is not an integration id in the catalogue; "
                f"valid: {', '.join(catalogue.ids)}",
                location=Location(field="--integration"),
            )
    entries = (
        [loaded.require(slug) for slug in dict.fromkeys(slugs)]
        if slugs
        else [r for r in loaded.registry.repos if r.migrated]
    )
    ids = [i for i in catalogue.ids if not only or i in only]
    added: dict[str, dict[str, Applicability]] = {}
    changes: dict[int, tuple[str | None, dict[str, Applicability]]] = {}
    for entry in entries:
        missing = {i: value for i in ids if i not in entry.integrations_applicability}
        if missing:
            added[entry.slug] = missing
            changes[loaded.entry_index(entry.slug)] = (None, missing)
    after = splice_entries(raw, changes) if changes else raw
    return FillPlan(added, raw, after)


def verify_fill(plan: FillPlan, loaded: LoadedRegistry) -> None:
    """Load the edited text as the registry it must be, or refuse to write it."""
    again = load_edited(plan.after, loaded)
    want = [
        repo.model_copy(
            update={
                "integrations_applicability": {
                    **repo.integrations_applicability,
                    **plan.added[repo.slug],
                }
            }
        )
        if repo.slug in plan.added
        else repo
        for repo in loaded.registry.repos
    ]
    if list(again.registry.repos) != want:
        raise PinEditFailed(
            "the edited registry does not say what the fill meant; nothing was written "
            "(this is a bug: please report it)",
            location=Location(str(loaded.path)),
        )
