"""petrova's clocks: its own (``--now``, ``SOURCE_DATE_EPOCH``) and the machine's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from petrova import clock
from petrova.errors import UsageError
from tests.conftest import FIXED_NOW


def test_the_suite_pins_both_clocks() -> None:
    assert clock.now() == FIXED_NOW
    assert clock.machine_now() == FIXED_NOW


def test_neither_now_nor_source_date_epoch_moves_the_machine_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert clock.now() == datetime(1970, 1, 1, tzinfo=UTC)
    assert clock.now("2030-01-01T00:00:00Z") == datetime(2030, 1, 1, tzinfo=UTC)
    assert clock.machine_now() == FIXED_NOW


@pytest.mark.real_clock
def test_without_the_suites_pin_the_machine_clock_is_the_systems() -> None:
    # Whatever day the machine thinks it is (faketime included): the two agree.
    assert abs(clock.machine_now() - datetime.now(UTC)) < timedelta(minutes=1)
    assert abs(clock.now() - clock.system_now()) < timedelta(minutes=1)


def test_a_machine_clock_that_is_not_a_number_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(clock.MACHINE_ENV, "yesterday")
    with pytest.raises(UsageError, match="PETROVA_MACHINE_EPOCH='yesterday' is not a whole"):
        clock.machine_now()
