"""Untrusted Markdown made safe to render, and what a reply holds: code blocks, JSON.

Model text is untrusted: raw HTML in it is escaped (outside code), so a reply
can never inject markup or script into the notebook, and a code fence left
open while a reply streams is closed for the live view.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .style import pretty_json

__all__ = ["safe_markdown", "extract_code", "parse_json_reply", "format_text", "close_open_fence", "fenced"]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def safe_markdown(text: str) -> str:
    """Model Markdown with raw HTML neutralised (``<`` escaped outside code), and money not read as maths.

    A ``$`` before a digit becomes ``&#36;`` outside code, so "$5 and $6" is
    not typeset as a formula; ``$x^2$`` stays maths.

    Code blocks and code spans are left alone: there ``&lt;`` would show
    literally, and Markdown already shows their content as text.
    """
    if "<" not in text and "$" not in text:
        return text
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        match = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            continue
        if match:
            fence = match.group(1)
            out.append(line)
            continue
        out.append(_escape_outside_code_spans(line))
    return "".join(out)


_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.S)


# A dollar before a digit is money ("Costs $5 and $6"), which JupyterLab would typeset as maths
# between the two dollars; "$x^2$" (maths the model meant) is left alone.
_MONEY = re.compile(r"\$(?=\d)")


def _plain(text: str) -> str:
    return _MONEY.sub("&#36;", text.replace("<", "&lt;"))


def _escape_outside_code_spans(line: str) -> str:
    if "<" not in line and "$" not in line:
        return line
    pieces, last = [], 0
    for match in _CODE_SPAN.finditer(line):
        pieces.append(_plain(line[last : match.start()]))
        pieces.append(match.group(0))
        last = match.end()
    pieces.append(_plain(line[last:]))
    return "".join(pieces)


def close_open_fence(text: str) -> str:
    """While a reply streams, close a code fence it has opened, so the rest does not render as code."""
    fence: str | None = None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if not match:
            continue
        if fence is None:
            fence = match.group(1)
        elif match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            fence = None
    return text if fence is None else f"{text}\n{fence}"


def fenced(text: str, lang: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


_CODE_BLOCK = re.compile(r"^ {0,3}(`{3,}|~{3,})([^\n`]*)\n(.*?)^ {0,3}\1\s*$", re.S | re.M)


def extract_code(text: str) -> tuple[str, str]:
    """(language, code) of the first fenced block of ``text``, or ("python", text) without one."""
    match = _CODE_BLOCK.search(text)
    if match is None:
        return "python", text.strip("\n")
    lang = match.group(2).strip().split(" ")[0] or "python"
    return lang, match.group(3).rstrip("\n")


def parse_json_reply(text: str) -> Any:
    """The JSON a reply holds (bare, or in a fenced block); raises ValueError if none."""
    candidate = text.strip()
    if candidate.startswith(("```", "~~~")):
        candidate = extract_code(candidate)[1]
    return json.loads(candidate)


def format_text(text: str, fmt: str, *, live: bool) -> str:
    """One block of model text as Markdown in the requested output format."""
    if fmt == "text":
        return fenced(text, "text")
    if fmt == "code":
        lang, code = extract_code(text)
        return fenced(code, lang)
    if fmt == "json":
        if not live:
            try:
                return fenced(pretty_json(parse_json_reply(text)), "json")
            except ValueError:
                return fenced(text, "json") + "\n\n*The reply is not valid JSON; shown as it came.*"
        return fenced(text, "json")
    md = safe_markdown(text)
    return close_open_fence(md) if live else md

