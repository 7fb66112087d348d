"""Reporters of the rollout gate (``petrova rollout status`` and ``gate``): text and JSON.

Each takes the typed report (:class:`~petrova.models.RolloutReport`) and returns bytes;
none prints. A gate is worded by :func:`petrova.render.formats.gate_line`, the same
sentence the snapshot's table, Markdown and page show.
"""

from __future__ import annotations

from typing import Any

from petrova.files.json_strict import to_json_bytes
from petrova.models import CellView, Hold, RepoView, RolloutReport, TierView, format_timestamp
from petrova.render.formats import STATUS_LABELS, gate_line, hold_line, text_table


def status_json(report: RolloutReport) -> bytes:
    return to_json_bytes(
        {
            **_header(report),
            "integration_ids": list(report.integration_ids),
            "tiers": [_tier_document(t, report) for t in report.tiers],
            "warnings": [{"slug": s, "code": c, "message": m} for s, c, m in report.warnings],
        }
    )


def status_text(report: RolloutReport) -> bytes:
    """Each tier: its repos, migrated or not, each dot, green or not, and what holds it."""
    parts: list[str] = []
    for tier in report.tiers:
        parts.append(_heading(tier, report) + "\n")
        headers = ["slug", "migrated", *report.integration_ids, "green"]
        rows = []
        for repo in tier.repos:
            dots = {c.integration: _dot(c) for c in repo.cells}
            rows.append(
                [
                    repo.slug,
                    "yes" if repo.migrated else "no",
                    *(dots.get(i, "-") for i in report.integration_ids),
                    "yes" if repo.green else "no",
                ]
            )
        parts.append(text_table(headers, rows))
        parts += [hold_line(h.message) + "\n" for h in tier.holds]
        parts.append("\n")
    if any(c.needs_human for t in report.tiers for r in t.repos for c in r.cells):
        parts.append("! = the newest outcome waits for a human: petrova state promote\n")
    if any(c.override for t in report.tiers for r in t.repos for c in r.cells):
        parts.append("* = ok on a human's override, not yet observed ok\n")
    return "".join(parts).encode()


def gate_text(tier: TierView, report: RolloutReport) -> bytes:
    lines = [_heading(tier, report)]
    lines += [hold_line(h.message) for h in tier.holds]
    return ("\n".join(lines) + "\n").encode()


def gate_json(tier: TierView, report: RolloutReport) -> bytes:
    return to_json_bytes({**_header(report), **_tier_document(tier, report)})


def _heading(tier: TierView, report: RolloutReport) -> str:
    return gate_line(tier.gate(report.days), at=format_timestamp(report.now))


def _header(report: RolloutReport) -> dict[str, Any]:
    return {"now": format_timestamp(report.now), "days": report.days}


def _tier_document(tier: TierView, report: RolloutReport) -> dict[str, Any]:
    return {
        "tier": tier.tier,
        "green": tier.green,
        "green_since": tier.green_since,
        "green_at": tier.green_at,
        "repos": [_repo_document(r) for r in tier.repos],
        "holds": [_hold_document(h) for h in tier.holds],
    }


def _repo_document(repo: RepoView) -> dict[str, Any]:
    return {
        "slug": repo.slug,
        "migrated": repo.migrated,
        "green": repo.green,
        "green_since": repo.green_since,
        "cells": {
            c.integration: {
                "status": c.status,
                "applicable": c.applicable,
                "needs_human": c.needs_human,
                "ok_since": c.ok_since,
            }
            for c in repo.cells
        },
        "holds": [_hold_document(h) for h in repo.holds],
    }


def _hold_document(hold: Hold) -> dict[str, Any]:
    return {
        "slug": hold.slug,
        "integration": hold.integration,
        "reason": hold.reason,
        "status": hold.status,
        "since": hold.since,
        "green_at": hold.green_at,
        "message": hold.message,
    }


def _dot(cell: CellView) -> str:
    return (
        STATUS_LABELS[cell.status]
        + ("!" if cell.needs_human else "")
        + ("*" if cell.override else "")
    )
