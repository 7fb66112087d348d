"""The dashboards' side, proved with the dashboards' own tools (docs/CONSUMERS.md).

TypeScript's compiler checks the generated zod module and the sample contract test;
zod 4 in node parses the fixtures and the snapshots a dashboard will meet (before any
repo migrated, with an integration the module does not know, with fields petrova has
not added yet) and refuses a broken one; Ajv 2020 with its defaults compiles the
consumer copy of the catalogue and agrees with petrova on every contract of the
examples corpus. The tools come from the npm registry (`make node-deps`, exact versions
in tests/node/package-lock.json). Without node the module skips and says so; with node
but without the packages it fails and names the command.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from petrova import models
from petrova.documents import schemas
from petrova.documents.catalogue import Catalogue, load_catalogue
from petrova.documents.contract import load_contract_bytes
from petrova.documents.schemas import consumer_catalogue_schema
from petrova.errors import PetrovaError, YamlInvalid
from petrova.files.yaml_strict import parse_yaml
from petrova.fleet.artefacts import _zod_bytes
from tests.catalogue_edits import rename_integration
from tests.conftest import CATALOGUE, ROOT

NODE_DIR = ROOT / "tests" / "node"
MODULE = ROOT / "contracts" / "snapshot.zod.ts"
SAMPLE = ROOT / "docs" / "consumers" / "snapshot.contract.test.ts"
FIXTURES = ROOT / "contracts" / "fixtures"
CONSUMER_CATALOGUE = ROOT / "contracts" / "contract.consumer.schema.json"
NODE = shutil.which("node")
TIMEOUT = 300  # against a hung tool only; never an assertion about speed

pytestmark = pytest.mark.skipif(
    NODE is None,
    reason="node not found: the consumers' checks (tsc, zod, Ajv) need node 20+ "
    "and `make node-deps`",
)


def _tool(name: str) -> Path:
    path = NODE_DIR / "node_modules" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make node-deps` (npm ci in tests/node)")
    return path


def _run(
    args: list[str], *, cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


class RunStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["sync", "probe", "snapshot"]
    outcome: Literal["ok", "failed"] | None = None
    seconds: float = Field(ge=0)


class RunRecord(BaseModel):
    """A field a later petrova may add: the kinds of field the models use, nested."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    started_at: datetime
    day: date
    complete: bool
    steps: list[RunStep]
    counts: dict[str, int] = {}


class SnapshotWithRun(models.Snapshot):
    run: RunRecord | None = None


def _module_with_a_new_field(catalogue: Catalogue) -> bytes:
    """The zod module as `contracts generate` writes it once the document model gains
    ``run``: the field flows through the production path with no edit to the generator."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schemas, "Snapshot", SnapshotWithRun)
        return _zod_bytes(catalogue)


def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def _snapshots() -> dict[str, Any]:
    """Every snapshot a dashboard may meet, by name; the broken ones are named ``broken-*``."""
    with_cells = _fixture("snapshot-with-integrations.json")
    before = copy.deepcopy(with_cells)
    for row in before["rows"]:
        row.pop("integrations", None)
        row["contract_sha"] = None
    before["totals"]["migrated"] = 0
    fifth = copy.deepcopy(with_cells)
    fifth["integration_ids"].append("eva")
    for row in fifth["rows"]:
        if "integrations" in row:
            row["integrations"]["eva"] = {
                "status": "pending",
                "applicability": "optional",
                "declared": None,
                "observed": None,
                "last_verified_at": None,
                "review_by": None,
            }
    renamed = copy.deepcopy(with_cells)  # the catalogue renamed lore_cairnet to rocky
    renamed["integration_ids"] = [
        "rocky" if i == "lore_cairnet" else i for i in renamed["integration_ids"]
    ]
    for row in renamed["rows"]:
        if "integrations" in row:
            row["integrations"]["rocky"] = row["integrations"].pop("lore_cairnet")
    later = copy.deepcopy(with_cells)  # a later 1.x petrova added fields everywhere
    later["schema_version"] = "1.4"
    later["run"] = {"started_at": "2026-11-26T06:55:00Z", "complete": True}
    later["rows"][0]["overrides"] = []
    # (not "history": 1.0 has it now, with its own shape)
    next(iter(later["rows"][0]["integrations"].values()))["streak_days"] = [{"outcome": "ok"}]
    cases: dict[str, Any] = {
        "with-integrations": with_cells,
        "all-statuses": _fixture("snapshot-all-statuses.json"),
        "before-migration": before,
        "fifth-integration": fifth,
        "renamed-integration": renamed,
        "later-1x": later,
    }
    broken = {
        "broken-row-without-slug": ("rows", 0, "slug"),
        "broken-without-generated-at": ("generated_at",),
        "broken-cell-without-status": ("rows", 0, "integrations", "ares", "status"),
    }
    for name, path in broken.items():
        doc = copy.deepcopy(with_cells)
        parent: Any = doc
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]
        cases[name] = doc
    bad_status = copy.deepcopy(fifth)
    bad_status["rows"][0]["integrations"]["eva"]["status"] = "green"
    cases["broken-unknown-cell-status"] = bad_status
    major = copy.deepcopy(with_cells)
    major["schema_version"] = "2.0"
    cases["broken-major-2"] = major
    return cases


def _runs() -> dict[str, Any]:
    run = {
        "started_at": "2026-11-26T06:55:00Z",
        "day": "2026-11-26",
        "complete": True,
        "steps": [
            {"name": "sync", "outcome": "ok", "seconds": 1.5},
            {"name": "probe", "seconds": 0},
        ],
        "counts": {"repos": 7},
    }
    doc = _fixture("snapshot-with-integrations.json")
    negative = copy.deepcopy(run)
    negative["steps"][0]["seconds"] = -1
    unknown_step = copy.deepcopy(run)
    unknown_step["steps"][1]["name"] = "nap"
    return {
        "run:none": doc,
        "run:recorded": doc | {"run": run},
        "run:null": doc | {"run": None},
        "broken-run:negative-seconds": doc | {"run": negative},
        "broken-run:unknown-step": doc | {"run": unknown_step},
        "broken-run:not-an-object": doc | {"run": "yesterday"},
    }


# --- the contracts corpus: petrova's verdict against Ajv's --------------------------------


def _corpus_files() -> list[Path]:
    examples = sorted((ROOT / "tests" / "examples" / "contract").rglob("*.yaml"))
    others = [
        ROOT / ".petrova" / "contract.yaml",
        ROOT / "tests" / "fixtures" / "fleet" / ".petrova" / "contract.yaml",
    ]
    return examples + others + sorted(FIXTURES.rglob("contract.yaml"))


def _mutations(name: str, data: dict[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """Edits a person might make to a valid contract, some valid and most not."""
    out: dict[str, Any] = {}

    def edit(label: str, change: Any) -> None:
        doc = copy.deepcopy(data)
        change(doc)
        out[f"{name}+{label}"] = doc

    cells = data["integrations"]
    first = next(iter(cells))
    edit("no-committers", lambda d: d.pop("contract_committers", None))
    edit("all-pending", lambda d: d.update(integrations={i: {"status": "pending"} for i in cells}))
    edit("no-slug", lambda d: d.pop("slug"))
    edit("schema-version-2", lambda d: d.update(schema_version=2))
    edit("extra-top-key", lambda d: d.update(owner="me"))
    edit("unknown-integration", lambda d: d["integrations"].update(eva={"status": "pending"}))
    edit("bad-status", lambda d: d["integrations"][first].update(status="done"))
    edit("wired-no-evidence", lambda d: d["integrations"].update({first: {"status": "wired"}}))
    edit(
        "na-no-review",
        lambda d: d["integrations"].update(
            {first: {"status": "not_applicable", "not_applicable_reason": "x"}}
        ),
    )
    for integration in catalogue.integrations:
        for legacy in integration.legacy_ids:  # petrova refuses an old id beside its new one
            if legacy in cells:
                edit(
                    f"{legacy}-beside-{integration.id}",
                    lambda d, old=legacy, new=integration.id: d["integrations"].update(
                        {new: d["integrations"][old]}
                    ),
                )
        if integration.id not in cells:
            continue
        required = {f.name: "x" for f in integration.fields if f.required}
        edit(
            f"{integration.id}-wired-strings",
            lambda d, i=integration.id, ev=required: d["integrations"].update(
                {i: {"status": "wired", "evidence": ev}}
            ),
        )
        edit(
            f"{integration.id}-evidence-extra",
            lambda d, i=integration.id, ev=required: d["integrations"].update(
                {i: {"status": "wired", "evidence": {**ev, "unheard_of": 1}}}
            ),
        )
    return out


def _petrova_accepts(data: Any, catalogue: Catalogue, name: str) -> bool:
    raw = yaml.safe_dump(data, sort_keys=False).encode()
    try:
        load_contract_bytes(raw, catalogue, display=name)
    except PetrovaError:
        return False
    return True


def _contract_cases(
    catalogue: Catalogue, schema: dict[str, Any], tag: str
) -> tuple[list[dict[str, Any]], dict[str, bool]]:
    """(Ajv jobs, petrova's verdicts) for every contract that is valid YAML."""
    documents: dict[str, Any] = {}
    for path in _corpus_files():
        name = f"{tag}:{path.relative_to(ROOT)}"
        try:
            data = parse_yaml(
                path.read_text(), name, string_keys=catalogue.contract_keys.strings
            ).data
        except YamlInvalid:
            continue  # a YAML problem (a duplicate key) is not a question for a schema
        documents[name] = data
        if isinstance(data, dict) and isinstance(data.get("integrations"), dict):
            documents |= _mutations(name, data, catalogue)
    text = json.dumps(schema)
    jobs = [{"name": n, "schema": text, "data": d} for n, d in documents.items()]
    return jobs, {n: _petrova_accepts(d, catalogue, n) for n, d in documents.items()}


@dataclass(frozen=True)
class Consumer:
    project: Path
    report: dict[str, Any]
    petrova: dict[str, bool]
    tsc: subprocess.CompletedProcess[str]
    sample: subprocess.CompletedProcess[str]


SOURCES = ("snapshot.zod.ts", "snapshot.contract.test.ts", "with-run.zod.ts")


@pytest.fixture(scope="module")
def consumer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consumer]:
    """A dashboard repo laid out as hubble's, with the module and fixtures vendored; the
    tools run once for the whole module (one tsc, one node for every parse and schema)."""
    tsc = _tool(".bin/tsc")
    project = tmp_path_factory.mktemp("dashboard")
    lib = project / "src" / "lib" / "petrova"
    (lib / "fixtures").mkdir(parents=True)
    shutil.copy(MODULE, lib / "snapshot.zod.ts")
    shutil.copy(SAMPLE, lib / "snapshot.contract.test.ts")
    for fixture in FIXTURES.glob("*.json"):
        shutil.copy(fixture, lib / "fixtures" / fixture.name)
    catalogue = load_catalogue(CATALOGUE)
    (lib / "with-run.zod.ts").write_bytes(_module_with_a_new_field(catalogue))
    (project / "node_modules").symlink_to(_tool(""))
    checked = _run(
        [str(tsc), "--strict", "--noEmit", "--exactOptionalPropertyTypes",
         "--noUncheckedIndexedAccess", "--isolatedModules", "--esModuleInterop", "--skipLibCheck",
         "--module", "esnext", "--moduleResolution", "bundler", "--target", "es2022",
         "--types", "node", *(str(lib / f) for f in SOURCES)],
        cwd=project,
    )  # fmt: skip

    renamed = load_catalogue(
        rename_integration(CATALOGUE, "lore_cairnet", "rocky", project / "renamed.schema.json")
    )
    jobs, verdicts = _contract_cases(
        catalogue, json.loads(CONSUMER_CATALOGUE.read_text()), "shipped"
    )
    more_jobs, more = _contract_cases(renamed, consumer_catalogue_schema(renamed), "renamed")
    build = project / "build"
    job = {
        "transpile": [
            [str(lib / "snapshot.zod.ts"), str(build / "snapshot.zod.js")],
            [str(lib / "snapshot.contract.test.ts"), str(build / "snapshot.contract.test.js")],
            [str(lib / "with-run.zod.ts"), str(build / "with-run.zod.js")],
        ],
        "modules": {
            "shipped": str(build / "snapshot.zod.js"),
            "with-run": str(build / "with-run.zod.js"),
        },
        "snapshots": {n: ["shipped", d] for n, d in _snapshots().items()}
        | {n: ["with-run", d] for n, d in _runs().items()},
        "compile": {
            "contract.consumer": json.loads(CONSUMER_CATALOGUE.read_text()),
            "contract.consumer (renamed)": consumer_catalogue_schema(renamed),
            "contract (the catalogue itself)": catalogue.schema,
            "snapshot": json.loads((ROOT / "contracts" / "snapshot.schema.json").read_text()),
        },
        "validate": jobs + more_jobs,
    }
    ran = _run(
        [str(NODE), str(NODE_DIR / "consumer_checks.cjs")], cwd=project, stdin=json.dumps(job)
    )
    assert ran.returncode == 0, ran.stderr
    sample = _run(
        [str(NODE), "--test", "--test-reporter=tap", "build/snapshot.contract.test.js"], cwd=project
    )
    yield Consumer(project, json.loads(ran.stdout), verdicts | more, checked, sample)


def test_typescript_strict_accepts_the_module_and_the_sample_test(consumer: Consumer) -> None:
    assert consumer.tsc.returncode == 0, consumer.tsc.stdout + consumer.tsc.stderr


def test_the_sample_contract_test_passes_against_the_vendored_fixtures(consumer: Consumer) -> None:
    out = consumer.sample.stdout
    assert consumer.sample.returncode == 0, out + consumer.sample.stderr
    assert "# pass 5" in out and "# fail 0" in out, out


@pytest.mark.parametrize(
    "name",
    [
        "with-integrations",
        "all-statuses",
        "before-migration",
        "fifth-integration",
        "renamed-integration",
        "later-1x",
    ],
)
def test_zod_parses_what_a_dashboard_will_meet_and_keeps_every_key(
    consumer: Consumer, name: str
) -> None:
    parsed = consumer.report["snapshots"][name]
    assert parsed["ok"], parsed.get("issues")
    # kept, not stripped: hubble stores what it parsed, and verify-endpoint wants it all back
    assert parsed["data"] == _snapshots()[name]


def test_a_field_added_to_a_model_reaches_the_module(consumer: Consumer) -> None:
    text = (consumer.project / "src/lib/petrova/with-run.zod.ts").read_text()
    assert "run: RunRecordSchema.nullable().optional()," in text
    assert text.index("export const RunStepSchema") < text.index("export const RunRecordSchema")
    report = consumer.report["snapshots"]
    for name in ("run:none", "run:recorded", "run:null"):
        assert report[name]["ok"], report[name]
        assert report[name]["data"] == _runs()[name]
    assert [i["path"] for i in report["broken-run:negative-seconds"]["issues"]] == [
        ["run", "steps", 0, "seconds"]
    ]
    assert [i["path"] for i in report["broken-run:unknown-step"]["issues"]] == [
        ["run", "steps", 1, "name"]
    ]
    assert not report["broken-run:not-an-object"]["ok"]


def test_an_unknown_integration_is_kept_as_a_cell(consumer: Consumer) -> None:
    rows = consumer.report["snapshots"]["fifth-integration"]["data"]["rows"]
    cells = [row["integrations"]["eva"] for row in rows if "integrations" in row]
    assert cells and all(c["status"] == "pending" for c in cells)


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("broken-row-without-slug", ["rows", 0, "slug"]),
        ("broken-without-generated-at", ["generated_at"]),
        ("broken-cell-without-status", ["rows", 0, "integrations", "ares", "status"]),
        ("broken-unknown-cell-status", ["rows", 0, "integrations", "eva", "status"]),
        ("broken-major-2", ["schema_version"]),
    ],
)
def test_zod_refuses_a_broken_snapshot_at_the_field(
    consumer: Consumer, name: str, path: list[Any]
) -> None:
    parsed = consumer.report["snapshots"][name]
    assert not parsed["ok"]
    assert [i["path"] for i in parsed["issues"]] == [path]


def test_ajv_defaults_compile_the_consumer_catalogue_and_the_snapshot_schema(
    consumer: Consumer,
) -> None:
    compiled = consumer.report["compile"]
    for name in ("contract.consumer", "contract.consumer (renamed)", "snapshot"):
        assert compiled[name] == {"ok": True, "error": None, "warnings": []}, name
    # why the copy exists: the catalogue's own x- keywords fail Ajv's strict default
    assert not compiled["contract (the catalogue itself)"]["ok"]
    assert "unknown keyword" in compiled["contract (the catalogue itself)"]["error"]


def test_ajv_and_petrova_agree_on_every_contract_of_the_corpus(consumer: Consumer) -> None:
    ajv = consumer.report["validate"]
    assert set(ajv) == set(consumer.petrova)
    disagree = {n: (consumer.petrova[n], ajv[n]) for n in ajv if ajv[n] != consumer.petrova[n]}
    assert disagree == {}
    # the corpus says both yes and no, under both catalogues (a legacy id is accepted)
    for tag in ("shipped", "renamed"):
        verdicts = [v for n, v in consumer.petrova.items() if n.startswith(tag + ":")]
        assert len(verdicts) > 50 and True in verdicts and False in verdicts
    assert consumer.petrova["renamed:contracts/fixtures/spine/.petrova/contract.yaml"]
