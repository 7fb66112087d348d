"""One list of errors: every class and code in petrova/errors.py, every exit code documented."""

from __future__ import annotations

import importlib
import pkgutil
import re

import petrova
from petrova import errors
from petrova.errors import EXIT_CODES, Exit, PetrovaError
from tests.conftest import ROOT, Petrova


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
