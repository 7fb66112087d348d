"""``petrova registry …``: check, list and show the fleet registry."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import click

from petrova.commands._common import (
    catalogue_option,
    emit,
    json_option,
    open_registry,
    registry_option,
    say,
)
from petrova.errors import PetrovaError, RepoNotInRegistry
from petrova.models import RepoEntry, applicability_value
from petrova.output import text_table, to_json_bytes
from petrova.registry import LoadedRegistry


@click.group()
def registry() -> None:
    """Check, list, show and pin entries of registry.yaml."""


@registry.command()
@registry_option
@catalogue_option
@json_option
def validate(registry_path: Path | None, catalogue_path: Path | None, as_json: bool) -> None:
    """Check the registry against the catalogue; exit 2 with every problem at its line.

    Soft problems (an overdue review_by, a renamed integration id) are warnings on
    stderr and do not fail the check.
    """
    try:
        loaded = open_registry(registry_path, catalogue_path)
    except PetrovaError as exc:
        if not as_json:
            raise
        emit(to_json_bytes({"valid": False, "error": exc.as_dict(), "warnings": []}), None)
        raise click.exceptions.Exit(exc.exit_code) from None
    repos = loaded.registry.repos
    warnings = [
        {"slug": f.slug, "code": f.code, "message": f.message, "location": str(f.location)}
        for f in loaded.findings
    ]
    if as_json:
        emit(
            to_json_bytes(
                {
                    "valid": True,
                    "path": str(loaded.path),
                    "catalogue": loaded.catalogue.path,
                    "repos": len(repos),
                    "migrated": sum(1 for r in repos if r.migrated),
                    "warnings": warnings,
                }
            ),
            None,
        )
        return
    for finding in loaded.findings:
        say(f"warning: {finding.code}: {finding.location}: {finding.message}")
    click.echo(
        f"{loaded.path}: valid: {_count(len(repos), 'repo')}, "
        f"{sum(1 for r in repos if r.migrated)} migrated, {_count(len(warnings), 'warning')}"
    )


def _entry_json(entry: RepoEntry) -> dict[str, Any]:
    data = entry.model_dump(mode="json")
    data["migrated"] = entry.migrated
    return data


@registry.command("list")
@registry_option
@catalogue_option
@json_option
def list_(registry_path: Path | None, catalogue_path: Path | None, as_json: bool) -> None:
    """List the governed repos in registry order."""
    loaded = open_registry(registry_path, catalogue_path)
    if as_json:
        emit(to_json_bytes([_entry_json(r) for r in loaded.registry.repos]), None)
        return
    rows = [
        [r.slug, str(r.tier), r.role, r.profile, r.contract_sha or "-", r.url]
        for r in loaded.registry.repos
    ]
    click.echo(
        text_table(["slug", "tier", "role", "profile", "contract_sha", "url"], rows), nl=False
    )


def find_entry(loaded: LoadedRegistry, slug: str) -> RepoEntry:
    """The entry for ``slug``, or REPO_NOT_IN_REGISTRY naming the closest slugs."""
    entry = loaded.entry(slug)
    if entry is None:
        slugs = [r.slug for r in loaded.registry.repos]
        close = difflib.get_close_matches(slug, slugs, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(slugs)}"
        raise RepoNotInRegistry(f"no repo {slug!r} in {loaded.path}{hint}")
    return entry


@registry.command()
@click.argument("slug")
@registry_option
@catalogue_option
@json_option
def show(slug: str, registry_path: Path | None, catalogue_path: Path | None, as_json: bool) -> None:
    """Show one registry entry, applicability per catalogue integration included."""
    loaded = open_registry(registry_path, catalogue_path)
    entry = find_entry(loaded, slug)
    if as_json:
        emit(to_json_bytes(_entry_json(entry)), None)
        return
    lines = [
        f"slug:            {entry.slug}",
        f"url:             {entry.url}",
        f"role:            {entry.role}",
        f"profile:         {entry.profile}",
        f"tier:            {entry.tier}",
        f"default_branch:  {entry.default_branch}",
        f"contract_sha:    {entry.contract_sha or '- (not migrated)'}",
        f"fleets_allowed:  {', '.join(entry.fleets_allowed) or '- (human-only writes)'}",
        f"committers:      {', '.join(entry.contract_committers)}",
    ]
    if entry.added:
        lines.append(f"added:           {entry.added}")
    lines.append("applicability:")
    for integration in loaded.catalogue.integrations:
        item = entry.integrations_applicability.get(integration.id)
        text: str = applicability_value(item) if item is not None else "-"
        if item is not None and not isinstance(item, str):
            extras = [
                x
                for x in (item.reason, f"review by {item.review_by}" if item.review_by else None)
                if x
            ]
            if extras:
                text += f" ({'; '.join(extras)})"
        lines.append(f"  {integration.id:<14} {text}   [{integration.title}]")
    if entry.notes:
        lines.append(f"notes:           {entry.notes}")
    click.echo("\n".join(lines))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
