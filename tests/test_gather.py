"""Reading contracts and ledgers: the read cache never serves a stale read."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from petrova import gather
from petrova.commands._common import progress_reporter
from tests.conftest import ROOT, Petrova, snapshot_args

EPOCH = {"SOURCE_DATE_EPOCH": "1795676400"}


def _forget_memo(cache: Path) -> None:
    """Without the finished snapshot (tests/test_memo.py), the next run reads afresh."""
    for memo in cache.glob("snapshot-*.memo"):
        memo.unlink()


def test_cached_reads_give_the_same_snapshot(
    statuses: Path, trusting_cache: Path, petrova_inprocess: Petrova
) -> None:
    env = {**EPOCH, "PETROVA_CACHE_DIR": str(trusting_cache)}
    first = petrova_inprocess(*snapshot_args(statuses), env=env)
    assert first.exit_code == 0, first.stderr
    [cache_file] = trusting_cache.glob("reads-*.json")
    assert len(json.loads(cache_file.read_bytes())) == 4  # 2 contracts, 2 ledgers
    _forget_memo(trusting_cache)
    second = petrova_inprocess(*snapshot_args(statuses), env=env)
    assert second.stdout_bytes == first.stdout_bytes
    fixture = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"
    assert second.stdout_bytes == fixture.read_bytes()


def test_a_changed_file_is_read_again(
    statuses: Path, trusting_cache: Path, petrova_inprocess: Petrova
) -> None:
    env = {**EPOCH, "PETROVA_CACHE_DIR": str(trusting_cache)}
    petrova_inprocess(*snapshot_args(statuses), env=env)
    ledger = statuses / "state" / "beta-hq.yaml"
    ledger.write_text(
        ledger.read_text().replace('"current_status": "ok"', '"current_status": "failing"', 1)
    )
    run = petrova_inprocess(*snapshot_args(statuses), env=env)
    warnings = json.loads(run.stdout)["warnings"]
    assert [w["code"] for w in warnings] == ["STATE_UNREADABLE"]
    assert "does not follow from the recorded history" in warnings[0]["message"]


def test_a_corrupt_cache_is_ignored(
    statuses: Path, trusting_cache: Path, petrova_inprocess: Petrova
) -> None:
    env = {**EPOCH, "PETROVA_CACHE_DIR": str(trusting_cache)}
    petrova_inprocess(*snapshot_args(statuses), env=env)
    [cache_file] = trusting_cache.glob("reads-*.json")
    entries = json.loads(cache_file.read_bytes())
    for key in entries:
        entries[key][1] = {"observed": {"ares": [1]}, "declared": {"ares": []}}
    cache_file.write_text(json.dumps(entries))
    _forget_memo(trusting_cache)
    run = petrova_inprocess(*snapshot_args(statuses), env=env)
    assert run.exit_code == 0, run.stderr
    fixture = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"
    assert run.stdout_bytes == fixture.read_bytes()
    cache_file.write_bytes(b"\x00not json")
    _forget_memo(trusting_cache)
    assert petrova_inprocess(*snapshot_args(statuses), env=env).stdout_bytes == fixture.read_bytes()


def test_fresh_files_are_not_cached(
    statuses: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, petrova_inprocess: Petrova
) -> None:
    """A file changed within the file system's timestamp resolution could change again
    without its identity changing; such files are read every time."""
    monkeypatch.setattr(gather, "RACY_NS", 10**18)  # every file counts as just changed
    cache = tmp_path / "cache"
    run = petrova_inprocess(
        *snapshot_args(statuses), env={**EPOCH, "PETROVA_CACHE_DIR": str(cache)}
    )
    assert run.exit_code == 0
    assert not cache.exists() or all(
        json.loads(p.read_bytes()) == {} for p in cache.glob("reads-*.json")
    )


def test_cache_off(statuses: Path, trusting_cache: Path, petrova_inprocess: Petrova) -> None:
    env = {**EPOCH, "PETROVA_CACHE_DIR": str(trusting_cache), "PETROVA_CACHE": "off"}
    assert petrova_inprocess(*snapshot_args(statuses), env=env).exit_code == 0
    assert not trusting_cache.exists()


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


# --- reading across processes ---------------------------------------------------------


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
    guessed: list[list[gather.Job]] = []
    real = gather.Readers.__init__

    def spy(self: gather.Readers, jobs: list[gather.Job], *args: object) -> None:
        guessed.append(list(jobs))
        real(self, jobs, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(gather.Readers, "__init__", spy)
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
    assert gather._WORKER_STATE is None
