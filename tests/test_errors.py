"""One list of errors: every class and code in petrova/errors.py, every exit code documented."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import petrova
from petrova import errors
from petrova.errors import EXIT_CODES, Exit, PetrovaError
from tests.conftest import CATALOGUE, ROOT, Petrova


def _all_subclasses(cls: type) -> list[type]:
    found: list[type] = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


def _import_everything() -> None:
    for module in pkgutil.walk_packages(petrova.__path__, "petrova."):
        if module.name != "petrova.__main__":  # importing it runs the command
            importlib.import_module(module.name)


def test_every_public_error_class_lives_in_errors_py_with_a_unique_code() -> None:
    _import_everything()
    classes = _all_subclasses(PetrovaError)
    public = [c for c in classes if not c.__name__.startswith("_")]
    assert {c.__module__ for c in public} == {"petrova.errors"}
    # a private helper class (an internal signal) keeps its parent's code
    for private in set(classes) - set(public):
        assert "code" not in vars(private), private
    codes = [c.code for c in public]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", code) for code in codes), codes
    assert all(isinstance(c.exit_code, Exit) for c in public)


def test_every_exit_code_is_documented_in_help_and_readme(petrova_inprocess: Petrova) -> None:
    assert set(EXIT_CODES) == set(Exit)
    shown = petrova_inprocess("--help").stdout
    readme = (ROOT / "README.md").read_text()
    for code in Exit:
        assert re.search(rf"^\s+{int(code)}\s+\S", shown, re.M), (code, shown)
        assert f"`{int(code)}`" in readme, code


def test_codes_cannot_be_made_up_at_a_raise_site() -> None:
    """A code comes from a class: the constructor takes none."""
    try:
        errors.UsageError("x", code="SOMETHING_ELSE")  # type: ignore[call-arg]
    except TypeError:
        return
    raise AssertionError("PetrovaError accepted a code")


_EXITS = ("exceptions.Exit", "ctx.exit", "sys.exit", "os._exit", ".Exit")


def test_only_the_boundary_sets_an_exit_code() -> None:
    """Commands end by raising a PetrovaError (``ErrorsShown`` when they showed their
    errors themselves); only ``cli.py`` turns it into an exit code."""
    import ast

    package = ROOT / "petrova"
    setting = []
    for path in package.rglob("*.py"):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            target = node.func if isinstance(node, ast.Call) else None
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Name | ast.Attribute):
                target = node.exc  # ``raise SystemExit`` without a call
            called = ast.unparse(target) if target is not None else ""
            if called == "SystemExit" or called.endswith(_EXITS):
                setting.append(f"{path.relative_to(package)}:{node.lineno} {called}")
    assert setting == []


def test_errors_shown_by_the_command_are_not_shown_again(
    petrova_inprocess: Petrova, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("schema_version: [\n")
    run = petrova_inprocess(
        "contract", "validate", str(broken), str(broken), "--catalogue", str(CATALOGUE)
    )
    assert run.exit_code == 2
    lines = run.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("petrova: CONTRACT_INVALID: ") for line in lines)
    assert "ERRORS_SHOWN" not in run.stderr


def _code_literals(path: Path, codes: set[str]) -> list[str]:
    """Strings in ``path`` that are a code, or use one as a label (docstrings aside)."""
    import ast

    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            # the code itself, or a label in front of a message ("warning: CODE: ..."):
            # prose that names a code (help text, "exit 75 (LOCK_TIMEOUT)") is fine
            labels = re.findall(r"(?:^|: )([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+): ", node.value)
            words = [node.value.strip(), *labels]
            found += [f"{path.name}:{node.lineno} {w}" for w in words if w in codes]
    return found


def test_every_code_is_written_once_in_errors_py() -> None:
    """Outside errors.py a code is a name (``REVIEW_OVERDUE``, ``SyncFailed.code``), never
    a string literal, so a typo is an import error rather than a new code."""
    _import_everything()
    codes = {c.code for c in _all_subclasses(PetrovaError)} | errors.WARNING_CODES
    package = ROOT / "petrova"
    literals = [
        hit
        for path in sorted(package.rglob("*.py"))
        if path.name != "errors.py"
        for hit in _code_literals(path, codes)
    ]
    assert literals == []


def test_every_warning_code_is_a_constant_and_is_listed_in_the_docs() -> None:
    assert len(errors.WARNING_CODES) >= 15
    for code in errors.WARNING_CODES:
        assert getattr(errors, code) == code
    docs = "\n".join(p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    missing = sorted(code for code in errors.WARNING_CODES if f"`{code}`" not in docs)
    assert missing == []
