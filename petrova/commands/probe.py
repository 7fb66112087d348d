"""``petrova probe``: observe every wired integration and feed the ledger."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from petrova import terminal
from petrova.commands._options import (
    WAIT_SECONDS,
    FleetOptions,
    SecondsType,
    fleet_options,
    json_option,
    shard_option,
)
from petrova.commands._output import emit, say
from petrova.documents.shard import Shard
from petrova.errors import ProbesIncomplete
from petrova.files.disk import make_folder
from petrova.files.json_strict import to_json_bytes
from petrova.files.lock import file_lock

#: ``probe --record``'s run-wide lock, in the state folder (``.probe.lock``).
RUN_LOCK_NAME = "probe"

#: Names shown in the one-line summary before "and N more".
_SHOWN = 10


@click.command()
@click.argument("slugs", nargs=-1, metavar="[SLUG...]")
@click.option("--integration", default=None, help="Probe only this integration id.")
@click.option("--record", is_flag=True, help="Append the outcomes to the ledgers (state/).")
@click.option("--dry-run", is_flag=True, help="List what would be probed and why the rest is not.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1, max=256),
    default=16,
    show_default=True,
    help="Probes at a time.",
)
@click.option(
    "--timeout",
    type=SecondsType(0.1, maximum=600),
    default=10.0,
    show_default=True,
    help="Seconds one request may take in all (connect, headers and body).",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where GitHub's ETags are kept. [default: $XDG_CACHE_HOME/petrova, else ~/.cache/petrova]",
)
@click.option(
    "--wait",
    type=WAIT_SECONDS,
    default=60.0,
    help="With --record: seconds to wait for another run holding the run's or a ledger's lock.",
)
@click.option(
    "--window",
    type=SecondsType(0, maximum=24 * 366, unit="hours"),
    default=12.0,
    show_default=True,
    envvar="PETROVA_PROBE_WINDOW_HOURS",
    metavar="HOURS",
    help="With --record: a cell that already has an outcome less than HOURS old gets no "
    "second one (0: record every outcome). [env: PETROVA_PROBE_WINDOW_HOURS]",
)
@json_option
@shard_option
@fleet_options()
def probe(
    slugs: tuple[str, ...],
    integration: str | None,
    record: bool,
    dry_run: bool,
    jobs: int,
    timeout: float,
    cache_dir: Path | None,
    wait: float,
    window: float,
    as_json: bool,
    shard: Shard,
    fleet: FleetOptions,
) -> None:
    """Probe every wired integration of every migrated repo (or of SLUG...).

    Without --record, prints one JSON line per outcome: exactly what
    `petrova state record --from -` takes. With --record, appends them to the ledgers
    (all lines checked first, under the ledgers' locks). Not applicable, pending and
    undeclared cells are not probed. Exit 0 when every probe looked, 1 when some could
    not (their outcomes are `unreachable`, or the GitHub rate limit left them for the
    next run), 2 on bad usage. With --record the whole run holds one lock
    (state/.probe.lock; another run waits up to --wait seconds, then exit 75), and a
    cell observed less than --window hours ago gets no second outcome. See
    docs/PROBES.md.
    """
    with contextlib.ExitStack() as stack:
        if record and not dry_run:
            stack.enter_context(_run_lock(fleet.states, wait))
        _probe(
            slugs,
            integration,
            record=record,
            dry_run=dry_run,
            jobs=jobs,
            timeout=timeout,
            cache_dir=cache_dir,
            wait=wait,
            window=window,
            as_json=as_json,
            shard=shard,
            fleet=fleet,
        )


def _run_lock(states: Path, wait: float) -> contextlib.AbstractContextManager[None]:
    """One ``probe --record`` at a time per state folder: two overlapping runs would
    each observe the same moment."""
    make_folder(states)
    return file_lock(states / RUN_LOCK_NAME, wait=wait)


def _probe(
    slugs: tuple[str, ...],
    integration: str | None,
    *,
    record: bool,
    dry_run: bool,
    jobs: int,
    timeout: float,
    cache_dir: Path | None,
    wait: float,
    window: float,
    as_json: bool,
    shard: Shard,
    fleet: FleetOptions,
) -> None:
    from petrova import clock
    from petrova.ledger import record as core
    from petrova.probe.plan import make_plan
    from petrova.probe.run import run_plan

    now = clock.now()
    loaded = fleet.load(today=now.date())
    states = fleet.states
    workspace = fleet.workspace
    plan = make_plan(
        loaded,
        workspace=workspace,
        state_dir=states,
        slugs=slugs,
        integration=integration,
        shard=shard,
    )
    if dry_run:
        _dry_run(plan, as_json=as_json)
        return
    environ = _github_environ(loaded)
    result = run_plan(
        plan,
        catalogue_probe=lambda iid: loaded.catalogue.get(iid).probe,
        jobs=jobs,
        timeout=timeout,
        cache_dir=cache_dir if cache_dir is not None else _default_cache_dir(),
        environ=environ,
        shares=shard.count,
    )
    failure = getattr(environ, "failure", None)
    if failure is not None:
        say(f"petrova: warning: {failure}")
    lines = b"".join(json.dumps(o).encode() + b"\n" for o in result.outcomes)
    changes: list[dict[str, Any]] = []
    already: tuple[Any, ...] = ()
    if record:
        requests = core.read_batch(lines, "<probe>", loaded, now=clock.now())
        recorded = core.record(
            loaded, states, requests, wait=wait, window=timedelta(hours=window) or None
        )
        changes = [core.change_as_dict(c) for c in recorded.changes]
        already = recorded.already
        if not as_json and terminal.watching():
            for change in recorded.changes:
                click.echo(core.describe(change))
        if terminal.watching():
            for seen in already:
                say(
                    f"not recorded: {seen.slug} {seen.integration}: already observed at "
                    f"{seen.seen_at} (within --window {window:g}h)"
                )
    blind = [s for s in plan.skipped if s.blind]
    if as_json:
        document = {
            "outcomes": result.outcomes,
            "recorded": changes if record else None,
            "already_observed": [
                {"slug": a.slug, "integration": a.integration, "seen_at": a.seen_at}
                for a in already
            ]
            if record
            else None,
            "left_for_next_run": [cell.as_dict() for cell in result.left],
            "not_probed": [
                {"slug": s.slug, "integration": s.integration, "reason": s.reason}
                for s in plan.skipped
            ],
            "github": {
                "requests": result.github_requests,
                "not_modified": result.github_not_modified,
                "rate_limit_remaining": result.rate_remaining,
            },
        }
        emit(to_json_bytes(document), None)
    elif not record:
        emit(lines, None)
    watching = terminal.watching()
    if watching or result.left:
        for cell in result.left:
            say(f"left for the next run: {cell.slug} {cell.integration} ({cell.reason})")
    if watching:
        for outcome in result.unreachable:
            say(f"unreachable: {outcome['slug']} {outcome['integration']}: {outcome['detail']}")
        for skipped in blind:
            say(f"not probed: {skipped.slug}: {skipped.reason}")
    if result.unreachable or result.left or blind:
        raise ProbesIncomplete(_summary(result.unreachable, result.left, blind))


def _summary(unreachable: list[dict[str, str]], left: list[Any], blind: list[Any]) -> str:
    parts = []
    names = [f"{o['slug']} {o['integration']}" for o in unreachable]
    names += [f"{c.slug} {c.integration}" for c in left]
    names += [f"{s.slug}" for s in blind]
    if unreachable:
        parts.append(f"{len(unreachable)} cell(s) unreachable")
    if left:
        parts.append(f"{len(left)} left for the next run by the GitHub rate limit")
    if blind:
        parts.append(f"{len(blind)} repo(s) whose contract could not be read")
    shown = ", ".join(names[:_SHOWN]) + (
        f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    )
    return f"{'; '.join(parts)}: {shown}"


def _dry_run(plan: Any, *, as_json: bool) -> None:
    if as_json:
        document = {
            "probe": [
                {
                    "slug": c.slug,
                    "integration": c.integration,
                    "evidence_sha": c.evidence_sha,
                    "last_verified_at": c.last_verified_at,
                }
                for c in plan.cells
            ],
            "not_probed": [
                {"slug": s.slug, "integration": s.integration, "reason": s.reason}
                for s in plan.skipped
            ],
        }
        emit(to_json_bytes(document), None)
        return
    for c in plan.cells:
        seen = c.last_verified_at or "never"
        click.echo(f"probe {c.slug} {c.integration} (last verified {seen})")
    for s in plan.skipped:
        click.echo(f"skip  {s.slug}{' ' + s.integration if s.integration else ''}: {s.reason}")


def _github_environ(loaded: Any) -> Mapping[str, str]:
    """The environment the probes read, where ``GITHUB_TOKEN`` is the GitHub App's
    installation token when the App is configured (``PETROVA_GITHUB_APP_ID``)."""
    from petrova.net.github_app import CredentialEnviron, github_credential, registry_organisation
    from petrova.net.trust import GITHUB_TOKEN_VARS

    organisation = registry_organisation((e.url, e.role) for e in loaded.registry.repos)
    credential = github_credential(os.environ, organisation=organisation)
    if credential is None or credential.source != "app":
        return os.environ
    return CredentialEnviron(os.environ, credential, GITHUB_TOKEN_VARS)


def _default_cache_dir() -> Path | None:
    from petrova.probe.github import default_cache_dir

    return default_cache_dir()
