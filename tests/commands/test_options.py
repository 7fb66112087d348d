"""The commands are uniform: the same kind of option takes the same values everywhere,
and one function decides whether a person is watching."""

from __future__ import annotations

import ast

import click
import pytest

from petrova.cli import cli
from petrova.commands._options import DurationType, SecondsType
from tests.conftest import ROOT, run_inprocess


def _leaf_commands() -> list[tuple[list[str], click.Command]]:
    ctx = click.Context(cli)
    out: list[tuple[list[str], click.Command]] = []

    def walk(path: list[str], group: click.Group) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            if isinstance(command, click.Group):
                walk([*path, name], command)
            else:
                out.append(([*path, name], command))

    walk([], cli)
    return out


def _seconds_options() -> list[tuple[list[str], str]]:
    return [
        (path, param.opts[0])
        for path, command in _leaf_commands()
        for param in command.params
        if isinstance(param, click.Option) and isinstance(param.type, SecondsType)
    ]


def test_every_number_option_is_bounded_and_every_float_is_seconds_or_a_duration() -> None:
    # click's FloatRange lets nan through every bound, and inf through an open one: an
    # endless wait, or a crash further down. Seconds are SecondsType; spans DurationType.
    loose = [
        f"{' '.join(path)} {param.opts[0]}: {param.type!r}"
        for path, command in _leaf_commands()
        for param in command.params
        if isinstance(param, click.Option)
        and (
            isinstance(param.type, click.FloatRange | click.types.FloatParamType)
            or (isinstance(param.type, click.types.IntParamType) and param.type is click.INT)
        )
        and not isinstance(param.type, SecondsType | DurationType)
    ]
    assert loose == []
    assert len(_seconds_options()) >= 8  # every --wait and --timeout


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "1e999"])
@pytest.mark.parametrize(
    ("path", "option"), _seconds_options(), ids=lambda v: "-".join(v) if isinstance(v, list) else v
)
def test_every_seconds_option_refuses_what_is_not_a_finite_wait(
    path: list[str], option: str, value: str
) -> None:
    run = run_inprocess(*path, option, value)
    assert run.exit_code == 2, run.stderr
    assert f"Invalid value for '{option}'" in run.stderr
    assert "is not a number of " in run.stderr
    assert "Traceback" not in run.stderr


def test_one_function_decides_whether_a_person_is_watching() -> None:
    # Every note for people (progress, summaries, retries, a line per step) asks
    # petrova.terminal.watching(); nothing else looks at whether a stream is a terminal,
    # except bootstrap asking whether it may prompt (a question about stdin).
    package = ROOT / "petrova"
    asking = []
    for path in package.rglob("*.py"):
        if path.name == "terminal.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "isatty":
                asking.append(f"{path.relative_to(package)}:{node.lineno} .isatty")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name | ast.Attribute)
                and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
                == "is_tty"
                and ast.unparse(node.args[0]) != "sys.stdin"
            ):
                asking.append(f"{path.relative_to(package)}:{node.lineno} {ast.unparse(node)}")
    assert asking == []


def test_every_command_takes_the_fleet_options_one_way() -> None:
    # --registry, --catalogue, --state-dir and --workspace come as one FleetOptions, from
    # fleet_options(): the same help, defaults and lookup order everywhere.
    import inspect

    fleet_names = {"--registry", "--catalogue", "--state-dir", "--workspace"}
    apart = []
    for path, command in _leaf_commands():
        given = {opt for param in command.params for opt in param.opts} & fleet_names
        if not given:
            continue
        assert command.callback is not None
        parameters = inspect.signature(command.callback).parameters
        if "fleet" not in parameters or {"registry_path", "catalogue_path"} & set(parameters):
            apart.append(" ".join(path))
    assert apart == []
    taking = [c for _, c in _leaf_commands() if any("--catalogue" in x.opts for x in c.params)]
    assert len(taking) >= 14
