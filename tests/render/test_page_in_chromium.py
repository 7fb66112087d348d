"""The fleet page in real headless Chromium, asserted from the rendered DOM.

Chromium is driven over the DevTools protocol through ``--remote-debugging-pipe``
(file descriptors 3 and 4, NUL-separated JSON): no port to discover, no websocket
library, nothing listening on the network. One browser serves the whole session;
each test opens its own tab.

These tests never skip on their own: without Chromium they fail and say how to
install it (``make browser``). ``PETROVA_SKIP_BROWSER=1`` skips them on purpose.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from petrova.models import CELL_STATUSES
from petrova.render.html import STATUS_COLOURS, STATUS_LABELS, STATUS_SPOKEN, UNMIGRATED
from tests.conftest import ROOT, Fleet, run_inprocess

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "artifacts"
FIXED_EPOCH = "1764140400"  # 2025-11-26T07:00:00Z: the page's bytes do not depend on when
ALL_STATUSES = ROOT / "contracts" / "fixtures" / "snapshot-all-statuses.json"
CALL_TIMEOUT = 60.0  # protects against a hung browser; never an assertion about speed


def find_chromium() -> str | None:
    explicit = os.environ.get("PETROVA_CHROMIUM")
    if explicit:
        return shutil.which(explicit)
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


class CdpError(RuntimeError):
    pass


@dataclass
class Browser:
    """A headless Chromium and its DevTools pipe."""

    pid: int
    to_browser: int
    from_browser: int
    log: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    _buffer: bytes = b""
    _next_id: int = 0

    @classmethod
    def launch(cls, binary: str, workdir: Path) -> Browser:
        profile = workdir / "profile"
        profile.mkdir()
        log = workdir / "chromium.log"
        child_reads, we_write = os.pipe()
        we_read, child_writes = os.pipe()
        args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # The pipe protocol wants the browser's ends at fds 3 and 4. posix_spawn puts them
        # there without a shell (dash only knows single-digit fds) and without a
        # preexec_fn (not safe once threads exist). The sources are first moved above 9
        # so that no dup2 can overwrite the other.
        high_reads = fcntl.fcntl(child_reads, fcntl.F_DUPFD_CLOEXEC, 10)
        high_writes = fcntl.fcntl(child_writes, fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (child_reads, child_writes):
            os.close(fd)
        try:
            pid = os.posix_spawn(
                binary,
                [binary, *args],
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (
                        os.POSIX_SPAWN_OPEN,
                        1,
                        str(log),
                        os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                        0o644,
                    ),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                    (os.POSIX_SPAWN_DUP2, high_reads, 3),
                    (os.POSIX_SPAWN_DUP2, high_writes, 4),
                ],
                setsid=True,
            )
        finally:
            os.close(high_reads)
            os.close(high_writes)
        browser = cls(pid, we_write, we_read, log)
        try:
            browser.call("Browser.getVersion")
        except BaseException:
            browser.close()
            raise
        return browser

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CdpError("no answer from chromium; its log ends:\n" + self._log_tail())
            ready, _, _ = select.select([self.from_browser], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise CdpError("chromium closed the DevTools pipe; its log:\n" + self._log_tail())
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.to_browser, data) :]
        deadline = time.monotonic() + CALL_TIMEOUT
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise CdpError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self.events.append(answer)

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        deadline = time.monotonic() + CALL_TIMEOUT
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def open(self, url: str, *, width: int = 1400, height: int = 900) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, target, session)
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.events = [e for e in self.events if e.get("sessionId") != session]
        navigation = self.call("Page.navigate", {"url": url}, session=session)
        if navigation.get("errorText"):
            raise CdpError(f"cannot open {url}: {navigation['errorText']}")
        self.wait_for("Page.loadEventFired", session)
        page.eval("0")  # one round trip, so events sent during load are collected
        return page

    def close(self) -> None:
        with contextlib.suppress(CdpError, OSError):
            self.call("Browser.close")
        deadline = time.monotonic() + 15
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.killpg(self.pid, signal.SIGKILL)  # our own session, started above
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        for fd in (self.to_browser, self.from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)


@dataclass
class Page:
    browser: Browser
    target: str
    session: str

    def eval(self, expression: str) -> Any:
        result = self.browser.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _events(self, method: str) -> list[dict[str, Any]]:
        return [
            e["params"]
            for e in self.browser.events
            if e.get("method") == method and e.get("sessionId") == self.session
        ]

    def requests(self) -> list[str]:
        """Every URL the page asked for (documents, images, scripts, fetches, websockets)."""
        urls = [p["request"]["url"] for p in self._events("Network.requestWillBeSent")]
        urls += [p["url"] for p in self._events("Network.webSocketCreated")]
        return urls

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and browser-logged errors (CSP refusals)."""
        found = [str(p["entry"]) for p in self._events("Log.entryAdded")]
        found += [str(p) for p in self._events("Runtime.exceptionThrown")]
        found += [
            str(p["args"]) for p in self._events("Runtime.consoleAPICalled") if p["type"] == "error"
        ]
        return found

    def screenshot(self, path: Path) -> bytes:
        metrics = self.browser.call("Page.getLayoutMetrics", session=self.session)
        size = metrics["cssContentSize"]
        shot = self.browser.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            },
            session=self.session,
        )
        import base64

        data = base64.b64decode(shot["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    def close(self) -> None:
        self.browser.call("Target.closeTarget", {"targetId": self.target})


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if os.environ.get("PETROVA_SKIP_BROWSER", "") not in ("", "0"):
        pytest.skip("PETROVA_SKIP_BROWSER is set: browser tests skipped on purpose")
    binary = find_chromium()
    if binary is None:
        pytest.fail(
            "headless Chromium is needed for the browser tests and was not found on PATH. "
            "Run `make browser` (as root: apt-get update && apt-get install -y chromium), "
            "point PETROVA_CHROMIUM at a Chromium binary, or set PETROVA_SKIP_BROWSER=1 "
            "to skip these tests on purpose.",
            pytrace=False,
        )
    instance = Browser.launch(binary, tmp_path_factory.mktemp("chromium"))
    yield instance
    instance.close()


@pytest.fixture
def tab(browser: Browser) -> Iterator[list[Page]]:
    """Pages opened by a test, closed after it."""
    pages: list[Page] = []
    yield pages
    for page in pages:
        page.close()


class Tripwire:
    """A local HTTP server that serves given pages and counts every request it gets."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        self.hits: list[str] = []
        tripwire = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                tripwire.hits.append(self.path)
                body = tripwire.pages.get(self.path)
                self.send_response(200 if body is not None else 204)
                if body is not None:
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body is not None:
                    self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve(self, path: str, body: bytes) -> str:
        self.pages[path] = body
        return self.origin + path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def tripwire() -> Iterator[Tripwire]:
    server = Tripwire()
    yield server
    server.stop()


def open_page(browser: Browser, tab: list[Page], url: str) -> Page:
    page = browser.open(url)
    tab.append(page)
    return page


def shipped_fleet_page(fleet: Fleet) -> Path:
    """`petrova snapshot --format html` on the shipped registry, as `make snapshot` runs it."""
    out = fleet.root / "fleet.html"
    run = run_inprocess(
        "snapshot",
        *fleet.args("--format", "html", "-o", str(out)),
        env={"SOURCE_DATE_EPOCH": FIXED_EPOCH},
    )
    assert run.exit_code == 0, run.stderr
    return out


def all_statuses_page(tmp_path: Path) -> Path:
    out = tmp_path / "all-statuses.html"
    run = run_inprocess("render", str(ALL_STATUSES), "-o", str(out))
    assert run.exit_code == 0, run.stderr
    return out


INDICATORS = """
(function (selector) {
  // What a screen reader says of a node: its text, less what is aria-hidden.
  function spoken(node) {
    if (node.nodeType === 3) { return node.textContent; }
    if (node.nodeType !== 1 || node.getAttribute("aria-hidden") === "true") { return ""; }
    return Array.from(node.childNodes).map(spoken).join("");
  }
  return Array.from(document.querySelectorAll(selector)).map(function (e) {
    var dot = e.querySelector(".dot");
    var box = dot.getBoundingClientRect();
    var style = getComputedStyle(dot);
    return {
      status: e.dataset.status,
      label: e.querySelector(".label").innerText,
      colour: style.backgroundColor,
      ring: style.borderTopColor,
      said: spoken(e.querySelector("summary") || e),
      titles: e.querySelectorAll("[title]").length + (e.hasAttribute("title") ? 1 : 0),
      interactive: e.tagName === "DETAILS",
      visible: box.width > 0 && box.height > 0 && style.visibility === "visible"
    };
  });
})
"""


def details_text(page: Page, selector: str) -> list[str]:
    """Each disclosure's facts as "name: value; ...", then its other text (read even
    while it is closed)."""
    found: list[str] = page.eval(
        f"Array.from(document.querySelectorAll({json.dumps(selector)}))"
        ".map(function (d) { var pop = d.querySelector('.pop');"
        " var facts = Array.from(pop.querySelectorAll('dt')).map(function (dt) {"
        " return dt.textContent + ': ' + dt.nextElementSibling.textContent; }).join('; ');"
        " var rest = Array.from(pop.children).filter(function (c) { return c.tagName !== 'DL'; })"
        ".map(function (c) { return c.textContent; }).join(' ');"
        " return facts + ' | ' + rest; })"
    )
    return found


def indicators(page: Page, selector: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.eval(f"{INDICATORS}({json.dumps(selector)})")
    return found


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def channels(css: str) -> tuple[int, ...]:
    return tuple(int(x) for x in css.removeprefix("rgb(").removesuffix(")").split(","))


def visible_slugs(page: Page) -> list[str]:
    slugs: list[str] = page.eval(
        "Array.from(document.querySelectorAll('tr.repo'))"
        ".filter(function (r) { return r.offsetParent !== null; })"
        ".map(function (r) { return r.dataset.slug; })"
    )
    return slugs


def choose(page: Page, select_id: str, value: str) -> None:
    page.eval(
        f"(function () {{ var s = document.getElementById({json.dumps(select_id)}); "
        f"s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()"
    )


# --- the shipped fleet ------------------------------------------------------------------


def test_control_plane_row_shows_four_na_indicators(
    browser: Browser, tab: list[Page], fleet: Fleet
) -> None:
    page = open_page(browser, tab, shipped_fleet_page(fleet).as_uri())
    dots = indicators(page, 'tr[data-slug="petrova-codes"] td.cell .ind')
    assert len(dots) == 4
    for dot in dots:
        assert dot["status"] == "not_applicable"
        assert dot["label"] == "n/a"
        assert dot["colour"] == rgb(STATUS_COLOURS["not_applicable"])
        assert dot["visible"]
        assert dot["titles"] == 0  # said once, in words, not again in a tooltip
    assert [d["said"] for d in dots] == [
        "ARES (CI/CD): not applicable",  # shown as "n/a", said in words
        "Traceo: not applicable",
        "CRUMB: not applicable",
        "LORE+CAIRNET: not applicable",
    ]
    facts = details_text(page, 'tr[data-slug="petrova-codes"] td.cell details')
    assert facts[0] == (
        "applicability: not applicable; declared: not applicable; observed: nothing observed; "
        "last verified: never; review by: 2027-04-30 | No probe outcome recorded yet."
    )
    headers = page.eval(
        "Array.from(document.querySelectorAll('thead th.integration'))"
        ".map(function (th) { return th.innerText; })"
    )
    assert headers == ["ARES (CI/CD)", "Traceo", "CRUMB", "LORE+CAIRNET"]


def test_unmigrated_rows_show_four_greyed_dots(
    browser: Browser, tab: list[Page], fleet: Fleet
) -> None:
    page = open_page(browser, tab, shipped_fleet_page(fleet).as_uri())
    for slug in ("kahn-hq", "stratt-hq", "choco-hq", "devarno-cloud", "grace-hq"):
        dots = indicators(page, f'tr[data-slug="{slug}"] td.cell .ind')
        assert len(dots) == 4, slug
        for dot in dots:
            assert dot["status"] == UNMIGRATED
            assert dot["label"] == "not migrated"
            assert dot["visible"]
            red, green, blue = channels(dot["colour"])
            assert max(red, green, blue) - min(red, green, blue) <= 24  # grey, not a hue
            assert min(red, green, blue) >= 180  # light: greyed out


def test_shipped_fleet_page_makes_no_request_and_is_saved_as_a_screenshot(
    browser: Browser, tab: list[Page], fleet: Fleet
) -> None:
    url = shipped_fleet_page(fleet).as_uri()
    page = open_page(browser, tab, url)
    assert page.requests() == [url]
    assert page.problems() == []
    assert page.eval("document.title") == "petrova fleet · 2025-11-26T07:00:00Z"
    assert page.eval("document.getElementById('shown').innerText") == "7 of 7 repos shown"
    png = page.screenshot(ARTIFACTS / "fleet.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width == 1400
    assert height >= 600


# --- every status -----------------------------------------------------------------------


def test_every_status_has_its_colour_and_label(
    browser: Browser, tab: list[Page], tmp_path: Path
) -> None:
    url = all_statuses_page(tmp_path).as_uri()
    page = open_page(browser, tab, url)
    dots = indicators(page, "td.cell .ind")
    assert len(dots) == 12
    seen = {dot["status"] for dot in dots}
    assert seen == {*CELL_STATUSES, UNMIGRATED}
    for dot in dots:
        assert dot["visible"]
        assert dot["label"] == STATUS_LABELS[dot["status"]]
        assert dot["colour"] == rgb(STATUS_COLOURS[dot["status"]])
        spoken = STATUS_SPOKEN.get(dot["status"], STATUS_LABELS[dot["status"]])
        assert dot["said"].split(": ", 1)[1].startswith(spoken)
        assert dot["titles"] == 0
        assert dot["interactive"] == (dot["status"] != UNMIGRATED)
    colours = {dot["status"]: dot["colour"] for dot in dots}
    assert len(set(colours.values())) == len(colours)  # no two statuses look alike
    crumb = indicators(page, 'tr[data-slug="alpha-hq"] td.cell .ind')[2]
    assert crumb["status"] == "failing"
    assert crumb["said"] == "CRUMB: failingneeds human"
    text = details_text(page, 'tr[data-slug="alpha-hq"] td.cell details')[2]
    assert "; observed: failing;" in text
    assert "last verified: 2026-11-26 06:00 UTC" in text
    assert "review by" not in text  # nothing to review: no "review by: —"
    flags = page.eval(
        "Array.from(document.querySelectorAll('.flag'))"
        ".filter(function (f) { return f.closest('td') && f.offsetParent !== null; })"
        ".map(function (f) { return f.closest('tr').dataset.slug + ':' + f.innerText; })"
    )
    assert flags == ["alpha-hq:needs human"]
    assert page.requests() == [url]
    assert page.problems() == []
    page.screenshot(ARTIFACTS / "fleet-all-statuses.png")


def test_filtering_and_sorting_work_under_the_pages_own_policy(
    browser: Browser, tab: list[Page], tmp_path: Path
) -> None:
    page = open_page(browser, tab, all_statuses_page(tmp_path).as_uri())
    assert visible_slugs(page) == ["alpha-hq", "beta-hq", "gamma-hq"]
    choose(page, "filter-status", "failing")
    assert visible_slugs(page) == ["alpha-hq"]
    choose(page, "filter-status", "pending")
    assert visible_slugs(page) == ["beta-hq"]
    choose(page, "filter-status", UNMIGRATED)
    assert visible_slugs(page) == ["gamma-hq"]
    choose(page, "filter-status", "")
    choose(page, "filter-tier", "3")
    assert visible_slugs(page) == ["gamma-hq"]
    assert page.eval("document.getElementById('shown').innerText") == "1 of 3 repos shown"
    choose(page, "filter-tier", "")
    choose(page, "sort", "slug")
    assert visible_slugs(page) == ["alpha-hq", "beta-hq", "gamma-hq"]
    assert page.eval("document.querySelectorAll('tbody.tier:not([hidden])').length") == 0
    choose(page, "sort", "status")
    assert visible_slugs(page) == ["alpha-hq", "beta-hq", "gamma-hq"]  # failing, pending, none
    choose(page, "sort", "tier")
    assert page.eval("document.querySelectorAll('tbody.tier:not([hidden])').length") == 2
    tiers = page.eval(
        "Array.from(document.querySelectorAll('tbody.tier')).map(function (b) {"
        " return b.dataset.tier + ':' + Array.from(b.querySelectorAll('tr.repo'))"
        ".map(function (r) { return r.dataset.slug; }).join(','); })"
    )
    assert tiers == ["2:alpha-hq,beta-hq", "3:gamma-hq"]  # each row back in its tier
    assert page.problems() == []


# --- untrusted text ---------------------------------------------------------------------


def payload(tag: str, trip: str) -> str:
    """Markup that would run script, load from the tripwire or break out of an attribute
    or of the embedded JSON if it were not escaped. No whitespace: it must fit in a URL."""
    return (
        f'"\'></a></script><script>window.__pwned="{tag}";document.title="pwned"</script>'
        f'<img/src="{trip}/{tag}.png"/onerror="window.__pwned=\'{tag}\'">'
        f'<svg/onload="window.__pwned=\'{tag}\'"></svg><iframe/src="{trip}/{tag}.html"></iframe>'
    )


MARKER = "</script><script>window.__pwned="

NOTHING_RAN = """
(function () {
  return {
    pwned: typeof window.__pwned === "undefined" ? null : String(window.__pwned),
    title: document.title,
    foreign: document.querySelectorAll("img, svg, iframe, object, embed, link, base").length,
    scripts: document.scripts.length,
    handlers: Array.from(document.querySelectorAll("*")).filter(function (e) {
      return Array.from(e.attributes).some(function (a) { return /^on/i.test(a.name); });
    }).length
  };
})()
"""


def poisoned_fleet(fleet: Fleet, trip: str) -> dict[str, str]:
    """The shipped fleet with markup in every string an outsider controls."""
    url = "https://evil.example/" + payload("url", trip)
    # A branch name git itself would accept (no space, no colon, no "//"), markup and all:
    # the registry refuses any other, so the page must be safe with exactly these.
    branch = (
        'main"\'></a></script><script>window.__pwned="branch";document.title="pwned"'
        "</script><svg/onload=\"window.__pwned='branch'\"></svg>"
    )
    text = fleet.registry.read_text()
    text = text.replace(
        "    url: https://github.com/kahn-hq/kahn\n    default_branch: main\n",
        f"    url: {json.dumps(url)}\n    default_branch: {json.dumps(branch)}\n",
    )
    fleet.write("registry.yaml", text)
    contract = (fleet.root / ".petrova" / "contract.yaml").read_text()
    fleet.write(
        ".petrova/contract.yaml",
        contract.replace("slug: petrova-codes", f"slug: {json.dumps(payload('contract', trip))}"),
    )
    ledger = {"schema_version": 1, "slug": payload("ledger", trip), "integrations": {}}
    fleet.write("state/petrova-codes.yaml", json.dumps(ledger))
    return {"url": url, "branch": branch}


def assert_inert(page: Page, expected_title: str) -> None:
    state = page.eval(NOTHING_RAN)
    assert state == {
        "pwned": None,
        "title": expected_title,
        "foreign": 0,
        "scripts": 2,  # the JSON data block and the page's own script
        "handlers": 0,
    }
    assert page.problems() == []


def test_markup_from_the_registry_contract_and_ledger_renders_as_text(
    browser: Browser, tab: list[Page], fleet: Fleet, tripwire: Tripwire
) -> None:
    values = poisoned_fleet(fleet, tripwire.origin)
    out = fleet.root / "fleet.html"
    run = run_inprocess(
        "snapshot",
        *fleet.args("--format", "html", "-o", str(out)),
        env={"SOURCE_DATE_EPOCH": FIXED_EPOCH},
    )
    assert run.exit_code == 0, run.stderr
    body = out.read_bytes()
    # Opened from disk, and served over HTTP by the tripwire itself (so that even a
    # relative reference in the injected markup would reach it).
    for url in (out.as_uri(), tripwire.serve("/fleet.html", body)):
        page = open_page(browser, tab, url)
        assert_inert(page, "petrova fleet · 2025-11-26T07:00:00Z")
        assert page.requests() == [url]
        row = 'tr[data-slug="kahn-hq"] th.slug'
        assert page.eval(f"document.querySelector('{row} a').getAttribute('href')") == values["url"]
        assert page.eval(f"document.querySelector('{row} .branch').textContent") == values["branch"]
        warnings = page.eval(
            "Array.from(document.querySelectorAll('#warnings li'))"
            ".map(function (li) { return li.dataset.code + ' ' + li.textContent; })"
        )
        assert any(w.startswith("CONTRACT_UNREADABLE") and MARKER in w for w in warnings)
        assert any(w.startswith("STATE_UNREADABLE") and MARKER in w for w in warnings)
        embedded = json.loads(page.eval("document.getElementById('snapshot-data').textContent"))
        kahn = next(r for r in embedded["rows"] if r["slug"] == "kahn-hq")
        assert kahn["url"] == values["url"]
    assert tripwire.hits == ["/fleet.html"]


def test_markup_in_a_crafted_snapshot_renders_as_text(
    browser: Browser, tab: list[Page], tmp_path: Path, tripwire: Tripwire
) -> None:
    """`petrova render` reads files from anywhere: every string in them is hostile."""
    trip = tripwire.origin
    document = json.loads(ALL_STATUSES.read_text())
    document["generator"] = payload("generator", trip)
    document["generated_at"] = payload("generated", trip)
    document["rows"][0]["slug"] = payload("slug", trip)
    document["rows"][0]["default_branch"] = payload("branch", trip)
    document["rows"][1]["url"] = "javascript:window.__pwned='href'"
    document["rows"][2]["url"] = payload("url", trip)
    document["rows"][0]["integrations"]["ares"]["last_verified_at"] = payload("cell", trip)
    document["rows"][0]["integrations"]["ares"]["review_by"] = "\u2028" + payload("review", trip)
    document["warnings"] = [
        {"slug": payload("wslug", trip), "code": "STATE_UNREADABLE", "message": payload("w", trip)}
    ]
    source = tmp_path / "crafted.json"
    source.write_text(json.dumps(document))
    out = tmp_path / "crafted.html"
    run = run_inprocess("render", str(source), "-o", str(out))
    assert run.exit_code == 0, run.stderr
    for url in (out.as_uri(), tripwire.serve("/crafted.html", out.read_bytes())):
        page = open_page(browser, tab, url)
        assert_inert(page, "petrova fleet · " + document["generated_at"])
        assert page.requests() == [url]
        links = page.eval(
            "Array.from(document.querySelectorAll('a[href]'))"
            ".map(function (a) { return a.getAttribute('href'); })"
        )
        assert links == ["https://github.com/example/alpha"]  # javascript: and junk: no link
        slugs = page.eval(
            "Array.from(document.querySelectorAll('tr.repo')).map(function (r) {"
            " return r.dataset.slug; })"
        )
        assert payload("slug", trip) in slugs
        embedded = json.loads(page.eval("document.getElementById('snapshot-data').textContent"))
        assert embedded == document
    assert tripwire.hits == ["/crafted.html"]


def test_the_tripwire_notices_a_page_that_does_load_things(
    browser: Browser, tab: list[Page], tmp_path: Path, tripwire: Tripwire
) -> None:
    """The 'no request' assertions above could pass vacuously if the browser could not
    reach the tripwire at all: a page that does load from it, from disk and over HTTP."""
    control = f'<!DOCTYPE html><title>control</title><img src="{tripwire.origin}/control.png">'
    on_disk = tmp_path / "control.html"
    on_disk.write_text(control)
    page = open_page(browser, tab, on_disk.as_uri())
    assert f"{tripwire.origin}/control.png" in page.requests()
    served = tripwire.serve("/control.html", control.encode())
    page = open_page(browser, tab, served)
    assert f"{tripwire.origin}/control.png" in page.requests()
    assert tripwire.hits.count("/control.png") == 2


# --- a page for everyone ----------------------------------------------------------------

AXE = ROOT / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def axe_source() -> str:
    if not AXE.is_file():
        pytest.fail(
            f"axe-core is needed for the accessibility audit and was not found at {AXE}. "
            "Run `make node-deps` (npm ci in tests/node, the version pinned there).",
            pytrace=False,
        )
    return AXE.read_text()


def axe_run(page: Page) -> dict[str, Any]:
    """axe-core, evaluated over the DevTools protocol (so the page's own policy, which
    allows only its own script, is left as it is), at WCAG 2.1 A/AA and best practice."""
    page.eval(axe_source() + ";0")
    options = json.dumps({"runOnly": {"type": "tag", "values": AXE_TAGS}})
    found: dict[str, Any] = page.eval(
        f"axe.run(document, {options}).then(function (r) {{ return {{"
        " version: r.testEngine.version, passes: r.passes.length,"
        " violations: r.violations.map(function (v) { return { id: v.id, help: v.help,"
        " nodes: v.nodes.map(function (n) { return n.target.join(' '); }) }; }) }; })"
    )
    return found


def press(page: Page, key: str, *, shift: bool = False) -> None:
    """A real key press, as the keyboard sends it (no script calls focus() for us)."""
    codes = {"Tab": 9, "Enter": 13, "Escape": 27, " ": 32}
    base: dict[str, Any] = {
        "key": key,
        "code": {"Tab": "Tab", "Enter": "Enter", "Escape": "Escape", " ": "Space"}[key],
        "windowsVirtualKeyCode": codes[key],
        "modifiers": 8 if shift else 0,
    }
    text = {"Enter": "\r", " ": " "}.get(key)
    down = {**base, "type": "keyDown", **({"text": text} if text else {})}
    for event in (down, {**base, "type": "keyUp"}):
        page.browser.call("Input.dispatchKeyEvent", event, session=page.session)


def tab_to(page: Page, selector: str, limit: int = 200) -> int:
    """Press Tab until ``selector`` has the focus; returns how many presses it took."""
    for presses in range(1, limit + 1):
        press(page, "Tab")
        if page.eval(f"document.activeElement.matches({json.dumps(selector)})"):
            return presses
    raise AssertionError(f"Tab never reached {selector}")


def ax_node(page: Page, selector: str) -> dict[str, str]:
    """Role and name of ``selector`` in Chromium's accessibility tree."""
    call = page.browser.call
    root = call("DOM.getDocument", {"depth": 0}, session=page.session)["root"]["nodeId"]
    node = call("DOM.querySelector", {"nodeId": root, "selector": selector}, session=page.session)[
        "nodeId"
    ]
    tree = call(
        "Accessibility.getPartialAXTree",
        {"nodeId": node, "fetchRelatives": False},
        session=page.session,
    )
    first = tree["nodes"][0]
    return {"role": first["role"]["value"], "name": first.get("name", {}).get("value", "")}


def contrast(first: str, second: str) -> float:
    def luminance(css: str) -> float:
        values = [c / 255 for c in channels(css)[:3]]
        linear = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in values]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_axe_finds_no_violation_on_the_all_statuses_page(
    browser: Browser, tab: list[Page], tmp_path: Path
) -> None:
    path = all_statuses_page(tmp_path)
    for width in (1400, 320):
        page = browser.open(path.as_uri(), width=width)
        tab.append(page)
        found = axe_run(page)
        assert found["version"] == "4.14.1"
        assert found["passes"] > 20  # it did audit the page
        assert found["violations"] == [], width
        # and with every dot open, so that the details are audited too
        page.eval("document.querySelectorAll('details').forEach(function (d) { d.open = true; })")
        assert axe_run(page)["violations"] == [], width
    assert page.problems() == []


def test_axe_catches_a_known_violation(browser: Browser, tab: list[Page], tmp_path: Path) -> None:
    """The audit above could pass vacuously if axe saw nothing: a page with a known fault."""
    control = tmp_path / "control.html"
    control.write_text(
        '<!DOCTYPE html><html lang="en"><title>c</title><main>'
        '<p style="color:#aaa">faint</p><img src="x.png"></main></html>'
    )
    page = open_page(browser, tab, control.as_uri())
    ids = {v["id"] for v in axe_run(page)["violations"]}
    assert {"color-contrast", "image-alt"} <= ids


def test_a_dots_details_and_history_are_reached_with_the_keyboard_alone(
    browser: Browser, tab: list[Page], tmp_path: Path
) -> None:
    snapshot = json.loads(ALL_STATUSES.read_text())
    history = snapshot["rows"][0]["integrations"]["crumb"]["history"]
    page = open_page(browser, tab, all_statuses_page(tmp_path).as_uri())
    crumb = 'tr[data-slug="alpha-hq"] td.cell[data-status="failing"] summary'  # crumb
    assert page.eval(f"document.querySelector('{crumb}').parentNode.dataset.status") == "failing"
    tab_to(page, crumb)
    node = ax_node(page, crumb)
    assert node == {"role": "DisclosureTriangle", "name": "CRUMB: failing needs human"}
    expanded = "document.querySelector('" + crumb + "').parentNode.open"
    assert page.eval(expanded) is False
    press(page, "Enter")
    assert page.eval(expanded) is True
    pop = page.eval(
        "(function () { var p = document.querySelector('" + crumb + "').parentNode"
        ".querySelector('.pop'); var b = p.getBoundingClientRect();"
        " return {w: b.width, h: b.height, items: Array.from(p.querySelectorAll('.hist li'))"
        ".map(function (li) { return li.innerText; })}; })()"
    )
    assert pop["w"] > 0 and pop["h"] > 0  # shown, not only in the DOM
    assert pop["items"] == [  # newest first, a run of equal outcomes on one line
        "2026-11-26 06:00 UTC ok: cards built again",
        "2026-11-25 06:00 UTC failing: card build failed",
        "2026-11-21 06:00 UTC to 2026-11-24 06:00 UTC failing, 4 times",
        "2026-11-20 06:00 UTC ok",
    ]
    # The strip beside the dot draws the same outcomes, oldest first, in their colours.
    marks = page.eval(
        "Array.from(document.querySelector('" + crumb + "').querySelectorAll('.strip i'))"
        ".map(function (i) { return [i.className, getComputedStyle(i).backgroundColor]; })"
    )
    assert [m[0] for m in marks] == [f"o-{h['outcome']}" for h in history]
    assert {m[1] for m in marks} == {
        rgb(STATUS_COLOURS["ok"]),
        rgb(STATUS_COLOURS["failing"]),
    }
    press(page, "Escape")
    assert page.eval(expanded) is False
    assert page.eval(f"document.activeElement.matches({json.dumps(crumb)})")
    press(page, " ")  # Space opens it too
    assert page.eval(expanded) is True
    assert page.problems() == []


def test_table_structure_names_and_reflow(
    browser: Browser, tab: list[Page], tmp_path: Path, fleet: Fleet
) -> None:
    page = open_page(browser, tab, all_statuses_page(tmp_path).as_uri())
    assert page.eval("document.querySelectorAll('#fleet > tbody.tier').length") == 2
    assert page.eval("document.querySelector('#fleet caption').textContent").startswith(
        "Repos by rollout tier"
    )
    assert ax_node(page, 'tr[data-slug="alpha-hq"] th')["name"] == "alpha-hq, main"
    assert ax_node(page, 'tr[data-slug="alpha-hq"] th')["role"] == "rowheader"
    assert ax_node(page, "#fleet")["role"] == "table"
    assert page.eval("document.querySelectorAll('[title]').length") == 0
    # Non-text contrast: each dot's fill, or for the greyed dot its ring, 3:1 on white.
    for dot in indicators(page, "td.cell .ind"):
        shape = dot["ring"] if dot["status"] == UNMIGRATED else dot["colour"]
        assert contrast(shape, "rgb(255, 255, 255)") >= 3.0, dot["status"]
    for url in (tmp_path / "all-statuses.html", shipped_fleet_page(fleet)):
        narrow = browser.open(url.as_uri(), width=320, height=640)
        tab.append(narrow)
        widths = narrow.eval(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], widths  # no sideways scroll of the page
        # the table scrolls in its own region, which the keyboard can reach
        assert narrow.eval("document.querySelector('.wide').tabIndex") == 0


def test_gate_progress_is_shown_per_tier(browser: Browser, tab: list[Page], tmp_path: Path) -> None:
    page = open_page(browser, tab, all_statuses_page(tmp_path).as_uri())
    gates = page.eval(
        "Array.from(document.querySelectorAll('#gates .gate')).map(function (g) {"
        " var p = g.querySelector('progress');"
        " return [g.dataset.tier, p.value, p.max, g.querySelector('.progress').textContent"
        ".trim()]; })"
    )
    assert gates == [
        ["2", 0, 7, "0 of 7 days green: the clock starts again once nothing holds the tier"],
        ["3", 0, 7, "0 of 7 days green: the clock starts again once nothing holds the tier"],
    ]
