"""Turn pydantic and jsonschema errors into :class:`Problem`s that point at YAML lines."""

from __future__ import annotations

import functools
import re
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
        if not loc and kind not in ("missing", "extra_forbidden", "value_error"):
            message = _not_a_document(err.get("input"))
        elif kind == "missing":
            message = "required field is missing"
        elif kind == "extra_forbidden":
            message = "unknown field (remove it, or check its spelling)"
        elif kind == "value_error":
            message = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
        else:
            message = f"{_short(err.get('input'))}: {err['msg'][0].lower()}{err['msg'][1:]}"
            message += _boolean_hint(kind, err.get("input"))
        problems.append(Problem(message, doc.locate(loc)))
    return in_line_order(_dedupe(problems)) + _more(len(errors), doc)


#: Words YAML 1.1 reads as booleans and petrova (YAML 1.2) reads as text.
_YAML11_BOOLEANS = frozenset(
    w for word in ("yes", "no", "on", "off", "y", "n") for w in (word, word.title(), word.upper())
)


def _boolean_hint(kind: str, value: Any) -> str:
    """Where a number was expected, a boolean (or a YAML 1.1 boolean word) gets a hint."""
    if not kind.startswith(("int_", "float_", "literal_")):
        return ""
    if isinstance(value, bool) or (isinstance(value, str) and value in _YAML11_BOOLEANS):
        return " (a boolean or yes/no word is not a number here: write the number itself)"
    return ""


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
        if not path and not isinstance(best.instance, dict):
            message = _not_a_document(best.instance)
        else:
            message = _describe(best)
        problems.append(Problem(message, doc.locate(path)))
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


def whole_string_validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A 2020-12 validator whose ``pattern`` reads a final ``$`` as JSON Schema (ECMA 262)
    does: the end of the string. Python's ``$`` also matches before a final newline, so
    ``"kahn-hq\n"`` would pass ``^[a-z0-9-]+$`` here and fail in every other validator
    (the fast one included)."""
    return _whole_string_class()(schema)


@functools.cache
def _whole_string_class() -> type[jsonschema.Draft202012Validator]:
    from jsonschema import Draft202012Validator, ValidationError, validators

    def pattern(validator: Any, expected: str, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "string") and not _whole(expected).search(instance):
            yield ValidationError(f"{instance!r} does not match {expected!r}")

    extend: Any = validators.extend  # untyped in jsonschema
    cls: type[Draft202012Validator] = extend(Draft202012Validator, {"pattern": pattern})
    return cls


@functools.lru_cache(maxsize=256)
def _whole(expected: str) -> re.Pattern[str]:
    if expected.endswith("$") and not expected.endswith("\\$"):
        expected = expected[:-1] + r"\Z"
    return re.compile(expected)


def _not_a_document(value: Any) -> str:
    """A file whose top level is not a mapping is not the kind of file expected: say so
    without quoting it (it may be any file, an env file with a secret included)."""
    kind = {str: "text", list: "list", int: "number", float: "number", bool: "boolean"}
    what = kind.get(type(value), "empty" if value is None else type(value).__name__)
    return (
        f"the file's top level is {'a ' if what not in ('text', 'empty') else ''}{what}, "
        "not a mapping of fields: is this the right file?"
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
