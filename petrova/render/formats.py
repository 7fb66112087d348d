"""Reporters: one per ``--format``. Each takes the typed snapshot and returns bytes;
none prints. The JSON document's form (:func:`snapshot_document`) and the gate's one
wording (:func:`gate_line`) live here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from petrova.models import DailyRun, Dot, FleetRow, FleetSnapshot, Gate, Mark
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


def snapshot_document(snapshot: FleetSnapshot) -> dict[str, Any]:
    """The snapshot as the JSON document it is written as, keys in the models' order.

    The one place the typed result becomes plain data: the schema check, the written
    file, the published body and the page's embedded copy all come from here. The
    :class:`~petrova.models.Snapshot` models define the shape (the published schema is
    generated from them) and a test holds this function's key order to theirs.

    Treat the document as read-only: equal cells (and equal history marks) are one
    shared dict (:class:`_Shared`).
    """
    shared = _Shared()
    document: dict[str, Any] = {
        "schema_version": snapshot.schema_version,
        "generated_at": snapshot.generated_at,
        "generator": snapshot.generator,
        "integration_ids": list(snapshot.integration_ids),
        "totals": {"repos": snapshot.totals.repos, "migrated": snapshot.totals.migrated},
        "warnings": [
            {"slug": slug, "code": code, "message": message}
            for slug, code, message in snapshot.warnings
        ],
        "rows": [_row_document(row, shared) for row in snapshot.rows],
    }
    if snapshot.gates is not None:
        document["gates"] = [_gate_document(gate) for gate in snapshot.gates]
    if snapshot.last_run is not None:
        document["last_run"] = snapshot.last_run.model_dump(mode="json")
    return document


class _Shared:
    """The documents of equal cells, and of equal history marks, each made once.

    A fleet's probes run on shared schedules: its 40,000 cells are a few thousand
    distinct dots, and :func:`~petrova.fleet.snapshot.derive_snapshot` makes equal dots
    one object. Each dot's document is made once and found again by the dot's identity
    (a dot made elsewhere, e.g. read back from a file, simply gets its own); this spares
    most of the allocations (and the fresh memory) that were most of the document's
    cost. The encoded bytes are the same.
    """

    __slots__ = ("cells", "marks")

    def __init__(self) -> None:
        self.cells: dict[int, dict[str, Any]] = {}
        self.marks: dict[Mark, dict[str, str]] = {}

    def cell(self, cell: Dot) -> dict[str, Any]:
        """The dot's document, made on its first sight (the caller looks it up first)."""
        data: dict[str, Any] = {
            "status": cell.status,
            "applicability": cell.applicability,
            "declared": cell.declared,
            "observed": cell.observed,
            "last_verified_at": cell.last_verified_at,
            "review_by": cell.review_by,
        }
        if cell.needs_human:
            data["needs_human"] = True
        if cell.override is not None:
            at, by, reason = cell.override
            data["override"] = {"at": at, "by": by, "reason": reason}
        if cell.history is not None:
            marks = self.marks
            data["history"] = [marks.get(m) or self._mark(m) for m in cell.history]
        self.cells[id(cell)] = data
        return data

    def _mark(self, mark: Mark) -> dict[str, str]:
        at, outcome, detail = mark
        data = (
            {"at": at, "outcome": outcome}
            if detail is None
            else {"at": at, "outcome": outcome, "detail": detail}
        )
        self.marks[mark] = data
        return data


def _row_document(row: FleetRow, shared: _Shared) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slug": row.slug,
        "url": row.url,
        "role": row.role,
        "profile": row.profile,
        "tier": row.tier,
        "default_branch": row.default_branch,
        "contract_sha": row.contract_sha,
    }
    if row.contract_commit is not None:
        data["contract_commit"] = row.contract_commit
    if row.integrations is not None:
        known = shared.cells
        data["integrations"] = {
            i: known.get(id(c)) or shared.cell(c) for i, c in row.integrations.items()
        }
    return data


def _gate_document(gate: Gate) -> dict[str, Any]:
    return {
        "tier": gate.tier,
        "days": gate.days,
        "green": gate.green,
        "green_since": gate.green_since,
        "green_at": gate.green_at,
        "holds": [
            {"slug": h.slug, "integration": h.integration, "reason": h.reason, "message": h.message}
            for h in gate.holds
        ],
    }


def _snapshot_grid(snapshot: FleetSnapshot) -> tuple[list[str], list[list[str]]]:
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


def gate_line(gate: Gate, *, at: str) -> str:
    """A tier's rollout gate in words, as of ``at``: the one wording, wherever it is shown
    (``rollout status``/``gate``, the snapshot's table, Markdown and page)."""
    if gate.green:
        since = f"ok since {gate.green_since}" if gate.green_since else "nothing applicable"
        return f"tier {gate.tier}: green for the {gate.days}-day window at {at} ({since})"
    earliest = f"; green at {gate.green_at} at the earliest" if gate.green_at else ""
    return (
        f"tier {gate.tier}: held back at {at} ({len(gate.holds)} hold(s), "
        f"{gate.days}-day window){earliest}"
    )


def hold_line(message: str) -> str:
    """One hold under its gate's line, made safe for a terminal."""
    return visible(f"  held: {message}")


def run_line(run: DailyRun) -> str:
    """The last daily run in words: when, whether it finished, how each step ended."""
    steps = ", ".join(f"{s.name} {s.outcome}" for s in run.steps) or "no step ended"
    if run.finished_at is None:
        return f"last daily run: started {run.started_at}, never finished ({steps})"
    return f"last daily run: {run.started_at} to {run.finished_at} ({steps})"


def _footer(snapshot: FleetSnapshot) -> list[str]:
    """The lines under the table: totals, the last daily run, each gate (its line, then
    its first hold), the keys to ``!`` and ``*``, and the warnings."""
    lines = [
        f"{snapshot.totals.repos} repos, {snapshot.totals.migrated} migrated; "
        f"generated {snapshot.generated_at} by {snapshot.generator}",
    ]
    if snapshot.last_run is not None:
        lines.append(run_line(snapshot.last_run))
    for gate in snapshot.gates or ():
        lines.append(gate_line(gate, at=snapshot.generated_at))
        if gate.holds:
            lines.append(hold_line(gate.holds[0].message))
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


def snapshot_table(snapshot: FleetSnapshot) -> bytes:
    headers, rows = _snapshot_grid(snapshot)
    text = text_table(headers, rows) + "\n" + "\n".join(_footer(snapshot)) + "\n"
    return text.encode()


def snapshot_markdown(snapshot: FleetSnapshot) -> bytes:
    headers, rows = _snapshot_grid(snapshot)
    rows = [[f"`{r[0]}`", *r[1:]] for r in rows]
    parts = [f"# Fleet snapshot {snapshot.generated_at}\n", markdown_table(headers, rows)]
    footer = _footer(snapshot)
    parts.append("\n" + footer[0] + "\n")
    if len(footer) > 1:
        items = [f"  - {line[2:]}" if line.startswith("  ") else f"- {line}" for line in footer[1:]]
        parts.append("\n" + "\n".join(items) + "\n")
    return "".join(parts).encode()


def snapshot_html(snapshot: FleetSnapshot) -> bytes:
    # Imported here so that commands which never draw a page do not load the renderer.
    from petrova.render.html import default_titles, render_html

    return render_html(snapshot, titles=default_titles())


def snapshot_openmetrics(snapshot: FleetSnapshot) -> bytes:
    from petrova.render.metrics import snapshot_openmetrics as metrics

    return metrics(snapshot)


#: The renderers of the typed snapshot; JSON is the document itself, encoded once by
#: the pipeline (``fleet.snapshot.Made.data``).
SNAPSHOT_FORMATS: dict[str, Callable[[FleetSnapshot], bytes]] = {
    "table": snapshot_table,
    "markdown": snapshot_markdown,
    "html": snapshot_html,
    "openmetrics": snapshot_openmetrics,
}
