"""The notebook's look in one place: colours, escaping, number formats, the risk badge.

Every output (live cells, cards, reports, charts) takes these from here, so a
colour, a cost or a risk looks the same wherever it is shown.  Colours are
JupyterLab's theme variables with a fallback for other frontends.
"""

from __future__ import annotations

import html
import json
from typing import Any

from ..money import fmt_cost, fmt_total_cost, unpriced_note
from ..text import clip

__all__ = [
    "NO_MATH", "MUTED", "BORDER", "PANEL", "CODE_FONT", "OK", "WARN", "ERROR", "INFO", "RISK_COLOUR",
    "esc", "pre_html", "fmt_tokens", "fmt_cost", "fmt_total_cost", "unpriced_note", "fmt_duration", "call_signature",
    "pretty_json",
    "risk_label", "risk_badge",
]

# Colours come from JupyterLab's theme variables (so dark themes work), with
# fallbacks for frontends that do not define them (VS Code, Colab).
MUTED = "var(--jp-ui-font-color2, #6b7280)"
BORDER = "var(--jp-border-color2, #d9dde3)"
PANEL = "var(--jp-layout-color2, #f6f7f9)"
CODE_FONT = "var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, monospace)"
OK = "var(--jp-success-color1, #2e7d32)"
WARN = "var(--jp-warn-color1, #b26a00)"
ERROR = "var(--jp-error-color1, #c62828)"
INFO = "var(--jp-brand-color1, #1976d2)"

#: Classes that tell MathJax (3 and 4: ``mathjax_ignore``; 2, as nbconvert's pages load it:
#: ``tex2jax_ignore``) to leave an element alone, so "$0.01 ... $0.02" never typesets as maths.
#: JupyterLab's sanitizer keeps ``class``.  Put it on the outer element of every HTML output.
NO_MATH = "tex2jax_ignore mathjax_ignore"

#: The colour of each risk level, wherever a risk is shown (cards, boxes, the tools table).
RISK_COLOUR = {"read": OK, "write": WARN, "destructive": ERROR}


def risk_label(risk: str) -> str:
    """The risk as coloured bold text, for a table cell (``risk_badge`` is the boxed form of cards)."""
    return f'<span style="color:{RISK_COLOUR.get(risk, WARN)};font-weight:600">{esc(risk)}</span>'


def risk_badge(risk: str) -> str:
    """The risk of a tool call as a small coloured label (an unknown risk looks like ``write``)."""
    colour = RISK_COLOUR.get(risk, WARN)
    return (
        f'<span style="font-size:.75em;font-weight:700;text-transform:uppercase;padding:.05em .45em;'
        f'border:1px solid {colour};color:{colour};border-radius:3px;vertical-align:middle">{esc(risk)}</span>'
    )



def esc(text: Any) -> str:
    """HTML-escaped text (quotes too: it may end up in an attribute).

    ``$`` becomes ``&#36;``: a Markdown renderer looks for maths between two
    ``$`` in the source before it reads any HTML, and never sees an entity.
    """
    return html.escape(str(text), quote=True).replace("$", "&#36;")


def pre_html(text: str) -> str:
    # Newlines as character references keep the whole box on one line, so
    # that a Markdown parser never ends the HTML block at a blank line.
    return esc(text).replace("\n", "&#10;")


def fmt_tokens(n: int) -> str:
    return f"{n:,}"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 0.001:
        return "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s"


def call_signature(name: str, arguments: dict[str, Any] | None, raw: str = "", limit: int = 90) -> str:
    """``add(a=1, b=2)``: a call as a person reads it, cut to ``limit`` characters."""
    if arguments is None:
        inner = raw or ""
    else:
        inner = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in arguments.items())
    return clip(f"{name}({inner})", limit)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)

