"""The ``petrova`` command: a lazy click group and the one place errors are rendered.

Subcommands live in ``petrova/commands/`` and are imported only when used, so
``petrova --help`` and ``--version`` stay fast. Every :class:`PetrovaError` raised
by the core is rendered here, once, as ``petrova: CODE: file:line:col: field: message``
with the exit code of SPEC §8; anything else is a bug and says so, without a
traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import errno
import gc
import importlib
import importlib.util
import sys
from typing import Any

import click

from petrova import __version__
from petrova.errors import EXIT_CODES, ErrorsShown, Exit, Location, PetrovaError

#: name -> (module:attribute, one-line help). The help is here so that listing
#: commands does not import them.
COMMANDS: dict[str, tuple[str, str]] = {
    "bootstrap": (
        "petrova.commands.bootstrap:bootstrap",
        "Run the bootstrap phases on a consumer repo.",
    ),
    "contract": (
        "petrova.commands.contract:contract",
        "Validate a consumer contract, print its sha.",
    ),
    "contracts": (
        "petrova.commands.contracts:contracts",
        "Generated schemas and fixtures for consumers.",
    ),
    "daily": (
        "petrova.commands.daily:daily",
        "The daily job: refresh, sync, probe, snapshot, publish.",
    ),
    "notify": (
        "petrova.commands.notify:notify",
        "Tell the humans: issues, chat on transitions, pin PRs.",
    ),
    "history": (
        "petrova.commands.history:history",
        "A cell's transitions over its whole life, from git.",
    ),
    "registry": (
        "petrova.commands.registry:registry",
        "Check, list, show, pin and fill registry entries.",
    ),
    "render": ("petrova.commands.render:render", "Render a snapshot file as a page."),
    "rollout": ("petrova.commands.rollout:rollout", "Tier status and the 7-day rollout gate."),
    "snapshot": (
        "petrova.commands.snapshot:snapshot",
        "Write the fleet snapshot (dashboard JSON).",
    ),
    "state": ("petrova.commands.state:state", "Record probe outcomes; promote after review."),
    "sync": ("petrova.commands.sync:sync", "Clone or update the fleet's repos in the workspace."),
    "probe": (
        "petrova.commands.probe:probe",
        "Probe every wired integration; print or --record the outcomes.",
    ),
}


def _available(name: str) -> bool:
    module = COMMANDS[name][0].split(":")[0]
    return importlib.util.find_spec(module) is not None


class LazyGroup(click.Group):
    """A group that imports each subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if _available(n))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not _available(cmd_name):
            return None
        module_name, attr = COMMANDS[cmd_name][0].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PetrovaError as exc:
            if not isinstance(exc, ErrorsShown):
                report_error(exc)
            ctx.exit(exc.exit_code)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except OSError as exc:  # the file system said no: the environment's doing, not a bug
            from petrova.errors import FileSystemError

            error = FileSystemError(_os_advice(exc), location=_os_location(exc))
            report_error(error)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("petrova: interrupted", err=True)
            ctx.exit(Exit.INTERRUPTED)
        except Exception as exc:
            if ctx.find_root().params.get("debug"):
                raise
            from petrova.terminal import visible

            click.echo(
                f"petrova: INTERNAL_ERROR: {type(exc).__name__}: {visible(str(exc))}\n"
                "This is a bug in petrova. Re-run with --debug for the traceback and "
                "report it with the command line you used.",
                err=True,
            )
            ctx.exit(Exit.INTERNAL)


_OS_ADVICE = {
    errno.EROFS: "the file system is read-only; run where petrova may write, or make it writable",
    errno.EACCES: "permission denied; check the owner and mode of this path and its folders",
    errno.EPERM: "the operation is not permitted here; check the owner and mode of this path",
    errno.ENOSPC: "no space left on the device; free some space and run again",
    errno.EDQUOT: "the disk quota is exhausted; free some space and run again",
    errno.ENOTDIR: "a file stands where a folder is expected; move the file aside",
    errno.EEXIST: "something already exists here; move it aside",
    errno.EISDIR: "a folder stands where a file is expected; move the folder aside",
    errno.ENAMETOOLONG: "the path is too long; choose a shorter one",
    errno.ELOOP: "too many symbolic links on the way; replace them with real folders",
}


def _os_advice(exc: OSError) -> str:
    advice = _OS_ADVICE.get(exc.errno or 0)
    said = exc.strerror or type(exc).__name__
    return f"{said}: {advice}" if advice else f"{said}; check this path and run again"


def _os_location(exc: OSError) -> Location:
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return Location(" -> ".join(names) or None)


def report_error(exc: PetrovaError) -> None:
    """The only place an error is shown to a person."""
    from petrova.terminal import error_text

    click.echo(f"petrova: {error_text(exc)}", err=True)


def _exit_codes_epilog() -> str:
    lines = "\n".join(f"  {int(code):>3}  {meaning}" for code, meaning in EXIT_CODES.items())
    return f"\b\nExit codes:\n{lines}"


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_exit_codes_epilog(),
)
@click.version_option(
    __version__, "--version", "-V", prog_name="petrova", message="%(prog)s %(version)s"
)
@click.option(
    "--debug", is_flag=True, hidden=False, help="Show the traceback of an unexpected error."
)
def cli(debug: bool) -> None:
    """petrova: the control plane for a fleet of governed git repositories.

    The registry (registry.yaml) says which repos are governed and how; each repo's
    .petrova/contract.yaml says what it declares; state/<slug>.yaml says what probes
    saw; `petrova snapshot` puts them together for the dashboards.
    """


def main() -> None:
    """Console-script entry point.

    The cyclic garbage collector is off for the run: a command is a short batch job over
    acyclic data (reference counting frees it), and at fleet scale the collector's
    passes over hundreds of thousands of live objects cost a fifth of a snapshot.
    """
    gc.disable()
    sys.exit(cli.main(prog_name="petrova"))
