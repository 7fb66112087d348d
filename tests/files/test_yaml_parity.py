"""The fast YAML path reads every document as the strict loader does, or steps aside.

tests/files/test_io.py holds the guards to the strict loader on scalars (every token under
every kind of key). This draws whole documents from a grammar of what YAML files hold and
what they get wrong: block mappings and sequences at odd indentations, flow collections,
quoted scalars with escapes, block scalars with their indicators (also empty, also at the
end of the file), continuation lines, comments, CRLF, tabs, non-ASCII line breaks,
directives and document markers. Whenever the fast path answers, the strict loader must
read the same data with the same types; the fast path may refuse anything.

A second YAML scanner was measured against this same grammar and read about one document
in ten differently (empty block scalars, ``>`` inside a flow sequence, tabs, U+2028): the
reason the fast parser stays in libyaml's family (docs/DESIGN.md, "Performance").
"""

from __future__ import annotations

import math
import random
from typing import Any

from petrova.errors import YamlInvalid
from petrova.files import yaml_fast, yaml_strict
from petrova.models import KeyTypes

KEYS = KeyTypes(
    strings=frozenset({"slug", "url", "sha", "notes", "added", "reason"}),
    scalars=frozenset({"tier", "count", "flag"}),
)

TOKENS = [
    *("a", "b", "slug", "url", "sha", "notes", "tier", "count", "flag", "reason", "x y"),
    *("kahn-hq", "012", "0o17", "0x1F", "1_000", "1e3", ".5", "yes", "no", "on", "true"),
    *("True", "null", "~", "", "2026-04-29", "2026-04-29T10:00:00Z", "12:30:00", "-1"),
    *("+1", "7", "1.0", "3f9a0c1b2d4e", "37649451e057", "https://x/y", "a:b", "a: b"),
    *("a #c", "a#c", "-", "- a", "?", "? a", ":", "a,b", "[a]", "{a: 1}", "'q'", '"q"'),
    *("'it''s'", '"e\\u00e9"', '"\\/"', '"\\x41"', '"\\N"', '"\\_"', '"\\L"', "'a\nb'"),
    *('"a\n  b"', "|", "|-", ">", ">+", "|2", "é", "\u2028", "\x85", "\t", "a\tb", "!x"),
    *("&a", "*a", "%", "@", "`", "a  b", "a ", " a", "''", '""', "[", "]", "{", "}", ","),
    *("#", "=", "<<", "...", "---", "\\", "a\\b"),
]


def _scalar(draw: random.Random) -> str:
    return draw.choice(TOKENS)


def _flow(draw: random.Random, depth: int) -> str:
    if depth > 3 or draw.random() < 0.4:
        return _scalar(draw)
    items = range(draw.randint(0, 3))
    if draw.random() < 0.5:
        return "[" + ", ".join(_flow(draw, depth + 1) for _ in items) + "]"
    return "{" + ", ".join(f"{_scalar(draw)}: {_flow(draw, depth + 1)}" for _ in items) + "}"


def _block(draw: random.Random, indent: int, depth: int, lines: list[str]) -> None:
    sequence = draw.random() < 0.3
    for _ in range(draw.randint(1, 4)):
        pad = " " * indent + (draw.choice(["", " ", "  "]) if draw.random() < 0.1 else "")
        lead = "- " if sequence else _scalar(draw) + draw.choice([":", ":", " :", ":  "]) + " "
        choice = draw.random()
        if choice < 0.45 or depth > 3:
            value = _flow(draw, 0) if draw.random() < 0.3 else _scalar(draw)
            lines.append(pad + lead + value + draw.choice(["", "", " # c", "  #c", "#c"]))
        elif choice < 0.55:  # a block scalar, perhaps empty, perhaps badly indented
            lines.append(pad + lead.rstrip() + draw.choice(["|", "|-", ">", "|+", ">-"]))
            for _ in range(draw.randint(0, 3)):
                lines.append(" " * (indent + draw.choice([2, 2, 1, 4, 0])) + _scalar(draw))
        elif choice < 0.62:  # a plain scalar continued on the next line
            lines.append(pad + lead + _scalar(draw))
            lines.append(" " * (indent + draw.choice([1, 2, 4, 0])) + _scalar(draw))
        else:  # a nested collection
            lines.append(pad + lead.rstrip())
            if draw.random() < 0.15:
                lines.append(draw.choice(["", "# note", "  # note", " "]))
            _block(draw, indent + draw.choice([2, 2, 4, 1, 0]), depth + 1, lines)


def _document(draw: random.Random) -> str:
    lines: list[str] = []
    if draw.random() < 0.05:
        lines.append(draw.choice(["---", "# head", "%YAML 1.1\n---"]))
    _block(draw, 0, 0, lines)
    text = "\n".join(lines) + draw.choice(["\n", "\n", "", "\n\n"])
    return text.replace("\n", "\r\n") if draw.random() < 0.05 else text


def _typed(value: Any) -> Any:
    """Types as well as values (1 == 1.0 == True in Python; nan != nan)."""
    if isinstance(value, dict):
        return {_typed(k): _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def test_whole_documents_read_the_same_on_both_paths() -> None:
    draw = random.Random(2026)
    answered = 0
    for _ in range(6000):
        text = _document(draw)
        fast = yaml_fast.fast_parse(text, KEYS)
        if fast is yaml_fast.NOT_FAST:
            continue
        answered += 1
        try:
            strict = yaml_strict.parse_yaml(text, "x.yaml", string_keys=KEYS.strings).data
        except YamlInvalid as exc:
            raise AssertionError(
                f"the fast path read what the strict one refuses: {text!r}"
            ) from exc
        assert _typed(fast) == _typed(strict), text
    # The fast path must really answer for a share of them, or this proves nothing.
    assert answered > 400
