"""Reading across processes, started before the registry is parsed (petrova/readers.py):
the same snapshot, whatever the number of processes, a wrong guess or a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from petrova import readers
from petrova.reads import Job
from tests.conftest import ROOT, Petrova, snapshot_args

EPOCH = {"SOURCE_DATE_EPOCH": "1795676400"}


@pytest.mark.parametrize("workers", ["1", "2", "3"])
def test_forked_readers_give_the_same_snapshot(
    statuses: Path, workers: str, petrova_subprocess: Petrova
) -> None:
    """PETROVA_WORKERS forces the readers on even for a fleet this small."""
    env = {**EPOCH, "PETROVA_CACHE": "off", "PETROVA_WORKERS": workers}
    run = petrova_subprocess(*snapshot_args(statuses), env=env)
    assert run.exit_code == 0, run.stderr
    fixture = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"
    assert run.stdout_bytes == fixture.read_bytes()


def test_a_wrong_guess_before_the_registry_is_parsed_costs_nothing(
    statuses: Path, monkeypatch: pytest.MonkeyPatch, petrova_inprocess: Petrova
) -> None:
    """The reads started early are guessed from the registry's text; a slug written in a
    way the guess misses is read afterwards, and a guessed slug that is no repo is
    dropped."""
    registry = statuses / "registry.yaml"
    text = registry.read_text()
    text = text.replace("  - slug: alpha-hq\n", '  - slug: "alpha-hq"  # quoted, commented\n')
    text += "# slug: ghost-hq\n"  # the guess would look for it
    registry.write_text(text)
    guessed: list[list[Job]] = []
    real = readers.Readers.__init__

    def spy(self: readers.Readers, jobs: list[Job], *args: object) -> None:
        guessed.append(list(jobs))
        real(self, jobs, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(readers.Readers, "__init__", spy)
    env = {**EPOCH, "PETROVA_CACHE": "off", "PETROVA_WORKERS": "2"}
    run = petrova_inprocess(*snapshot_args(statuses), env=env)
    assert run.exit_code == 0, run.stderr
    fixture = json.loads(
        (ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json").read_text()
    )
    assert json.loads(run.stdout)["rows"] == fixture["rows"]
    early, late = guessed[0], guessed[1]
    assert {job[2] for job in early} == {"beta-hq", "gamma-hq"}  # not alpha, not the ghost
    assert {job[2] for job in late} == {"alpha-hq"}


def test_a_registry_error_stops_the_early_readers(
    statuses: Path, petrova_subprocess: Petrova
) -> None:
    registry = statuses / "registry.yaml"
    registry.write_text(registry.read_text().replace("tier: 2", "tier: two", 1))
    env = {**EPOCH, "PETROVA_CACHE": "off", "PETROVA_WORKERS": "2"}
    run = petrova_subprocess(*snapshot_args(statuses), env=env)
    assert run.exit_code == 2
    assert "REGISTRY_INVALID" in run.stderr
    assert "Traceback" not in run.stderr


def test_no_processes_to_be_had_means_reading_in_one(
    statuses: Path, monkeypatch: pytest.MonkeyPatch, petrova_inprocess: Petrova
) -> None:
    """A process limit (EAGAIN from fork) costs speed, not the snapshot."""
    import multiprocessing

    class NoFork:
        def Pool(self, workers: int) -> None:  # the name multiprocessing uses
            raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing, "get_context", lambda method: NoFork())
    env = {**EPOCH, "PETROVA_CACHE": "off", "PETROVA_WORKERS": "2"}
    run = petrova_inprocess(*snapshot_args(statuses), env=env)
    assert run.exit_code == 0, run.stderr
    fixture = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"
    assert run.stdout_bytes == fixture.read_bytes()
    assert readers._WORKER_STATE is None
