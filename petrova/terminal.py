"""Making text safe to print: control characters from inputs are shown, never obeyed.

Registry notes, probe details, an archived snapshot's warnings and a contract's path all
come from files petrova does not control, and they reach stderr and tables. An escape
sequence among them could rewrite the screen, hide a warning or set the window title;
:func:`visible` turns every control and bidirectional-format character into an escape a
person can read (``\\x1b``, ``\\u202e``). Everything petrova prints for people passes
through it.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from petrova.errors import PetrovaError

# C0 and C1 controls, DEL, and the format characters that reorder or hide text.
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)
_CONTROL_BUT_LAYOUT = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, keep_lines: bool = False) -> str:
    """``text`` with control characters shown as escapes; ``keep_lines`` keeps newlines
    and tabs (for multi-line text petrova composed itself)."""
    pattern = _CONTROL_BUT_LAYOUT if keep_lines else _CONTROL
    if pattern.search(text) is None:  # the common case: nothing to do, no copy
        return text
    return pattern.sub(_escape, text)


def is_tty(stream: Any) -> bool:
    """``stream`` is a terminal (a closed or replaced stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def watching() -> bool:
    """A person is watching: stderr, where petrova speaks to people, is a terminal.

    The one test for every note that only a person needs (progress, a summary line,
    retries, a line per step): cron, CI and a pipe into a file get none of them, so an
    unattended run that went well prints nothing. Call it as ``terminal.watching()``
    (tests replace it there).
    """
    return is_tty(sys.stderr)


def error_text(exc: PetrovaError) -> str:
    """:meth:`PetrovaError.render` with every problem made :func:`visible` on its own
    line, so that a newline inside an input cannot fake a line of the report."""
    problems = exc.problems
    if len(problems) == 1:
        return f"{exc.code}: {visible(str(problems[0]))}"
    lines = [f"{exc.code}: {visible(exc.message)}"]
    lines += [f"  {visible(str(p))}" for p in problems]
    return "\n".join(lines)
