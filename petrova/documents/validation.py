"""Turn pydantic and jsonschema errors into :class:`Problem`s that point at YAML lines."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from petrova.errors import Problem
from petrova.files.yaml_strict import FieldPath, YamlDocument

if TYPE_CHECKING:  # jsonschema is imported only when there are errors to describe
    import jsonschema

_MAX_SHOWN = 60
#: Problems located and shown per document; the rest are counted.
MAX_PROBLEMS = 50


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def pydantic_problems(
    exc: ValidationError, doc: YamlDocument, *, prefix: FieldPath = ()
) -> list[Problem]:
    """One problem per pydantic error, located in ``doc`` and worded for an operator."""
    problems: list[Problem] = []
    errors = exc.errors(include_url=False)
    for err in errors[:MAX_PROBLEMS]:
        loc = tuple(prefix) + tuple(p for p in err["loc"] if isinstance(p, str | int))
        # pydantic tags union members in the path ("str", "ApplicabilityDetail", ...):
        # keep only the parts that exist in the document.
        loc = _strip_union_tags(doc, loc)
        kind = err["type"]
        if kind == "missing":
            message = "required field is missing"
        elif kind == "extra_forbidden":
            message = "unknown field (remove it, or check its spelling)"
        elif kind == "value_error":
            message = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
        else:
            message = f"{_short(err.get('input'))}: {err['msg'][0].lower()}{err['msg'][1:]}"
        problems.append(Problem(message, doc.locate(loc)))
    return in_line_order(_dedupe(problems)) + _more(len(errors), doc)


def capped(problems: list[Problem], total: int, doc: YamlDocument) -> list[Problem]:
    """The first :data:`MAX_PROBLEMS` problems and a count of the ``total`` minus those."""
    return in_line_order(problems[:MAX_PROBLEMS]) + _more(total, doc)


def _more(total: int, doc: YamlDocument) -> list[Problem]:
    """One closing line instead of the rest: locating each of 20,000 unknown keys is
    quadratic, and nobody reads past the first screen anyway."""
    if total <= MAX_PROBLEMS:
        return []
    return [Problem(f"... and {total - MAX_PROBLEMS} more problem(s) not shown", doc.locate(()))]


def _strip_union_tags(doc: YamlDocument, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Keep the parts of a pydantic error path that exist in the document.

    pydantic inserts union member tags ("Detail", "literal[...]") into paths; they are
    skipped. A name that is not in the document is kept only when it is the last part
    (a missing field, which belongs to the mapping before it).
    """
    out: list[str | int] = []
    data: Any = doc.data
    for position, part in enumerate(loc):
        if _has(data, part):
            data = data[part]
            out.append(part)
        elif isinstance(part, str) and _looks_like_tag(part):
            continue
        elif position == len(loc) - 1:
            out.append(part)
    return tuple(out)


def _has(data: Any, part: str | int) -> bool:
    if isinstance(data, dict):
        return isinstance(part, str) and part in data
    if isinstance(data, list):
        return isinstance(part, int) and 0 <= part < len(data)
    return False


def _looks_like_tag(part: str) -> bool:
    return (
        part[:1].isupper()
        or part in {"str", "int", "bool", "float", "dict", "list"}
        or (part.startswith(("literal[", "function-")))
    )


def _dedupe(problems: Iterable[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out: list[Problem] = []
    for problem in problems:
        key = str(problem)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


def jsonschema_problems(
    errors: Iterable[jsonschema.ValidationError], doc: YamlDocument, *, prefix: FieldPath = ()
) -> list[Problem]:
    """Located problems for jsonschema errors, the most relevant first.

    For ``oneOf``/``anyOf``/``if-then`` failures jsonschema reports the outer keyword;
    ``best_match`` digs into the context to find what the author most likely meant.
    """
    from jsonschema.exceptions import best_match

    problems: list[Problem] = []
    ordered = sorted(errors, key=lambda e: (list(e.absolute_path).__len__(), e.path))
    for error in ordered[:MAX_PROBLEMS]:
        best = best_match([error]) or error
        path = tuple(prefix) + tuple(best.absolute_path)
        problems.append(Problem(_describe(best), doc.locate(path)))
    return in_line_order(_dedupe(problems)) + _more(len(ordered), doc)


def in_line_order(problems: list[Problem]) -> list[Problem]:
    """Problems as a reader meets them in the file: by line and column (stable); a
    closing "... and N more" line stays last."""
    return sorted(
        problems,
        key=lambda p: (
            p.message.startswith("... and "),
            p.location.line is None,
            p.location.line or 0,
            p.location.column or 0,
        ),
    )


def _describe(error: jsonschema.ValidationError) -> str:
    validator = error.validator
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    expected: Any = error.validator_value
    value = error.instance
    if validator == "required":
        missing = [p for p in expected if isinstance(value, dict) and p not in value]
        return "missing required field " + ", ".join(repr(m) for m in missing)
    if validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        names = ", ".join(repr(x) for x in extra)
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        return f"unknown field {names}{hint}"
    if validator == "enum":
        options = ", ".join(repr(o) for o in expected)
        return f"{_short(value)} is not one of {options}"
    if validator == "const":
        return f"{_short(value)} must be {expected!r}"
    if validator == "type":
        return f"{_short(value)} is not of type {expected!r}"
    if validator == "pattern":
        desc = schema.get("description")
        hint = f" ({desc})" if desc else f" (must match {expected})"
        return f"{_short(value)} has the wrong form{hint}"
    if validator == "minLength" and value == "":
        return "must not be empty"
    return error.message if len(error.message) < 200 else error.message[:197] + "..."
