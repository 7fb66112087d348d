"""Which paths of a consumer repo a sync checks out: ``.petrova/`` and what probes read.

A probe of kind ``file`` (catalogue: ``x-probe`` on ``$defs/integration_<id>``, parsed once
into :class:`~petrova.documents.probe_spec.ProbeSpec` when the catalogue is loaded) reads
the path named by an evidence field, so a clone holds that path only when the contract
declares the integration ``wired`` with that evidence. The paths come from a repo petrova
does not control; anything but a plain relative path inside the repo is refused.
"""

from __future__ import annotations

from petrova.documents.catalogue import Catalogue
from petrova.documents.probe_spec import path_problem
from petrova.errors import Location, ProbePathUnsafe
from petrova.models import Contract

ALWAYS = ".petrova"


def unsafe_reason(path: str) -> str | None:
    """Why ``path`` may not name a file in a consumer repo, or None when it may: the one
    rule the ``file`` probe follows too (:func:`~petrova.documents.probe_spec.path_problem`)."""
    return path_problem(path)


def probe_paths(catalogue: Catalogue, contract: Contract) -> list[str]:
    """The repo paths the catalogue's ``file`` probes read for this contract, sorted.

    Only integrations declared ``wired`` with the evidence field present count; a legacy
    id reads its current integration's probe. An unsafe path raises
    :class:`ProbePathUnsafe`, which carries the safe ones in ``safe``.
    """
    paths: set[str] = set()
    refused: list[str] = []
    for integration, cell in contract.integrations.items():
        if cell.status != "wired" or cell.evidence is None:
            continue
        current = catalogue.resolve(integration)
        probe = catalogue.get(current).probe if current is not None else None
        if probe is None:
            continue
        for field, value in probe.file_paths(cell.evidence):
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
