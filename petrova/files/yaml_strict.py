"""The strict YAML loader, and locating a field's line and column in a parsed file.

The loader is private (it never touches PyYAML's global loaders) and strict: duplicate
keys and non-string keys are errors with a line and column; dates and ``yes``/``on``
stay the strings people wrote (YAML 1.2 core booleans only), so that a date field
validates as the string it looks like.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from petrova.errors import InputTooLarge, Location, UsageError, YamlInvalid
from petrova.files.disk import decode_text, read_input

try:  # libyaml when present: several times faster on big registries
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


PathPart = str | int


FieldPath = Sequence[PathPart]


_STR_TAG = "tag:yaml.org,2002:str"


_BOOL_TAG = "tag:yaml.org,2002:bool"


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


_NULL_TAG = "tag:yaml.org,2002:null"


class _StrictLoader(_BaseLoader):
    """Safe loader with petrova's rules; see the module docstring."""

    #: Keys whose plain scalars stay the text people wrote (set per parse).
    string_keys: frozenset[str] = frozenset()

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            self.flatten_mapping(node)
            if self.string_keys:
                _keep_text(node, self.string_keys)
            seen: dict[str, Node] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag != _STR_TAG:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        "found a key that is not a string (quote it)",
                        key_node.start_mark,
                    )
                first = seen.get(key_node.value)
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key_node.value!r} "
                        f"(first defined at line {first.start_mark.line + 1})",
                        key_node.start_mark,
                    )
                seen[key_node.value] = key_node
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _keep_text(node: MappingNode, string_keys: frozenset[str]) -> None:
    """Plain scalars under ``string_keys`` are the text people wrote, before any number
    or boolean is made of them (``contract_sha: 000000000001`` is a sha, not 1)."""
    for key_node, value_node in node.value:
        if (
            isinstance(value_node, ScalarNode)
            and not value_node.style  # plain: None (Python) or "" (libyaml)
            and value_node.tag not in (_STR_TAG, _NULL_TAG)
            and key_node.value in string_keys
        ):
            value_node.tag = _STR_TAG


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


_StrictLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_bool(loader: _StrictLoader, node: ScalarNode) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"


_StrictLoader.add_constructor(_BOOL_TAG, _construct_bool)


#: Plain numbers that YAML 1.1 (PyYAML) and YAML 1.2 (most other tools) read differently:
#: a leading zero (octal in 1.1), base 60 (``1:30`` is 90), ``_`` separators, ``0b``.
_AMBIGUOUS_NUMBER = re.compile(r"[-+]?(?:0[0-9_]+(?:\.[0-9_]*)?|.*[:_].*|0b[01_]+)")


def _refuse_ambiguous(node: ScalarNode) -> None:
    """A plain number only one YAML version reads as people meant: refuse it, and say
    how to write it. The value is not quoted (the line and column point at it): the file
    may not be the kind expected, and an error never repeats what such a file holds."""
    text = str(node.value)
    if node.style or not _AMBIGUOUS_NUMBER.fullmatch(text):
        return
    if ":" in text:
        what = (
            "a number with ':' is ambiguous: YAML 1.1 reads it in base 60 (1:30 is 90), "
            "YAML 1.2 as text; write the number itself, or put text in quotes"
        )
    elif "_" in text:
        what = (
            "a number with '_' is ambiguous: YAML 1.1 drops the '_', YAML 1.2 reads text; "
            "write the digits alone, or put text in quotes"
        )
    elif text.lstrip("+-").startswith("0b"):
        what = (
            "a 0b number is ambiguous: YAML 1.1 reads it as binary, YAML 1.2 as text; "
            "write it in decimal, or put text in quotes"
        )
    else:
        what = (
            "a number with a leading zero is ambiguous: YAML 1.1 reads it as octal (010 is "
            "8), YAML 1.2 as decimal; write it without the leading zeros, or put text in "
            "quotes"
        )
    raise yaml.constructor.ConstructorError(None, None, what, node.start_mark)


def _construct_float(loader: _StrictLoader, node: ScalarNode) -> float:
    value: float = _BaseLoader.construct_yaml_float(loader, node)
    _refuse_ambiguous(node)
    return value


_StrictLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def _construct_int(loader: _StrictLoader, node: ScalarNode) -> int:
    # Python refuses to convert integers of more than 4300 digits (a ValueError that
    # is not a YAML error): make it one, with the node's line, instead of a crash.
    try:
        value: int = _BaseLoader.construct_yaml_int(loader, node)
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            "this number has too many digits to read (quote it if it is text)",
            node.start_mark,
        ) from None
    _refuse_ambiguous(node)
    return value


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


@dataclass(frozen=True)
class YamlDocument:
    """Parsed data plus the composed node tree, so errors can point at lines."""

    path: str
    data: Any
    node: Node | None

    def locate(self, field_path: FieldPath) -> Location:
        line, column = locate_node(self.node, field_path)
        return Location(self.path, line, column, render_field_path(field_path))


def parse_yaml(
    text: str, display: str, *, string_keys: frozenset[str] = frozenset()
) -> YamlDocument:
    """Parse one YAML document with the strict loader; errors carry line and column.

    Plain scalars under ``string_keys`` keep their text whatever they look like, for
    fields the models type as strings (a sha of twelve digits, a ``yes`` in notes).
    """
    loader = _StrictLoader(text)
    loader.string_keys = string_keys
    try:
        node = loader.get_single_node()
        if node is not None and ("*" in text):
            _check_alias_expansion(node, display)
        if node is not None and "!" in text:
            _check_tags(node, display)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        if exc.problem and exc.context and exc.context_mark is not None:
            problem += f" ({exc.context} started at line {exc.context_mark.line + 1})"
        raise YamlInvalid(
            f"{problem}",
            location=Location(
                display,
                mark.line + 1 if mark else None,
                mark.column + 1 if mark else None,
            ),
        ) from None
    except yaml.YAMLError as exc:
        raise YamlInvalid(f"not valid YAML: {exc}", location=Location(display)) from None
    except RecursionError:
        raise YamlInvalid("nesting is too deep to read", location=Location(display)) from None
    finally:
        loader.dispose()
    return YamlDocument(display, data, node)


DEFAULT_MAX_ALIAS_NODES = 100_000


def max_alias_nodes() -> int:
    raw = os.environ.get("PETROVA_MAX_ALIAS_NODES")
    if raw is None:
        return DEFAULT_MAX_ALIAS_NODES
    if not raw.isdigit():
        raise UsageError(f"PETROVA_MAX_ALIAS_NODES={raw!r} is not a whole number of nodes")
    return int(raw)


def _check_alias_expansion(root: Node, display: str) -> None:
    """Refuse documents whose aliases expand far beyond their text ("billion laughs").

    PyYAML shares aliased objects, so parsing is cheap, but everything downstream
    (validation, rendering) walks the expanded tree. Counts each node as often as it is
    reached, memoised per node, so the check itself stays linear in the document.
    """
    limit = max_alias_nodes()
    sizes: dict[int, int] = {}
    distinct = 0
    # iterative post-order: (node, children_done)
    stack: list[tuple[Node, bool]] = [(root, False)]
    in_progress: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            children = _children(node)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            in_progress.discard(key)
            distinct += 1
            if sizes[key] - distinct > limit:
                mark = node.start_mark
                raise InputTooLarge(
                    f"aliases expand this document past {limit} extra nodes "
                    "(raise it with PETROVA_MAX_ALIAS_NODES)",
                    location=Location(display, mark.line + 1, mark.column + 1),
                )
            continue
        if key in sizes:
            continue
        if key in in_progress:
            mark = node.start_mark
            raise YamlInvalid(
                "an alias refers to a node that contains it (recursive alias)",
                location=Location(display, mark.line + 1, mark.column + 1),
            )
        in_progress.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


#: The tags a document may carry: JSON's types. ``!!binary``, ``!!timestamp``, ``!!set``,
#: ``!!omap`` and local tags (``!foo``) would each give a value no model expects, read
#: differently by every YAML library.
_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "map", "seq", "merge")
)


def _check_tags(root: Node, display: str) -> None:
    """Refuse any tag beyond YAML's core types, at its line (only called when the text
    has a ``!``: implicit tags are always core ones)."""
    stack = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in _CORE_TAGS:
            mark = node.start_mark
            raise YamlInvalid(
                f"the tag {node.tag!r} is not allowed: petrova reads only text, numbers, "
                "true/false, null, lists and mappings (remove the tag, or quote the value)",
                location=Location(display, mark.line + 1, mark.column + 1),
            )
        stack.extend(_children(node))


def plain_is_text(value: str) -> bool:
    """The strict loader reads ``value``, written plain, as text (not a number, a
    boolean, null or a merge key): what :mod:`petrova.files.yaml_fast` checks a string
    against before it trusts the fast parser's reading of it."""
    resolvers = _StrictLoader.yaml_implicit_resolvers.get(value[0] if value else "", [])
    return all(not regexp.match(value) for _tag, regexp in resolvers)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def load_yaml_file(
    path: Path, *, display: str | None = None, string_keys: frozenset[str] = frozenset()
) -> YamlDocument:
    """Read and parse a YAML file; missing or unreadable files raise ``OSError``."""
    shown = display or str(path)
    return parse_yaml(
        decode_text(read_input(path, display=shown), shown), shown, string_keys=string_keys
    )


def render_field_path(field_path: FieldPath) -> str:
    """``("repos", 3, "contract_sha")`` -> ``repos[3].contract_sha``."""
    out = ""
    for part in field_path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def locate_node(node: Node | None, field_path: FieldPath) -> tuple[int | None, int | None]:
    """Follow a field path through composed nodes; return the deepest 1-based line/column.

    A path that leaves the tree (a missing field) points at the deepest node that exists,
    which is where the missing field belongs.
    """
    if node is None:
        return None, None
    current: Node = node
    for part in field_path:
        child: Node | None = None
        if isinstance(current, MappingNode) and isinstance(part, str):
            for key_node, value_node in current.value:
                if isinstance(key_node, ScalarNode) and key_node.value == part:
                    child = value_node
                    break
        elif (
            isinstance(current, SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(current.value)
        ):
            child = current.value[part]
        if child is None:
            break
        current = child
    mark = current.start_mark
    return mark.line + 1, mark.column + 1


def node_span(node: Node) -> tuple[int, int]:
    """Character offsets [start, end) of a node in the text it was parsed from."""
    return node.start_mark.index, node.end_mark.index
