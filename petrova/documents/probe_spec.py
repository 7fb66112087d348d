"""``x-probe``: an integration's probe as catalogue data, checked and parsed.

A probe is a list of checks of built-in kinds. Each check either passes, is skipped (an
evidence field it needs was not given), could not look (``unreachable``), or fails in
one of its kind's *modes*; ``fail`` says which outcome each mode means. The outcome of
the probe is the worst failure (``failing`` over ``degraded`` over ``ok``), except that
a check that could not look makes it ``unreachable`` unless another check already
proved ``failing`` (nothing it could have seen would be worse).

This module imports nothing of petrova but errors, so the catalogue loader can use it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: kind -> {mode: default outcome}. The first mode is the kind's main failure.
MODES: dict[str, dict[str, str]] = {
    "file": {"missing": "failing", "count": "degraded"},
    "http": {"status": "failing"},
    "github_webhook": {"no_hook": "failing", "inactive": "failing", "delivery": "degraded"},
    "age": {"old": "degraded"},
}
FAIL_OUTCOMES = ("degraded", "failing")
_ENV = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}
_FIELD = {"type": "string", "minLength": 1}
_STATUS = {
    "oneOf": [
        {"type": "integer", "minimum": 100, "maximum": 599},
        {"type": "string", "pattern": "^[1-5]xx$"},
    ]
}


def _check_schema(kind: str, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    modes = MODES[kind]
    fail = {
        "oneOf": [
            {"enum": list(FAIL_OUTCOMES)},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {m: {"enum": list(FAIL_OUTCOMES)} for m in modes},
            },
        ]
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "kind", *required],
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
            "kind": {"const": kind},
            "description": {"type": "string"},
            "fail": fail,
            **props,
        },
    }


#: The schema ``x-probe`` must satisfy (the catalogue loader checks it).
X_PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["checks"],
    "properties": {
        "description": {"type": "string"},
        "checks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": {"enum": list(MODES)}},
                "allOf": [
                    {
                        "if": {"properties": {"kind": {"const": kind}}},
                        "then": schema,
                    }
                    for kind, schema in (
                        (
                            "file",
                            _check_schema(
                                "file",
                                {
                                    "path_field": _FIELD,
                                    "count": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["field", "pattern"],
                                        "properties": {
                                            "field": _FIELD,
                                            "pattern": {"type": "string", "minLength": 1},
                                            "tolerance": {"type": "integer", "minimum": 0},
                                        },
                                    },
                                },
                                ["path_field"],
                            ),
                        ),
                        (
                            "http",
                            _check_schema(
                                "http",
                                {
                                    "url": {"type": "string", "minLength": 1},
                                    "base_url": {"type": "string", "pattern": "^https?://"},
                                    "base_url_env": _ENV,
                                    "token_env": _ENV,
                                    "pass_statuses": {
                                        "type": "array",
                                        "minItems": 1,
                                        "items": _STATUS,
                                    },
                                },
                                ["url"],
                            ),
                        ),
                        (
                            "github_webhook",
                            _check_schema(
                                "github_webhook",
                                {
                                    "scope_field": _FIELD,
                                    "host": {"type": "string", "minLength": 1},
                                    "token_env": _ENV,
                                },
                                ["scope_field", "host"],
                            ),
                        ),
                        (
                            "age",
                            _check_schema(
                                "age",
                                {"field": _FIELD, "max_days": {"type": "integer", "minimum": 1}},
                                ["field", "max_days"],
                            ),
                        ),
                    )
                ],
            },
        },
    },
}


@functools.cache
def _fast_validator() -> Callable[[Any], bool]:
    import jsonschema_rs

    return jsonschema_rs.validator_for(X_PROBE_SCHEMA).is_valid


def _fast_valid(data: Any) -> bool:
    return _fast_validator()(data)


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

# --- evidence that becomes a path: one rule for sync and probe -----------------------------

#: Top folders of a clone that evidence may never name: git's own data, and petrova's
#: contract (which a probe would then find by construction: a false green).
RESERVED_TOP = (".git", ".petrova")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def _decoded(text: str) -> str:
    """``text`` with every ``%XX`` decoded, repeatedly: ``%252e`` is a dot to a server
    that decodes twice, so it is one here too."""
    for _ in range(4):
        decoded = _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), text)
        if decoded == text:
            break
        text = decoded
    return text


def segment_problem(segment: str) -> str | None:
    """Why ``segment`` may not be one part of a path (a URL's or a clone's), or None.

    Refused, raw or percent-decoded: empty, ``.``, ``..``, a ``/`` or a backslash inside,
    a control character (NUL included) or a non-printing one. This is the rule every
    evidence value that becomes a path segment follows, wherever it is used.
    """
    if not segment:
        return "is empty"
    for text in (segment, _decoded(segment)):
        if text in (".", ".."):
            return "is . or .. (it would name another folder)"
        if "/" in text or "\\" in text:
            return "holds a slash or a backslash"
        if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in text):
            return "holds a control character"
    return None


def path_problem(path: str) -> str | None:
    """Why ``path`` may not name a file or folder in a consumer's clone, or None.

    A path is relative, ``/``-separated (one trailing ``/`` allowed), each part a safe
    :func:`segment_problem`, and neither inside ``.git`` (at any depth) nor inside
    ``.petrova``. Used by ``petrova sync`` (what is checked out) and by the ``file``
    probe (what is looked at): the two can never disagree.
    """
    if not path:
        return "is empty"
    if path.startswith("/"):
        return "is absolute"
    parts = path.removesuffix("/").split("/")
    for part in parts:
        problem = segment_problem(part)
        if problem is not None:
            if not part or _decoded(part) in (".", ".."):
                return "leaves the repo (., .. or an empty part)"
            return f"has a part that {problem}"
        if _decoded(part).casefold() == ".git":
            return "is inside .git"
    if _decoded(parts[0]).casefold() in RESERVED_TOP:
        return f"is inside {parts[0]}"
    return None


@dataclass(frozen=True)
class Check:
    """One check of a probe: its kind, parameters and what each failure mode means."""

    id: str
    kind: str
    params: Mapping[str, Any]
    fail: Mapping[str, str]

    def fields(self) -> tuple[str, ...]:
        """The evidence fields this check reads; when one is absent it is skipped."""
        p = self.params
        if self.kind == "file":
            return (p["path_field"],)
        if self.kind == "http":
            return tuple(_PLACEHOLDER.findall(p["url"]))
        if self.kind == "github_webhook":
            return (p["scope_field"],)
        return (p["field"],)

    def all_fields(self) -> tuple[str, ...]:
        """Every evidence field named, for checking the catalogue."""
        extra = (self.params["count"]["field"],) if "count" in self.params else ()
        return (*self.fields(), *extra)


@dataclass(frozen=True)
class ProbeSpec:
    checks: tuple[Check, ...]
    description: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(c.kind for c in self.checks)

    def file_paths(self, evidence: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
        """``(field, path)`` for each path the ``file`` checks read, as the contract gives
        it (not yet checked: ``sync.paths`` refuses unsafe ones): what a sparse clone must
        hold."""
        paths = []
        for check in self.checks:
            if check.kind == "file":
                name = check.params["path_field"]
                value = evidence.get(name)
                if isinstance(value, str):
                    paths.append((name, value))
        return tuple(paths)


def parse_probe(
    data: Any,
    *,
    evidence_fields: frozenset[str],
    fail: Callable[[str, str], Exception],
    where: str,
) -> ProbeSpec:
    """Check ``x-probe`` against :data:`X_PROBE_SCHEMA` and the evidence it names.

    ``fail(message, field)`` builds the error (``CATALOGUE_INVALID`` at ``where``...).
    """
    if not _fast_valid(data):
        # jsonschema explains a no; the fast validator keeps it off every command's path
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import best_match

        worst = best_match(Draft202012Validator(X_PROBE_SCHEMA).iter_errors(data))
        if worst is not None:  # jsonschema has the last word
            spot = where + "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in worst.absolute_path
            )
            raise fail(f"{worst.message} (see docs/PROBES.md for the check kinds)", spot)
    checks: list[Check] = []
    seen: set[str] = set()
    for index, item in enumerate(data["checks"]):
        spot = f"{where}.checks[{index}]"
        if item["id"] in seen:
            raise fail(f"check id {item['id']!r} is used twice", f"{spot}.id")
        seen.add(item["id"])
        kind = item["kind"]
        given = item.get("fail", {})
        modes = dict(MODES[kind])
        if isinstance(given, str):
            modes = dict.fromkeys(modes, given)
        else:
            modes.update(given)
        params = {k: v for k, v in item.items() if k not in ("id", "kind", "fail", "description")}
        check = Check(item["id"], kind, params, modes)
        for name in check.all_fields():
            if name not in evidence_fields:
                raise fail(
                    f"evidence field {name!r} is not in the integration's evidence; valid: "
                    f"{', '.join(sorted(evidence_fields)) or '(none)'}",
                    spot,
                )
        checks.append(check)
    return ProbeSpec(tuple(checks), str(data.get("description", "")), data)
