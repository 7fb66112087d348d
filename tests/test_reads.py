"""The read cache (petrova/reads.py): it never serves a stale read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from petrova.fleet import reads
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
    monkeypatch.setattr(reads, "RACY_NS", 10**18)  # every file counts as just changed
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


def test_a_read_that_failed_is_tried_again(
    statuses: Path,
    trusting_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    petrova_inprocess: Petrova,
) -> None:
    """A failure may be the disk's (EIO), not the file's: it is never served from the
    cache, the next run reads the file again."""
    from petrova.fleet import readers

    contract = statuses / "workspace" / "beta-hq" / ".petrova" / "contract.yaml"
    contract.write_text("slug: [unclosed\n")
    tried: list[str] = []
    real = readers.read_contract

    def counting(path: Path, catalogue: object) -> reads.ContractRead:
        tried.append(path.parent.parent.name)
        return real(path, catalogue)  # type: ignore[arg-type]

    monkeypatch.setattr(readers, "read_contract", counting)
    env = {**EPOCH, "PETROVA_CACHE_DIR": str(trusting_cache)}
    for _ in range(2):
        run = petrova_inprocess(*snapshot_args(statuses), env=env)
        assert "CONTRACT_UNREADABLE" in run.stdout
        _forget_memo(trusting_cache)
    assert tried == ["alpha-hq", "beta-hq", "beta-hq"]  # alpha-hq's came from the cache
