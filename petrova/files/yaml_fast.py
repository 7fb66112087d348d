"""The fast YAML path: a Rust parser, used only where it provably agrees with the strict one.

:func:`fast_parse` returns the data when every guard holds (no anchors, tags, several
documents, deep flow, or scalars the two loaders could read differently) and
:data:`NOT_FAST` otherwise; the caller then goes through :mod:`petrova.files.yaml_strict`,
which also locates every error at its line.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from petrova.models import KeyTypes

_fast: Any
try:  # a Rust YAML parser, about 15x faster than libyaml; optional (see fast_parse)
    import ryaml as _fast
except ImportError:  # pragma: no cover - exercised by the parity tests' fallback case
    _fast = None


# A value the fast parser and PyYAML's resolvers read identically.
_SAFE_SCALAR = re.compile(
    r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?|true|false|True|False|TRUE|FALSE|null|~|"
)


_DOC_MARKERS = re.compile(r"(?m)^(?:---|\.\.\.)(?:\s|$)")


# Anchors and aliases: the strict loader bounds their expansion, so leave them to it.
_ANCHOR_OR_ALIAS = re.compile(r"(?:^|[\s\[{,])[&*][^\s\[\]{},]")


# Tags (``!foo``, ``!!binary``, the bare ``!``): the fast parser ignores or misreads them
# (``k: !foo bar`` becomes a mapping), the strict loader refuses all but the core ones.
_TAG = re.compile(r"(?:^|[\s\[{,])!")


# The two checks below look for a plain substring first: a regex starting with ``^`` or an
# alternation is tried at every position, 0.1 s on a 4 MB registry that has neither.
def _several_documents(text: str) -> bool:
    return ("---" in text or "..." in text) and len(_DOC_MARKERS.findall(text)) > 1


def _anchor_or_alias(text: str) -> bool:
    return ("&" in text or "*" in text) and _ANCHOR_OR_ALIAS.search(text) is not None


def _tagged(text: str) -> bool:
    return "!" in text and _TAG.search(text) is not None


def fast_parse(text: str, keys: KeyTypes) -> Any:
    """Parse with the fast YAML parser when it provably reads ``text`` as the strict loader.

    Returns :data:`NOT_FAST` when there is no fast parser, or when anything in the text
    could be read differently and cannot be put right (numbers in other notations under
    numeric keys, non-string keys, merge keys, several documents, any parse error): the
    caller then uses :func:`parse_yaml`, which also gives line numbers. A plain scalar
    that the fast parser read as a number under a string key (a sha such as
    ``37649451e057``) is given back its text, as the strict loader does.
    """
    if _fast is None or _several_documents(text) or _anchor_or_alias(text) or _tagged(text):
        return NOT_FAST
    if _flow_too_deep(text):
        return NOT_FAST
    if keys.scalars and not _scalars_safe(text, keys.scalars):
        return NOT_FAST
    try:
        data = _fast.loads(text)
    except Exception:  # any complaint: let the strict loader explain it with a line
        return NOT_FAST
    try:
        _agree(data, text, keys)
    except _Disagree:
        return NOT_FAST
    return data


NOT_FAST: Any = object()


#: The fast parser gives up past 128 levels, but only after time quadratic in the depth
#: of the flow collections (7 s for 50,000 ``{"a":``; a 64 MB file would never end).
_FAST_MAX_DEPTH = 100


#: Opening brackets as +1 and closing ones as -1, everything else dropped.
_BRACKETS_ONLY = re.compile(r"[^\[\]{}]+")


def _flow_too_deep(text: str) -> bool:
    """Brackets nest deeper than the fast parser can take (quotes ignored: erring deep)."""
    if text.count("[") + text.count("{") <= _FAST_MAX_DEPTH:
        return False
    depth = 0
    for bracket in _BRACKETS_ONLY.sub("", text):  # a registry's 40,000 brackets, not 4 MB
        if bracket in "[{":
            depth += 1
            if depth > _FAST_MAX_DEPTH:
                return True
        elif depth:
            depth -= 1
    return False


_PLAIN_START = re.compile(r"[^\s'\"\[\]{}&*!|>%@`#,]")


class _Disagree(Exception):
    """The fast parser's reading cannot be shown to match the strict loader's."""


@functools.cache
def _scalar_value_patterns(keys: frozenset[str]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Each of ``keys`` with the pattern of it and the value after it. One pattern per
    key, led by the key's letters, is searched for fast; an alternation of all the keys
    is tried at every position (5 us on each 750-byte contract). No look-behind in
    front: :func:`_scalars_safe` checks what comes before a match instead."""
    # A value on the next line (``tier:`` then ``  010``) is captured too: left empty, it
    # would pass as a null while the fast parser read a number the strict one refuses.
    return tuple(
        (key, re.compile(rf"{re.escape(key)}[ \t]*:[ \t]*(?:#[^\n]*)?(?:\n[ \t]*)?([^\s,}}\]#]*)"))
        for key in sorted(keys)
    )


_WORD_CHAR = re.compile(r"[\w-]")


def _scalars_safe(text: str, keys: frozenset[str]) -> bool:
    """Every value under a numeric or boolean key reads the same to both parsers.

    Every place each key stands is looked at (a key inside a longer word is not the
    key), so a key named inside another key's value is checked too: the safe side.
    """
    for key, pattern in _scalar_value_patterns(keys):
        if key not in text:  # a plain substring search first: most keys are absent
            continue
        position = 0
        while True:
            for match in pattern.finditer(text, position):
                start = match.start()
                if start and _WORD_CHAR.match(text, start - 1):  # inside a longer word:
                    position = start + 1  # not the key; scan again from the next character
                    break
                if not _SAFE_SCALAR.fullmatch(match.group(1)):
                    return False
            else:
                break
    return True


@functools.cache
def _key_pattern(key: str) -> re.Pattern[str]:
    """``key``, a colon, and the token after it; :func:`_key_tokens` checks the lead."""
    return re.compile(rf"(?m){re.escape(key)}[ \t]*:(?=[ \t]|$)[ \t]*([^\s,}}\]#]*)")


_KEY_LEAD = re.compile(r"[ \t]*(?:-[ \t]+)*")


def _key_tokens(key: str, text: str) -> list[str]:
    """The token after every place ``key`` stands as a plain mapping key: at the start of
    a line or after ``{`` or ``,``, behind nothing but blanks and sequence dashes.

    The key is searched for by its letters and the lead checked backwards within the
    line, rather than with a pattern led by ``^`` that is tried at every position.
    """
    pattern = _key_pattern(key)
    tokens: list[str] = []
    position = 0
    while True:
        for match in pattern.finditer(text, position):
            start = match.start()
            line = text.rfind("\n", 0, start) + 1
            lead = max(line, text.rfind("{", line, start) + 1, text.rfind(",", line, start) + 1)
            if not _KEY_LEAD.fullmatch(text, lead, start):  # not a key here: look again
                position = start + 1  # from the next character, inside this match too
                break
            tokens.append(match.group(1))
        else:
            return tokens


#: First characters of the plain scalars the strict loader may read as something other
#: than text (numbers, true/false, null, merge keys); other strings need no look.
_MAYBE_TYPED = frozenset("-+.0123456789tTfFnN~<=")


@functools.lru_cache(maxsize=1 << 12)  # keys and enum-like values repeat all over a file
def _typed_to_strict(value: str) -> bool:
    """The strict loader would read ``value``, written plain, as a number, a boolean or
    null: the two parsers may disagree about it (``0o10``: 8 or text)."""
    if value and value[0] not in _MAYBE_TYPED:
        return False
    from petrova.files.yaml_strict import plain_is_text  # PyYAML only when needed

    return not plain_is_text(value)


#: Mapping keys already seen to be plain text to both parsers (a string, not ``<<``, not
#: typed by the strict loader): a memo of :func:`_plain_key`, bounded like its cache.
_PLAIN_KEYS: set[str] = set()
_PLAIN_KEYS_MAX = 1 << 12


def _plain_key(key: Any) -> bool:
    if type(key) is not str or key == "<<" or _typed_to_strict(key):
        return False
    if len(_PLAIN_KEYS) < _PLAIN_KEYS_MAX:
        _PLAIN_KEYS.add(key)
    return True


def _needs_repair(data: Any, keys: KeyTypes) -> set[str]:
    """The cheap first pass of :func:`_agree`: raise :class:`_Disagree` where it would,
    else say which string keys hold a value that needs its text back.

    The rules of :func:`_agree`, in another order and without counting the string keys'
    places (only a repair needs those, and only for its keys): each mapping's keys at
    once against the keys already known to be plain, and nothing called per value
    but the strict loader's question for a string outside the known keys. This runs for
    every contract of a snapshot (9,000 on a young fleet).
    """
    string_keys = keys.strings
    scalar_keys = keys.scalars
    repair: set[str] = set()
    stack = [data]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        if type(node) is dict:
            if not node.keys() <= _PLAIN_KEYS and not all(map(_plain_key, node)):
                raise _Disagree
            for key, value in node.items():
                kind = type(value)
                if kind is dict or kind is list:
                    push(value)
                elif key in string_keys:
                    if kind is not str and value is not None:
                        repair.add(key)
                elif key in scalar_keys:
                    continue
                elif kind is str:
                    if _typed_to_strict(value):
                        raise _Disagree
                elif kind is int or kind is float:
                    raise _Disagree
        else:  # a list: the fast parser gives only dicts, lists and scalars
            for value in node:
                kind = type(value)
                if kind is dict or kind is list:
                    push(value)
                elif kind is str:
                    if _typed_to_strict(value):
                        raise _Disagree
                elif kind is int or kind is float:
                    raise _Disagree
    return repair


def _agree(data: Any, text: str, keys: KeyTypes) -> None:
    """Check (and where needed repair) ``data`` in place, or raise :class:`_Disagree`.

    Under string keys a non-text value is given back its text (as the strict loader
    does). Under numeric keys the text was checked by :func:`_scalars_safe`. Anywhere
    else a number, whose text is not known, and a string that the strict loader would
    have typed (it may have been written plain) are left to the strict loader.
    """
    if type(data) is not dict and type(data) is not list:
        if (
            type(data) is int
            or type(data) is float
            or (type(data) is str and _typed_to_strict(data))
        ):
            raise _Disagree
        return
    fix = _needs_repair(data, keys)
    if not fix:
        return
    # The second pass, only when a value needs its text back: each of those keys'
    # places counted in document order, to pair them with the key's tokens in the text.
    seen = dict.fromkeys(fix, 0)
    repairs: dict[str, list[tuple[dict[str, Any], int]]] = {}

    def walk(node: Any) -> None:
        if type(node) is dict:
            for key, value in node.items():
                kind = type(value)
                if key in fix:
                    index = seen[key]
                    seen[key] = index + 1
                    if (
                        value is not None
                        and kind is not str
                        and kind is not dict
                        and kind is not list
                    ):
                        repairs.setdefault(key, []).append((node, index))
                if kind is dict or kind is list:
                    walk(value)
        else:
            for value in node:
                if type(value) is dict or type(value) is list:
                    walk(value)

    walk(data)
    for key, places in repairs.items():
        tokens = _key_tokens(key, text)
        if len(tokens) != seen[key]:  # the key also stands in a string or a comment
            raise _Disagree
        for mapping, index in places:
            token = tokens[index]
            if not token or not _PLAIN_START.match(token):
                raise _Disagree
            mapping[key] = token
