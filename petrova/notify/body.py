"""Issue bodies and titles: petrova's own section between markers, everything escaped.

An issue petrova opened carries, first, a hidden key marker
``<!-- petrova:key=KIND/SLUG/INTEGRATION digest=FACTS -->`` (the digest of the facts the
body shows, so that any run, on any host, can tell whether an edit is due without
trusting its own memory), then petrova's section between ``<!-- petrova:begin -->`` and
``<!-- petrova:end -->``. A rewrite replaces only that section and the key marker; text a
person added around them stays. Every piece of input in the section went through
:func:`~petrova.notify.escape.safe`, which turns ``<`` and ``>`` into entities, so no
input can close the comment or forge a marker.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from petrova.notify.conditions import Condition, Outcome
from petrova.notify.escape import code, safe

BEGIN = "<!-- petrova:begin -->"
END = "<!-- petrova:end -->"
_KEY_RE = re.compile(r"<!-- petrova:key=([a-z0-9_/-]{1,300}) digest=([0-9a-z]{1,64}) -->\n?")
TRACKING_KEY = "tracking/fleet"
TRACKING_TITLE = "petrova: fleet status"
FOOTER = (
    "<sub>petrova notify writes this section and rewrites it when the facts change; "
    "text outside it is kept.</sub>"
)
KIND_WORDS = {
    "awaiting_promotion": "recovery awaiting promotion",
    "unhealthy": "unhealthy",
    "sync_failing": "sync failing",
    "unpinned": "contract merged, not pinned",
}


def key_marker(key: str, digest: str) -> str:
    return f"<!-- petrova:key={key} digest={digest} -->"


def find_key(body: str | None) -> tuple[str, str] | None:
    """``(key, digest)`` of petrova's marker in an issue body, if it has one."""
    match = _KEY_RE.search(body or "")
    return (match.group(1), match.group(2)) if match else None


def rewrite(body: str | None, key: str, digest: str, section: str) -> str:
    """``body`` with petrova's marker and section replaced (or put first), the rest kept."""
    old = _KEY_RE.sub("", body or "")
    mine = f"{key_marker(key, digest)}\n{BEGIN}\n{section.rstrip()}\n{END}"
    start = old.find(BEGIN)
    end = old.find(END, start + len(BEGIN)) if start >= 0 else -1
    if start >= 0 and end >= 0:
        return old[:start] + mine + old[end + len(END) :]
    # The markers were edited away: petrova's section goes first again, stray halves out.
    rest = old.replace(BEGIN, "").replace(END, "").strip()
    return mine + ("\n\n" + rest if rest else "") + "\n"


def title(condition: Condition) -> str:
    where = condition.slug + (f" · {condition.integration}" if condition.integration else "")
    return f"petrova: {where}: {KIND_WORDS[condition.kind]}"


def section(condition: Condition, *, pr_url: str | None = None) -> str:
    lines = [f"**What is wrong:** {safe(condition.summary)}."]
    if condition.since:
        lines += ["", f"**Since:** {safe(condition.since)}"]
    if condition.evidence:
        lines += ["", "**Evidence** (the latest outcomes, newest last):", ""]
        lines += [_outcome(o) for o in condition.evidence]
    facts = [(k, v) for k, v in condition.facts if k in ("code", "message", "sha", "pinned")]
    if facts:
        lines += ["", "**Evidence:**", ""]
        lines += [f"- {k}: {safe(v or '(none)', limit=500)}" for k, v in facts]
    lines += ["", f"**Fix:** {safe(condition.fix)}"]
    if condition.command:
        lines += ["", code(condition.command)]
    if pr_url:
        lines += ["", f"Pull request: {pr_url}"]
    lines += ["", FOOTER]
    return "\n".join(lines)


def cleared_section(condition_key: str, why: str, *, see: int | None = None) -> str:
    also = f" (see #{int(see)})" if see is not None else ""
    return (
        f"**Cleared:** {safe(why)}{also}\n\nKept for the record ({code(condition_key)})."
        f"\n\n{FOOTER}"
    )


def reminder(days: int, condition: Condition | None) -> str:
    text = f"Still open after {days} days."
    if condition is not None and condition.command:
        text += f" The fix: {code(condition.command)}"
    return text


def _outcome(o: Outcome) -> str:
    detail = f" — {safe(o.detail, limit=200)}" if o.detail else ""
    return f"- {safe(o.at)}: **{safe(o.what)}**{detail}"


def bullet_list(items: Sequence[str], *, limit: int = 50) -> list[str]:
    shown = [f"- {item}" for item in items[:limit]]
    if len(items) > limit:
        shown.append(f"- and {len(items) - limit} more")
    return shown or ["- none"]
