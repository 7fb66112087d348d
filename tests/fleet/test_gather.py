"""Progress for people while contracts and ledgers are read."""

from __future__ import annotations

import io

import pytest

from petrova.commands._output import progress_reporter


def test_progress_only_on_a_terminal_after_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    assert progress_reporter("reading") is None  # pytest's stderr is not a terminal

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    fake = Tty()
    clock = iter([100.0, 100.5, 101.5, 102.0])
    monkeypatch.setattr("sys.stderr", fake)
    monkeypatch.setattr("time.monotonic", lambda: next(clock))
    report = progress_reporter("reading")
    assert report is not None
    report(10, 40)  # half a second in: nothing yet
    assert fake.getvalue() == ""
    report(20, 40)
    report(40, 40)
    assert fake.getvalue() == "\rreading: 20/40\rreading: 40/40\n"
