from __future__ import annotations

from tests.conftest import Petrova


def test_version(petrova: Petrova) -> None:
    run = petrova("--version")
    assert run.exit_code == 0
    assert run.stdout == "petrova 0.1.0\n"
