"""Bootstrap questions and answers, derived from the catalogue (MR-15).

The catalogue is the contract's JSON Schema, so it already says what to ask: one
question per integration (its status), plus, for a ``wired`` answer, one per evidence
field, each typed by its sub-schema. Answers arrive from prompts or from an answers
file; both go through the same checks, so a file can never say what a prompt could not.

Answers file (YAML)::

    integrations:
      ares: pending                      # a bare status is enough
      traceo:
        status: wired
        evidence: {baseline_id: bl-7, vtm_path: docs/spec/vtm.md}
      crumb:
        status: not_applicable
        not_applicable_reason: no content surface yet
        review_by: "2026-08-01"

Keys are integration ids (legacy ids are accepted and mapped); the cell fields are the
contract's own (SPEC §4). Integrations left out take the defaults of SPEC §5.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from jsonschema import Draft202012Validator

from petrova.documents.catalogue import Catalogue, EvidenceField, Integration
from petrova.documents.validation import MAX_PROBLEMS, jsonschema_problems
from petrova.errors import AnswersInvalid, EvidenceInvalid, PetrovaError, Problem
from petrova.files.yaml_strict import FieldPath, YamlDocument

CELL_FIELDS = ("status", "evidence", "not_applicable_reason", "review_by")
_FALLBACK_STATUSES = ("pending", "wired", "not_applicable")


@dataclass(frozen=True)
class Question:
    """What bootstrap asks about one integration, straight from the catalogue."""

    integration: Integration
    statuses: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.integration.id

    @property
    def evidence_fields(self) -> tuple[EvidenceField, ...]:
        return self.integration.fields


@dataclass(frozen=True)
class Answer:
    """One integration's answer, in the contract cell's own terms."""

    status: str
    evidence: dict[str, Any] | None = None
    not_applicable_reason: str | None = None
    review_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        for name in CELL_FIELDS[1:]:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def statuses(catalogue: Catalogue) -> tuple[str, ...]:
    """The declared statuses the catalogue allows (its ``$defs.cell`` enum)."""
    enum = (
        catalogue.schema.get("$defs", {})
        .get("cell", {})
        .get("properties", {})
        .get("status", {})
        .get("enum")
    )
    if isinstance(enum, list) and enum and all(isinstance(s, str) for s in enum):
        return tuple(enum)
    return _FALLBACK_STATUSES


def questions(catalogue: Catalogue) -> tuple[Question, ...]:
    """One question per integration, in catalogue order."""
    allowed = statuses(catalogue)
    return tuple(Question(i, allowed) for i in catalogue.integrations)


def evidence_hint(integration: Integration) -> str:
    """What a ``wired`` status needs, worded for the person who must supply it."""
    required = ", ".join(integration.required_fields) or "an evidence mapping"
    return f"a wired {integration.id} ({integration.title}) needs evidence: {required}"


def field_schema(catalogue: Catalogue, schema: dict[str, Any]) -> dict[str, Any]:
    """A field's sub-schema with one level of ``$ref`` into ``$defs`` merged in."""
    ref = schema.get("$ref")
    prefix = "#/$defs/"
    if isinstance(ref, str) and ref.startswith(prefix):
        target = catalogue.schema.get("$defs", {}).get(ref[len(prefix) :], {})
        if isinstance(target, dict):
            return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def coerce_field(catalogue: Catalogue, field: EvidenceField, text: str) -> Any:
    """Turn typed-in text into the value the field's sub-schema expects.

    Raises ``ValueError`` with a sentence a prompt can show before asking again.
    """
    schema = field_schema(catalogue, field.schema)
    kind = schema.get("type")
    raw = text.strip()
    value: Any = raw
    if kind == "integer":
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a whole number") from None
    elif kind == "number":
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a number") from None
        if value.is_integer():
            value = int(value)
    elif kind == "boolean":
        lowered = raw.lower()
        if lowered in ("y", "yes", "true", "1"):
            value = True
        elif lowered in ("n", "no", "false", "0"):
            value = False
        else:
            raise ValueError(f"{raw!r} is not yes or no")
    validator = Draft202012Validator({"$defs": catalogue.schema.get("$defs", {}), **field.schema})
    errors = sorted(validator.iter_errors(value), key=lambda e: e.message)
    if errors:
        doc = YamlDocument("<answer>", value, None)
        raise ValueError(str(jsonschema_problems(errors, doc)[0].message))
    return value


def check_evidence(
    catalogue: Catalogue, integration_id: str, evidence: Any, doc: YamlDocument, at: FieldPath
) -> list[Problem]:
    """Problems of one evidence mapping against its sub-schema, located in ``doc``."""
    validator = catalogue.evidence_validator(integration_id)
    errors = list(validator.iter_errors(evidence))
    return jsonschema_problems(errors, doc, prefix=at) if errors else []


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def parse_answers(doc: YamlDocument, catalogue: Catalogue) -> dict[str, Answer]:
    """Check an answers document and return its answers keyed by current integration id.

    Every problem is reported at once, at its line: unknown integrations, unknown cell
    fields and invalid statuses are ``ANSWERS_INVALID``; evidence that fails its
    sub-schema (or a ``wired`` answer with none) is ``EVIDENCE_INVALID``.
    """
    data = doc.data
    if data is None:
        return {}
    shape: list[Problem] = []
    evidence: list[Problem] = []
    if not isinstance(data, dict):
        raise AnswersInvalid(
            "an answers file is a mapping with one key, 'integrations'", location=doc.locate(())
        )
    unknown = [key for key in data if key != "integrations"]
    for key in unknown[:MAX_PROBLEMS]:  # locating each of thousands is quadratic
        shape.append(
            Problem(
                f"unknown field {key!r}; an answers file has one key, 'integrations'",
                doc.locate((key,)),
            )
        )
    cells = data.get("integrations")
    if cells is None:
        cells = {}
    if not isinstance(cells, dict):
        shape.append(
            Problem(
                "'integrations' must map integration ids to answers", doc.locate(("integrations",))
            )
        )
        cells = {}
    allowed_statuses = statuses(catalogue)
    answers: dict[str, Answer] = {}
    for key, raw in cells.items():
        if len(shape) + len(evidence) >= MAX_PROBLEMS:
            shape.append(Problem("... and more problems not shown", doc.locate(())))
            break
        at: tuple[str | int, ...] = ("integrations", key)
        current = catalogue.resolve(key)
        if current is None:
            shape.append(
                Problem(
                    f"{key!r} is not an integration in the catalogue; "
                    f"known: {', '.join(catalogue.ids)}",
                    doc.locate(at),
                )
            )
            continue
        if current in answers:
            shape.append(Problem(f"{key!r} answers {current!r} a second time", doc.locate(at)))
            continue
        cell = {"status": raw} if isinstance(raw, str) else raw
        if not isinstance(cell, dict):
            shape.append(
                Problem(
                    "an answer is a status (" + ", ".join(allowed_statuses) + ") or a mapping "
                    "with status, evidence, not_applicable_reason, review_by",
                    doc.locate(at),
                )
            )
            continue
        where = at if isinstance(raw, str) else (*at, "status")
        problems_before = len(shape) + len(evidence)
        for name in cell:
            if name not in CELL_FIELDS:
                shape.append(
                    Problem(
                        f"unknown field {name!r}; allowed: {', '.join(CELL_FIELDS)}",
                        doc.locate((*at, name)),
                    )
                )
        status = cell.get("status")
        if status not in allowed_statuses:
            shape.append(
                Problem(
                    f"{status!r} is not a status; allowed: {', '.join(allowed_statuses)}",
                    doc.locate(where),
                )
            )
        ev = cell.get("evidence")
        if ev is not None:
            evidence += check_evidence(catalogue, current, ev, doc, (*at, "evidence"))
        elif status == "wired":
            evidence.append(Problem(evidence_hint(catalogue.get(current)), doc.locate(at)))
        reason = cell.get("not_applicable_reason")
        if reason is not None and (not isinstance(reason, str) or not reason.strip()):
            shape.append(
                Problem("must be a non-empty sentence", doc.locate((*at, "not_applicable_reason")))
            )
        review_by = cell.get("review_by")
        if review_by is not None and not _is_date(review_by):
            shape.append(
                Problem(
                    f"{review_by!r} is not a date in the form YYYY-MM-DD",
                    doc.locate((*at, "review_by")),
                )
            )
        if len(shape) + len(evidence) == problems_before:
            answers[current] = Answer(
                status=str(status),
                evidence=dict(ev) if isinstance(ev, dict) else None,
                not_applicable_reason=reason,
                review_by=review_by,
            )
    if shape:
        raise AnswersInvalid(
            f"{len(shape + evidence)} problem(s) in the answers", problems=[*shape, *evidence]
        )
    if evidence:
        raise EvidenceInvalid(f"{len(evidence)} problem(s) in the evidence", problems=evidence)
    return answers


def answers_document(answers: dict[str, Answer]) -> dict[str, Any]:
    """Answers in the answers-file shape (how the checkpoint stores them)."""
    return {"integrations": {k: v.as_dict() for k, v in answers.items()}}


def explain_wired(exc: PetrovaError, data: Any, catalogue: Catalogue) -> PetrovaError:
    """The same error, with what evidence a ``wired`` integration needs on its problems.

    jsonschema says "missing required field 'evidence'"; a person fixing the file also
    needs to know which fields that evidence must have, and the catalogue says.
    """
    cells = data.get("integrations") if isinstance(data, dict) else None
    if not isinstance(cells, dict):
        return exc
    by_id = {catalogue.resolve(k) or k: v for k, v in cells.items() if isinstance(k, str)}
    problems: list[Problem] = []
    changed = False
    for problem in exc.problems:
        field = problem.location.field or ""
        parts = field.split(".")
        in_cell = len(parts) >= 2 and parts[0] == "integrations"
        current = catalogue.resolve(parts[1]) if in_cell else None
        cell = by_id.get(current) if current is not None else None
        wired = isinstance(cell, dict) and cell.get("status") == "wired"
        if current is not None and wired and (len(parts) == 2 or parts[2] == "evidence"):
            hint = evidence_hint(catalogue.get(current))
            problem = Problem(f"{problem.message}; {hint}", problem.location)
            changed = True
        problems.append(problem)
    if not changed:
        return exc
    return type(exc)(exc.message, problems=problems)
