"""The page as bytes: structure, escaping and determinism, read back with html.parser."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from petrova.documents.catalogue import load_catalogue
from petrova.models import CELL_STATUSES, FleetSnapshot, Gate, Snapshot
from petrova.render.html import (
    STATUS_COLOURS,
    STATUS_LABELS,
    UNMIGRATED,
    catalogue_titles,
    embed_json,
    gate_progress,
    render_html,
    web_url,
)
from petrova.render.metrics import DailyRun, StepRun
from tests.conftest import CATALOGUE, ROOT

ALL_STATUSES = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"
SHIPPED = ROOT / "contracts" / "fixtures" / "snapshot-with-integrations.json"
TITLES = {i.id: i.title for i in load_catalogue(CATALOGUE).integrations}
EVIL = "\"'><script>alert(1)</script><img src=x onerror=alert(2)>&amp;</title>"


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def walk(self) -> list[Element]:
        found = [self]
        for child in self.children:
            if isinstance(child, Element):
                found += child.walk()
        return found

    def find_all(self, tag: str, **attrs: str) -> list[Element]:
        def matches(e: Element) -> bool:
            if e.tag != tag:
                return False
            for key, value in attrs.items():
                name = key.rstrip("_").replace("_", "-")
                have = e.attrs.get(name)
                if have is None:
                    return False
                if name == "class" and value not in have.split():
                    return False
                if name != "class" and have != value:
                    return False
            return True

        return [e for e in self.walk() if matches(e)]

    def one(self, tag: str, **attrs: str) -> Element:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]


VOID = {"meta", "br", "img", "input", "link", "hr", "source", "wbr"}


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(page: bytes) -> Element:
    builder = TreeBuilder()
    builder.feed(page.decode("utf-8"))
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


def load(path: Path) -> FleetSnapshot:
    return typed(json.loads(path.read_bytes()))


def typed(data: Any) -> FleetSnapshot:
    """A snapshot document as the typed result the page renders (as `render` reads it)."""
    return FleetSnapshot.from_model(Snapshot.model_validate(data))


def hostile_snapshot() -> FleetSnapshot:
    data: dict[str, Any] = json.loads(ALL_STATUSES.read_text())
    data["generator"] = EVIL
    data["generated_at"] = EVIL
    data["rows"][0]["slug"] = EVIL
    data["rows"][0]["default_branch"] = EVIL + "\u2028\u2029"
    data["rows"][0]["url"] = "https://example.org/" + EVIL
    data["rows"][1]["url"] = "javascript:alert(3)"
    data["rows"][2]["url"] = "data:text/html,<script>alert(4)</script>"
    data["rows"][0]["integrations"]["ares"]["last_verified_at"] = EVIL
    data["warnings"] = [{"slug": EVIL, "code": "STATE_UNREADABLE", "message": EVIL + "</script>"}]
    return typed(data)


def rows(doc: Element) -> list[Element]:
    return doc.find_all("tr", class_="repo")


# --- structure ------------------------------------------------------------------------


def test_rows_are_grouped_by_tier_then_role_keeping_registry_order() -> None:
    doc = parse(render_html(load(SHIPPED), titles=TITLES))
    table = doc.one("table", id="fleet")
    bodies = table.find_all("tbody")
    assert [b.attrs["data-tier"] for b in bodies] == ["1", "2", "3"]  # one per tier
    for body in bodies:  # each tier's rows, led by its own header row
        first = next(c for c in body.children if isinstance(c, Element))
        assert "group" in first.attrs["class"]
        assert all(r.attrs["data-tier"] == body.attrs["data-tier"] for r in body.find_all("tr"))
    assert table.one("caption").text.startswith("Repos by rollout tier.")
    order = [
        ("group", e.attrs["data-tier"]) if "group" in e.attrs["class"] else e.attrs["data-slug"]
        for body in bodies
        for e in body.find_all("tr")
    ]
    assert order == [
        ("group", "1"),
        "petrova-codes",
        ("group", "2"),
        "kahn-hq",
        "stratt-hq",
        ("group", "3"),
        "traceo-mcp-server",  # production before experimental, then registry order
        "grace-hq",
        "choco-hq",
        "devarno-cloud",
    ]
    groups = table.find_all("tr", class_="group")
    assert [g.text for g in groups] == [
        "Tier 1 · 1 repo, 1 migrated",
        "Tier 2 · 2 repos, 0 migrated",
        "Tier 3 · 4 repos, 0 migrated",
    ]


def test_a_row_shows_slug_link_role_profile_sha_and_one_dot_per_integration() -> None:
    doc = parse(render_html(load(SHIPPED), titles=TITLES))
    row = doc.one("tr", data_slug="petrova-codes")
    link = row.one("a")
    assert link.attrs["href"] == "https://github.com/devarno-cloud/petrova-codes"
    assert link.attrs["rel"] == "noopener noreferrer"
    assert link.text == "petrova-codes"
    cells = [c for c in row.children if isinstance(c, Element)]
    assert [c.text for c in cells[2:5]] == ["control-plane", "strict", "5442defd6b27"]
    assert row.one("th").text == "petrova-codesmain"  # CSS puts ", " before the branch
    dots = row.find_all("details", class_="ind")
    assert [d.attrs["data-status"] for d in dots] == ["not_applicable"] * 4
    assert [d.one("span", class_="label").text for d in dots] == ["n/a"] * 4
    assert dots[0].one("summary").text == "ARES (CI/CD): n/anot applicable"
    assert dots[0].one("span", class_="label").attrs["aria-hidden"] == "true"  # "n/a" is shown,
    assert dots[0].find_all("span", class_="vh")[1].text == "not applicable"  # this is said
    facts = dots[0].one("dl").find_all("dt"), dots[0].one("dl").find_all("dd")
    assert [(t.text, d.text) for t, d in zip(*facts, strict=True)] == [
        ("applicability", "not applicable"),
        ("declared", "not applicable"),
        ("observed", "nothing observed"),
        ("last verified", "never"),
        ("review by", "2027-04-30"),
    ]
    # each thing said once: no tooltip, no label repeating the text
    assert not [e for e in row.walk() if "title" in e.attrs or "aria-label" in e.attrs]


def test_headers_take_the_catalogue_titles_and_fall_back_to_ids() -> None:
    snapshot = load(SHIPPED)
    with_titles = parse(render_html(snapshot, titles=TITLES))
    headers = [th.text for th in with_titles.find_all("th", class_="integration")]
    assert headers == ["ARES (CI/CD)", "Traceo", "CRUMB", "LORE+CAIRNET"]
    assert not [th for th in with_titles.find_all("th") if "title" in th.attrs]
    without = parse(render_html(snapshot))
    assert [th.text for th in without.find_all("th", class_="integration")] == list(
        snapshot.integration_ids
    )
    assert catalogue_titles(["ares", "rocky"], {"ares": "ARES"}) == {
        "ares": "ARES",
        "rocky": "rocky",
    }


def test_unmigrated_rows_get_as_many_greyed_dots_as_there_are_integrations() -> None:
    doc = parse(render_html(load(ALL_STATUSES)))
    row = doc.one("tr", data_slug="gamma-hq")
    assert "unmigrated" in row.attrs["class"]
    dots = row.find_all("span", class_="ind")
    assert [d.attrs["data-status"] for d in dots] == [UNMIGRATED] * 4
    assert {d.one("span", class_="label").text for d in dots} == {"not migrated"}
    assert row.find_all("td", class_="none")[0].text == "not migrated"


def test_every_status_is_labelled_and_needs_human_is_marked() -> None:
    doc = parse(render_html(load(ALL_STATUSES)))
    table = doc.one("table")
    dots = table.find_all("details", class_="ind") + table.find_all("span", class_="ind")
    seen = {d.attrs["data-status"]: d.one("span", class_="label").text for d in dots}
    assert seen == {s: STATUS_LABELS[s] for s in (*CELL_STATUSES, UNMIGRATED)}
    flags = doc.one("table").find_all("span", class_="flag")
    assert len(flags) == 1
    alpha = doc.one("tr", data_slug="alpha-hq")
    crumb = alpha.find_all("td", class_="cell")[2]
    assert crumb.find_all("span", class_="flag") == flags
    assert crumb.one("summary").text == "crumb: failingneeds human"  # no titles: the ids
    assert "Needs a human:" in crumb.one("p", class_="hint").text
    assert "needs_human" in alpha.attrs["data-statuses"].split()


def test_legend_totals_warnings_and_generation_time_are_shown() -> None:
    snapshot = load(ALL_STATUSES)
    doc = parse(render_html(snapshot))
    legend = doc.one("ul", id="legend")
    assert [li.attrs["data-status"] for li in legend.find_all("li")] == [
        "failing",
        "degraded",
        "stale",
        "pending",
        "ok",
        "not_applicable",
        UNMIGRATED,
        "needs_human",
    ]
    counts = {
        li.attrs["data-status"]: li.one("span", class_="count").text for li in legend.find_all("li")
    }
    assert counts["pending"] == "(2)"
    assert counts[UNMIGRATED] == "(4)"
    assert counts["needs_human"] == "(1)"
    totals = {
        li.attrs["data-total"]: li.one("b").text for li in doc.one("ul", id="totals").find_all("li")
    }
    assert totals == {
        "repos": "3",
        "migrated": "2",
        "not migrated": "1",
        "need a human": "1",
        "warnings": "0",
    }
    assert doc.one("time", id="generated").attrs["datetime"] == "2026-11-26T07:00:00Z"
    assert doc.one("title").text == "petrova fleet · 2026-11-26T07:00:00Z"
    assert doc.one("section", id="warnings").text == "WarningsNo warnings."
    data = json.loads(ALL_STATUSES.read_text())
    data["warnings"] = [
        {"slug": "beta-hq", "code": "STATE_MISSING", "message": "state/beta-hq.yaml is missing"},
        {"slug": None, "code": "REVIEW_OVERDUE", "message": "registry.yaml:3: overdue"},
    ]
    items = parse(render_html(typed(data))).one("section", id="warnings")
    assert [li.text for li in items.find_all("li")] == [
        "STATE_MISSING [beta-hq] state/beta-hq.yaml is missing",
        "REVIEW_OVERDUE [-] registry.yaml:3: overdue",
    ]
    assert items.one("h2").text == "Warnings (2)"


def test_the_embedded_snapshot_is_the_snapshot() -> None:
    snapshot = load(ALL_STATUSES)
    doc = parse(render_html(snapshot))
    block = doc.one("script", id="snapshot-data")
    assert block.attrs["type"] == "application/json"
    assert typed(json.loads(block.text)) == snapshot


# --- escaping -------------------------------------------------------------------------


def test_hostile_strings_stay_text_everywhere() -> None:
    page = render_html(hostile_snapshot())
    doc = parse(page)
    tags = {e.tag for e in doc.walk()}
    assert "img" not in tags
    assert len(doc.find_all("script")) == 2
    assert not [e for e in doc.walk() for a in e.attrs if a.startswith("on")]
    assert b"<script>alert" not in page
    assert b"<img" not in page
    row = doc.find_all("tr", class_="repo")[0]
    assert row.attrs["data-slug"] == EVIL
    assert row.one("a").text == EVIL
    assert row.one("a").attrs["href"] == "https://example.org/" + EVIL
    assert row.one("span", class_="branch").text == EVIL + "\u2028\u2029"
    assert EVIL in row.find_all("details", class_="ind")[0].one("dl").text
    assert doc.one("title").text == "petrova fleet · " + EVIL
    assert doc.one("time", id="generated").attrs["datetime"] == EVIL
    assert doc.one("section", id="warnings").one("li").text == (
        f"STATE_UNREADABLE [{EVIL}] {EVIL}</script>"
    )


def test_only_http_urls_become_links() -> None:
    doc = parse(render_html(hostile_snapshot()))
    hrefs = [a.attrs["href"] for a in doc.find_all("a")]
    assert hrefs == ["https://example.org/" + EVIL]
    beta = doc.one("tr", data_slug="beta-hq")
    assert beta.find_all("a") == []
    assert beta.one("th").find_all("span")[0].text == "beta-hq"  # shown as text, no link
    assert web_url("HTTPS://example.org/x") == "HTTPS://example.org/x"
    assert web_url("http://example.org") == "http://example.org"
    bad_urls = ("javascript:alert(1)", "data:text/html,x", "//example.org", "https:/x", "")
    for bad in (*bad_urls, "x", "http://[::1"):
        assert web_url(bad) is None, bad


def test_embedded_json_cannot_close_its_script_or_break_lines() -> None:
    page = render_html(hostile_snapshot()).decode()
    start = page.index('<script type="application/json" id="snapshot-data">')
    block = page[start : page.index("</script>", start)]
    assert "<" not in block.split(">", 1)[1]
    assert ">" not in block.split(">", 1)[1]
    assert "&" not in block
    assert "\u2028" not in block
    assert "\u2029" not in block
    body = block.split(">", 1)[1]
    assert typed(json.loads(body)) == hostile_snapshot()
    assert embed_json({"a": "</script><!--\u2028&"}) == (
        '{"a":"\\u003c/script\\u003e\\u003c!--\\u2028\\u0026"}'
    )


def test_csp_allows_exactly_the_inline_style_and_script_by_hash() -> None:
    page = render_html(load(ALL_STATUSES)).decode()
    doc = parse(page.encode())
    csp = doc.one("meta", http_equiv="Content-Security-Policy").attrs["content"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["form-action"] == "'none'"

    def sha(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    style = re.search(r"<style>(.*?)</style>", page, re.S)
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    assert style is not None and script is not None
    assert directives["style-src"] == sha(style.group(1))
    assert directives["script-src"] == sha(script.group(1))
    assert " style=" not in page  # inline style attributes would be refused by the policy
    for colour in STATUS_COLOURS.values():
        assert colour in style.group(1)


def test_the_page_loads_nothing_from_anywhere() -> None:
    doc = parse(render_html(load(SHIPPED), titles=TITLES))
    for element in doc.walk():
        assert "src" not in element.attrs, element.tag
        if element.tag == "link":
            pytest.fail("the page must not link stylesheets or icons")
    assert {a.attrs["href"].split("/")[2] for a in doc.find_all("a")} == {"github.com"}
    assert "url(" not in doc.one("style").text
    assert "@import" not in doc.one("style").text


# --- determinism ----------------------------------------------------------------------


def test_same_snapshot_same_bytes() -> None:
    snapshot = load(ALL_STATUSES)
    first = render_html(snapshot, titles=TITLES)
    again = render_html(load(ALL_STATUSES), titles=TITLES)
    assert first == again
    assert first.startswith(b"<!DOCTYPE html>\n")
    assert first.endswith(b"</html>\n")
    changed = render_html(replace(snapshot, generated_at="2026-11-27T07:00:00Z"))
    assert changed != first


def test_non_ascii_text_survives_as_utf8() -> None:
    data = json.loads(ALL_STATUSES.read_text())
    data["warnings"] = [{"slug": None, "code": "X", "message": "Grüße — 東京 ✓"}]
    page = render_html(typed(data))
    assert b'<meta charset="utf-8">' in page
    assert "Grüße — 東京 ✓" in page.decode("utf-8")


# --- the trend ------------------------------------------------------------------------


def test_each_cell_lists_its_recent_outcomes_newest_first_as_text() -> None:
    data = json.loads(ALL_STATUSES.read_text())
    data["rows"][0]["integrations"]["traceo"]["history"][-1]["detail"] = EVIL
    doc = parse(render_html(typed(data), titles=TITLES))
    traceo = doc.one("tr", data_slug="alpha-hq").find_all("details", class_="ind")[1]
    items = traceo.one("ol", class_="hist").find_all("li")
    assert [li.text for li in items] == [
        f"2026-11-26 06:00 UTC degraded: {EVIL}",
        "2026-11-25 06:00 UTC failing: baseline bl-7 not found",
        "2026-11-24 06:00 UTC ok",
    ]
    crumb = doc.one("tr", data_slug="alpha-hq").find_all("details", class_="ind")[2]
    assert [li.text for li in crumb.one("ol", class_="hist").find_all("li")] == [
        "2026-11-26 06:00 UTC ok: cards built again",
        "2026-11-25 06:00 UTC failing: card build failed",
        "2026-11-21 06:00 UTC to 2026-11-24 06:00 UTC failing, 4 times",  # one run, one line
        "2026-11-20 06:00 UTC ok",
    ]
    strip = traceo.one("span", class_="strip")
    assert strip.attrs["aria-hidden"] == "true"  # for the eye; the list says it in words
    assert [i.attrs["class"] for i in strip.find_all("i")] == ["o-ok", "o-failing", "o-degraded"]
    assert "img" not in {e.tag for e in doc.walk()}
    beta = doc.one("tr", data_slug="beta-hq").find_all("details", class_="ind")[1]
    assert beta.find_all("span", class_="strip") == []
    assert beta.one("div", class_="pop").find_all("p")[0].text == "No probe outcome recorded yet."


def test_gate_progress_counts_whole_days_or_says_what_restarts_it() -> None:
    now = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    counting = Gate(
        tier=2,
        days=7,
        green=False,
        green_since="2026-11-23T06:00:00Z",
        green_at="2026-11-30T06:00:00Z",
        holds=(),
    )
    assert gate_progress(counting, now) == (3, "green at 2026-11-30 06:00 UTC at the earliest")
    green = replace(counting, green=True, green_since="2026-11-01T00:00:00Z")
    assert gate_progress(green, now) == (7, "window met")
    held = replace(counting, green_since=None, green_at=None)
    assert gate_progress(held, now) == (0, "the clock starts again once nothing holds the tier")
    data = json.loads(ALL_STATUSES.read_text())
    data["gates"][0] = {
        "tier": 2,
        "days": 7,
        "green": False,
        "green_since": "2026-11-23T06:00:00Z",
        "green_at": "2026-11-30T06:00:00Z",
        "holds": [],
    }
    doc = parse(render_html(typed(data)))
    gate = doc.one("li", data_tier="2")
    assert gate.one("progress").attrs == {"max": "7", "value": "3", "aria-hidden": "true"}
    assert gate.one("p", class_="progress").text.strip() == (
        "3 of 7 days green: green at 2026-11-30 06:00 UTC at the earliest"
    )


def test_the_last_daily_run_is_shown_when_known() -> None:
    snapshot = load(ALL_STATUSES)
    assert parse(render_html(snapshot)).find_all("section", id="daily") == []
    run = DailyRun(
        started=datetime(2026, 11, 26, 7, 0, tzinfo=UTC),
        ended=datetime(2026, 11, 26, 7, 2, 5, tzinfo=UTC),
        ok=False,
        steps=[StepRun("sync", 0, 100.0), StepRun("snapshot", 1, 25.0)],
        last_success=datetime(2026, 11, 25, 7, 1, tzinfo=UTC),
    )
    section = parse(render_html(snapshot, daily=run)).one("section", id="daily")
    assert section.one("p").text == (
        "Failed: started 2026-11-26 07:00 UTC, took 125 s; last success 2026-11-25 07:01 UTC."
    )
    rows = [
        [c.text for c in tr.children if isinstance(c, Element)] for tr in section.find_all("tr")
    ]
    assert rows == [
        ["Step", "Outcome", "Duration"],
        ["sync", "ok", "100 s"],
        ["snapshot", "failed (exit 1)", "25 s"],
    ]
