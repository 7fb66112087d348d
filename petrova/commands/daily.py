"""``petrova daily``: the unattended daily run every shipped schedule uses."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click

from petrova import clock, terminal
from petrova.commands._options import FleetOptions, SecondsType, fleet_options, shard_option
from petrova.commands._output import emit, guard_output, say
from petrova.delivery.publish import check_env_name, check_url
from petrova.documents.catalogue import find_catalogue
from petrova.documents.shard import ALL, Shard
from petrova.errors import CheckFailed, Location, OutputError, PetrovaError, UsageError
from petrova.files.lock import file_lock
from petrova.fleet.daily import STEPS, DailyPlan, DailyReport, StepResult, raise_for, run_daily
from petrova.fleet.shards import PUSH_DEADLINE
from petrova.sync.workspace import manifest_path


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where the snapshot is written (atomically replaced). Required, but with --shard.",
)
@click.option("--publish", metavar="URL", default=None, help="POST the snapshot here.")
@click.option(
    "--token-env",
    metavar="NAME",
    default="PETROVA_INGEST_TOKEN",
    show_default=True,
    help="The environment variable holding the ingest token.",
)
@click.option("--jobs", type=click.IntRange(min=1, max=256), default=None, help="For sync, probe.")
@click.option(
    "--self-update/--no-self-update",
    default=True,
    show_default=True,
    help="First bring the control-plane checkout up to date (git pull --ff-only).",
)
@click.option(
    "--commit-state",
    is_flag=True,
    help="Commit state/ (the ledgers) to the control-plane repo as petrova-bot.",
)
@click.option("--push", is_flag=True, help="With --commit-state: push it, rebasing if needed.")
@click.option(
    "--push-branch",
    metavar="BRANCH",
    default=None,
    help="With --push: commit and push the state to BRANCH (e.g. petrova/state) instead "
    "of the checked-out branch, for a protected main.",
)
@click.option(
    "--page",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where the fleet page goes. [default: beside -o, with .html]",
)
@click.option(
    "--wait",
    type=SecondsType(0, maximum=86400),
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="How long the snapshot waits for another run's lock.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when a step warned, not only when one failed.")
@click.option(
    "--metrics",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    metavar="FILE",
    help="Also write the fleet's and this run's metrics here (Prometheus text format, "
    "atomically replaced), for the node exporter's textfile collector.",
)
@shard_option
@click.option(
    "--bundle",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="With --shard: write the shard's hand-over for the final job here (its sync "
    "manifest records and each repo's .petrova/).",
)
@click.option(
    "--final",
    is_flag=True,
    help="The final job of a sharded run: no sync, no probe; the snapshot from the merged "
    "ledgers and the shards' hand-overs, published.",
)
@click.option(
    "--from-shards",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="With --final: the folder holding the shards' bundles (one per sub-folder).",
)
@click.option(
    "--push-deadline",
    type=SecondsType(0, maximum=86400),
    default=PUSH_DEADLINE,
    show_default=True,
    metavar="SECONDS",
    help="With --shard --push: keep rebasing and pushing (jittered backoff) this long.",
)
@fleet_options()
def daily(
    output: Path,
    publish: str | None,
    token_env: str,
    jobs: int | None,
    self_update: bool,
    commit_state: bool,
    push: bool,
    push_branch: str | None,
    page: Path | None,
    wait: float,
    strict: bool,
    shard: Shard,
    bundle: Path | None,
    final: bool,
    from_shards: Path | None,
    push_deadline: float,
    metrics: Path | None,
    fleet: FleetOptions,
) -> None:
    """Refresh, sync, probe, snapshot and publish, and keep the ledgers: the daily job.

    Steps, each petrova itself in a child process: with --push, first the bot's
    commits an earlier run could not push; `sync --self` (refresh the control-plane
    checkout), `sync`, `probe --record`, `snapshot -o FILE [--publish URL]`, the page
    beside it (FILE.html, or --page), then with --commit-state a commit of the bot's
    files (state/*.yaml and state/runs/daily.json, never state/promotions/) and with
    --push a push, rebased and retried when a human's PR landed meanwhile. A failed
    refresh, sync, probe or push warns (a failed push is STATE_NOT_PUSHED: the commit
    is kept and pushed next run); a failed snapshot, publish, page or state commit
    fails the run (exit 1) and a written file stays. Every run leaves its record in
    state/runs/daily.json, which the snapshot and the page show.

    With --metrics FILE, the fleet's figures (from the snapshot written) and the
    run's (start, end, last success, each step's duration and exit code) are written
    to FILE after the run, whether it succeeded or not (docs/METRICS.md).

    Beyond one runner: `--shard K/N` syncs and probes only shard K's repos, writes
    their hand-over with --bundle DIR, and commits only their ledgers (with --push,
    rebased and retried with jittered backoff until --push-deadline); then one
    `--final [--from-shards DIR]` run builds the snapshot from the merged ledgers and
    the hand-overs and publishes it. See docs/OPERATIONS.md.

    Prints nothing when all is well and no terminal is attached; what it prints is
    worth a person's attention.
    """
    workspace = fleet.workspace
    if workspace is None:
        raise UsageError(
            "the daily job needs a workspace for the consumers' clones: pass --workspace "
            "DIR or set PETROVA_WORKSPACE",
            location=Location(field="--workspace"),
        )
    if push and not commit_state:
        raise UsageError("--push goes with --commit-state", location=Location(field="--push"))
    if push_branch is not None and not push:
        raise UsageError(
            "--push-branch goes with --commit-state --push",
            location=Location(field="--push-branch"),
        )
    sharded = _check_sharding(shard, bundle, final, from_shards, output, publish)
    if sharded is not None and push_branch is not None:
        raise UsageError(
            "--push-branch does not go with --shard: a state branch's commit is built from "
            "the whole state folder, which would put back other shards' older ledgers",
            location=Location(field="--push-branch"),
        )
    if output is None:
        output = workspace / ".petrova-shard-snapshot.json"  # never written: no snapshot step
    if publish is not None:
        check_url(publish, option="--publish", sends_token=True)
        check_env_name(token_env)
    # refused before any step runs, as the snapshot step would refuse it after the others
    inputs = [fleet.registry, find_catalogue(fleet.catalogue_path, fleet.registry)]
    guard_output(output, inputs=[*inputs, manifest_path(workspace)], folders=[fleet.states])
    plan = DailyPlan(
        registry=fleet.registry,
        catalogue=fleet.catalogue_path,
        state_dir=fleet.states,
        workspace=workspace,
        output=output,
        publish=publish,
        token_env=token_env if publish is not None else None,
        jobs=jobs,
        self_update=self_update,
        commit_state=commit_state,
        push=push,
        wait=wait,
        page=page,
        push_branch=push_branch,
        shard=sharded,
        bundle=bundle,
        final=final,
        from_shards=from_shards,
        push_deadline=push_deadline,
    )
    guard_output(metrics, inputs=[fleet.registry, output])
    started, timings = clock.now(), _Timings()
    reporter = _reporter()

    def on_step(result: StepResult) -> None:
        timings.lap()
        reporter(result)

    # one daily at a time per state folder (.daily.lock): an overlapping run waits, then
    # exits 75, instead of observing and committing the same moment twice
    try:
        fleet.states.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the state directory: {exc.strerror}",
            location=Location(str(fleet.states)),
        ) from None
    with file_lock(fleet.states / "daily", wait=wait):
        report = run_daily(plan, on_step=on_step)
        if metrics is not None:
            _write_metrics(metrics, fleet, output, report, started, timings.laps)
    raise_for(report)
    if strict and report.warned:
        names = ", ".join(r.name for r in report.warned)
        raise CheckFailed(f"steps warned under --strict: {names}")


def _check_sharding(
    shard: Shard,
    bundle: Path | None,
    final: bool,
    from_shards: Path | None,
    output: Path | None,
    publish: str | None,
) -> Shard | None:
    """The options of a sharded run, checked together; the shard, or None for all."""
    sharded = None if shard == ALL else shard
    if final and shard != ALL:
        raise UsageError(
            "--final runs once, after every --shard K/N run: pass one or the other",
            location=Location(field="--final"),
        )
    if bundle is not None and sharded is None:
        raise UsageError("--bundle goes with --shard K/N", location=Location(field="--bundle"))
    if from_shards is not None and not final:
        raise UsageError(
            "--from-shards goes with --final", location=Location(field="--from-shards")
        )
    if sharded is not None and (output is not None or publish is not None):
        raise UsageError(
            "a shard makes no snapshot (the --final run does): drop -o and --publish",
            location=Location(field="--shard"),
        )
    if sharded is None and output is None:
        raise UsageError("-o FILE is required (but with --shard)", location=Location(field="-o"))
    return sharded


def _reporter() -> Callable[[StepResult], None]:
    """Pass on what needs a person; on a terminal, also a line per step."""
    watching = terminal.watching()
    actions = os.environ.get("GITHUB_ACTIONS") == "true"

    def report(result: StepResult) -> None:
        said = result.said.rstrip()
        if result.ok and not said:
            if watching:
                say(f"petrova daily: {result.name}: ok")
            return
        verdict = "ok" if result.ok else f"exit {result.code}"
        if not result.ok and STEPS[result.name] == "warn":
            verdict += ", the run goes on"
        say(f"petrova daily: {result.name}: {verdict}")
        for line in said.splitlines():
            say(f"  {line}")
        if actions and not result.ok:
            level = "error" if STEPS[result.name] == "fail" else "warning"
            say(f"::{level} title=petrova daily: {result.name}::exit {result.code}")

    return report


class _Timings:
    """Each step's wall time, measured between the reports of the steps."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.laps: list[float] = []

    def lap(self) -> None:
        now = time.monotonic()
        self.laps.append(now - self.last)
        self.last = now


def _write_metrics(
    path: Path,
    fleet: FleetOptions,
    output: Path,
    report: DailyReport,
    started: datetime,
    laps: list[float],
) -> None:
    from petrova.fleet.trend import daily_run, metrics_bytes, previous_success, written_snapshot

    try:
        catalogue = fleet.catalogue()
    except PetrovaError:
        catalogue = None
    steps = [(r.name, r.code, s) for r, s in zip(report.results, laps, strict=True)]
    run = daily_run(
        steps, started=started, ok=not report.failed, previous_success=previous_success(path)
    )
    emit(metrics_bytes(written_snapshot(output, catalogue), run), path)
