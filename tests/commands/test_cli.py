"""The CLI shell: help for every command, the error boundary, --version."""

from __future__ import annotations

import click
import pytest

from petrova import __version__
from petrova.cli import COMMANDS, cli
from tests.conftest import ROOT, Petrova, run_inprocess


def _all_commands() -> list[tuple[str, click.Command]]:
    ctx = click.Context(cli)
    out: list[tuple[str, click.Command]] = []

    def walk(prefix: str, group: click.Group) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            out.append((f"{prefix} {name}", command))
            if isinstance(command, click.Group):
                walk(f"{prefix} {name}", command)

    walk("petrova", cli)
    return out


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = _all_commands()
    assert len(commands) >= 6
    for path, command in commands:
        assert command.help, f"{path} has no help text"
        run = run_inprocess(*path.split()[1:], "--help")
        assert run.exit_code == 0, path
        assert run.stdout.startswith("Usage: "), path
        if not isinstance(command, click.Group):
            assert f"`{path}" in readme, f"{path} is not documented in README.md"


def test_top_level_help_lists_commands_without_importing_them(petrova: Petrova) -> None:
    run = petrova("--help")
    assert run.exit_code == 0
    for name in ("registry", "snapshot"):
        assert f"  {name} " in run.stdout
        assert COMMANDS[name][1] in run.stdout


def test_version(petrova: Petrova) -> None:
    run = petrova("--version")
    assert (run.exit_code, run.stdout) == (0, f"petrova {__version__}\n")


def test_unknown_command_is_a_usage_error(petrova: Petrova) -> None:
    run = petrova("snapshoot")
    assert run.exit_code == 2
    assert "No such command 'snapshoot'" in run.stderr


def test_unexpected_errors_are_bugs_without_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    import petrova.commands._options as common

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(common, "open_registry", boom)
    run = run_inprocess("registry", "list")
    assert run.exit_code == 70
    assert run.stderr.startswith("petrova: INTERNAL_ERROR: RuntimeError: kaboom\n")
    assert "This is a bug in petrova" in run.stderr
    assert "Traceback" not in run.stderr
    with pytest.raises(RuntimeError, match="kaboom"):
        run_inprocess("--debug", "registry", "list")
