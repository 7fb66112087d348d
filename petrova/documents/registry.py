"""Load and check ``registry.yaml`` (SPEC §3): the fleet's policy.

Hard problems stop every command (``REGISTRY_INVALID``, exit 2) and are reported all
at once, each at its line. Soft problems (an overdue ``review_by``, a legacy
integration id) come back as warnings for the caller to show.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from petrova import clock
from petrova.documents.catalogue import Catalogue
from petrova.documents.validation import capped, pydantic_problems
from petrova.errors import (
    APPLICABILITY_MISSING,
    LEGACY_INTEGRATION_ID,
    REVIEW_OVERDUE,
    Location,
    Problem,
    RegistryInvalid,
    RegistryNotFound,
    RepoNotInRegistry,
    YamlInvalid,
)
from petrova.files.disk import decode_text, read_as
from petrova.files.yaml_fast import fast_parse
from petrova.files.yaml_strict import FieldPath, YamlDocument, parse_yaml, render_field_path
from petrova.models import (
    REGISTRY_KEYS,
    ApplicabilityDetail,
    Registry,
    RepoEntry,
    applicability_value,
)

DEFAULT_REGISTRY = Path("registry.yaml")
#: Unknown integration ids listed per entry; the rest are counted.
_SHOWN_UNKNOWN = 20


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
    text: str
    catalogue: Catalogue
    findings: tuple[Finding, ...]

    @cached_property
    def document(self) -> YamlDocument:
        """The composed YAML, for line numbers and surgical edits; parsed on first use."""
        return parse_yaml(self.text, str(self.path), string_keys=REGISTRY_KEYS.strings)

    def entry(self, slug: str) -> RepoEntry | None:
        return self.registry.find(slug)

    def require(self, slug: str) -> RepoEntry:
        """The entry for ``slug``, or ``REPO_NOT_IN_REGISTRY`` naming the closest slugs."""
        entry = self.registry.find(slug)
        if entry is None:
            slugs = [r.slug for r in self.registry.repos]
            close = difflib.get_close_matches(slug, slugs, n=3)
            hint = (
                f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(slugs)}"
            )
            raise RepoNotInRegistry(f"no repo {slug!r} in {self.path}{hint}")
        return entry

    def entry_index(self, slug: str) -> int:
        for index, repo in enumerate(self.registry.repos):
            if repo.slug == slug:
                return index
        raise KeyError(slug)


Locate = Callable[[FieldPath], Location]


def default_registry_path() -> Path:
    env = os.environ.get("PETROVA_REGISTRY")
    return Path(env) if env else DEFAULT_REGISTRY


def read_registry_text(path: Path) -> str:
    shown = str(path)
    raw = read_as(
        path,
        RegistryNotFound,
        what="the registry",
        missing="registry file not found; pass --registry PATH or set PETROVA_REGISTRY",
        directory="is a directory; --registry takes the registry.yaml file",
    )
    try:
        return decode_text(raw, shown)
    except YamlInvalid as exc:
        raise RegistryInvalid(exc.message, problems=exc.problems) from None


def load_registry(path: Path, catalogue: Catalogue, *, today: date | None = None) -> LoadedRegistry:
    """Load, validate and check the registry; ``REGISTRY_INVALID`` lists every problem.

    Valid registries are read by the fast parser when it provably agrees with the strict
    loader (:func:`petrova.files.yaml_fast.fast_parse`); anything else, and every invalid
    registry, goes through the strict loader so that each problem is reported at its line.
    """
    shown = str(path)
    text = read_registry_text(path)
    day = today or clock.today()

    def no_line(field_path: FieldPath) -> Location:
        return Location(shown, field=render_field_path(field_path))

    raw = fast_parse(text, REGISTRY_KEYS)
    if isinstance(raw, dict):
        try:
            registry = Registry.model_validate(_canonical_ids(raw, catalogue))
        except ValidationError:
            registry = None
        if registry is not None and not _check_fleet(registry, raw, catalogue, no_line):
            findings = tuple(_soft_findings(registry, raw, catalogue, day, no_line))
            return LoadedRegistry(path, registry, text, catalogue, findings)

    try:
        doc = parse_yaml(text, shown, string_keys=REGISTRY_KEYS.strings)
    except YamlInvalid as exc:
        raise RegistryInvalid(exc.message, problems=exc.problems) from None
    if not isinstance(doc.data, dict):
        raise RegistryInvalid(
            "the registry must be a mapping with 'schema_version: 1' and a 'repos' list",
            location=doc.locate(()),
        )
    data = _canonical_ids(doc.data, catalogue)
    try:
        registry = Registry.model_validate(data)
    except ValidationError as exc:
        problems = pydantic_problems(exc, doc)
        raise RegistryInvalid(
            f"{len(problems)} problem(s) in the registry", problems=problems
        ) from None
    problems = _check_fleet(registry, doc.data, catalogue, doc.locate)
    if problems:
        raise RegistryInvalid(
            f"{len(problems)} problem(s) in the registry",
            problems=capped(problems, len(problems), doc),
        )
    findings = tuple(_soft_findings(registry, doc.data, catalogue, day, no_line))
    loaded = LoadedRegistry(path, registry, text, catalogue, findings)
    loaded.__dict__["document"] = doc  # already parsed: keep it for callers
    return loaded


def _canonical_ids(data: Any, catalogue: Catalogue) -> Any:
    """Map legacy integration ids to current ones before validation (x-legacy-ids)."""
    repos = data.get("repos")
    if not isinstance(repos, list):
        return data
    changed = False
    out_repos: list[Any] = []
    for repo in repos:
        app = repo.get("integrations_applicability") if isinstance(repo, dict) else None
        if isinstance(app, dict) and not app.keys() <= catalogue.current_ids:
            renamed, pairs = catalogue.canonical_keys(app)
            if pairs:
                changed = True
                repo = {**repo, "integrations_applicability": renamed}
        out_repos.append(repo)
    return {**data, "repos": out_repos} if changed else data


def _check_fleet(
    registry: Registry, raw: dict[str, Any], catalogue: Catalogue, locate: Locate
) -> list[Problem]:
    problems: list[Problem] = []
    seen_slugs: dict[str, int] = {}
    seen_urls: dict[str, int] = {}
    allowed = ", ".join(catalogue.ids)
    raw_repos = raw.get("repos", [])
    current = catalogue.current_ids
    control_planes = []
    for index, repo in enumerate(registry.repos):
        base: tuple[str | int, ...] = ("repos", index)
        if repo.slug in seen_slugs:
            problems.append(
                Problem(
                    f"duplicate slug {repo.slug!r} (also repos[{seen_slugs[repo.slug]}]); "
                    "slugs name state files and must be unique",
                    locate((*base, "slug")),
                )
            )
        seen_slugs.setdefault(repo.slug, index)
        url_key = _normalise_url(repo.url)
        if url_key in seen_urls:
            problems.append(
                Problem(
                    f"url {repo.url!r} is also used by repos[{seen_urls[url_key]}]; "
                    "each repo must have its own url",
                    locate((*base, "url")),
                )
            )
        seen_urls.setdefault(url_key, index)
        branch_problem = branch_name_problem(repo.default_branch)
        if branch_problem is not None:
            problems.append(
                Problem(
                    f"{repo.default_branch!r} is not a branch name git accepts: it "
                    f"{branch_problem} (see `git check-ref-format --branch`)",
                    locate((*base, "default_branch")),
                )
            )
        if repo.role == "control-plane":
            control_planes.append(index)
        raw_app = raw_repos[index].get("integrations_applicability") or {}
        unknown = (
            []
            if raw_app.keys() <= current
            else [key for key in raw_app if catalogue.resolve(key) is None]
        )
        for key in unknown[:_SHOWN_UNKNOWN]:  # locating each of thousands is quadratic
            problems.append(
                Problem(
                    f"{key!r} is not an integration id in the catalogue; allowed: {allowed}",
                    locate((*base, "integrations_applicability", key)),
                )
            )
        if len(unknown) > _SHOWN_UNKNOWN:
            problems.append(
                Problem(
                    f"... and {len(unknown) - _SHOWN_UNKNOWN} more unknown integration id(s)",
                    locate((*base, "integrations_applicability")),
                )
            )
    if len(control_planes) > 1:
        problems.append(
            Problem(
                "only one repo may have role 'control-plane' (also repos["
                + "], repos[".join(str(i) for i in control_planes[:-1])
                + "])",
                locate(("repos", control_planes[-1], "role")),
            )
        )
    return problems


_BRANCH_FORBIDDEN = frozenset(" ~^:?*[\\\x7f")


@functools.lru_cache(maxsize=256)  # pure, and most of a fleet says "main"
def branch_name_problem(name: str) -> str | None:
    """Why ``name`` is not a branch name git accepts (``git check-ref-format --branch``),
    or None. A pure function, so the registry refuses ``*``, a newline or ``a:b`` at its
    line instead of handing them to ``git clone --branch``."""
    if not name:
        return "is empty"
    if any(ord(ch) < 32 or ch in _BRANCH_FORBIDDEN for ch in name):
        return "holds a control character, a space or one of ~ ^ : ? * [ \\"
    if name.startswith("-"):
        return "starts with '-'"
    if name in ("HEAD", "@"):
        return f"is {name!r}, which git reserves"
    if "@{" in name:
        return "holds '@{'"
    if ".." in name:
        return "holds '..'"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "starts or ends with '/', or holds '//'"
    if name.endswith("."):
        return "ends with '.'"
    for part in name.split("/"):
        if part.startswith("."):
            return "has a part that starts with '.'"
        if part.endswith(".lock"):
            return "has a part that ends with '.lock'"
    return None


def _normalise_url(url: str) -> str:
    return url.lower().rstrip("/").removesuffix(".git")


def _soft_findings(
    registry: Registry, raw: dict[str, Any], catalogue: Catalogue, today: date, locate: Locate
) -> list[Finding]:
    """Warnings name the field, not the line: they come out the same on either parse path."""
    findings: list[Finding] = []
    raw_repos = raw.get("repos", [])
    current = catalogue.current_ids
    for index, repo in enumerate(registry.repos):
        raw_app = raw_repos[index].get("integrations_applicability") or {}
        if repo.migrated and not current <= repo.integrations_applicability.keys():
            # A catalogue that gains an integration rolls out: until an operator fills in
            # the migrated repos' applicability for it, their cell shows pending.
            missing = [i for i in catalogue.ids if i not in repo.integrations_applicability]
            if missing:
                findings.append(
                    Finding(
                        repo.slug,
                        APPLICABILITY_MISSING,
                        f"no applicability for {', '.join(missing)} (new in the catalogue?); "
                        "the cell shows pending until `petrova registry fill-applicability "
                        f"{repo.slug} --value VALUE` (or a pin) fills it in",
                        locate(("repos", index, "integrations_applicability")),
                    )
                )
        for key in () if raw_app.keys() <= current else raw_app:
            resolved = catalogue.resolve(key)
            if resolved is not None and resolved != key:
                findings.append(
                    Finding(
                        repo.slug,
                        LEGACY_INTEGRATION_ID,
                        f"integration id {key!r} was renamed to {resolved!r}; update the key",
                        locate(("repos", index, "integrations_applicability", key)),
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
                        REVIEW_OVERDUE,
                        f"{integration_id}: {applicability_value(item)} was due for review "
                        f"on {item.review_by}",
                        locate(("repos", index, "integrations_applicability", key, "review_by")),
                    )
                )
    return findings


def _raw_key(raw_app: dict[str, Any], integration_id: str, catalogue: Catalogue) -> str:
    for key in raw_app:
        if catalogue.resolve(key) == integration_id:
            return key
    return integration_id
