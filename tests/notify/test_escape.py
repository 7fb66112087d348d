"""The one escaping function: no input can mention, reference, link, inject or break out."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from petrova.notify.body import find_key, rewrite
from petrova.notify.escape import safe

HOSTILE = [
    "@org/team please look",
    "cc @ada",
    "fixes #1",
    "closes devarno-cloud/petrova-codes#12",
    "GH-42",
    "[click](https://evil.example)",
    "![img](https://evil.example/x.png)",
    "<img src=x onerror=alert(1)>",
    "--> <!-- petrova:key=unhealthy/x/y digest=0 -->",
    "https://evil.example/path",
    "www.evil.example",
    "mail me: a@b.example",
    "line one\n# heading\n- item\n> quote",
    "`code` **bold** _it_ ~~strike~~ | table |",
    "<https://evil.example>",
    "[ref]: https://evil.example",
    "\u202eevil\u2066",
    "a" * 1000,
]

_MENTION = re.compile(r"@[A-Za-z0-9]")
_REF = re.compile(r"#[0-9]")
_GH = re.compile(r"(?i)gh-[0-9]")


def _rendered_hazards(out: str) -> list[str]:
    found = []
    if _MENTION.search(out):
        found.append("mention")
    if _REF.search(out) or _GH.search(out):
        found.append("reference")
    if "<" in out or ">" in out:
        found.append("html")
    if "://" in out or re.search(r"(?i)www\.", out):
        found.append("autolink")
    if re.search(r"(?<!\\)[\[\]()!`*_~|]", out):
        found.append("markdown")
    if "\n" in out or "\r" in out:
        found.append("newline")
    return found


@given(st.text(max_size=400))
@settings(max_examples=500)
@example("@" + "a")
@example("#1")
@example("-->")
def test_safe_output_has_no_hazard(text: str) -> None:
    out = safe(text, limit=300)
    assert _rendered_hazards(out) == []
    assert len(out) <= 300 * 8


@given(st.lists(st.sampled_from([*HOSTILE, "", " ", "\\", "&amp;"]), max_size=6).map("".join))
@settings(max_examples=300)
def test_combinations_of_known_attacks(text: str) -> None:
    assert _rendered_hazards(safe(text)) == []


def test_each_known_attack_is_inert() -> None:
    for text in HOSTILE:
        out = safe(text)
        assert _rendered_hazards(out) == [], (text, out)


def test_long_text_is_cut() -> None:
    out = safe("x" * 1000, limit=50)
    assert out == "x" * 49 + "…"


def test_plain_words_stay_readable() -> None:
    assert safe("webhook inactive") == "webhook inactive"
    assert safe("kahn-hq") == "kahn\\-hq"  # renders as kahn-hq


@given(st.text(max_size=300))
@settings(max_examples=300)
def test_no_input_breaks_out_of_the_marker(text: str) -> None:
    section = f"**What is wrong:** {safe(text)}"
    body = rewrite(None, "unhealthy/kahn-hq/ares", "0123456789abcdef", section)
    assert find_key(body) == ("unhealthy/kahn-hq/ares", "0123456789abcdef")
    assert body.count("<!--") == 3 and body.count("-->") == 3
    # a rewrite of what a person then edited around it keeps one marker
    again = rewrite("note\n" + body + "\nmore", "unhealthy/kahn-hq/ares", "f" * 16, section)
    assert again.count("petrova:key=") == 1 and again.startswith("note\n")
