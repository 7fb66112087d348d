"""``petrova render`` and ``petrova snapshot --format html``: files, errors, nothing lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from petrova.documents.catalogue import load_catalogue
from petrova.models import FleetSnapshot, Snapshot
from petrova.render.html import render_html
from tests.conftest import CATALOGUE, ROOT, Fleet, Petrova

ALL_STATUSES = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"
TITLES = {i.id: i.title for i in load_catalogue(CATALOGUE).integrations}
EPOCH = {"SOURCE_DATE_EPOCH": "1795676400"}  # 2026-11-26T07:00:00Z
OLD_PAGE = b"<!DOCTYPE html><title>yesterday</title>\n"


def expected_page(path: Path = ALL_STATUSES) -> bytes:
    snapshot = FleetSnapshot.from_model(Snapshot.model_validate_json(path.read_bytes()))
    return render_html(snapshot, titles=TITLES)


def test_render_writes_the_page_atomically_and_says_so(petrova: Petrova, tmp_path: Path) -> None:
    out = tmp_path / "fleet.html"
    run = petrova("render", str(ALL_STATUSES), "-o", str(out))
    assert run.exit_code == 0, run.stderr
    assert run.stdout == ""
    assert out.read_bytes() == expected_page()
    assert run.stderr == (f"create {out}: 3 repos, 2 migrated, generated 2026-11-26T07:00:00Z\n")
    again = petrova("render", str(ALL_STATUSES), "-o", str(out))
    assert again.exit_code == 0
    assert again.stderr.startswith(f"identical {out}:")
    assert [p.name for p in tmp_path.iterdir()] == ["fleet.html"]  # no temp file left


def test_render_without_output_writes_the_page_to_stdout(petrova: Petrova) -> None:
    run = petrova("render", str(ALL_STATUSES))
    assert run.exit_code == 0, run.stderr
    assert run.stdout_bytes == expected_page()
    assert run.stderr == ""


def test_snapshot_format_html_is_the_render_of_snapshot_json(
    petrova: Petrova, fleet: Fleet
) -> None:
    as_json = fleet.root / "fleet.json"
    as_html = fleet.root / "fleet.html"
    rendered = fleet.root / "rendered.html"
    run = petrova("snapshot", *fleet.args("-o", str(as_json)), env=EPOCH)
    assert run.exit_code == 0, run.stderr
    run = petrova("snapshot", *fleet.args("--format", "html", "-o", str(as_html)), env=EPOCH)
    assert run.exit_code == 0, run.stderr
    run = petrova("render", str(as_json), "-o", str(rendered))
    assert run.exit_code == 0, run.stderr
    assert as_html.read_bytes() == rendered.read_bytes() == expected_page(as_json)
    assert b"LORE+CAIRNET" in as_html.read_bytes()


def test_render_uses_the_titles_of_the_catalogue_given(petrova: Petrova, tmp_path: Path) -> None:
    schema = json.loads(CATALOGUE.read_text())
    schema["$defs"]["integration_crumb"]["title"] = "Crumb <cards>"
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(json.dumps(schema))
    run = petrova("render", str(ALL_STATUSES), "--catalogue", str(catalogue))
    assert run.exit_code == 0, run.stderr
    assert ">Crumb &lt;cards&gt;</th>" in run.stdout


def test_an_archived_snapshot_renders_after_the_catalogue_renamed_an_integration(
    petrova: Petrova, tmp_path: Path
) -> None:
    """The catalogue lost 'lore_cairnet' since; the old snapshot is still a snapshot."""
    data = json.loads(ALL_STATUSES.read_text())
    data["integration_ids"] = ["ares", "traceo", "crumb", "old_lore"]
    for row in data["rows"]:
        if "integrations" in row:
            row["integrations"]["old_lore"] = row["integrations"].pop("lore_cairnet")
    source = tmp_path / "archived.json"
    source.write_text(json.dumps(data))
    run = petrova("render", str(source))
    assert run.exit_code == 0, run.stderr
    assert '<th scope="col" class="integration">old_lore</th>' in run.stdout
    assert ">CRUMB</th>" in run.stdout


# --- bad input: exit 2, a stable code, the spot, and nothing written ---------------------


def _render_fails(
    petrova: Petrova, tmp_path: Path, source: Path, code: str, *, keep_old: bool = True
) -> str:
    out = tmp_path / "out" / "fleet.html"
    out.parent.mkdir(exist_ok=True)
    if keep_old:
        out.write_bytes(OLD_PAGE)
    before = sorted(p.name for p in out.parent.iterdir())
    run = petrova("render", str(source), "-o", str(out))
    assert run.exit_code == 2, run.stderr
    assert run.stderr.startswith(f"petrova: {code}: "), run.stderr
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == before
    if keep_old:
        assert out.read_bytes() == OLD_PAGE
    return run.stderr


def test_a_missing_snapshot_file_is_named(petrova: Petrova, tmp_path: Path) -> None:
    source = tmp_path / "nope.json"
    err = _render_fails(petrova, tmp_path, source, "SNAPSHOT_UNREADABLE")
    assert f"{source}: snapshot file not found" in err
    (tmp_path / "out" / "fleet.html").unlink()
    _render_fails(petrova, tmp_path, source, "SNAPSHOT_UNREADABLE", keep_old=False)
    assert not (tmp_path / "out" / "fleet.html").exists()


def test_a_directory_is_not_a_snapshot(petrova: Petrova, tmp_path: Path) -> None:
    err = _render_fails(petrova, tmp_path, tmp_path, "SNAPSHOT_UNREADABLE")
    assert "is a directory" in err


@pytest.mark.parametrize(
    ("text", "spot", "says"),
    [
        ("", ":1:1: ", "not valid JSON"),
        ("<html></html>", ":1:1: ", "not valid JSON"),
        ('{"a": 1, "a": 2}', ": ", "duplicate key 'a'"),
        ('{"a": NaN}', ": ", "NaN is not a JSON number"),
    ],
)
def test_text_that_is_not_json_gets_line_and_column(
    petrova: Petrova, tmp_path: Path, text: str, spot: str, says: str
) -> None:
    source = tmp_path / "fleet.json"
    source.write_text(text)
    err = _render_fails(petrova, tmp_path, source, "SNAPSHOT_UNREADABLE")
    assert f"{source}{spot}" in err
    assert says in err


# Where the standard library's JSON reader puts a syntax error, and how it words it,
# differ between interpreters (3.13 names a trailing comma at the comma, 3.12 the bracket
# after it): petrova passes on the reader's own line, column and words, so the
# expectation is read from the running interpreter's json module, not written down.
@pytest.mark.parametrize(
    "text",
    [
        '{\n  "rows": [1,\n  ]\n}\n',
        '{\n  "rows": {"a": 1,\n  }\n}\n',
        '{\n  "rows": [1 2]\n}\n',
        '{\n  "generator": "petrova\n}\n',
    ],
)
def test_a_json_syntax_error_is_located_where_the_json_reader_finds_it(
    petrova: Petrova, tmp_path: Path, text: str
) -> None:
    with pytest.raises(json.JSONDecodeError) as reader:
        json.loads(text)
    source = tmp_path / "fleet.json"
    source.write_text(text)
    err = _render_fails(petrova, tmp_path, source, "SNAPSHOT_UNREADABLE")
    where = f"{source}:{reader.value.lineno}:{reader.value.colno}: "
    assert f"{where}not valid JSON: {reader.value.msg}" in err
    assert 2 <= reader.value.lineno <= 3  # the reader finds the mistake, not the file's end


def test_bytes_that_are_not_utf8_name_the_line(petrova: Petrova, tmp_path: Path) -> None:
    source = tmp_path / "fleet.json"
    source.write_bytes(b'{\n"generator": "\xff"\n}')
    err = _render_fails(petrova, tmp_path, source, "SNAPSHOT_UNREADABLE")
    assert f"{source}:2: byte 16 is not valid UTF-8" in err


def _broken(tmp_path: Path, change: Any) -> Path:
    data = json.loads(ALL_STATUSES.read_text())
    change(data)
    source = tmp_path / "fleet.json"
    source.write_text(json.dumps(data, indent=2))
    return source


@pytest.mark.parametrize(
    ("change", "spot", "says"),
    [
        (lambda d: d["rows"][1].update(tier="two"), ":135:15: rows[1].tier: ", "'two' is not of"),
        (
            lambda d: d["rows"][0]["integrations"].pop("crumb"),
            ":25:23: rows[0].integrations: ",
            "'crumb' is a required property",
        ),
        (
            lambda d: d["rows"][2].update(integrations=None),
            ":193:23: rows[2].integrations: ",
            "None is not of type 'object'",
        ),
        (
            lambda d: d["rows"][0]["integrations"]["ares"].update(status="green"),
            ":27:21: rows[0].integrations.ares.status: ",
            "'green' is not one of",
        ),
        (lambda d: d.pop("totals"), ":1:1: ", "'totals' is a required property"),
        (lambda d: d.update(schema_version="2.0"), ":2:21: schema_version: ", "'1.0' was expected"),
    ],
)
def test_json_that_is_not_a_snapshot_names_the_field_and_line(
    petrova: Petrova, tmp_path: Path, change: Any, spot: str, says: str
) -> None:
    source = _broken(tmp_path, change)
    err = _render_fails(petrova, tmp_path, source, "SNAPSHOT_INVALID")
    assert f"{source}{spot}" in err, err
    assert says in err


def test_a_json_array_is_not_a_snapshot(petrova: Petrova, tmp_path: Path) -> None:
    source = tmp_path / "fleet.json"
    source.write_text("[]")
    err = _render_fails(petrova, tmp_path, source, "SNAPSHOT_INVALID")
    assert "expected a JSON object (a snapshot), found list" in err


def test_many_problems_are_listed_with_a_count(petrova: Petrova, tmp_path: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        d["rows"] = [{**d["rows"][2], "tier": "x"} for _ in range(30)]

    err = _render_fails(petrova, tmp_path, _broken(tmp_path, change), "SNAPSHOT_INVALID")
    assert "(10 more problem(s) not shown)" in err
    assert err.count("is not of type 'integer'") == 20


def test_an_output_directory_that_does_not_exist_is_refused(
    petrova: Petrova, tmp_path: Path
) -> None:
    out = tmp_path / "missing" / "fleet.html"
    run = petrova("render", str(ALL_STATUSES), "-o", str(out))
    assert run.exit_code == 2
    assert run.stderr.startswith("petrova: OUTPUT_UNWRITABLE: ")
    assert not out.parent.exists()


def test_render_is_listed_with_help(petrova: Petrova) -> None:
    run = petrova("--help")
    assert "render" in run.stdout
    run = petrova("render", "--help")
    assert run.exit_code == 0
    assert "self-contained HTML page" in run.stdout
    assert "--catalogue" in run.stdout


def test_a_copied_fixture_renders_the_same_bytes_wherever_it_lives(
    petrova: Petrova, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.json"
    shutil.copy(ALL_STATUSES, copy)
    assert petrova("render", str(copy)).stdout_bytes == expected_page()


def test_nesting_too_deep_and_unreadable_paths_are_refused(
    petrova: Petrova, tmp_path: Path
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    assert "nesting is too deep to read" in _render_fails(
        petrova, tmp_path, deep, "SNAPSHOT_UNREADABLE"
    )
    too_long = tmp_path / ("x" * 300)
    assert "cannot read the snapshot: File name too long" in _render_fails(
        petrova, tmp_path, too_long, "SNAPSHOT_UNREADABLE"
    )


def test_malformed_integration_ids_are_reported_where_they_are(
    petrova: Petrova, tmp_path: Path
) -> None:
    source = _broken(tmp_path, lambda d: d.update(integration_ids="ares"))
    err = _render_fails(petrova, tmp_path, source, "SNAPSHOT_INVALID")
    assert f"{source}:5:22: integration_ids: 'ares' is not of type 'array'" in err


def test_json_that_yaml_cannot_read_still_names_the_field(petrova: Petrova, tmp_path: Path) -> None:
    """Lines come from re-reading the JSON as YAML; U+0080 is JSON but not YAML."""
    source = _broken(tmp_path, lambda d: d.update(generator="\u0080", totals=None))
    source.write_text(source.read_text().replace("\\u0080", "\u0080"))
    err = _render_fails(petrova, tmp_path, source, "SNAPSHOT_INVALID")
    assert f"{source}: totals: None is not of type 'object'" in err


def test_snapshot_html_without_a_readable_default_catalogue_shows_the_ids(
    petrova: Petrova, fleet: Fleet, tmp_path: Path
) -> None:
    """Reporters see only the snapshot: with --catalogue given and the default one broken,
    the page still renders, with ids for column headers."""
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    run = petrova(
        "snapshot",
        *fleet.args("--catalogue", str(fleet.catalogue), "--format", "html"),
        env={**EPOCH, "PETROVA_CATALOGUE": str(broken)},
    )
    assert run.exit_code == 0, run.stderr
    assert 'class="integration">lore_cairnet</th>' in run.stdout
