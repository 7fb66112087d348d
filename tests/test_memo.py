"""The snapshot memo: a second run with unchanged inputs reuses the finished snapshot,
and never gives a document other than the one a run without any cache gives."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from petrova.fleet import memo, reads
from petrova.fleet.gather import gather_fleet
from tests.conftest import ROOT, Petrova, snapshot_args

FIXTURE = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"
NOW = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)


def _epoch(when: datetime) -> dict[str, str]:
    return {"SOURCE_DATE_EPOCH": str(int(when.timestamp()))}


@pytest.fixture
def cache(trusting_cache: Path) -> Path:
    return trusting_cache


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the snapshots actually built (memo misses), in-process."""
    made: list[int] = []
    real = memo.gather_fleet

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(memo, "gather_fleet", counting)
    return made


def _memo_file(cache: Path) -> Path:
    [found] = cache.glob("snapshot-*.memo")
    return found


def test_a_second_run_reuses_the_snapshot(
    statuses: Path, cache: Path, builds: list[int], petrova_inprocess: Petrova
) -> None:
    env = {**_epoch(NOW), "PETROVA_CACHE_DIR": str(cache)}
    first = petrova_inprocess(*snapshot_args(statuses), env=env)
    second = petrova_inprocess(*snapshot_args(statuses), env=env)
    assert first.exit_code == second.exit_code == 0, first.stderr
    assert builds == [1]
    assert second.stdout_bytes == first.stdout_bytes == FIXTURE.read_bytes()
    assert _memo_file(cache).is_file()


def test_a_reused_snapshot_carries_the_new_time(
    statuses: Path, cache: Path, builds: list[int], petrova_inprocess: Petrova
) -> None:
    env = {"PETROVA_CACHE_DIR": str(cache)}
    petrova_inprocess(*snapshot_args(statuses), env={**env, **_epoch(NOW)})
    later = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    run = petrova_inprocess(*snapshot_args(statuses), env={**env, **_epoch(later)})
    assert builds == [1]
    assert json.loads(run.stdout)["generated_at"] == "2026-11-26T09:30:00Z"
    expected = FIXTURE.read_bytes().replace(b"2026-11-26T07:00:00Z", b"2026-11-26T09:30:00Z", 1)
    assert run.stdout_bytes == expected


# The deadlines in the all-statuses fleet: the latest one before NOW (alpha-hq's
# lore_cairnet went stale), the next ones after it (72 h after the probes of 06:00 and
# 06:30), and the registry's review date for beta-hq's traceo.
AROUND_DEADLINES = [
    datetime(2026, 11, 25, 6, 0, 0, tzinfo=UTC),
    datetime(2026, 11, 25, 6, 0, 1, tzinfo=UTC),
    datetime(2026, 11, 29, 6, 0, 0, tzinfo=UTC),
    datetime(2026, 11, 29, 6, 0, 1, tzinfo=UTC),
    datetime(2026, 11, 29, 6, 30, 1, tzinfo=UTC),
    datetime(2027, 2, 1, 23, 59, 59, tzinfo=UTC),
    datetime(2027, 2, 2, 0, 0, 0, tzinfo=UTC),
]


@pytest.mark.parametrize("when", AROUND_DEADLINES, ids=lambda d: d.isoformat())
def test_around_every_deadline_the_memo_agrees_with_no_cache(
    statuses: Path, cache: Path, when: datetime, petrova_inprocess: Petrova
) -> None:
    env = {"PETROVA_CACHE_DIR": str(cache)}
    petrova_inprocess(*snapshot_args(statuses), env={**env, **_epoch(NOW)})  # memoised at NOW
    cached = petrova_inprocess(*snapshot_args(statuses), env={**env, **_epoch(when)})
    fresh = petrova_inprocess(
        *snapshot_args(statuses), env={"PETROVA_CACHE": "off", **_epoch(when)}
    )
    assert fresh.exit_code == cached.exit_code == 0, fresh.stderr
    assert cached.stdout_bytes == fresh.stdout_bytes
    assert cached.stderr == fresh.stderr


def test_the_memo_lasts_exactly_until_the_next_deadline(
    statuses: Path, cache: Path, builds: list[int], petrova_inprocess: Petrova
) -> None:
    env = {"PETROVA_CACHE_DIR": str(cache)}
    petrova_inprocess(*snapshot_args(statuses), env={**env, **_epoch(NOW)})
    last = datetime(2026, 11, 29, 6, 0, 0, tzinfo=UTC)  # alpha-hq's ares: 72 h, not over
    assert (
        "stale"
        not in json.loads(
            petrova_inprocess(*snapshot_args(statuses), env={**env, **_epoch(last)}).stdout
        )["rows"][0]["integrations"]["ares"].values()
    )
    assert builds == [1]
    over = datetime(2026, 11, 29, 6, 0, 1, tzinfo=UTC)
    run = petrova_inprocess(*snapshot_args(statuses), env={**env, **_epoch(over)})
    assert builds == [1, 1]
    assert json.loads(run.stdout)["rows"][0]["integrations"]["ares"]["status"] == "stale"


Edit = Callable[[Path], None]


def _touch_ledger(root: Path) -> None:
    ledger = root / "state" / "alpha-hq.yaml"
    data = json.loads(ledger.read_bytes())
    data["integrations"]["ares"]["history"][-1]["detail"] = "looked again"
    data.pop("seal", None)
    ledger.write_text(json.dumps(data, indent=2))


def _drop_ledger(root: Path) -> None:
    (root / "state" / "beta-hq.yaml").unlink()


def _edit_contract(root: Path) -> None:
    contract = root / "workspace" / "beta-hq" / ".petrova" / "contract.yaml"
    contract.write_text(contract.read_text() + "# reviewed\n")


def _edit_registry(root: Path) -> None:
    registry = root / "registry.yaml"
    registry.write_text(registry.read_text() + "# reviewed\n")


def _link_contract_folder(root: Path) -> None:
    folder = root / "workspace" / "beta-hq" / ".petrova"
    folder.rename(root / "elsewhere")
    folder.symlink_to(root / "elsewhere")


@pytest.mark.parametrize(
    ("edit", "shows"),
    [
        (_touch_ledger, False),  # a probe's detail is not in the snapshot
        (_drop_ledger, True),
        (_edit_contract, True),  # its sha no longer matches the pin
        (_edit_registry, False),
        (_link_contract_folder, True),  # UNSAFE_PATH
    ],
)
def test_any_changed_input_makes_it_again(
    statuses: Path,
    cache: Path,
    builds: list[int],
    edit: Edit,
    shows: bool,
    petrova_inprocess: Petrova,
) -> None:
    env = {**_epoch(NOW), "PETROVA_CACHE_DIR": str(cache)}
    petrova_inprocess(*snapshot_args(statuses), env=env)
    edit(statuses)
    cached = petrova_inprocess(*snapshot_args(statuses), env=env)
    assert builds == [1, 1]
    fresh = petrova_inprocess(*snapshot_args(statuses), env={**_epoch(NOW), "PETROVA_CACHE": "off"})
    assert cached.stdout_bytes == fresh.stdout_bytes
    assert (cached.stdout_bytes != FIXTURE.read_bytes()) is shows


def test_other_formats_from_the_memo(
    statuses: Path, cache: Path, builds: list[int], petrova_inprocess: Petrova
) -> None:
    env = {**_epoch(NOW), "PETROVA_CACHE_DIR": str(cache)}
    petrova_inprocess(*snapshot_args(statuses), env=env)
    formats = ("table", "markdown", "html")
    cached = {
        f: petrova_inprocess(*snapshot_args(statuses, "--format", f), env=env) for f in formats
    }
    assert builds == [1]
    for fmt in formats:
        fresh = petrova_inprocess(
            *snapshot_args(statuses, "--format", fmt), env={**_epoch(NOW), "PETROVA_CACHE": "off"}
        )
        assert cached[fmt].exit_code == 0, cached[fmt].stderr
        assert cached[fmt].stdout_bytes == fresh.stdout_bytes


def test_warnings_and_strict_from_the_memo(
    statuses: Path, cache: Path, builds: list[int], petrova_inprocess: Petrova
) -> None:
    _drop_ledger(statuses)
    env = {**_epoch(NOW), "PETROVA_CACHE_DIR": str(cache)}
    first = petrova_inprocess(*snapshot_args(statuses, "--strict"), env=env)
    second = petrova_inprocess(*snapshot_args(statuses, "--strict"), env=env)
    assert builds == [1]
    assert first.exit_code == second.exit_code == 1
    assert "warning: STATE_MISSING [beta-hq]" in second.stderr
    assert second.stderr == first.stderr


def test_fresh_files_are_not_memoised(
    statuses: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, petrova_inprocess: Petrova
) -> None:
    """A file changed within the file system's timestamp resolution could change again
    without its identity changing: no memo is kept then."""
    monkeypatch.setattr(reads, "RACY_NS", 10**18)
    cache = tmp_path / "cache"
    env = {**_epoch(NOW), "PETROVA_CACHE_DIR": str(cache)}
    assert petrova_inprocess(*snapshot_args(statuses), env=env).exit_code == 0
    assert not list(cache.glob("snapshot-*.memo"))


def test_a_corrupt_memo_is_ignored(statuses: Path, cache: Path, petrova_inprocess: Petrova) -> None:
    env = {**_epoch(NOW), "PETROVA_CACHE_DIR": str(cache)}
    petrova_inprocess(*snapshot_args(statuses), env=env)
    memo_file = _memo_file(cache)
    header, _, body = memo_file.read_bytes().partition(b"\n")
    for broken in (
        b"\x00 not a memo",
        header,  # no document
        header.replace(b'"format":1', b'"format":"1"') + b"\n" + body,
        header + b"\n" + body.replace(b'"status": "ok"', b'"status": "od"'),
    ):
        memo_file.write_bytes(broken)
        run = petrova_inprocess(*snapshot_args(statuses), env=env)
        assert run.exit_code == 0, run.stderr
        assert run.stdout_bytes == FIXTURE.read_bytes()


def test_no_memo_with_the_cache_off(
    statuses: Path, cache: Path, petrova_subprocess: Petrova
) -> None:
    env = {**_epoch(NOW), "PETROVA_CACHE_DIR": str(cache), "PETROVA_CACHE": "off"}
    assert (
        petrova_subprocess(*snapshot_args(statuses), env=env).stdout_bytes == FIXTURE.read_bytes()
    )
    assert not cache.exists()


def test_the_console_script_reuses_it_too(
    statuses: Path, tmp_path: Path, petrova_subprocess: Petrova
) -> None:
    """Without the test's trust in fresh files: the files are made old enough first."""
    import os
    import time

    cache = tmp_path / "cache"
    env = {**_epoch(NOW), "PETROVA_CACHE_DIR": str(cache)}
    time.sleep(reads.RACY_NS / 1e9 + 0.1)  # ctime cannot be set back; let it age
    first = petrova_subprocess(
        *snapshot_args(statuses, "-o", str(tmp_path / "fleet.json")), env=env
    )
    assert first.exit_code == 0, first.stderr
    stamp = _memo_file(cache).stat().st_mtime_ns
    os.utime(tmp_path / "fleet.json", ns=(0, 0))
    second = petrova_subprocess(
        *snapshot_args(statuses, "-o", str(tmp_path / "fleet.json")), env=env
    )
    assert second.exit_code == 0, second.stderr
    assert _memo_file(cache).stat().st_mtime_ns == stamp  # used, not written again
    assert (tmp_path / "fleet.json").read_bytes() == FIXTURE.read_bytes()


def test_a_changed_input_limit_makes_it_again(
    statuses: Path, cache: Path, builds: list[int], petrova_inprocess: Petrova
) -> None:
    """A file refused under one limit is read under another: no cached answer may say
    otherwise (the read cache's included)."""
    env = {**_epoch(NOW), "PETROVA_CACHE_DIR": str(cache)}
    strict = petrova_inprocess(
        *snapshot_args(statuses), env={**env, "PETROVA_MAX_INPUT_BYTES": "1500"}
    )
    assert "over the 1500-byte limit" in strict.stdout  # alpha-hq's ledger
    relaxed = petrova_inprocess(*snapshot_args(statuses), env=env)
    assert builds == [1, 1]
    assert relaxed.stdout_bytes == FIXTURE.read_bytes()


def test_paths_given_another_way_make_it_again(
    statuses: Path,
    cache: Path,
    builds: list[int],
    monkeypatch: pytest.MonkeyPatch,
    petrova_inprocess: Petrova,
) -> None:
    """Warnings quote paths as they were given: the same files named another way are
    another snapshot."""
    (statuses / "state" / "beta-hq.yaml").unlink()  # a warning that quotes the path
    env = {**_epoch(NOW), "PETROVA_CACHE_DIR": str(cache)}
    absolute = petrova_inprocess(*snapshot_args(statuses), env=env)
    monkeypatch.chdir(statuses)
    relative = petrova_inprocess(*snapshot_args(Path()), env=env)
    assert builds == [1, 1]
    assert f"{statuses}/state/beta-hq.yaml" in absolute.stdout
    assert '"state/beta-hq.yaml does not exist yet' in relative.stdout


def test_the_cache_keeps_the_most_recent_setups_only(
    statuses: Path, cache: Path, builds: list[int], petrova_inprocess: Petrova
) -> None:
    """One memo per setup (here: per --stale-after); beyond eight, the oldest go."""
    env = {**_epoch(NOW), "PETROVA_CACHE_DIR": str(cache)}
    for hours in range(72, 82):
        run = petrova_inprocess(*snapshot_args(statuses, "--stale-after", f"{hours}h"), env=env)
        assert run.exit_code == 0, run.stderr
    assert len(list(cache.glob("snapshot-*.memo"))) == 8
    assert len(list(cache.glob("reads-*.json"))) == 1  # one state folder and workspace
    assert len(builds) == 10
    petrova_inprocess(*snapshot_args(statuses, "--stale-after", "81h"), env=env)
    assert len(builds) == 10  # the newest setup's memo is there
    petrova_inprocess(*snapshot_args(statuses, "--stale-after", "72h"), env=env)
    assert len(builds) == 11  # the oldest one's was dropped


def test_a_long_stale_after_gives_the_snapshot_with_the_cache_on(
    statuses: Path, cache: Path, petrova_inprocess: Petrova
) -> None:
    """`--stale-after 9999999d` (27,000 years: "never stale") is a valid duration."""
    args = snapshot_args(statuses, "--stale-after", "9999999d")
    fresh = petrova_inprocess(*args, env={**_epoch(NOW), "PETROVA_CACHE": "off"})
    cached = petrova_inprocess(*args, env={**_epoch(NOW), "PETROVA_CACHE_DIR": str(cache)})
    assert fresh.exit_code == 0, fresh.stderr
    assert cached.exit_code == 0, cached.stderr
    assert cached.stdout_bytes == fresh.stdout_bytes


def test_a_registry_edited_during_a_run_is_not_memoised_under_its_old_content(
    statuses: Path,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    petrova_inprocess: Petrova,
) -> None:
    registry = statuses / "registry.yaml"
    before = registry.read_text()
    during = before.replace("tier: 3", "tier: 4", 1)  # gamma-hq's row shows it
    assert during != before
    real = gather_fleet
    edits: list[int] = []

    def edited_meanwhile(*args: object, **kwargs: object) -> object:
        if not edits:  # someone saves the registry just after the memo hashed it
            registry.write_text(during)
            edits.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(memo, "gather_fleet", edited_meanwhile)
    env = {**_epoch(NOW), "PETROVA_CACHE_DIR": str(cache)}
    assert petrova_inprocess(*snapshot_args(statuses), env=env).exit_code == 0
    registry.write_text(before)  # the edit is undone (git checkout, a reverted pull)
    cached = petrova_inprocess(*snapshot_args(statuses), env=env)
    fresh = petrova_inprocess(*snapshot_args(statuses), env={**_epoch(NOW), "PETROVA_CACHE": "off"})
    assert fresh.stdout_bytes == FIXTURE.read_bytes()
    assert cached.stdout_bytes == fresh.stdout_bytes
