"""Run a plan: every cell probed once, at most ``jobs`` at a time, in the plan's order.

The result is the outcome lines ``petrova state record --from -`` takes (in plan order,
so the same observations give the same bytes), the cells left for the next run when
GitHub's rate limit ran out, and counts for the report.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from petrova import clock
from petrova.models import format_timestamp
from petrova.net.http import inward_allowed
from petrova.probe.github import Budget, BudgetSpent, EtagCache, GitHub
from petrova.probe.http import Transport
from petrova.probe.kinds import Cell, clip, run_probe
from petrova.probe.plan import Plan, Planned

DEFAULT_JOBS = 16
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Left:
    """A cell not probed because the rate limit ran out: it waits for the next run."""

    slug: str
    integration: str
    last_verified_at: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "integration": self.integration,
            "last_verified_at": self.last_verified_at,
            "reason": self.reason,
        }


@dataclass
class RunResult:
    outcomes: list[dict[str, str]] = field(default_factory=list)
    left: list[Left] = field(default_factory=list)
    github_requests: int = 0
    github_not_modified: int = 0
    rate_remaining: int | None = None

    @property
    def unreachable(self) -> list[dict[str, str]]:
        return [o for o in self.outcomes if o["outcome"] == "unreachable"]


def run_plan(
    plan: Plan,
    *,
    catalogue_probe: Callable[[str], Any],
    jobs: int = DEFAULT_JOBS,
    timeout: float = DEFAULT_TIMEOUT,
    cache_dir: Path | None = None,
    environ: Mapping[str, str],
    shares: int = 1,
) -> RunResult:
    """Probe every planned cell; ``catalogue_probe(id)`` gives an integration's ProbeSpec.

    ``shares``: how many runs share the GitHub rate limit at once (the shards of a
    matrix); this run spends at most its share of what is left (:class:`Budget`).
    """
    transport = Transport(timeout=timeout, allow_inward=inward_allowed(environ))
    cache = EtagCache(cache_dir)
    budget = Budget(shares=shares)
    github = GitHub(
        transport=transport, cache=cache, budget=budget, api=environ.get("GITHUB_API_URL")
    )
    secrets = _secret_values(plan, catalogue_probe, environ)

    def probe(planned: Planned) -> dict[str, str] | Left:
        cell = Cell(
            planned.slug,
            planned.repo_url,
            planned.clone,
            planned.evidence,
            clock.now(),
            transport,
            github,
            environ,
        )
        try:
            outcome, detail = run_probe(catalogue_probe(planned.integration), cell)
        except BudgetSpent as exc:
            return Left(planned.slug, planned.integration, planned.last_verified_at, exc.reason)
        except Exception as exc:  # one cell's trouble stays that cell's
            outcome, detail = "unreachable", f"the probe could not run ({type(exc).__name__})"
        for secret in secrets:
            detail = detail.replace(secret, "***")
        return {
            "slug": planned.slug,
            "integration": planned.integration,
            "outcome": outcome,
            "at": format_timestamp(clock.now()),
            "detail": clip(detail),
            "evidence_sha": planned.evidence_sha,
        }

    result = RunResult()
    try:
        if jobs <= 1 or len(plan.cells) <= 1:
            answers = [probe(p) for p in plan.cells]
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
                answers = list(pool.map(probe, plan.cells))
    finally:
        cache.save()
    for answer in answers:
        if isinstance(answer, Left):
            result.left.append(answer)
        else:
            result.outcomes.append(answer)
    result.github_requests = github.stats.requests
    result.github_not_modified = github.stats.not_modified
    result.rate_remaining = budget.remaining
    return result


def _secret_values(
    plan: Plan, catalogue_probe: Callable[[str], Any], environ: Mapping[str, str]
) -> list[str]:
    """Every token a check of this run may send: scrubbed from every detail, whatever
    a server echoed back."""
    names = {"GITHUB_TOKEN"}
    for iid in {p.integration for p in plan.cells}:
        for check in catalogue_probe(iid).checks:
            if "token_env" in check.params:
                names.add(check.params["token_env"])
    values = [environ.get(n, "").strip() for n in names]
    return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)
