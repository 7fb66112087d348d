"""The file system's sharp edges: YAML loading, locating nodes, atomic writes, hashing.

The YAML loader is private (it never touches PyYAML's global loaders) and strict:
duplicate keys and non-string keys are errors with a line and column; dates and
``yes``/``on`` stay the strings people wrote (YAML 1.2 core booleans only), so
that a date field validates as the string it looks like.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from petrova.errors import InputTooLarge, Location, PetrovaError, UnsafePath, YamlInvalid

try:  # libyaml when present: several times faster on big registries
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

_fast: Any
try:  # a Rust YAML parser, about 15x faster than libyaml; optional (see fast_parse)
    import ryaml as _fast
except ImportError:  # pragma: no cover - exercised by the parity tests' fallback case
    _fast = None

PathPart = str | int
FieldPath = Sequence[PathPart]

#: Inputs larger than this are refused before parsing (override: PETROVA_MAX_INPUT_BYTES).
DEFAULT_MAX_INPUT_BYTES = 64 * 1024 * 1024
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
        if self.string_keys and isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if (
                    key_node.value in self.string_keys
                    and isinstance(value_node, ScalarNode)
                    and not value_node.style  # plain: None (Python) or "" (libyaml)
                    and value_node.tag not in (_STR_TAG, _NULL_TAG)
                ):
                    # e.g. contract_sha: 000000000001 is a sha, not the integer 1
                    mapping[key_node.value] = value_node.value
        return mapping


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


def max_input_bytes() -> int:
    raw = os.environ.get("PETROVA_MAX_INPUT_BYTES")
    if raw is None:
        return DEFAULT_MAX_INPUT_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise PetrovaError(
            f"PETROVA_MAX_INPUT_BYTES={raw!r} is not a positive whole number of bytes",
            code="USAGE_ERROR",
        )
    return value


def read_input(path: Path, *, display: str | None = None, limit: int | None = None) -> bytes:
    """Read a whole input file, refusing ones over the size limit before reading them."""
    shown = display or str(path)
    limit = max_input_bytes() if limit is None else limit
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise InputTooLarge(
                f"file is {size} bytes, over the {limit}-byte limit "
                "(raise it with PETROVA_MAX_INPUT_BYTES)",
                location=Location(shown),
            )
        # Ask for what fstat said (and one byte more, to see growth): a read of the limit
        # itself allocates a limit-sized buffer each time, a fresh mapping whose pages
        # fault in, which at fleet scale was a fifth of a snapshot's time.
        data = handle.read(size + 1)
        if len(data) > size:  # it grew since: read on, still within the limit
            data += handle.read(limit + 1 - len(data))
    if len(data) > limit:
        raise InputTooLarge(
            f"file is over the {limit}-byte limit (raise it with PETROVA_MAX_INPUT_BYTES)",
            location=Location(shown),
        )
    return data


def decode_text(raw: bytes, display: str) -> str:
    """UTF-8 (a leading BOM is allowed); anything else names the line of the bad byte."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YamlInvalid(
            f"byte {exc.start} is not valid UTF-8; save the file as UTF-8",
            location=Location(display, line),
        ) from None
    return text


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


def limits_in_force() -> str:
    """The input limits as set, for cache keys: a read refused under one limit may
    succeed under another, so a cached answer must not outlive a change of limits."""
    return "\0".join(
        os.environ.get(name, "") for name in ("PETROVA_MAX_INPUT_BYTES", "PETROVA_MAX_ALIAS_NODES")
    )


def max_alias_nodes() -> int:
    raw = os.environ.get("PETROVA_MAX_ALIAS_NODES")
    if raw is None:
        return DEFAULT_MAX_ALIAS_NODES
    if not raw.isdigit():
        raise PetrovaError(
            f"PETROVA_MAX_ALIAS_NODES={raw!r} is not a whole number of nodes", code="USAGE_ERROR"
        )
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


@dataclass(frozen=True)
class KeyTypes:
    """Which mapping keys hold strings and which hold numbers or booleans.

    Derived from the models (and the catalogue's evidence shapes); the strict loader
    uses ``strings`` and the fast path uses both to know when it may be trusted.
    """

    strings: frozenset[str] = frozenset()
    scalars: frozenset[str] = frozenset()


# A value the fast parser and PyYAML's resolvers read identically.
_SAFE_SCALAR = re.compile(
    r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?|true|false|True|False|TRUE|FALSE|null|~|"
)
_DOC_MARKERS = re.compile(r"(?m)^(?:---|\.\.\.)(?:\s|$)")
# Anchors and aliases: the strict loader bounds their expansion, so leave them to it.
_ANCHOR_OR_ALIAS = re.compile(r"(?:^|[\s\[{,])[&*][^\s\[\]{},]")


# The two checks below look for a plain substring first: a regex starting with ``^`` or an
# alternation is tried at every position, 0.1 s on a 4 MB registry that has neither.
def _several_documents(text: str) -> bool:
    return ("---" in text or "..." in text) and len(_DOC_MARKERS.findall(text)) > 1


def _anchor_or_alias(text: str) -> bool:
    return ("&" in text or "*" in text) and _ANCHOR_OR_ALIAS.search(text) is not None


def fast_parse(text: str, keys: KeyTypes) -> Any:
    """Parse with the fast YAML parser when it provably reads ``text`` as the strict loader.

    Returns :data:`NOT_FAST` when there is no fast parser, or when anything in the text
    could be read differently and cannot be put right (numbers in other notations under
    numeric keys, non-string keys, merge keys, several documents, any parse error): the
    caller then uses :func:`parse_yaml`, which also gives line numbers. A plain scalar
    that the fast parser read as a number under a string key (a sha such as
    ``37649451e057``) is given back its text, as the strict loader does.
    """
    if _fast is None or _several_documents(text) or _anchor_or_alias(text):
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
        _agree(data, text, keys.strings)
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
def _scalar_values_pattern(keys: frozenset[str]) -> re.Pattern[str]:
    """Any of ``keys`` and the value after it. No look-behind in front: a pattern that
    starts with literals is searched for by its first characters, about twice as fast,
    and :func:`_scalars_safe` checks what comes before a match instead."""
    names = "|".join(re.escape(k) for k in sorted(keys, key=lambda k: (-len(k), k)))
    return re.compile(rf"(?:{names})[ \t]*:[ \t]*([^\s,}}\]#]*)")


_WORD_CHAR = re.compile(r"[\w-]")


def _scalars_safe(text: str, keys: frozenset[str]) -> bool:
    """Every value under a numeric or boolean key reads the same to both parsers."""
    pattern = _scalar_values_pattern(keys)
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


def _agree(data: Any, text: str, string_keys: frozenset[str]) -> None:
    """Check (and where needed repair) ``data`` in place, or raise :class:`_Disagree`."""
    seen: dict[str, int] = {}
    repairs: dict[str, list[tuple[dict[str, Any], int]]] = {}

    # Exact type checks: the fast parser gives plain dicts, lists and scalars, and this
    # walk over every node of a 10,000-entry registry is on the hot path.
    def walk(node: Any) -> None:
        if type(node) is dict:
            for key, value in node.items():
                if type(key) is not str or key == "<<":
                    raise _Disagree
                kind = type(value)
                if key in string_keys:
                    index = seen.get(key, 0)
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
        elif type(node) is list:
            for value in node:
                kind = type(value)
                if kind is dict or kind is list:
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


def sha12(data: bytes) -> str:
    """What ``sha256sum FILE | cut -c1-12`` prints: the pin format of SPEC §3."""
    return hashlib.sha256(data).hexdigest()[:12]


def confined(root: Path, relpath: Path) -> Path:
    """``root / relpath``, refusing a symbolic link anywhere below ``root`` on the way.

    For files read from a consumer repo, which petrova does not control: a link there
    could point at any file on the machine (an env file with the ingest token), and
    what petrova reads ends up in messages and in the published snapshot.
    """
    current = str(root)  # strings: this runs twice per repo in a snapshot
    for part in relpath.parts:
        if part in ("", ".", ".."):
            raise UnsafePath(f"{relpath} leaves {root}", location=Location(str(root / relpath)))
        current = os.path.join(current, part)  # noqa: PTH118
        if os.path.islink(current):  # noqa: PTH114
            raise UnsafePath(
                "is a symbolic link; petrova follows no links here, it reads only real "
                "files inside the directory (replace the link with the file itself)",
                location=Location(current),
            )
    return Path(current)


WriteVerb = Literal["create", "update", "identical"]


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> WriteVerb:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half.

    The temporary file lives in the same directory (same file system, so the rename is
    atomic), is fsynced before the rename, takes over the old file's mode, and is removed
    on any failure. Identical bytes are not rewritten, which keeps mtimes and caches calm.
    ``durable=False`` is for caches, which check what they read back: no fsync, and no
    reading of the old file to compare.
    """
    old = _old_bytes(path) if durable else None
    if old == data:
        return "identical"
    existed = old is not None or (not durable and path.exists())
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o7777 if existed else None
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise PetrovaError(
            f"cannot write here: {exc.strerror}",
            location=Location(str(path)),
            code="OUTPUT_UNWRITABLE",
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):  # a full disk, an I/O error: the old file stays
            raise PetrovaError(
                f"cannot write here: {exc.strerror or exc}; the file was left as it was",
                location=Location(str(path)),
                code="OUTPUT_UNWRITABLE",
            ) from None
        raise
    if durable:
        _fsync_dir(directory)
    return "update" if existed else "create"


def _old_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise PetrovaError(
            "is a directory, not a file", location=Location(str(path)), code="OUTPUT_UNWRITABLE"
        ) from None
    except OSError as exc:
        raise PetrovaError(
            f"cannot read the file it would replace: {exc.strerror}",
            location=Location(str(path)),
            code="OUTPUT_UNWRITABLE",
        ) from None


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
