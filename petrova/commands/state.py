"""``petrova state``: feed the probe ledger, and promote after a human review."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from petrova.clock import machine_now
from petrova.commands._options import (
    WAIT_SECONDS,
    FleetOptions,
    fleet_options,
    json_option,
    resolve_state_dir,
)
from petrova.commands._output import emit, say
from petrova.errors import InputTooLarge, Location, ProbeInputInvalid, UsageError
from petrova.files.disk import max_input_bytes, read_input
from petrova.files.json_strict import to_json_bytes
from petrova.ledger import record as core
from petrova.models import format_timestamp
from petrova.terminal import visible

_NOW_HELP = "The clock, RFC 3339 (for tests and replays). [default: the system clock]"
_WAIT_HELP = "Seconds to wait for another run holding the ledger's lock. [default: 60]"
_FORCE_HELP = (
    "Write outcomes later than the machine's clock into the registry's own state/ "
    "(a replay belongs in a scratch --state-dir instead)."
)


def _guard(
    times: list[tuple[str, Location]], *, state_dir: Path | None, registry: Path, force: bool
) -> None:
    """The real ledger (state/ beside the registry) takes no outcome from the future."""
    real = resolve_state_dir(None, registry).resolve()
    scratch = state_dir is not None and state_dir.resolve() != real
    core.guard_real_clock(times, real_now=machine_now(), allowed=scratch or force)


@click.group()
def state() -> None:
    """Record probe outcomes in state/<slug>.yaml; promote after a human review.

    Probes demote, humans promote: `ok` becomes `degraded` after 2 non-ok outcomes in a
    row and `degraded` becomes `failing` after 3 more; `unreachable` never demotes; no
    outcome ever lifts a status, a recovery is flagged `needs_human` until `promote`.
    """


@state.command()
@click.argument("slug", required=False)
@click.argument("integration", required=False)
@click.argument("outcome", required=False)
@click.option("--detail", default=None, help="What the probe saw (at most 200 characters).")
@click.option("--evidence-sha", default=None, help="The commit or artefact the probe checked.")
@click.option("--at", default=None, help="When the probe looked, RFC 3339. [default: now]")
@click.option(
    "--from",
    "batch",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    default=None,
    help="Record many outcomes from a JSON-lines file ('-' for stdin), all or nothing.",
)
@click.option("--now", default=None, help=_NOW_HELP)
@click.option("--wait", type=WAIT_SECONDS, default=60.0, help=_WAIT_HELP)
@click.option("--force", is_flag=True, help=_FORCE_HELP)
@json_option
@fleet_options(workspace=False)
def record(
    slug: str | None,
    integration: str | None,
    outcome: str | None,
    detail: str | None,
    evidence_sha: str | None,
    at: str | None,
    batch: Path | None,
    now: str | None,
    wait: float,
    force: bool,
    as_json: bool,
    fleet: FleetOptions,
) -> None:
    """Append probe outcomes to the ledger: SLUG INTEGRATION OUTCOME, or --from FILE.

    OUTCOME is one of ok, degraded, failing, unreachable, not_applicable. A --from file
    has one JSON object per line: {"slug": ..., "integration": ..., "outcome": ...}
    and optionally "at", "detail", "evidence_sha". Every line is checked before
    anything is written; one bad line records nothing. Outcomes older than the newest
    entry of their cell are refused, and so are outcomes later than the machine's
    clock (by more than 5 minutes, whatever --now says) unless --state-dir points
    away from the registry's state/ (a scratch replay) or --force is given.
    """
    clock = core.clock(now)
    loaded = fleet.load(today=clock.date())
    single = (slug, integration, outcome)
    if batch is not None:
        if any(v is not None for v in (*single, detail, evidence_sha, at)):
            raise UsageError(
                "--from takes every outcome from the file; drop SLUG INTEGRATION OUTCOME "
                "and --at/--detail/--evidence-sha"
            )
        requests = core.read_batch(*_read_batch(batch), loaded, now=clock)
    else:
        if None in single:
            raise UsageError(
                "give SLUG INTEGRATION OUTCOME (e.g. `petrova state record kahn-hq ares ok`), "
                "or --from FILE"
            )
        fields = {
            "slug": slug,
            "integration": integration,
            "outcome": outcome,
            "at": at,
            "detail": detail,
            "evidence_sha": evidence_sha,
        }
        requests = [core.make_request(loaded, fields, now=clock)]
    _guard(
        [(r.entry.at, r.location) for r in requests],
        state_dir=fleet.state_dir,
        registry=loaded.path,
        force=force,
    )
    for request in requests:
        if request.legacy_id is not None:
            say(f"note: {request.legacy_id!r} is the old name of {request.integration!r}")
    result = core.record(
        loaded, resolve_state_dir(fleet.state_dir, loaded.path), requests, wait=wait
    )
    _report(result, as_json=as_json)
    if not requests:
        say("nothing to record: the file has no outcomes")


@state.command()
@click.argument("slug")
@click.argument("integration")
@click.option("--by", required=True, help="Who decided: human:NAME.")
@click.option("--reason", required=True, help="Why the integration is ok again.")
@click.option(
    "--override",
    is_flag=True,
    help="Lift the dot although the probes' newest outcome is not ok; recorded and shown "
    "as an override, and green time starts only at the next ok outcome.",
)
@click.option("--now", default=None, help=_NOW_HELP)
@click.option("--wait", type=WAIT_SECONDS, default=60.0, help=_WAIT_HELP)
@click.option("--force", is_flag=True, help=_FORCE_HELP)
@json_option
@fleet_options(workspace=False)
def promote(
    slug: str,
    integration: str,
    by: str,
    reason: str,
    override: bool,
    now: str | None,
    wait: float,
    force: bool,
    as_json: bool,
    fleet: FleetOptions,
) -> None:
    """Set an observed status back to ok: the only way up, recorded with who and why.

    Appended to state/promotions/SLUG.yaml, the humans' file (the daily job never
    writes it; commit it as yourself or open a PR), and merged into the ledger by
    every read. Clears needs_human and the demotion streak. Refused for a cell that
    is pending, already ok with nothing waiting for a human, or whose newest
    conclusive outcome is not ok (PROMOTE_NOT_RECOVERED; --override records an
    override instead).
    """
    clock = core.clock(now)
    loaded = fleet.load(today=clock.date())
    _guard(
        [(format_timestamp(clock), Location(field="--now"))],
        state_dir=fleet.state_dir,
        registry=loaded.path,
        force=force,
    )
    result = core.promote(
        loaded,
        resolve_state_dir(fleet.state_dir, loaded.path),
        slug=slug,
        integration=integration,
        by=by,
        reason=reason,
        now=clock,
        wait=wait,
        override=override,
    )
    _report(result, as_json=as_json)
    for written in result.written:
        say(
            f"commit it as yourself: git add {written.path} && git commit -m "
            f"'state: promote {slug} {integration}' (then push, or open a PR)"
        )


def _read_batch(batch: Path) -> tuple[bytes, str]:
    if str(batch) == "-":
        limit = max_input_bytes()
        data = sys.stdin.buffer.read(limit + 1)  # bounded, like every file petrova reads
        if len(data) > limit:
            raise InputTooLarge(
                f"standard input is over the {limit}-byte limit "
                "(raise it with PETROVA_MAX_INPUT_BYTES)",
                location=Location("<stdin>"),
            )
        return data, "<stdin>"
    try:
        return read_input(batch), str(batch)
    except OSError as exc:
        raise ProbeInputInvalid(
            f"cannot read the file: {exc.strerror}", location=Location(str(batch))
        ) from None


def _report(result: core.Recorded, *, as_json: bool) -> None:
    if as_json:
        emit(to_json_bytes([core.change_as_dict(c) for c in result.changes]), None)
    else:
        for change in result.changes:
            click.echo(visible(core.describe(change)))
    for written in result.written:
        say(f"{written.verb} {written.path}")
