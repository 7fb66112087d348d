"""``petrova sync``: the workspace brought up to date with the fleet, by real git."""

from __future__ import annotations

import os
import shutil

import click
import orjson

from petrova.commands._options import (
    FleetOptions,
    SecondsType,
    fleet_options,
    json_option,
    shard_option,
)
from petrova.commands._output import progress_reporter, say
from petrova.documents.shard import ALL, Shard
from petrova.errors import SyncFailed, UsageError
from petrova.net.git import DEFAULT_TIMEOUT, Git, check_token_env
from petrova.net.github_app import app_token_source, registry_organisation
from petrova.sync.checkout import sync_self
from petrova.sync.run import clone_limits, default_jobs, results_json, sync_fleet


@click.command()
@click.argument("slugs", nargs=-1, metavar="[SLUG]...")
@fleet_options(state=False)
@click.option(
    "--jobs",
    type=click.IntRange(1, 256),
    default=None,
    help=f"Repos synced at once. [default: 4 per core, at most 32; here {default_jobs()}]",
)
@shard_option
@click.option(
    "--self",
    "self_",
    is_flag=True,
    help="Only bring the control-plane checkout (the registry's repo) up to date with "
    "`git pull --ff-only`; refuses local changes and divergence.",
)
@click.option(
    "--token-env",
    default="GITHUB_TOKEN",
    show_default=True,
    metavar="NAME",
    help="Environment variable holding a token for HTTPS remotes (optional; git's own "
    "credential helpers are used too).",
)
@click.option(
    "--timeout",
    type=SecondsType(1, maximum=86400),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds each git command may take before it is killed.",
)
@json_option
def sync(
    slugs: tuple[str, ...],
    fleet: FleetOptions,
    jobs: int | None,
    shard: Shard,
    self_: bool,
    token_env: str,
    timeout: float,
    as_json: bool,
) -> None:
    """Clone or update every registry repo (or SLUGs) at <workspace>/<slug>.

    Each clone is shallow, blobless and sparse: .petrova/ plus the paths the catalogue's
    probes read, at the head of the repo's default branch. The control plane's own
    contract is read from the registry's checkout, not cloned. A repo that cannot be
    synced is a warning (SYNC_FAILED, SYNC_AUTH_FAILED, SYNC_BRANCH_MISSING,
    SYNC_ORIGIN_MISMATCH, SYNC_NOT_A_CLONE, SYNC_NO_CONTRACT, SYNC_CLONE_TOO_LARGE,
    SYNC_CLONE_CORRUPT, ...) and the rest are synced; the exit is 1 when any failed.
    What each clone was synced to is kept in <workspace>/.petrova-sync.json. A clone
    may hold at most PETROVA_MAX_CLONE_FILES files (2000) and PETROVA_MAX_CLONE_BYTES
    bytes (20 MiB) outside .git.

    Quiet when all is well and there is no terminal (cron); a progress line on a terminal.
    """
    git_env = check_token_env(token_env)
    if shutil.which("git") is None:
        raise UsageError("petrova sync runs git, and there is no git on PATH; install git")
    registry = fleet.registry
    workspace = fleet.workspace
    if self_:
        if slugs or shard != ALL:
            raise UsageError("--self takes no SLUG and no --shard: it pulls only the checkout")
        app = app_token_source(None, organisation=None)
        before, after = sync_self(
            registry.resolve().parent, Git(timeout=timeout, token_env=git_env, credential=app)
        )
        if as_json:
            click.echo(orjson.dumps({"self": {"before": before, "after": after}}).decode())
        return
    if workspace is None:
        raise UsageError(
            "where should the clones go? pass --workspace DIR or set PETROVA_WORKSPACE"
        )
    limits = clone_limits(os.environ)
    loaded = fleet.load()
    organisation = registry_organisation((e.url, e.role) for e in loaded.registry.repos)
    app = app_token_source(None, organisation=organisation)  # the GitHub App, if configured
    git = Git(timeout=timeout, token_env=git_env, ceiling=workspace.resolve(), credential=app)
    report = sync_fleet(
        loaded,
        workspace=workspace,
        git=git,
        slugs=slugs,
        shard=shard,
        jobs=jobs,
        progress=progress_reporter("sync"),
        limits=limits,
    )
    for result in report.failures:
        say(f"petrova: warning: {result.record.code}: {result.slug}: {result.record.message}")
    if git.credential_failure is not None:
        say(f"petrova: warning: {git.credential_failure}")
    for notice in report.notices:
        say(f"petrova: warning: {notice.code}: {notice.slug}: {notice.message}")
    if as_json:
        click.echo(orjson.dumps(results_json(report), option=orjson.OPT_INDENT_2).decode())
    if report.failures:
        raise SyncFailed(
            f"{len(report.failures)} of {len(report.results)} repos not synced "
            "(warnings above); the others are up to date"
        )
