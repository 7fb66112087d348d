"""Reporters: one per ``--format``. Each takes a model and returns text; none prints."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from petrova.models import DailyRun, Snapshot, TierGate
from petrova.terminal import visible

#: The short text of each dot status, for tables (n/a, FAILING stands out).
STATUS_LABELS = {
    "ok": "ok",
    "degraded": "degraded",
    "failing": "FAILING",
    "stale": "stale",
    "pending": "pending",
    "not_applicable": "n/a",
}


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    rows = [[visible(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines) + "\n"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(cell: str) -> str:
        return visible(cell.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " "))

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _snapshot_grid(snapshot: Snapshot) -> tuple[list[str], list[list[str]]]:
    headers = ["slug", "tier", "role", "contract_sha", *snapshot.integration_ids]
    rows: list[list[str]] = []
    for row in snapshot.rows:
        cells: list[str] = []
        for integration_id in snapshot.integration_ids:
            if row.integrations is None:
                cells.append("-")
                continue
            cell = row.integrations[integration_id]
            text = STATUS_LABELS[cell.status]
            text += "!" if cell.needs_human else ""
            cells.append(text + ("*" if cell.override is not None else ""))
        rows.append([row.slug, str(row.tier), row.role, row.contract_sha or "-", *cells])
    return headers, rows


def gate_line(gate: TierGate) -> str:
    """One tier's rollout gate in words: green since when, days to go, or what holds it."""
    if gate.green:
        since = f"since {gate.green_since}" if gate.green_since else "(nothing applicable)"
        return f"tier {gate.tier} gate: green {since}, {gate.days}-day window met"
    earliest = f"; green at {gate.green_at} at the earliest" if gate.green_at else ""
    first = gate.holds[0].message if gate.holds else ""
    more = f" (+{len(gate.holds) - 1} more)" if len(gate.holds) > 1 else ""
    return f"tier {gate.tier} gate: held by {first}{more}{earliest}"


def run_line(run: DailyRun) -> str:
    """The last daily run in words: when, whether it finished, how each step ended."""
    steps = ", ".join(f"{s.name} {s.outcome}" for s in run.steps) or "no step ended"
    if run.finished_at is None:
        return f"last daily run: started {run.started_at}, never finished ({steps})"
    return f"last daily run: {run.started_at} to {run.finished_at} ({steps})"


def _footer(snapshot: Snapshot) -> list[str]:
    lines = [
        f"{snapshot.totals.repos} repos, {snapshot.totals.migrated} migrated; "
        f"generated {snapshot.generated_at} by {snapshot.generator}",
    ]
    if snapshot.last_run is not None:
        lines.append(run_line(snapshot.last_run))
    lines += [gate_line(gate) for gate in snapshot.gates or ()]
    cells = [c for r in snapshot.rows for c in (r.integrations or {}).values()]
    if any(c.needs_human for c in cells):
        lines.append("! = a recovery waits for a human: petrova state promote")
    lines += [
        visible(
            f"* = {r.slug} {i}: ok on an override by {c.override.by} at {c.override.at} "
            f"({c.override.reason}), not yet observed ok"
        )
        for r in snapshot.rows
        for i, c in (r.integrations or {}).items()
        if c.override is not None
    ]
    lines += [
        visible(f"warning {w.code} [{w.slug or '-'}]: {w.message}") for w in snapshot.warnings
    ]
    return lines


def snapshot_table(snapshot: Snapshot) -> bytes:
    headers, rows = _snapshot_grid(snapshot)
    text = text_table(headers, rows) + "\n" + "\n".join(_footer(snapshot)) + "\n"
    return text.encode()


def snapshot_markdown(snapshot: Snapshot) -> bytes:
    headers, rows = _snapshot_grid(snapshot)
    rows = [[f"`{r[0]}`", *r[1:]] for r in rows]
    parts = [f"# Fleet snapshot {snapshot.generated_at}\n", markdown_table(headers, rows)]
    footer = _footer(snapshot)
    parts.append("\n" + footer[0] + "\n")
    if len(footer) > 1:
        parts.append("\n" + "\n".join(f"- {line}" for line in footer[1:]) + "\n")
    return "".join(parts).encode()


def snapshot_html(snapshot: Snapshot) -> bytes:
    # Imported here so that commands which never draw a page do not load the renderer.
    from petrova.render.html import default_titles, render_html

    return render_html(snapshot, titles=default_titles())


def snapshot_openmetrics(snapshot: Snapshot) -> bytes:
    from petrova.render.metrics import snapshot_openmetrics as metrics

    return metrics(snapshot)


#: The reporters of ``snapshot --format`` besides ``json``, which is the document itself.
SNAPSHOT_FORMATS: dict[str, Callable[[Snapshot], bytes]] = {
    "table": snapshot_table,
    "markdown": snapshot_markdown,
    "html": snapshot_html,
    "openmetrics": snapshot_openmetrics,
}
