"""Load and check ``registry.yaml`` (SPEC §3): the fleet's policy.

Hard problems stop every command (``REGISTRY_INVALID``, exit 2) and are reported all
at once, each at its line. Soft problems (an overdue ``review_by``, a legacy
integration id) come back as warnings for the caller to show.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from petrova.catalogue import Catalogue
from petrova.errors import Location, Problem, RegistryInvalid, RegistryNotFound, YamlInvalid
from petrova.io import YamlDocument, load_yaml_file
from petrova.models import ApplicabilityDetail, Registry, RepoEntry, applicability_value
from petrova.validation import pydantic_problems

DEFAULT_REGISTRY = Path("registry.yaml")


@dataclass(frozen=True)
class Finding:
    """A soft problem: reported, never fatal."""

    slug: str | None
    code: str
    message: str
    location: Location


@dataclass(frozen=True)
class LoadedRegistry:
    path: Path
    registry: Registry
    document: YamlDocument
    catalogue: Catalogue
    findings: tuple[Finding, ...]

    def entry(self, slug: str) -> RepoEntry | None:
        return self.registry.find(slug)

    def entry_index(self, slug: str) -> int:
        for index, repo in enumerate(self.registry.repos):
            if repo.slug == slug:
                return index
        raise KeyError(slug)


def default_registry_path() -> Path:
    env = os.environ.get("PETROVA_REGISTRY")
    return Path(env) if env else DEFAULT_REGISTRY


def load_registry(path: Path, catalogue: Catalogue, *, today: date | None = None) -> LoadedRegistry:
    shown = str(path)
    try:
        doc = load_yaml_file(path, display=shown)
    except FileNotFoundError:
        raise RegistryNotFound(
            "registry file not found; pass --registry PATH or set PETROVA_REGISTRY",
            location=Location(shown),
        ) from None
    except IsADirectoryError:
        raise RegistryNotFound(
            "is a directory; --registry takes the registry.yaml file", location=Location(shown)
        ) from None
    except OSError as exc:
        raise RegistryNotFound(
            f"cannot read the registry: {exc.strerror}", location=Location(shown)
        ) from None
    except YamlInvalid as exc:
        raise RegistryInvalid(exc.message, problems=exc.problems) from None

    if not isinstance(doc.data, dict):
        raise RegistryInvalid(
            "the registry must be a mapping with 'schema_version: 1' and a 'repos' list",
            location=doc.locate(()),
        )
    data = _canonical_ids(doc, catalogue)
    try:
        registry = Registry.model_validate(data)
    except ValidationError as exc:
        problems = pydantic_problems(exc, doc)
        raise RegistryInvalid(
            f"{len(problems)} problem(s) in the registry", problems=problems
        ) from None

    problems = list(_check_fleet(registry, doc, catalogue))
    if problems:
        raise RegistryInvalid(f"{len(problems)} problem(s) in the registry", problems=problems)
    findings = tuple(_soft_findings(registry, doc, catalogue, today or date.today()))
    return LoadedRegistry(path, registry, doc, catalogue, findings)


def _canonical_ids(doc: YamlDocument, catalogue: Catalogue) -> Any:
    """Map legacy integration ids to current ones before validation (x-legacy-ids)."""
    data = doc.data
    repos = data.get("repos")
    if not isinstance(repos, list):
        return data
    changed = False
    out_repos: list[Any] = []
    for repo in repos:
        app = repo.get("integrations_applicability") if isinstance(repo, dict) else None
        if isinstance(app, dict):
            renamed = {}
            for key, value in app.items():
                current = catalogue.resolve(key) if isinstance(key, str) else None
                if current is not None and current != key and current not in app:
                    renamed[current] = value
                    changed = True
                else:
                    renamed[key] = value
            repo = {**repo, "integrations_applicability": renamed}
        out_repos.append(repo)
    return {**data, "repos": out_repos} if changed else data


def _check_fleet(registry: Registry, doc: YamlDocument, catalogue: Catalogue) -> list[Problem]:
    problems: list[Problem] = []
    seen_slugs: dict[str, int] = {}
    seen_urls: dict[str, int] = {}
    ids = catalogue.ids
    allowed = ", ".join(ids)
    raw_repos = doc.data.get("repos", [])
    control_planes = []
    for index, repo in enumerate(registry.repos):
        base: tuple[str | int, ...] = ("repos", index)
        if repo.slug in seen_slugs:
            problems.append(
                Problem(
                    f"duplicate slug {repo.slug!r} (also repos[{seen_slugs[repo.slug]}]); "
                    "slugs name state files and must be unique",
                    doc.locate((*base, "slug")),
                )
            )
        seen_slugs.setdefault(repo.slug, index)
        url_key = _normalise_url(repo.url)
        if url_key in seen_urls:
            problems.append(
                Problem(
                    f"url {repo.url!r} is also used by repos[{seen_urls[url_key]}]; "
                    "each repo must have its own url",
                    doc.locate((*base, "url")),
                )
            )
        seen_urls.setdefault(url_key, index)
        if repo.role == "control-plane":
            control_planes.append(index)
        raw_app = raw_repos[index].get("integrations_applicability") or {}
        for key in raw_app:
            if catalogue.resolve(key) is None:
                problems.append(
                    Problem(
                        f"{key!r} is not an integration id in the catalogue; allowed: {allowed}",
                        doc.locate((*base, "integrations_applicability", key)),
                    )
                )
        if repo.migrated:
            missing = [i for i in ids if i not in repo.integrations_applicability]
            if missing:
                problems.append(
                    Problem(
                        "a migrated repo (contract_sha set) needs applicability for every "
                        f"integration; missing: {', '.join(missing)}",
                        doc.locate((*base, "integrations_applicability")),
                    )
                )
    if len(control_planes) > 1:
        problems.append(
            Problem(
                "only one repo may have role 'control-plane' (also repos["
                + "], repos[".join(str(i) for i in control_planes[:-1])
                + "])",
                doc.locate(("repos", control_planes[-1], "role")),
            )
        )
    return problems


def _normalise_url(url: str) -> str:
    return url.lower().rstrip("/").removesuffix(".git")


def _soft_findings(
    registry: Registry, doc: YamlDocument, catalogue: Catalogue, today: date
) -> list[Finding]:
    findings: list[Finding] = []
    raw_repos = doc.data.get("repos", [])
    for index, repo in enumerate(registry.repos):
        raw_app = raw_repos[index].get("integrations_applicability") or {}
        for key in raw_app:
            current = catalogue.resolve(key)
            if current is not None and current != key:
                findings.append(
                    Finding(
                        repo.slug,
                        "LEGACY_INTEGRATION_ID",
                        f"integration id {key!r} was renamed to {current!r}; update the key",
                        doc.locate(("repos", index, "integrations_applicability", key)),
                    )
                )
        for integration_id, item in repo.integrations_applicability.items():
            if not isinstance(item, ApplicabilityDetail) or item.review_by is None:
                continue
            if date.fromisoformat(item.review_by) < today:
                key = _raw_key(raw_app, integration_id, catalogue)
                findings.append(
                    Finding(
                        repo.slug,
                        "REVIEW_OVERDUE",
                        f"{integration_id}: {applicability_value(item)} was due for review "
                        f"on {item.review_by}",
                        doc.locate(
                            ("repos", index, "integrations_applicability", key, "review_by")
                        ),
                    )
                )
    return findings


def _raw_key(raw_app: dict[str, Any], integration_id: str, catalogue: Catalogue) -> str:
    for key in raw_app:
        if catalogue.resolve(key) == integration_id:
            return key
    return integration_id
