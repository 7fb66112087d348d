"""``petrova contracts …``: the artefacts other teams build against."""

from __future__ import annotations

from pathlib import Path

import click

from petrova.commands._options import json_option
from petrova.commands._output import emit, say
from petrova.commands._publishing import http_options, retry_reporter
from petrova.delivery.endpoint import (
    FIXTURE_RELPATH,
    default_fixture_path,
    lossy_error,
    verify_endpoint,
)
from petrova.delivery.policy import RetryPolicy
from petrova.delivery.publish import check_url, token_from_env
from petrova.errors import CheckFailed
from petrova.files.json_strict import to_json_bytes
from petrova.fleet.artefacts import write_artefacts


@click.group()
def contracts() -> None:
    """Generated schemas and fixtures for the consumers of the snapshot."""


@contracts.command()
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path(),
    show_default=True,
    help="The petrova project root.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 when a checked-in artefact differs from the code.",
)
def generate(root: Path, check: bool) -> None:
    """Regenerate contracts/*.schema.json, snapshot.zod.ts and fixtures/*.json from the code.

    The schemas come from the models, specialised by the catalogue; snapshot.zod.ts is
    the snapshot schema as zod 4 for the dashboards, and contract.consumer.schema.json the
    catalogue for validators with strict defaults (docs/CONSUMERS.md). The fixtures are
    snapshots of contracts/fixtures/spine/ and contracts/fixtures/all-statuses/, taken
    at a fixed time so they are byte-for-byte reproducible.
    """
    results = write_artefacts(root, check=check)
    for path, verb in results:
        say(f"{verb:>9}  {path}")
    bad = [p for p, v in results if v in ("stale", "missing")]
    if bad:
        raise CheckFailed(
            f"{len(bad)} generated artefact(s) differ from the code: "
            + ", ".join(str(p) for p in bad)
            + "; run `make artefacts` and commit the result"
        )


@contracts.command("verify-endpoint")
@click.argument("url")
@click.option(
    "--fixture",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=f"The snapshot to post. [default: {FIXTURE_RELPATH}, else the copy petrova ships]",
)
@click.option(
    "--readback",
    metavar="URL",
    default=None,
    help="GET the stored document here and compare it, instead of the POST's answer.",
)
@http_options
@json_option
def verify_endpoint_command(
    url: str,
    fixture: Path | None,
    readback: str | None,
    token_env: str,
    timeout: float,
    retries: int,
    as_json: bool,
) -> None:
    """POST a snapshot fixture to URL and check the round trip (the runbook's hop check).

    The default fixture has every cell status, needs_human, set and null optional
    fields, and both row shapes (with and without `integrations`). Requires a 2xx
    answer, then compares what comes back (the POST's answer, or a GET of
    --readback) with the fixture, and reports every lost or changed `integrations`
    value, and any row that gained `integrations`, by its JSON pointer. Exit 0
    only when all of them came back unchanged; 1 when the endpoint failed or lost
    anything; 2 for bad input.
    The bearer token is sent when the --token-env variable is set.
    """
    token = token_from_env(token_env, required=False)
    check_url(url, option="URL", sends_token=token is not None)
    if readback is not None:
        check_url(readback, option="--readback", sends_token=token is not None)
    report = verify_endpoint(
        url,
        fixture=fixture if fixture is not None else default_fixture_path(),
        readback=readback,
        token=token,
        token_env=token_env,
        policy=RetryPolicy(retries=retries, timeout=timeout),
        on_retry=retry_reporter(),
    )
    if as_json:
        emit(to_json_bytes(report.as_dict(token)), None)
    elif report.ok:
        source = f"GET {report.readback} ({report.readback_status})" if report.readback else "echo"
        click.echo(
            f"ok: POST {report.url} answered {report.status}; all {report.checked} "
            f"integrations value(s) came back unchanged ({source})"
        )
    if not report.ok:
        raise lossy_error(report, token)
