"""The daily run's metrics file: the fleet's figures and the run's own, in one text file.

``petrova daily --metrics FILE`` ends here. The run is described by a small typed value
(:class:`~petrova.render.metrics.DailyRun`) built from what the daily knows of its
steps, so that a fuller run record can fill the same value later without the metrics
changing shape. The fleet's figures come from the snapshot the run wrote (read back and
checked like any snapshot file); when that cannot be read, the file still says how the
run went.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from petrova.documents.catalogue import Catalogue
from petrova.documents.snapshot_file import read_snapshot
from petrova.errors import PetrovaError
from petrova.files.disk import read_input
from petrova.models import FleetSnapshot
from petrova.render.metrics import DailyRun, StepRun, last_success_in, textfile


def daily_run(
    steps: Sequence[tuple[str, int, float]],
    *,
    started: datetime,
    ok: bool,
    previous_success: datetime | None,
) -> DailyRun:
    """The run from its steps (name, exit code, seconds) in order; it ended when the last
    step did. ``previous_success`` is kept when this run failed."""
    runs = [StepRun(name, code, seconds) for name, code, seconds in steps]
    ended = started + timedelta(seconds=sum(s.seconds for s in runs))
    return DailyRun(
        started=started,
        ended=ended,
        ok=ok,
        steps=runs,
        last_success=ended if ok else previous_success,
    )


def previous_success(metrics_file: Path) -> datetime | None:
    """The last success an earlier run wrote into ``metrics_file``, if it says one."""
    try:
        text = read_input(metrics_file).decode("utf-8", "replace")
    except (OSError, PetrovaError):
        return None
    return last_success_in(text)


def written_snapshot(path: Path, catalogue: Catalogue | None) -> FleetSnapshot | None:
    """The snapshot the run wrote, checked; ``None`` when there is none to trust."""
    if catalogue is None:
        return None
    with contextlib.suppress(PetrovaError, OSError):
        return read_snapshot(path, catalogue).snapshot
    return None


def metrics_bytes(snapshot: FleetSnapshot | None, run: DailyRun) -> bytes:
    """The file's bytes: Prometheus text format, which the textfile collector reads."""
    return textfile(snapshot, run)
