"""The record of every daily run (``state/runs/daily.json``), and the one the snapshot shows.

The daily job writes a run's record when it starts (``finished_at`` null), after each
step, and when it ends (SPEC §12). A run killed on the way keeps ``finished_at`` null, so
the next run's snapshot, page and table say that it never finished. While a run is on,
it holds the record's lock; the snapshot it makes meanwhile shows the run before it.
The file is the bot's, committed with the ledgers; a few runs are kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from petrova.errors import LockTimeout, OutputError, PetrovaError
from petrova.files.disk import read_input, write_atomic
from petrova.files.json_strict import orjson_unique, to_json_bytes
from petrova.files.lock import file_lock
from petrova.models import DailyRun, DailyRuns, DailyRunStep, StepOutcome

#: Where the record lives, relative to the state folder.
RUNS_RELPATH = Path("runs") / "daily.json"
#: How many runs the file keeps, newest last.
RUNS_KEPT = 14


def runs_path(state_dir: Path) -> Path:
    return state_dir / RUNS_RELPATH


def read_runs(path: Path) -> DailyRuns:
    """The runs recorded so far; a missing or unreadable file is an empty record (the
    record is a courtesy to people, never a reason for a run or a snapshot to stop)."""
    try:
        return DailyRuns.model_validate(orjson_unique(read_input(path, follow=False)))
    except (OSError, ValueError, ValidationError, PetrovaError):
        return DailyRuns(schema_version=1)


def write_runs(path: Path, runs: DailyRuns) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = runs.model_dump(mode="json")
    write_atomic(path, to_json_bytes(data))


def in_progress(path: Path) -> bool:
    """A daily run holds the record's lock while it runs (a killed one holds nothing)."""
    try:
        with file_lock(path, wait=0):
            return False
    except LockTimeout:
        return True
    except OutputError:
        return False


def last_run(state_dir: Path) -> DailyRun | None:
    """The newest run that is not in progress: the one the snapshot and the page show."""
    path = runs_path(state_dir)
    if not path.exists():
        return None
    runs = read_runs(path).runs
    if runs and runs[-1].finished_at is None and in_progress(path):
        runs = runs[:-1]
    return runs[-1] if runs else None


class RunLog:
    """One run's record, written at its start, after each step and at its end."""

    def __init__(self, path: Path, started_at: str) -> None:
        self.path = path
        self.record = DailyRun(started_at=started_at, finished_at=None)
        self._write()

    def step(self, name: str, outcome: StepOutcome, code: int) -> None:
        steps = [*self.record.steps, DailyRunStep(name=name, outcome=outcome, code=code)]
        self.record = self.record.model_copy(update={"steps": steps})
        self._write()

    def finish(self, finished_at: str) -> None:
        self.record = self.record.model_copy(update={"finished_at": finished_at})
        self._write()

    def _write(self) -> None:
        runs = [r for r in read_runs(self.path).runs if r.started_at != self.record.started_at]
        runs = [*runs, self.record][-RUNS_KEPT:]
        with contextlib.suppress(OSError):  # a record that cannot be written stops nothing
            write_runs(self.path, DailyRuns(schema_version=1, runs=runs))


@contextlib.contextmanager
def running(path: Path) -> Iterator[None]:
    """Hold the record's lock for the whole run, so snapshots know it is in progress."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path, wait=0):
        yield
