"""The one escaping function for text that petrova did not write.

Slugs, probe details, contract fields and warning messages end up in Markdown that
GitHub renders and in chat messages. Whatever they hold, once passed through
:func:`safe` they cannot mention anyone (``@org/team``), reference or close an issue
(``fixes #1``, ``GH-1``), make a link or an image, inject HTML, break out of petrova's
hidden marker (``-->``) or start a new Markdown block: the text is one line, cut to a
length, with every character Markdown or GitHub gives a meaning to neutralised.
"""

from __future__ import annotations

import re

#: Characters Markdown gives a meaning to: each is backslash-escaped.
_MARKDOWN = frozenset("\\`*_{}[]()!|~+-=.:;")
#: HTML's three: entities, so no tag, comment or ``-->`` survives.
_HTML = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;"}
#: An invisible character GitHub does not autolink or mention across.
_BREAK = "\u2060"  # WORD JOINER: invisible, and not a word character for GitHub
_AUTOLINK = re.compile(r"(?i)(www)(?=\.)|(gh)(?=-\d)")
DEFAULT_LIMIT = 300


def safe(text: str, *, limit: int = DEFAULT_LIMIT) -> str:
    """``text`` as inert Markdown on one line, at most ``limit`` characters before escaping.

    Control characters and line breaks become spaces; a text longer than ``limit`` is cut
    and ends with ``…``.
    """
    flat = "".join(" " if (not c.isprintable() or c in "\u2028\u2029") else c for c in text)
    if len(flat) > limit:
        flat = flat[: max(limit - 1, 0)] + "…"
    flat = _AUTOLINK.sub(lambda m: (m.group(1) or m.group(2)) + _BREAK, flat)
    out: list[str] = []
    for c in flat:
        if c in _HTML:
            out.append(_HTML[c])
        elif c in "@#":
            # A mention or an issue reference needs the next character right after it.
            out.append(c + _BREAK)
        elif c == "/":
            # "https://x" autolinks; "/" stays readable but never after ":" as "//".
            out.append("/" + _BREAK)
        elif c in _MARKDOWN:
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def code(text: str, *, limit: int = DEFAULT_LIMIT) -> str:
    """A command or identifier petrova built, in backticks; still :func:`safe` inside a
    code span is unnecessary, so only backticks and line breaks are taken out."""
    flat = " ".join(text.replace("`", "'").split())
    if len(flat) > limit:
        flat = flat[: max(limit - 1, 0)] + "…"
    return f"`{flat}`"
