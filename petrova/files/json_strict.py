"""JSON in and out: read as strictly as YAML (no key twice), written the same way every time.

Python's ``json`` and ``orjson`` both keep the last of two equal keys without a word, so
a probe line with two ``slug`` keys would be recorded against the second and a ledger with
two ``current_status`` keys read silently. Every JSON input petrova reads goes through
:func:`loads` (or, on the fast path, :func:`orjson_unique`).
"""

from __future__ import annotations

from typing import Any

import orjson

from petrova.errors import DuplicateJsonKey

__all__ = ["DuplicateJsonKey", "loads", "orjson_unique", "to_json_bytes"]


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for key, value in pairs:
        if key in mapping:
            raise DuplicateJsonKey(f"duplicate key {key!r} in one object (each key once)")
        mapping[key] = value
    return mapping


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(raw: str | bytes, *, allow_nan: bool = True) -> Any:
    """``json.loads`` that raises :class:`DuplicateJsonKey` (a ``ValueError``) on a key
    given twice in one object; otherwise the same errors as ``json.loads``.

    ``allow_nan=False`` also refuses ``NaN``, ``Infinity`` and ``-Infinity`` (Python's
    extension, not JSON) with a ``ValueError``: for documents petrova passes on to readers
    that would choke on them (a snapshot becomes a page's embedded data).
    """
    import json

    if allow_nan:
        return json.loads(raw, object_pairs_hook=_unique)
    return json.loads(raw, object_pairs_hook=_unique, parse_constant=_no_constant)


def orjson_unique(raw: bytes) -> Any:
    """``orjson.loads(raw)`` when no object in ``raw`` repeats a key; else ``ValueError``.

    orjson cannot be asked. A file petrova wrote itself (:func:`to_json_bytes`) comes back
    byte for byte when the parsed data is written again, which it cannot if a key was
    dropped: one C-speed dump settles the common case. Otherwise count: every key in the
    text ends with ``":``, and that pair occurs nowhere else but escaped inside a string
    (``\\":``). When the parsed objects hold as many keys as the text has such pairs, no
    key was dropped; when the text has more, the strict :func:`loads` decides (rare: a
    value quoting ``":``).
    """
    data = orjson.loads(raw)
    if to_json_bytes(data) == raw:
        return data
    if raw.count(b'":') != _key_count(data):
        return loads(raw)
    return data


def _key_count(value: Any) -> int:
    count = 0
    stack = [value]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            count += len(node)
            stack.extend(v for v in node.values() if type(v) is dict or type(v) is list)
        elif type(node) is list:
            stack.extend(v for v in node if type(v) is dict or type(v) is list)
    return count


def to_json_bytes(data: Any) -> bytes:
    """Stable JSON: two-space indent, keys in model order, a trailing newline."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
