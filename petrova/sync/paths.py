"""Which paths of a consumer repo a sync checks out: ``.petrova/`` and what probes read.

A probe of kind ``file`` (catalogue: ``x-probe`` on ``$defs/integration_<id>``) reads the
path named by an evidence field, so a clone holds that path only when the contract declares
the integration ``wired`` with that evidence. The paths come from a repo petrova does not
control; anything but a plain relative path inside the repo is refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from petrova.documents.probe_spec import path_problem
from petrova.errors import Location, ProbePathUnsafe

ALWAYS = ".petrova"


def _checks(definition: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    probe = definition.get("x-probe")
    checks = probe.get("checks") if isinstance(probe, Mapping) else probe
    if isinstance(checks, list):
        yield from (c for c in checks if isinstance(c, Mapping))


def _fields_by_integration(catalogue_schema: Mapping[str, Any]) -> dict[str, list[str]]:
    """integration id (and each legacy id) -> the evidence fields its file checks read."""
    defs = catalogue_schema.get("$defs")
    found: dict[str, list[str]] = {}
    if not isinstance(defs, Mapping):
        return found
    for name, definition in defs.items():
        if not (isinstance(name, str) and name.startswith("integration_")):
            continue
        if not isinstance(definition, Mapping):
            continue
        fields = [
            c["path_field"]
            for c in _checks(definition)
            if c.get("kind") == "file" and isinstance(c.get("path_field"), str)
        ]
        if not fields:
            continue
        found[name.removeprefix("integration_")] = fields
        legacy = definition.get("x-legacy-ids")
        for old in legacy if isinstance(legacy, list) else []:
            if isinstance(old, str):
                found.setdefault(old, fields)
    return found


def unsafe_reason(path: str) -> str | None:
    """Why ``path`` may not name a file in a consumer repo, or None when it may: the one
    rule the ``file`` probe follows too (:func:`~petrova.documents.probe_spec.path_problem`)."""
    return path_problem(path)


def probe_paths(catalogue_schema: dict[str, Any], contract_data: dict[str, Any]) -> list[str]:
    """The repo paths the catalogue's ``file`` probes read for this contract, sorted.

    Only integrations declared ``wired`` with the evidence field present count. An unsafe
    path raises :class:`ProbePathUnsafe`, which carries the safe ones in ``safe``.
    """
    fields = _fields_by_integration(catalogue_schema)
    integrations = contract_data.get("integrations")
    if not isinstance(integrations, Mapping):
        return []
    paths: set[str] = set()
    refused: list[str] = []
    for integration, cell in integrations.items():
        if not isinstance(cell, Mapping) or cell.get("status") != "wired":
            continue
        evidence = cell.get("evidence")
        if not isinstance(evidence, Mapping):
            continue
        for field in fields.get(str(integration), []):
            value = evidence.get(field)
            if not isinstance(value, str):
                continue
            reason = unsafe_reason(value)
            if reason is None:
                paths.add(value.rstrip("/"))
            else:
                refused.append(f"integrations.{integration}.evidence.{field}: {value!r} {reason}")
    safe = sorted(paths)
    if refused:
        raise ProbePathUnsafe(
            "probe path refused: " + "; ".join(refused),
            safe=safe,
            location=Location(field=refused[0].split(":")[0]),
        )
    return safe


def sparse_patterns(paths: list[str]) -> str:
    """The non-cone sparse-checkout file for ``.petrova/`` plus ``paths``: each anchored at
    the repo root, glob characters escaped, so a path matches itself and nothing else."""
    lines = [f"/{ALWAYS}/"]
    for path in paths:
        escaped = "".join("\\" + ch if ch in "*?[]!# " else ch for ch in path)
        lines.append("/" + escaped)
    return "\n".join(lines) + "\n"
