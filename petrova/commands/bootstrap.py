"""``petrova bootstrap``: run the numbered phases on a consumer repo (SPEC §5)."""

from __future__ import annotations

import difflib
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from petrova.commands._options import FleetOptions, fleet_options
from petrova.commands._output import emit, say
from petrova.documents.catalogue import (
    CATALOGUE_RELPATH,
    Catalogue,
    EvidenceField,
    bundled_catalogue_path,
)
from petrova.documents.contract import CONTRACT_RELPATH
from petrova.documents.registry import LoadedRegistry
from petrova.errors import Location, UsageError
from petrova.migrate.answers import Question, coerce_field, field_schema
from petrova.migrate.bootstrap import LAST_PHASE, PHASES, Outcome, Request, run
from petrova.terminal import is_tty, visible


class PromptAsker:
    """Phase 5 questions as terminal prompts, on stderr so stdout stays data."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def note(self, message: str) -> None:
        say(f"  {message}")

    def status(self, question: Question, default: str) -> str:
        integration = question.integration
        say(f"{integration.title} ({integration.id}): {integration.description}".rstrip(": "))
        value: str = click.prompt(
            "  status",
            type=click.Choice(list(question.statuses)),
            default=default,
            err=True,
        )
        return value

    def evidence(self, question: Question, item: EvidenceField, default: Any | None) -> Any:
        schema = field_schema(self.catalogue, item.schema)
        kind = schema.get("type") or ("one of " + "/".join(map(str, schema.get("enum", []))))
        label = f"  {item.name} ({item.description}; {kind})"

        def convert(text: str) -> Any:
            if text == "" and not item.required:
                return None
            try:
                return coerce_field(self.catalogue, item, text)
            except ValueError as exc:
                raise click.BadParameter(str(exc)) from None

        if not item.required:
            label += " [optional, Enter skips]"
            return click.prompt(label, default="", show_default=False, value_proc=convert, err=True)
        return click.prompt(label, default=default, value_proc=convert, err=True)

    def reason(self, question: Question, default: str | None) -> str:
        def convert(text: str) -> str:
            if not text.strip():
                raise click.BadParameter("say why it does not apply")
            return text.strip()

        value: str = click.prompt(
            "  why is it not applicable", default=default, value_proc=convert, err=True
        )
        return value

    def review_by(self, question: Question, default: str | None) -> str:
        from datetime import date

        def convert(text: str) -> str:
            try:
                if len(text.strip()) != 10:
                    raise ValueError
                date.fromisoformat(text.strip())
            except ValueError:
                raise click.BadParameter(f"{text!r} is not a date in the form YYYY-MM-DD") from None
            return text.strip()

        value: str = click.prompt(
            "  review by (YYYY-MM-DD)", default=default, value_proc=convert, err=True
        )
        return value


def pin_command(loaded: LoadedRegistry, outcome: Outcome) -> str:
    """The exact next command, runnable from the directory bootstrap was run in once the
    contract's pull request has merged and the clone has fetched it: it pins what is on
    the default branch, not this working tree.

    ``--registry`` and ``--catalogue`` are spelled out only when a plain
    ``petrova registry pin`` there would not find the same files.
    """
    args = [
        "petrova",
        "registry",
        "pin",
        outcome.slug,
        "--repo",
        str(outcome.contract_path.parent.parent),
    ]
    registry = loaded.path.resolve()
    if registry != (Path.cwd() / "registry.yaml").resolve():
        args += ["--registry", str(registry)]
    used = Path(loaded.catalogue.path).resolve()
    beside = registry.parent / CATALOGUE_RELPATH
    default = beside if beside.is_file() else bundled_catalogue_path()
    if default is None or used != default.resolve():
        args += ["--catalogue", str(used)]
    return shlex.join(args)


def _phase_help() -> str:
    lines = "\n".join(f"  {p.number}. {p.name:<14} {p.summary}" for p in PHASES)
    return f"""Run the bootstrap phases on a consumer repo; phase 6 writes its contract.

\b
Phases:
{lines}

Phases 1-4 only read; phase 5 asks: prompts when stdin is a terminal, else
--answers FILE; --defaults takes the defaults (pending, or not_applicable with
the registry's reason and review date) on purpose. With none of these and no
terminal it refuses (ANSWERS_REQUIRED, exit 2) rather than write a contract of
defaults nobody chose. Progress is checkpointed in the repo's git directory
(<git-dir>/petrova/bootstrap.json), never in the work tree.
`--resume --phase 6` re-derives phases 1-4, takes phase 5's answers from the
checkpoint (plus --answers); with no checkpoint it runs phase 5 as above (asks
on a terminal, else refuses). It is idempotent, and never downgrades a wired
integration or drops its evidence.

On success stdout has the contract_sha and the exact `petrova registry pin`
command to run from the control-plane repo once the PR with the contract merges
(it reads the merged contract from the clone's origin/<default_branch>).
"""


@click.command(help=_phase_help())
@click.option(
    "--repo",
    "repo",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(),
    help="The consumer repo's working tree. [default: the current directory]",
)
@click.option("--slug", default=None, help="The registry entry (default: matched by origin url).")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint (or from --phase).")
@click.option(
    "--phase",
    type=click.IntRange(1, LAST_PHASE),
    default=None,
    help="With --resume: the phase to start at.",
)
@click.option(
    "--answers",
    "answers_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML answers for phase 5 instead of prompts (format: README).",
)
@click.option(
    "--defaults",
    "use_defaults",
    is_flag=True,
    help="Take the defaults for every question nobody answered (pending; not_applicable "
    "with the registry's reason and date). Without it, an unattended run refuses.",
)
@click.option("--dry-run", is_flag=True, help="Show the contract and its sha; write nothing.")
@click.option(
    "--interactive/--no-interactive",
    default=None,
    help="Prompt in phase 5. [default: when stdin is a terminal]",
)
@fleet_options(state=False, workspace=False)
def bootstrap(
    repo: Path,
    slug: str | None,
    resume: bool,
    phase: int | None,
    answers_path: Path | None,
    use_defaults: bool,
    dry_run: bool,
    interactive: bool | None,
    fleet: FleetOptions,
) -> None:
    if phase is not None and not resume:
        raise UsageError(
            "--phase N says where a resumed run starts: add --resume "
            f"(petrova bootstrap --resume --phase {phase})",
            location=Location(field="--phase"),
        )
    loaded = fleet.load()
    prompting = is_tty(sys.stdin) if interactive is None else interactive
    asking = prompting and answers_path is None and not use_defaults
    asker = PromptAsker(loaded.catalogue) if asking else None
    request = Request(
        repo=repo,
        slug=slug,
        resume=resume,
        phase=phase,
        answers_path=answers_path,
        dry_run=dry_run,
        defaults=use_defaults,
    )
    outcome = run(loaded, request, asker=asker, notify=say)
    composition = outcome.composition
    shown = CONTRACT_RELPATH
    if dry_run:
        emit(composition.data, None)
        wording = {"create": "would create", "update": "would update", "identical": "unchanged:"}
        say(f"dry run: {wording[outcome.verb]} {shown} (nothing written)")
        if outcome.verb == "update" and outcome.old is not None:
            diff = difflib.unified_diff(
                outcome.old.decode("utf-8", "replace").splitlines(keepends=True),
                composition.data.decode("utf-8").splitlines(keepends=True),
                f"a/{shown}",
                f"b/{shown}",
            )
            click.echo(visible("".join(diff), keep_lines=True), err=True, nl=False)
        say(f"contract_sha: {composition.sha}")
        return
    if outcome.verb == "identical":
        say(f"identical {shown}: unchanged")
    else:
        say(f"{outcome.verb} {shown}")
        say("next: open a pull request with that file; after it merges, run the pin command")
    click.echo(f"contract_sha: {composition.sha}")
    click.echo(f"next: {pin_command(loaded, outcome)}")
