"""``petrova registry …``: check, list and show the fleet registry."""

from __future__ import annotations

import contextlib
import difflib
from pathlib import Path
from typing import Any

import click

from petrova.commands._options import FleetOptions, fleet_options, json_option
from petrova.commands._output import emit, say
from petrova.documents.catalogue import Catalogue
from petrova.documents.contract import LoadedContract, load_contract, load_contract_bytes
from petrova.documents.registry import load_registry
from petrova.errors import (
    ErrorsShown,
    Location,
    PetrovaError,
    PinStale,
    RegistryChanged,
    UsageError,
)
from petrova.files.disk import read_input, write_atomic
from petrova.files.json_strict import to_json_bytes
from petrova.files.lock import file_lock
from petrova.fleet.gather import contract_location
from petrova.migrate.fill import applicability_of, plan_fill, verify_fill
from petrova.migrate.merged import read_merged
from petrova.migrate.pin import plan_pin, verify
from petrova.models import RepoEntry, applicability_value
from petrova.render.formats import text_table
from petrova.terminal import visible


@click.group()
def registry() -> None:
    """Check, list, show and pin entries of registry.yaml."""


@registry.command()
@fleet_options(state=False, workspace=False)
@json_option
def validate(fleet: FleetOptions, as_json: bool) -> None:
    """Check the registry against the catalogue; exit 2 with every problem at its line.

    Soft problems (an overdue review_by, a renamed integration id) are warnings on
    stderr and do not fail the check.
    """
    try:
        loaded = fleet.load()
    except PetrovaError as exc:
        if not as_json:
            raise
        emit(to_json_bytes({"valid": False, "error": exc.as_dict(), "warnings": []}), None)
        raise ErrorsShown([exc]) from None
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
@fleet_options(state=False, workspace=False)
@json_option
def list_(fleet: FleetOptions, as_json: bool) -> None:
    """List the governed repos in registry order."""
    loaded = fleet.load()
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


@registry.command()
@click.argument("slug")
@fleet_options(state=False, workspace=False)
@json_option
def show(slug: str, fleet: FleetOptions, as_json: bool) -> None:
    """Show one registry entry, applicability per catalogue integration included."""
    loaded = fleet.load()
    entry = loaded.require(slug)
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
    click.echo(visible("\n".join(lines), keep_lines=True))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


@registry.command()
@click.argument("slug")
@click.option(
    "--contract",
    "contract_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Pin this file as it is on disk, without checking that it was merged "
    "(special cases only).",
)
@click.option(
    "--repo",
    "repo_path",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="A clone of the consumer repo: pin the contract at its origin/<default_branch>.",
)
@click.option("--check", is_flag=True, help="Exit 1 when the pin is stale; write nothing (CI).")
@click.option("--dry-run", is_flag=True, help="Print the change as a diff; write nothing.")
@fleet_options(state=False)
def pin(
    slug: str,
    contract_path: Path | None,
    repo_path: Path | None,
    check: bool,
    dry_run: bool,
    fleet: FleetOptions,
) -> None:
    """Pin a merged contract: set SLUG's contract_sha and fill its applicability.

    The contract is read from git at the consumer's default branch on its remote,
    never from a working tree: from the synced clone <workspace>/<slug> (its
    origin/<default_branch>, else its HEAD, which `petrova sync` leaves there), or
    from --repo CLONE (its origin/<default_branch>; `git fetch` first). The commit
    read is named on stderr. The control plane's own contract is the one beside the
    registry. --contract PATH pins a file as it is, without checking merge state.

    contract_sha becomes what `sha256sum CONTRACT | cut -c1-12` prints; applicability
    keys the entry lacks come from the contract (not_applicable keeps its reason and
    review date, the rest become required). A wired integration that the registry
    says is not applicable is refused. The edit is surgical: every byte of
    registry.yaml outside that entry's changed lines stays as it was.
    """
    path = fleet.registry
    catalogue = fleet.catalogue()
    writing = not (check or dry_run)
    with file_lock(path) if writing and path.is_file() else contextlib.nullcontext():
        loaded = load_registry(path, catalogue)
        raw = read_input(path, display=str(path))
        entry = loaded.require(slug)
        contract = _pin_source(
            entry,
            catalogue,
            contract_path=contract_path,
            repo_path=repo_path,
            registry_path=loaded.path,
            workspace=fleet.workspace,
        )
        plan = plan_pin(loaded, raw, slug, contract)
        index = loaded.entry_index(slug)
        spot = loaded.document.locate(("repos", index, "contract_sha"))
        added = ", ".join(plan.added)
        change = f"contract_sha {plan.old_sha or '(none)'} -> {plan.sha}" + (
            f"; applicability added: {added}" if added else ""
        )
        if check:
            if plan.stale:
                raise PinStale(
                    f"{slug}'s pin is stale ({change}); run `petrova registry pin {slug}` "
                    "after the contract's PR merges",
                    location=spot,
                )
            say(f"{slug}: pinned contract_sha {plan.sha} is up to date")
            return
        if dry_run:
            _show_diff(path, plan.before, plan.after)
            say(f"dry run: {slug}: {change if plan.stale else 'unchanged'} (nothing written)")
            return
        if not plan.stale:
            say(f"identical {path}: {slug} already pins {plan.sha}; unchanged")
            return
        verify(plan, loaded)
        verb = _write_if_unchanged(path, raw, plan.after, "pinning")
    say(f"{verb} {path}: {slug}: {change}")


def _pin_source(
    entry: RepoEntry,
    catalogue: Catalogue,
    *,
    contract_path: Path | None,
    repo_path: Path | None,
    registry_path: Path,
    workspace: Path | None,
) -> LoadedContract:
    """The contract to pin, read where the options say, and a line saying what was read."""
    slug = entry.slug
    if contract_path is not None and repo_path is not None:
        raise UsageError("--contract and --repo both name the contract: give one")
    if contract_path is not None:
        say(
            f"note: --contract: pinning {contract_path} as it is on disk; merge state is "
            "not checked (pin the merged contract with --repo CLONE or the workspace clone)"
        )
        return load_contract(contract_path, catalogue)
    if repo_path is not None:
        merged = read_merged(
            repo_path, default_branch=entry.default_branch, head_is_default=False, how="--repo"
        )
    else:
        where = contract_location(entry, registry_path=registry_path, workspace=workspace)
        if where is None:
            raise UsageError(
                f"where is {slug}'s merged contract? pass --repo CLONE (a clone of the "
                "consumer repo, fetched), or --workspace (or PETROVA_WORKSPACE) with the "
                "synced clone at <workspace>/<slug>"
            )
        if entry.role == "control-plane":
            say(f"{slug}: the control plane's own contract, {where}, beside the registry")
            return load_contract(where, catalogue)
        merged = read_merged(
            where.parent.parent,
            default_branch=entry.default_branch,
            head_is_default=True,
            how="the workspace clone",
        )
    say(f"{slug}: read {merged.ref} at commit {merged.commit} in {merged.clone}")
    return load_contract_bytes(merged.raw, catalogue, display=merged.display)


@registry.command("fill-applicability")
@click.argument("slugs", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every migrated repo that lacks a key.")
@click.option(
    "--value",
    required=True,
    type=click.Choice(["required", "optional", "not_applicable"]),
    help="The applicability to fill in.",
)
@click.option(
    "--integration",
    "only",
    multiple=True,
    help="Fill only this integration id (repeatable). [default: every missing one]",
)
@click.option("--reason", default=None, help="Why (required with --value not_applicable).")
@click.option(
    "--review-by", default=None, help="When to look again, YYYY-MM-DD (with not_applicable)."
)
@click.option("--dry-run", is_flag=True, help="Print the change as a diff; write nothing.")
@fleet_options(state=False, workspace=False)
def fill_applicability(
    slugs: tuple[str, ...],
    every: bool,
    value: str,
    only: tuple[str, ...],
    reason: str | None,
    review_by: str | None,
    dry_run: bool,
    fleet: FleetOptions,
) -> None:
    """Fill in missing applicability keys for SLUG... (or --all migrated repos).

    When the catalogue gains an integration, migrated entries lack applicability for
    it: a warning (APPLICABILITY_MISSING) and a pending cell, never a stopped fleet.
    This adds the missing keys with --value, touching nothing else in registry.yaml
    (the same surgical splice as `registry pin`). Keys already there are never changed.
    """
    path = fleet.registry
    catalogue = fleet.catalogue()
    item = applicability_of(value, reason=reason, review_by=review_by)
    with file_lock(path) if not dry_run and path.is_file() else contextlib.nullcontext():
        loaded = load_registry(path, catalogue)
        raw = read_input(path, display=str(path))
        plan = plan_fill(loaded, raw, slugs=slugs, every=every, value=item, only=only)
        summary = "; ".join(f"{s}: {', '.join(keys)}" for s, keys in plan.added.items())
        if dry_run:
            _show_diff(path, plan.before, plan.after)
            say(f"dry run: {summary or 'nothing missing'} (nothing written)")
            return
        if not plan.changed:
            say(f"identical {path}: no applicability missing; unchanged")
            return
        verify_fill(plan, loaded)
        verb = _write_if_unchanged(path, raw, plan.after, "filling")
    say(f"{verb} {path}: {value} added for {summary}")


def _show_diff(path: Path, before: bytes, after: bytes) -> None:
    """``--dry-run``: the edit as a unified diff on stdout."""
    diff = difflib.unified_diff(
        before.decode("utf-8", "replace").splitlines(keepends=True),
        after.decode("utf-8", "replace").splitlines(keepends=True),
        f"a/{path.name}",
        f"b/{path.name}",
    )
    click.echo("".join(diff), nl=False)


def _write_if_unchanged(path: Path, raw: bytes, after: bytes, doing: str) -> str:
    """Write the edited registry, unless someone changed it since it was read."""
    if read_input(path, display=str(path)) != raw:
        raise RegistryChanged(
            f"the registry changed while {doing}; nothing was written, run it again",
            location=Location(str(path)),
        )
    return write_atomic(path, after)
