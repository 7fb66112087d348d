"""``petrova notify``: issues, the tracking issue, chat and pin PRs for what needs a human."""

from __future__ import annotations

import json
import os

import click

from petrova import clock, terminal
from petrova.commands._options import WAIT_SECONDS, FleetOptions, fleet_options, shard_option
from petrova.commands._output import emit, say
from petrova.documents.shard import Shard
from petrova.errors import Location, NotifyIncomplete, UsageError
from petrova.net.http import Secret, is_token_text
from petrova.notify import chat
from petrova.notify.run import (
    DEFAULT_REMINDERS,
    TOKEN_ENV,
    NotifyPlan,
    Wiring,
    github_wiring,
    run_notify,
)

REMIND_ENV = "PETROVA_NOTIFY_REMIND"


def _reminders(text: str) -> tuple[int, ...]:
    try:
        days = tuple(sorted({int(part) for part in text.replace(" ", "").split(",") if part}))
    except ValueError:
        days = ()
    if not days or any(d < 1 or d > 3650 for d in days):
        raise UsageError(
            f"{text!r} is not a list of days such as 3,7,14,28 (whole days from 1 to 3650)",
            location=Location(field="--remind-after"),
        )
    return days


def _token(fleet: FleetOptions) -> Secret | None:
    """The GitHub credential: the GitHub App's installation token when the App is
    configured (``PETROVA_GITHUB_APP_ID``, SPEC §14), else ``GITHUB_TOKEN``."""
    from petrova.net.github_app import APP_ID_ENV, github_credential, registry_organisation

    if os.environ.get(APP_ID_ENV, "").strip():
        from petrova.documents.registry import load_registry

        loaded = load_registry(fleet.registry, fleet.catalogue(), today=clock.now().date())
        organisation = registry_organisation((e.url, e.role) for e in loaded.registry.repos)
        credential = github_credential(os.environ, organisation=organisation)
        return None if credential is None else credential.secret()
    value = os.environ.get(TOKEN_ENV, "").strip()
    if not value:
        return None
    if not is_token_text(value):
        raise UsageError(
            f"the value of {TOKEN_ENV} is not a usable token (visible ASCII, no spaces)",
            location=Location(field=TOKEN_ENV),
        )
    return Secret(value)


@click.command()
@click.option(
    "--dry-run", is_flag=True, help="Say what would be opened, edited, sent; send nothing."
)
@click.option("--json", "as_json", is_flag=True, help="Print what was (or would be) done as JSON.")
@click.option(
    "--issues-repo",
    metavar="OWNER/NAME",
    envvar="PETROVA_ISSUES_REPO",
    show_envvar=True,
    default=None,
    help="Where issues go. [default: the control plane's own GitHub repo]",
)
@click.option(
    "--remind-after",
    metavar="DAYS",
    envvar=REMIND_ENV,
    show_envvar=True,
    default=",".join(map(str, DEFAULT_REMINDERS)),
    show_default=True,
    help="Days open after which an issue gets one reminder comment each.",
)
@click.option("--now", default=None, help="The clock, RFC 3339 (tests and replays).")
@click.option(
    "--wait",
    type=WAIT_SECONDS,
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for another notify run's lock.",
)
@shard_option
@fleet_options()
def notify(
    dry_run: bool,
    as_json: bool,
    issues_repo: str | None,
    remind_after: str,
    now: str | None,
    wait: float,
    shard: Shard,
    fleet: FleetOptions,
) -> None:
    """Tell the humans: one GitHub issue per thing that needs one, a tracking issue,
    chat on transitions, and a pin PR for each merged contract not yet pinned.

    Issues (and PRs) need GITHUB_TOKEN; chat needs PETROVA_NOTIFY_URLS (apprise URLs).
    With neither, there is nothing to tell anyone and nothing is done. What was told is
    kept in state/notify/, so a re-run tells nothing twice. Quiet when all is well;
    exit 1 (NOTIFY_INCOMPLETE) when something could not be told (it is tried again
    next run).
    """
    token = _token(fleet)
    plan = NotifyPlan(
        registry=fleet.registry,
        catalogue=fleet.catalogue(),
        state_dir=fleet.states,
        workspace=fleet.workspace,
        now=clock.now(now),
        issues_repo=issues_repo,
        dry_run=dry_run,
        reminders=_reminders(remind_after),
        shard=shard,
        wait=wait,
    )
    wiring = Wiring(github=github_wiring(token), chat_targets=chat.targets())
    report = run_notify(plan, wiring)

    def clean(text: str) -> str:
        return token.scrub(text) if token is not None else text

    if as_json:
        text = json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n"
        emit(clean(text).encode(), None)
    elif dry_run:
        for action in report.actions:
            emit(clean(f"would {action.verb} {action.target}: {action.what}\n").encode(), None)
        if not report.actions:
            emit(b"nothing to tell\n", None)
    elif terminal.watching():
        for action in report.actions:
            say(clean(f"{action.verb} {action.target}: {action.what}"))
    for problem in report.problems:
        say(clean(f"petrova notify: {problem}"))
    if report.problems:
        raise NotifyIncomplete(
            f"{len(report.problems)} thing(s) could not be told; they are tried again next run"
        )
