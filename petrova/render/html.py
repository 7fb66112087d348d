"""The fleet as one self-contained HTML page: what the dashboards will show, before they do.

The page must open from disk years later (an archived artefact), so everything it needs
is inline: styles, a small script for filtering and sorting, and the snapshot itself as
a JSON data block. It makes no network request of any kind.

Every string from the registry, the contracts or the ledgers is untrusted: text and
attributes go through :func:`html.escape`, the embedded JSON escapes ``<``, ``>``, ``&``
and U+2028/2029, only http(s) URLs become links, and a Content-Security-Policy allows
nothing but the page's own style and script, named by their SHA-256, so that even a
missed escape could not run or load anything. There is no timestamp or nonce of our
own: the same snapshot and titles give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from html import escape
from importlib import resources
from urllib.parse import urlsplit

import orjson

from petrova.models import (
    ROLES,
    Dot,
    FleetRow,
    FleetSnapshot,
    Gate,
    Mark,
    format_timestamp,
    parse_timestamp,
)
from petrova.render.formats import gate_line, run_line, snapshot_document
from petrova.render.metrics import DailyRun

#: The dot's class suffix for a row that has no ``integrations`` yet.
UNMIGRATED = "unmigrated"

#: Visible text next to each dot, so that a dot reads without colour.
STATUS_LABELS: dict[str, str] = {
    "ok": "ok",
    "degraded": "degraded",
    "failing": "failing",
    "stale": "stale",
    "pending": "pending",
    "not_applicable": "n/a",
    UNMIGRATED: "not migrated",
}

#: Fill colour per status (CSS hex). Tests read these back from the rendered page.
STATUS_COLOURS: dict[str, str] = {
    "ok": "#1a7f37",
    "degraded": "#9a6700",
    "failing": "#cf222e",
    "stale": "#8250df",
    "pending": "#0969da",
    "not_applicable": "#6e7781",
    UNMIGRATED: "#d0d7de",
}

#: Each recent outcome's mark: the colour of the status it points to, and its words.
OUTCOME_COLOURS: dict[str, str] = {
    "ok": STATUS_COLOURS["ok"],
    "degraded": STATUS_COLOURS["degraded"],
    "failing": STATUS_COLOURS["failing"],
    "unreachable": STATUS_COLOURS["stale"],
    "not_applicable": STATUS_COLOURS["not_applicable"],
    "promoted": "#1f2328",
}
OUTCOME_LABELS: dict[str, str] = {
    "ok": "ok",
    "degraded": "degraded",
    "failing": "failing",
    "unreachable": "unreachable",
    "not_applicable": "not applicable",
    "promoted": "promoted by a human",
}

#: What a screen reader says where the visible label is an abbreviation.
STATUS_SPOKEN: dict[str, str] = {"not_applicable": "not applicable"}


def _label(status: str) -> str:
    """The visible label, and the words a screen reader says instead where they differ
    (each audience hears it once: "n/a" is shown, "not applicable" is said)."""
    shown = _text(STATUS_LABELS[status])
    spoken = STATUS_SPOKEN.get(status)
    if spoken is None:
        return f'<span class="label">{shown}</span>'
    return f'<span class="label" aria-hidden="true">{shown}</span><span class="vh">{spoken}</span>'


STATUS_MEANINGS: dict[str, str] = {
    "ok": "declared wired and probes confirm it",
    "degraded": "probes saw repeated trouble",
    "failing": "probes keep failing",
    "stale": "no conclusive probe outcome for too long",
    "pending": "declared pending, or nothing observed yet",
    "not_applicable": "not applicable by the registry or the contract",
    UNMIGRATED: "no contract pinned yet: the dashboards draw greyed dots",
}

#: Worst first: the order of "worst status first" sorting and of the legend.
STATUS_RANK: tuple[str, ...] = (
    "failing",
    "degraded",
    "stale",
    "pending",
    "ok",
    "not_applicable",
    UNMIGRATED,
)

NEEDS_HUMAN_HINT = "a probe saw a recovery that waits for a human: petrova state promote"


def _asset(name: str) -> str:
    """The page's stylesheet or script, shipped as package data beside this module."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}

_STYLE = _asset("page.css")

_STYLE += "".join(f".s-{status}{{--c:{colour}}}\n" for status, colour in STATUS_COLOURS.items())
_STYLE += "".join(f".o-{name}{{--m:{colour}}}\n" for name, colour in OUTCOME_COLOURS.items())

# Reads the DOM the server rendered; the page is complete without it (the controls stay
# hidden when scripts are off). Filtering hides rows; sorting moves them, and the default
# order (tier, then role) restores the server's order exactly.
_SCRIPT = _asset("page.js")


def default_titles() -> dict[str, str]:
    """Titles from the catalogue a command would find by default, or none at all.

    ``petrova snapshot --format html`` hands reporters the snapshot only; this looks the
    catalogue up the way every command does without ``--catalogue`` ($PETROVA_CATALOGUE,
    beside $PETROVA_REGISTRY or ./registry.yaml, the bundled copy). A catalogue that
    cannot be read costs the titles, never the page: the columns then show the ids.
    """
    from petrova.documents.catalogue import find_catalogue, load_catalogue
    from petrova.documents.registry import default_registry_path
    from petrova.errors import PetrovaError

    try:
        catalogue = load_catalogue(find_catalogue(None, default_registry_path()))
    except PetrovaError:
        return {}
    return {i.id: i.title for i in catalogue.integrations}


def catalogue_titles(ids: Iterable[str], known: Mapping[str, str]) -> dict[str, str]:
    """Column titles for ``ids``: the catalogue's title where it knows the id, else the id."""
    return {i: known.get(i) or i for i in ids}


def embed_json(data: object) -> str:
    """JSON safe inside a ``<script>`` element: no ``</script>``, no ``<!--``, no line breaks
    that old JavaScript parsers choke on. Compact: it is there for machines, and on a large
    fleet the indentation alone was a third of it."""
    text = orjson.dumps(data).decode()
    for char, replacement in _JSON_ESCAPES.items():
        text = text.replace(char, replacement)
    return text


def web_url(url: str) -> str | None:
    """The URL when it is an absolute http(s) URL, else ``None`` (never a link)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return url
    return None


def csp_source(text: str) -> str:
    """The CSP source expression that allows exactly this inline style or script."""
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"'sha256-{digest}'"


def _attr(value: str) -> str:
    return escape(value, quote=True)


def _text(value: str) -> str:
    return escape(value, quote=False)


def _dash(value: str | None) -> str:
    return value if value else "—"


def grouped_rows(snapshot: FleetSnapshot) -> list[FleetRow]:
    """Rows by tier, then role (in the models' role order), then registry order."""
    role_rank = {role: i for i, role in enumerate(ROLES)}
    return sorted(snapshot.rows, key=lambda r: (r.tier, role_rank.get(r.role, len(ROLES))))


def _row_statuses(row: FleetRow) -> list[str]:
    if row.integrations is None:
        return [UNMIGRATED]
    return [cell.status for cell in row.integrations.values()]


def _row_rank(row: FleetRow) -> int:
    return min((STATUS_RANK.index(s) for s in _row_statuses(row)), default=len(STATUS_RANK))


def _words(value: str | None, *, missing: str = "none") -> str:
    """A stored value as people say it: ``not_applicable`` reads "not applicable"."""
    return value.replace("_", " ") if value else missing


def _when(value: str) -> str:
    """A timestamp as people read it (``2026-11-26 06:00 UTC``); anything else as it is."""
    try:
        moment = parse_timestamp(value)
    except ValueError:
        return value
    return moment.isoformat(sep=" ", timespec="minutes")[:16] + " UTC"


def _time(value: str) -> str:
    return f'<time datetime="{_attr(value)}">{_text(_when(value))}</time>'


def cell_history(cell: Dot) -> Sequence[Mark]:
    """The recent outcomes a cell carries, oldest first (none in older snapshots)."""
    return cell.history or ()


def _strip(marks: Sequence[Mark]) -> str:
    """The small marks drawn beside a dot: for the eye only, the list says it in words."""
    if not marks:
        return ""
    inner = "".join(f'<i class="o-{_attr(m.outcome)}"></i>' for m in marks)
    return f'<span class="strip" aria-hidden="true">{inner}</span>'


def _runs(marks: Sequence[Mark]) -> list[list[Mark]]:
    """Newest first, consecutive equal outcomes without a detail folded into one run
    (newest mark first): a week of ``ok`` is one line, not seven."""
    runs: list[list[Mark]] = []
    for mark in reversed(marks):
        last = runs[-1][-1] if runs else None
        plain = last is not None and not mark.detail and not last.detail
        if plain and last is not None and last.outcome == mark.outcome:
            runs[-1].append(mark)
        else:
            runs.append([mark])
    return runs


def _history_list(marks: Sequence[Mark]) -> str:
    if not marks:
        return "<p>No probe outcome recorded yet.</p>"
    items: list[str] = []
    for run in _runs(marks):
        newest, oldest = run[0], run[-1]
        what = OUTCOME_LABELS.get(newest.outcome, newest.outcome)
        when = _when(newest.at)
        if len(run) > 1:
            when = f"{_when(oldest.at)} to {when}"
            what += f", {len(run)} times"
        detail = f": {newest.detail}" if newest.detail else ""
        items.append(
            f'<li class="o-{_attr(newest.outcome)}">{_text(when + " " + what + detail)}</li>'
        )
    return f'<p>Recent outcomes, newest first:</p><ol class="hist">{"".join(items)}</ol>'


def _cell_html(cell: Dot, title: str) -> str:
    """A dot as a disclosure: the summary says the status once; opening it (click, or
    Tab and Enter) shows the inputs and the recent outcomes, as text."""
    status = cell.status
    marks = cell_history(cell)
    # (name, markup): every value escaped here, where it is made
    facts = [
        ("applicability", _text(_words(cell.applicability, missing="not set"))),
        ("declared", _text(_words(cell.declared, missing="nothing declared"))),
        ("observed", _text(_words(cell.observed, missing="nothing observed"))),
        ("last verified", _time(cell.last_verified_at) if cell.last_verified_at else "never"),
    ]
    if cell.review_by:  # said only when there is a date: no "review by: none"
        facts.append(("review by", _text(cell.review_by)))
    if cell.override is not None:  # ok on a human's word alone (SPEC §12)
        o = cell.override
        facts.append(("override", _text(f"by {o.by} at {o.at}: {o.reason} (not yet observed ok)")))
    rows = "".join(f"<dt>{name}</dt><dd>{markup}</dd>" for name, markup in facts)
    flag = ""
    hint = ""
    if cell.needs_human:
        flag = '<span class="flag">needs human</span>'
        hint = f'<p class="hint">Needs a human: {_text(NEEDS_HUMAN_HINT)}.</p>'
    if cell.override is not None:
        flag += '<span class="flag override">override</span>'
    return (
        f'<details class="ind s-{status}" data-status="{status}"><summary>'
        f'<span class="dot" aria-hidden="true"></span><span class="vh">{_text(title)}: </span>'
        f"{_label(status)}{flag}{_strip(marks)}"
        f'</summary><div class="pop"><dl>{rows}</dl>{hint}{_history_list(marks)}</div></details>'
    )


def _unmigrated_html(title: str) -> str:
    return (
        f'<span class="ind s-{UNMIGRATED}" data-status="{UNMIGRATED}">'
        f'<span class="dot" aria-hidden="true"></span><span class="vh">{_text(title)}: </span>'
        f"{_label(UNMIGRATED)}</span>"
    )


def _row_html(position: int, row: FleetRow, ids: list[str], titles: Mapping[str, str]) -> str:
    statuses = _row_statuses(row)
    tokens = sorted(set(statuses), key=STATUS_RANK.index)
    if row.integrations is not None and any(c.needs_human for c in row.integrations.values()):
        tokens.append("needs_human")
    href = web_url(row.url)
    slug = _text(row.slug)
    name = (
        f'<a href="{_attr(href)}" rel="noopener noreferrer">{slug}</a>'
        if href is not None
        else f"<span>{slug}</span>"
    )
    cells: list[str] = []
    for integration_id in ids:
        title = titles.get(integration_id, integration_id)
        if row.integrations is None:
            cells.append(
                f'<td class="cell" data-status="{UNMIGRATED}">{_unmigrated_html(title)}</td>'
            )
        else:
            cell = row.integrations[integration_id]
            cells.append(
                f'<td class="cell" data-status="{cell.status}">{_cell_html(cell, title)}</td>'
            )
    sha = f"<code>{_text(row.contract_sha)}</code>" if row.contract_sha else "not migrated"
    return (
        f'<tr class="repo{"" if row.integrations is not None else " unmigrated"}" '
        f'data-slug="{_attr(row.slug)}" data-tier="{row.tier}" data-role="{_attr(row.role)}" '
        f'data-order="{position}" data-rank="{_row_rank(row)}" '
        f'data-statuses="{_attr(" ".join(tokens))}">'
        f'<td class="tier">{row.tier}</td>'
        f'<th scope="row" class="slug">{name}'
        f'<span class="branch">{_text(row.default_branch)}</span></th>'
        f"<td>{_text(row.role)}</td><td>{_text(row.profile)}</td>"
        f'<td class="{"sha" if row.contract_sha else "none"}">{sha}</td>'
        f"{''.join(cells)}</tr>"
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _table(snapshot: FleetSnapshot, titles: Mapping[str, str]) -> str:
    """One ``<tbody>`` per tier, led by its group header, so that the table itself says
    which rows a tier holds (and the script can sort within the table without losing it)."""
    ids = list(snapshot.integration_ids)
    head = "".join(
        f'<th scope="col" class="integration">{_text(titles.get(i, i))}</th>' for i in ids
    )
    width = 5 + len(ids)
    groups: list[str] = []
    ordered = grouped_rows(snapshot)
    for tier in sorted({row.tier for row in ordered}):
        members = [(p, r) for p, r in enumerate(ordered) if r.tier == tier]
        migrated = sum(r.integrations is not None for _, r in members)
        header = (
            f'<tr class="group" data-tier="{tier}"><th colspan="{width}" '
            f'scope="rowgroup">Tier {tier} <span class="sub">· '
            f"{_plural(len(members), 'repo')}, {migrated} migrated</span></th></tr>"
        )
        body = "".join(_row_html(p, r, ids, titles) for p, r in members)
        groups.append(f'<tbody class="tier" data-tier="{tier}">{header}{body}</tbody>')
    return (
        '<div class="wide" tabindex="0" role="region" aria-labelledby="repos-caption">'
        '<table id="fleet"><caption id="repos-caption">Repos by rollout tier. Each '
        "integration column holds the repo's dot: open one for its details and recent "
        "outcomes.</caption>"
        '<thead><tr><th scope="col">Tier</th><th scope="col">Repo</th>'
        '<th scope="col">Role</th><th scope="col">Profile</th>'
        f'<th scope="col">Contract</th>{head}</tr></thead>'
        f"{''.join(groups)}</table></div>"
    )


def _legend_and_totals(snapshot: FleetSnapshot) -> str:
    counts: Counter[str] = Counter()
    needs_human = 0
    for row in snapshot.rows:
        if row.integrations is None:
            counts[UNMIGRATED] += len(snapshot.integration_ids)
            continue
        for cell in row.integrations.values():
            counts[cell.status] += 1
            needs_human += bool(cell.needs_human)
    totals = snapshot.totals
    items = [
        ("repos", totals.repos),
        ("migrated", totals.migrated),
        ("not migrated", totals.repos - totals.migrated),
        ("need a human", needs_human),
        ("warnings", len(snapshot.warnings)),
    ]
    totals_html = "".join(
        f'<li data-total="{_attr(name)}"><b>{value}</b> {_text(name)}</li>' for name, value in items
    )
    legend = "".join(
        f'<li data-status="{status}"><span class="ind s-{status}">'
        f'<span class="dot" aria-hidden="true"></span>'
        f"{_label(status)}</span>"
        f'<span class="meaning">{_text(STATUS_MEANINGS[status])}</span>'
        f'<span class="count">({counts[status]})</span></li>'
        for status in STATUS_RANK
    )
    legend += (
        '<li data-status="needs_human"><span class="flag">needs human</span>'
        f'<span class="meaning">{_text(NEEDS_HUMAN_HINT)}</span>'
        f'<span class="count">({needs_human})</span></li>'
    )
    marks = "".join(
        f'<li class="o-{name}" data-outcome="{name}"><i aria-hidden="true"></i>{_text(label)}</li>'
        for name, label in OUTCOME_LABELS.items()
    )
    return (
        f'<ul class="totals" id="totals">{totals_html}</ul>'
        f'<h2>Legend</h2><ul class="legend" id="legend">{legend}</ul>'
        '<p class="marks-intro" id="marks-intro">Beside each dot, its recent probe outcomes, '
        "oldest first:</p>"
        f'<ul class="legend marks" id="marks" aria-labelledby="marks-intro">{marks}</ul>'
    )


def _controls(snapshot: FleetSnapshot) -> str:
    status_options = "".join(
        f'<option value="{s}">{_text(STATUS_LABELS[s])}</option>' for s in STATUS_RANK
    )
    status_options += '<option value="needs_human">needs human</option>'
    tiers = sorted({row.tier for row in snapshot.rows})
    tier_options = "".join(f'<option value="{t}">tier {t}</option>' for t in tiers)
    return (
        '<div id="controls" hidden>'
        '<label>Status <select id="filter-status"><option value="">any</option>'
        f"{status_options}</select></label>"
        '<label>Tier <select id="filter-tier"><option value="">any</option>'
        f"{tier_options}</select></label>"
        '<label>Sort <select id="sort"><option value="tier">tier, then role</option>'
        '<option value="status">worst status first</option>'
        '<option value="slug">name</option></select></label>'
        '<span id="shown" aria-live="polite"></span></div>'
    )


def gate_progress(gate: Gate, now: datetime) -> tuple[int, str]:
    """Whole days of green time the gate has counted (capped at its window), and what it
    waits for in words: the window's end, or what restarts the clock."""
    days = 0
    if gate.green_since is not None:
        counted = (now - parse_timestamp(gate.green_since)).total_seconds() // 86400
        days = int(min(max(counted, 0), gate.days))
    if gate.green:
        return gate.days, "window met"
    if gate.green_at is not None:
        return days, f"green at {_when(gate.green_at)} at the earliest"
    return days, "the clock starts again once nothing holds the tier"


def _gates(snapshot: FleetSnapshot) -> str:
    """Each tier's rollout gate: how far toward its window, and what holds it."""
    if snapshot.gates is None:  # a snapshot from before gates were added
        return ""
    now = _generated(snapshot)
    items = []
    for gate in snapshot.gates:
        state = "green" if gate.green else "held"
        holds = "".join(
            f'<li data-reason="{_attr(h.reason)}">{_text(h.message)}</li>' for h in gate.holds
        )
        progress = ""
        if now is not None:
            days, waits = gate_progress(gate, now)
            progress = (
                f'<p class="progress"><progress max="{gate.days}" value="{days}" '
                f'aria-hidden="true"></progress> {days} of {_plural(gate.days, "day")} '
                f"green: {_text(waits)}</p>"
            )
        items.append(
            f'<li class="gate gate-{state}" data-tier="{gate.tier}">'
            f"<b>{_text(gate_line(gate, at=snapshot.generated_at))}</b>{progress}"
            + (f"<ul>{holds}</ul>" if holds else "")
            + "</li>"
        )
    return f'<section id="gates"><h2>Rollout gates</h2><ul>{"".join(items)}</ul></section>'


def _last_run(snapshot: FleetSnapshot) -> str:
    """When the daily job last ran and whether it finished (SPEC §12)."""
    run = snapshot.last_run
    if run is None:
        return ""
    state = "finished" if run.finished_at is not None else "unfinished"
    steps = "".join(
        f'<li data-outcome="{_attr(s.outcome)}">{_text(s.name)}: {_text(s.outcome)}</li>'
        for s in run.steps
    )
    return (
        f'<section id="last-run" data-state="{state}"><h2>Last daily run</h2>'
        f"<p>{_text(run_line(run))}</p>" + (f"<ul>{steps}</ul>" if steps else "") + "</section>"
    )


def _generated(snapshot: FleetSnapshot) -> datetime | None:
    try:
        return parse_timestamp(snapshot.generated_at)
    except ValueError:  # an archived file may say anything; the page still renders
        return None


def _daily(run: DailyRun | None) -> str:
    """The last daily run, when the caller knows it: when, how long, each step."""
    if run is None:
        return ""
    steps = "".join(
        f'<tr data-step="{_attr(step.name)}"><th scope="row">{_text(step.name)}</th>'
        f"<td>{'ok' if step.ok else f'failed (exit {step.exit_code})'}</td>"
        f"<td>{step.seconds:.0f} s</td></tr>"
        for step in run.steps
    )
    success = (
        f"last success {_time(_stamp(run.last_success))}"
        if run.last_success is not None
        else "no success recorded"
    )
    return (
        '<section id="daily"><h2>Last daily run</h2>'
        f"<p>{'Succeeded' if run.ok else 'Failed'}: started {_time(_stamp(run.started))}, "
        f"took {run.seconds:.0f} s; {success}.</p>"
        '<table class="steps"><caption>Steps of the last daily run</caption>'
        '<thead><tr><th scope="col">Step</th><th scope="col">Outcome</th>'
        f'<th scope="col">Duration</th></tr></thead><tbody>{steps}</tbody></table></section>'
    )


def _stamp(moment: datetime) -> str:
    return format_timestamp(moment)


def _warnings(snapshot: FleetSnapshot) -> str:
    if not snapshot.warnings:
        return '<section id="warnings"><h2>Warnings</h2><p>No warnings.</p></section>'
    items = "".join(
        f'<li data-code="{_attr(w.code)}"><code>{_text(w.code)}</code> '
        f"[{_text(w.slug or '-')}] {_text(w.message)}</li>"
        for w in snapshot.warnings
    )
    return (
        f'<section id="warnings"><h2>Warnings ({len(snapshot.warnings)})</h2>'
        f"<ul>{items}</ul></section>"
    )


def render_html(
    snapshot: FleetSnapshot,
    *,
    titles: Mapping[str, str] | None = None,
    daily: DailyRun | None = None,
) -> bytes:
    """The page for ``snapshot``; ``titles`` maps integration ids to column headers.

    Ids without a title (no catalogue, or one that no longer knows an archived id) are
    shown as the id itself. ``daily`` is the last daily run, shown when given.
    """
    headers = catalogue_titles(snapshot.integration_ids, titles or {})
    style = _STYLE
    script = _SCRIPT
    csp = (
        "default-src 'none'; "
        f"style-src {csp_source(style)}; script-src {csp_source(script)}; "
        "base-uri 'none'; form-action 'none'"
    )
    generated = _text(snapshot.generated_at)
    data = embed_json(snapshot_document(snapshot))
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_attr(csp)}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>petrova fleet · {generated}</title>\n"
        f"<style>{style}</style>\n</head>\n<body>\n"
        "<header><h1>petrova fleet</h1>"
        f'<p class="meta">Snapshot generated <time id="generated" '
        f'datetime="{_attr(snapshot.generated_at)}">{generated}</time> by '
        f"{_text(snapshot.generator)} · schema {_text(snapshot.schema_version)}</p></header>\n"
        f"<main>{_legend_and_totals(snapshot)}\n{_gates(snapshot)}\n"
        f"{_daily(daily) if daily is not None else _last_run(snapshot)}"
        f"<h2>Repos</h2>{_controls(snapshot)}\n{_table(snapshot, headers)}\n"
        f"{_warnings(snapshot)}</main>\n"
        "<footer>Intent is not observation: <i>declared</i> comes from each repo's "
        "contract, <i>observed</i> from the probe ledgers. Open a dot (click it, or Tab to "
        "it and press Enter) for its details and recent outcomes. "
        "The snapshot this page shows is embedded below as JSON "
        "(<code>script#snapshot-data</code>).</footer>\n"
        f'<script type="application/json" id="snapshot-data">{data}</script>\n'
        f"<script>{script}</script>\n"
        "</body></html>\n"
    )
    return page.encode()
