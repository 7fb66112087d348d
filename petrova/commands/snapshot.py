"""``petrova snapshot``: the dashboard JSON that cron writes every day."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import click

from petrova import terminal
from petrova.commands._options import DURATION, WAIT_SECONDS, FleetOptions, fleet_options
from petrova.commands._output import emit, guard_output, say
from petrova.commands._publishing import http_options, retry_reporter
from petrova.delivery.policy import RetryPolicy
from petrova.documents.catalogue import find_catalogue, load_catalogue
from petrova.errors import CheckFailed, IngestFailed, Location, OutputError
from petrova.files.lock import file_lock, lock_path_for
from petrova.fleet.snapshot import make_snapshot, snapshot_time
from petrova.ledger.rules import DEFAULT_STALE_AFTER
from petrova.render.formats import SNAPSHOT_FORMATS
from petrova.sync.workspace import manifest_path
from petrova.terminal import visible


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write here (atomically replaced) instead of stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(["json", *SNAPSHOT_FORMATS])),
    default="json",
    show_default=True,
    help="Output format.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when there are warnings (after writing).")
@click.option(
    "--stale-after",
    type=DURATION,
    default=DEFAULT_STALE_AFTER,
    help="A cell with no conclusive probe outcome for this long reads 'stale'. [default: 72h]",
)
@click.option(
    "--publish",
    metavar="URL",
    default=None,
    help="After writing, POST the JSON document here with the bearer token from "
    "--token-env; exit 1 (INGEST_FAILED) unless it answers 2xx.",
)
@http_options
@click.option(
    "--wait",
    type=WAIT_SECONDS,
    metavar="SECONDS",
    default=60.0,
    show_default=True,
    help="Seconds to wait for another run holding the lock on -o FILE; then exit 75 "
    "(LOCK_TIMEOUT).",
)
@fleet_options()
def snapshot(
    output: Path | None,
    fmt: str,
    strict: bool,
    stale_after: timedelta,
    publish: str | None,
    token_env: str,
    timeout: float,
    retries: int,
    wait: float,
    fleet: FleetOptions,
) -> None:
    """Write the fleet snapshot: one row per registry entry, in registry order.

    Migrated rows (contract_sha set) carry `integrations`, one cell per catalogue
    integration; the others leave the key out. Per-repo problems (an unreadable
    contract or ledger, a drifted pin) become warnings and the rest of the fleet
    is still reported. The document is checked against
    contracts/snapshot.schema.json before anything is written. generated_at
    honours SOURCE_DATE_EPOCH.

    With -o FILE, the whole run holds a lock beside FILE (.FILE.lock), so two
    overlapping runs (cron, CI, a person) never interleave; the second waits up
    to --wait seconds, then exits 75 (LOCK_TIMEOUT) and changes nothing.

    With --publish URL, the JSON document (whatever --format writes) is POSTed
    after it was validated and written; transient failures are retried, and on
    failure the written file stays. The token is read from the environment only.
    Unattended runs (no terminal) print nothing on success but the document;
    warnings go to stderr.
    """
    token = None
    if publish is not None:
        # The HTTP layer only for --publish: about 20 ms to import, a tenth of a
        # second over a week of daily runs that never publish from this command.
        from petrova.delivery.publish import check_url, token_from_env

        check_url(publish, option="--publish", sends_token=True)
        token = token_from_env(token_env)
    registry_file = fleet.registry
    catalogue_file = find_catalogue(fleet.catalogue_path, registry_file)
    states = fleet.states
    workspace = fleet.workspace
    guard_output(
        output,
        inputs=[
            registry_file,
            catalogue_file,
            *([manifest_path(workspace)] if workspace is not None else []),
            *_contracts(output, registry_file, workspace),
        ],
        folders=[states],
    )
    with _locked(output, wait):
        now = snapshot_time()
        made = make_snapshot(
            registry_file,
            load_catalogue(catalogue_file),
            state_dir=states,
            workspace=workspace,
            now=now,
            stale_after=stale_after,
        )
        snap = made.snapshot
        data = made.data if fmt == "json" else SNAPSHOT_FORMATS[fmt](snap)
        verb = emit(data, output)
        for slug, code, message in snap.warnings:
            say(f"warning: {code} [{slug or '-'}]: {visible(message)}")
        if output is not None and terminal.watching():
            say(
                f"{verb} {output}: {snap.totals.repos} repos, {snap.totals.migrated} migrated, "
                f"{len(snap.warnings)} warning(s)"
            )
        if publish is not None:
            from petrova.delivery.publish import request
            from petrova.net.http import scrub

            try:
                sent = request(
                    "POST",
                    publish,
                    body=made.data,
                    token=token,
                    token_env=token_env,
                    policy=RetryPolicy(retries=retries, timeout=timeout),
                    on_retry=retry_reporter(),
                )
            except IngestFailed as exc:
                kept = f"; {output} was written and stays" if output is not None else ""
                raise IngestFailed(exc.message + kept, location=exc.location) from None
            if terminal.watching():
                shown = scrub(publish, token)  # a URL may repeat the token in its query
                say(f"published to {shown}: HTTP {sent.status} ({sent.attempts} attempt(s))")
    if strict and made.snapshot.warnings:
        raise CheckFailed(f"{len(made.snapshot.warnings)} warning(s) under --strict")


def _contracts(output: Path | None, registry: Path, workspace: Path | None) -> list[Path]:
    """The contracts ``output`` could be: only worth listing when it is a contract's
    name or has several names (a hard link); a fleet of clones is many stats."""
    try:
        info = output.lstat() if output is not None else None
    except OSError:
        return []
    if output is None or info is None:
        return []
    if info.st_nlink < 2 and output.resolve().parent.name != ".petrova":
        return []
    found = [registry.parent / ".petrova" / "contract.yaml"]
    if workspace is not None:
        found += workspace.glob("*/.petrova/contract.yaml")
    return found


@contextlib.contextmanager
def _locked(output: Path | None, wait: float) -> Iterator[None]:
    """Hold the output's lock for the whole run; stdout needs none."""
    if output is None:
        yield
        return
    if not output.parent.is_dir():
        raise OutputError(
            f"directory {str(output.parent)!r} does not exist", location=Location(str(output))
        )
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(output, wait=wait))
        except OSError as exc:
            raise OutputError(
                f"cannot create the lock file {lock_path_for(output)}: {exc.strerror}",
                location=Location(str(output)),
            ) from None
        yield
