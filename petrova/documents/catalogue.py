"""The integration catalogue: ``contracts/contract.schema.json`` read as data.

Everything that names an integration (registry keys, contract cells, ledger cells,
snapshot columns, bootstrap questions) asks this module, so that renaming or adding
an integration is a schema edit and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from petrova.documents.probe_spec import ProbeSpec, parse_probe
from petrova.errors import (
    CatalogueInvalid,
    CatalogueNotFound,
    DuplicateJsonKey,
    IntegrationUnknown,
    Location,
)
from petrova.files import json_strict
from petrova.files.disk import DEFAULT_MAX_INPUT_BYTES, max_input_bytes, read_as
from petrova.models import CONTRACT_KEYS, KeyTypes

if TYPE_CHECKING:  # jsonschema is imported where errors are to be described
    from jsonschema import Draft202012Validator

CATALOGUE_RELPATH = Path("contracts") / "contract.schema.json"


@dataclass(frozen=True)
class EvidenceField:
    """One field of an integration's evidence: what a bootstrap question asks for."""

    name: str
    description: str
    schema: dict[str, Any]
    required: bool


@dataclass(frozen=True)
class Integration:
    id: str
    title: str
    description: str
    legacy_ids: tuple[str, ...]
    evidence_schema: dict[str, Any]
    fields: tuple[EvidenceField, ...]
    #: How petrova probes it (``x-probe``); ``None`` when the catalogue declares no probe.
    probe: ProbeSpec | None = None

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


@dataclass(frozen=True, eq=False)  # identity equality: usable as a cache key
class Catalogue:
    path: str
    schema: dict[str, Any]
    integrations: tuple[Integration, ...]

    @cached_property
    def ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.integrations)

    @cached_property
    def current_ids(self) -> frozenset[str]:
        """The ids as a set: a mapping whose keys are all in it needs no renaming."""
        return frozenset(self.ids)

    def get(self, integration_id: str) -> Integration:
        for integration in self.integrations:
            if integration.id == integration_id:
                return integration
        raise KeyError(integration_id)

    @cached_property
    def _aliases(self) -> dict[str, str]:
        aliases = {i.id: i.id for i in self.integrations}
        for integration in self.integrations:
            for legacy in integration.legacy_ids:
                aliases.setdefault(legacy, integration.id)
        return aliases

    def resolve(self, name: str) -> str | None:
        """The current id for ``name`` (itself, or the id that lists it as legacy)."""
        return self._aliases.get(name)

    def require(self, name: str, *, location: Location | None = None) -> str:
        """:meth:`resolve`, or ``INTEGRATION_UNKNOWN`` naming the valid ids: the one
        refusal of an integration a person named (an option, an argument, a field)."""
        resolved = self.resolve(name)
        if resolved is None:
            raise IntegrationUnknown(
                f"{name!r} is not an integration id in the catalogue; valid: {', '.join(self.ids)}",
                location=location,
            )
        return resolved

    def canonical_keys(
        self, mapping: Mapping[Any, Any]
    ) -> tuple[dict[Any, Any], tuple[tuple[str, str], ...]]:
        """``mapping`` with legacy integration ids (``x-legacy-ids``) renamed to current ones,
        and the ``(legacy, current)`` pairs renamed. A legacy key whose current id is also
        present stays as it is, so that the duplicate is reported, not silently merged.
        The one place registry, contract and ledger keys are renamed."""
        if mapping.keys() <= self.current_ids:  # the usual case: one set test, no renames
            return dict(mapping), ()
        renamed: list[tuple[str, str]] = []
        out: dict[Any, Any] = {}
        for key, value in mapping.items():
            current = self.resolve(key) if isinstance(key, str) else None
            if current is not None and current != key and current not in mapping:
                renamed.append((key, current))
                out[current] = value
            else:
                out[key] = value
        return out, tuple(renamed)

    @cached_property
    def contract_validator(self) -> Draft202012Validator:
        from petrova.documents.validation import whole_string_validator

        return whole_string_validator(self.schema)

    @cached_property
    def fast_contract_check(self) -> Callable[[Any], bool]:
        """A compiled validator that says only yes or no, about 100x faster than jsonschema
        (jsonschema-rs; ``jsonschema`` still gives the detailed errors of a "no")."""
        import jsonschema_rs  # only the commands that read contracts pay for it

        return jsonschema_rs.validator_for(self.schema).is_valid

    @cached_property
    def contract_keys(self) -> KeyTypes:
        """Key types of a contract, evidence fields included (see ``io.fast_parse``)."""
        strings = set(CONTRACT_KEYS.strings)
        scalars = set(CONTRACT_KEYS.scalars)
        for integration in self.integrations:
            for field in integration.fields:
                kind = _json_kind(field.schema, self.schema)
                if kind == "string":
                    strings.add(field.name)
                elif kind == "scalar":
                    scalars.add(field.name)
        return KeyTypes(frozenset(strings - scalars), frozenset(scalars))

    def evidence_validator(self, integration_id: str) -> Draft202012Validator:
        """A validator for one integration's evidence, resolving refs against the catalogue."""
        sub = {"$ref": f"#/$defs/integration_{integration_id}"}
        schema = {**self.schema, **sub}
        schema.pop("required", None)
        schema.pop("properties", None)
        schema.pop("additionalProperties", None)
        schema.pop("type", None)
        from petrova.documents.validation import whole_string_validator

        return whole_string_validator(schema)


def _json_kind(schema: dict[str, Any], root: dict[str, Any]) -> str | None:
    """``string``, ``scalar`` (number/boolean) or ``None`` for one evidence field."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
        return _json_kind(target, root) if isinstance(target, dict) else None
    kind = schema.get("type")
    if kind is None and isinstance(schema.get("enum"), list):
        values = schema["enum"]
        if all(isinstance(v, str) for v in values):
            kind = "string"
    if kind == "string":
        return "string"
    if kind in ("integer", "number", "boolean"):
        return "scalar"
    return None


def bundled_catalogue_path() -> Path | None:
    """The catalogue shipped inside the wheel, or the source checkout's copy."""
    packaged = resources.files("petrova").joinpath("_contracts", "contract.schema.json")
    if packaged.is_file():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[2] / CATALOGUE_RELPATH
    return source if source.is_file() else None


def find_catalogue(explicit: Path | None, registry_path: Path | None) -> Path:
    """Which catalogue governs this run.

    In order: ``--catalogue``, ``PETROVA_CATALOGUE``, the one beside the registry
    (the control-plane repo holds both), then the copy petrova ships with.
    """
    if explicit is not None:
        return explicit
    env = os.environ.get("PETROVA_CATALOGUE")
    if env:
        return Path(env)
    if registry_path is not None:
        beside = registry_path.parent / CATALOGUE_RELPATH
        if beside.is_file():
            return beside
    bundled = bundled_catalogue_path()
    if bundled is None:  # pragma: no cover - only a broken install gets here
        raise CatalogueNotFound(
            "no integration catalogue found; pass --catalogue PATH or set PETROVA_CATALOGUE",
            location=Location(str(CATALOGUE_RELPATH)),
        )
    return bundled


_CACHE: dict[tuple[str, int, int], Catalogue] = {}


_CATALOGUE_MISSING = (
    "integration catalogue not found; pass --catalogue PATH or set PETROVA_CATALOGUE"
)


def load_catalogue(path: Path) -> Catalogue:
    """Read and check the catalogue; cached per file identity for the life of the process."""
    shown = str(path)
    key: tuple[str, int, int] | None = None
    with contextlib.suppress(OSError):  # read_as below says what is wrong with the file
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        if key in _CACHE:
            return _CACHE[key]
    raw = read_as(
        path,
        CatalogueNotFound,
        what="the catalogue",
        missing=_CATALOGUE_MISSING,
        limit=max(max_input_bytes(), DEFAULT_MAX_INPUT_BYTES),
    )
    try:
        schema = json_strict.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, DuplicateJsonKey) as exc:
        line = getattr(exc, "lineno", None)
        col = getattr(exc, "colno", None)
        raise CatalogueInvalid(
            f"not valid JSON: {getattr(exc, 'msg', exc)}", location=Location(shown, line, col)
        ) from None
    catalogue = parse_catalogue(schema, shown)
    if key is not None:
        _CACHE[key] = catalogue
    return catalogue


def _check_meta_schema(schema: dict[str, Any], fail: Callable[[str, str], Exception]) -> None:
    """A valid JSON Schema 2020-12: jsonschema-rs says yes quickly, jsonschema explains a no
    (and has the last word: its verdict is the one the error tests pin down)."""
    import jsonschema_rs

    if jsonschema_rs.meta.is_valid(schema):
        return
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        field = "/".join(str(p) for p in exc.absolute_path) or "$"
        raise fail(f"not a valid JSON Schema 2020-12: {exc.message}", field) from None


def parse_catalogue(schema: Any, shown: str) -> Catalogue:
    def fail(message: str, field: str) -> CatalogueInvalid:
        return CatalogueInvalid(message, location=Location(shown, field=field))

    if not isinstance(schema, dict):
        raise fail("the catalogue must be a JSON object (a JSON Schema)", "$")
    _check_meta_schema(schema, fail)
    props = schema.get("properties", {}).get("integrations", {}).get("properties")
    if not isinstance(props, dict) or not props:
        raise fail(
            "properties.integrations.properties must list at least one integration id",
            "properties.integrations.properties",
        )
    defs = schema.get("$defs", {})
    integrations: list[Integration] = []
    seen: dict[str, str] = {}
    for integration_id in props:
        def_name = f"integration_{integration_id}"
        evidence = defs.get(def_name)
        field = f"$defs.{def_name}"
        if not isinstance(evidence, dict):
            raise fail(f"integration {integration_id!r} has no evidence schema", field)
        title = evidence.get("title")
        if not isinstance(title, str) or not title:
            raise fail(f"integration {integration_id!r} needs a non-empty 'title'", field)
        legacy = evidence.get("x-legacy-ids", [])
        if not isinstance(legacy, list) or not all(isinstance(x, str) for x in legacy):
            raise fail("'x-legacy-ids' must be a list of strings", f"{field}.x-legacy-ids")
        for name in (integration_id, *legacy):
            if name in seen:
                raise fail(
                    f"id {name!r} is claimed by both {seen[name]!r} and {integration_id!r}", field
                )
            seen[name] = integration_id
        required = evidence.get("required", [])
        fields = tuple(
            EvidenceField(
                name=name,
                description=str(sub.get("description", name)) if isinstance(sub, dict) else name,
                schema=sub if isinstance(sub, dict) else {},
                required=name in required,
            )
            for name, sub in evidence.get("properties", {}).items()
        )
        probe = None
        if "x-probe" in evidence:
            probe = parse_probe(
                evidence["x-probe"],
                evidence_fields=frozenset(f.name for f in fields),
                fail=fail,
                where=f"{field}.x-probe",
            )
        integrations.append(
            Integration(
                id=integration_id,
                title=title,
                description=str(evidence.get("description", "")),
                legacy_ids=tuple(legacy),
                evidence_schema=evidence,
                fields=fields,
                probe=probe,
            )
        )
    return Catalogue(path=shown, schema=schema, integrations=tuple(integrations))
