"""The generated files consumers depend on: schemas, the zod module, contract-test fixtures.

One function computes every artefact's bytes from the code and the shipped data;
``petrova contracts generate`` writes them and ``--check`` compares, so a
checked-in artefact can never silently drift from what the code produces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from petrova.documents.catalogue import CATALOGUE_RELPATH, Catalogue, load_catalogue
from petrova.documents.schemas import (
    consumer_catalogue_schema,
    open_snapshot_schema,
    registry_schema,
    snapshot_schema,
    state_schema,
)
from petrova.files.disk import write_atomic
from petrova.fleet.snapshot import make_snapshot
from petrova.render.zod import zod_module

#: The fixtures' clock, so that they are byte-for-byte reproducible.
FIXTURE_TIME = datetime(2026, 11, 26, 7, 0, 0, tzinfo=UTC)
ALL_STATUSES_DIR = Path("contracts") / "fixtures" / "all-statuses"
#: A frozen copy of the spine fleet as it was when the dashboards adopted the shape. The
#: consumers' fixture is made from it, never from the live registry.yaml, so that an
#: operator's registry PR (a pin, a new repo) never changes what the dashboards test
#: against: only a change of code or catalogue does.
SPINE_DIR = Path("contracts") / "fixtures" / "spine"


@dataclass(frozen=True)
class Artefact:
    path: Path  # relative to the project root
    data: bytes


def _schema_bytes(schema: dict[str, Any]) -> bytes:
    return (json.dumps(schema, indent=2, ensure_ascii=False) + "\n").encode()


#: The dashboards' names for two of the models (their zod schemas predate petrova's).
ZOD_NAMES = {"SnapshotCell": "IntegrationCell", "SnapshotRow": "StatusRow"}


def _zod_bytes(catalogue: Catalogue) -> bytes:
    """The snapshot as zod 4 schemas, from the same models and catalogue as its JSON Schema."""
    return zod_module(
        open_snapshot_schema(catalogue),
        document="Snapshot",
        renamed=ZOD_NAMES,
        integrations=[(i.id, i.title) for i in catalogue.integrations],
    ).encode()


def _fixture(
    registry_path: Path, catalogue: Catalogue, *, state_dir: Path, workspace: Path | None
) -> bytes:
    """A snapshot made by the very pipeline ``petrova snapshot`` runs, at the fixtures' time."""
    made = make_snapshot(
        registry_path,
        catalogue,
        state_dir=state_dir,
        workspace=workspace,
        now=FIXTURE_TIME,
        stale_after=timedelta(hours=72),
    )
    return made.data


def artefacts(root: Path) -> list[Artefact]:
    catalogue = load_catalogue(root / CATALOGUE_RELPATH)
    contracts = Path("contracts")
    fixtures = contracts / "fixtures"
    statuses = root / ALL_STATUSES_DIR
    return [
        Artefact(contracts / "snapshot.schema.json", _schema_bytes(snapshot_schema(catalogue))),
        Artefact(contracts / "registry.schema.json", _schema_bytes(registry_schema(catalogue))),
        Artefact(contracts / "state.schema.json", _schema_bytes(state_schema(catalogue))),
        Artefact(
            contracts / "contract.consumer.schema.json",
            _schema_bytes(consumer_catalogue_schema(catalogue)),
        ),
        Artefact(contracts / "snapshot.zod.ts", _zod_bytes(catalogue)),
        Artefact(
            fixtures / "snapshot-with-integrations.json",
            _fixture(
                root / SPINE_DIR / "registry.yaml",
                catalogue,
                state_dir=root / SPINE_DIR / "state",
                workspace=None,
            ),
        ),
        Artefact(
            fixtures / "snapshot-all-statuses.json",
            _fixture(
                statuses / "registry.yaml",
                catalogue,
                state_dir=statuses / "state",
                workspace=statuses / "workspace",
            ),
        ),
    ]


def write_artefacts(root: Path, *, check: bool) -> list[tuple[Path, str]]:
    """Write (or with ``check``, only compare) every artefact; returns (path, verb) pairs.

    Verbs: ``identical``, ``create``, ``update``, or under ``check`` ``stale``/``missing``.
    """
    results: list[tuple[Path, str]] = []
    for artefact in artefacts(root):
        target = root / artefact.path
        if check:
            try:
                current = target.read_bytes()
            except FileNotFoundError:
                results.append((artefact.path, "missing"))
                continue
            results.append((artefact.path, "identical" if current == artefact.data else "stale"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            results.append((artefact.path, write_atomic(target, artefact.data)))
    return results
