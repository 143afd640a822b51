"""What ``%llmgine sessions/history/tools/usage/config/keys/model`` show: tables and charts.

Each report is a plain object with ``_repr_html_`` (a styled table, charts
drawn in HTML and CSS by ``charts``) and a ``text/plain`` fallback
(``__repr__``) that reads well in a terminal and in nbval.  The HTML is
made to survive a saved notebook opened untrusted (JupyterLab's sanitizer)
and never typesets as maths (``style.NO_MATH``).  The history is Markdown,
so the messages in it render as the model wrote them.  The event log's
report is ``log_report.LogReport``; the functions that make each report
from the store are in ``lookback``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..text import clip
from .charts import line_chart
from .markdown import safe_markdown
from .style import (
    BORDER,
    CODE_FONT,
    MUTED,
    NO_MATH,
    PANEL,
    esc,
    fmt_duration,
    fmt_total_cost,
    pretty_json,
    risk_label,
    unpriced_note,
)

__all__ = [
    "Report",
    "SessionsReport",
    "HistoryReport",
    "SearchReport",
    "ToolsReport",
    "ModelReport",
    "KeysReport",
    "ConfigReport",
    "UsageReport",
    "html_table",
    "text_table",
    "report_title",
    "plural",
]

_TABLE = (
    "border-collapse:collapse;font-size:12.5px;line-height:1.35;margin:.3em 0;"
    "font-family:var(--jp-ui-font-family, system-ui, sans-serif)"
)
_TH = (
    f"text-align:left;padding:4px 10px;border-bottom:2px solid {BORDER};color:{MUTED};font-weight:600;"
    "font-size:11px;text-transform:uppercase;letter-spacing:.03em;white-space:nowrap"
)
_TD = f"padding:4px 10px;border-bottom:1px solid {BORDER};vertical-align:top;text-align:left"


def html_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Sequence[int] = ()) -> str:
    """A table; cells are HTML already escaped by the caller.  ``numeric`` columns align right."""
    head = "".join(
        f'<th style="{_TH}{";text-align:right" if i in numeric else ""}">{esc(h)}</th>' for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>" + "".join(
            f'<td style="{_TD}{";text-align:right;font-variant-numeric:tabular-nums" if i in numeric else ""}">{c}</td>'
            for i, c in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def text_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns aligned with spaces, for terminals."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(out)


def report_title(text: str, note: str = "") -> str:
    note_html = f' <span style="color:{MUTED};font-weight:400;font-size:12px">{esc(note)}</span>' if note else ""
    return f'<div style="font-weight:600;margin:.2em 0 .3em">{esc(text)}{note_html}</div>'


def _note_html(note: str) -> str:
    return f'<div style="color:{MUTED};font-size:12px;margin:.2em 0">{esc(note)}</div>' if note else ""


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else ""


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _code(text: str) -> str:
    return f'<code style="font-family:{CODE_FONT};font-size:.95em">{esc(text)}</code>'


class Report:
    """Base: HTML for notebooks, text for terminals."""

    def html(self) -> str:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError

    def _repr_html_(self) -> str | None:
        return f'<div class="{NO_MATH}">{self.html()}</div>'

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())


class SessionsReport(Report):
    """``%llmgine sessions``: recent sessions with their activity and cost."""

    def __init__(self, summaries: Sequence[Any], current: str | None = None) -> None:
        self.summaries = list(summaries)
        self.current = current

    def _rows(self) -> list[list[str]]:
        return [
            [
                "▶" if s.id == self.current else "",
                s.name or "",
                s.id[:12],
                s.session.model or "",
                str(s.message_count),
                _when(s.last_activity),
                f"{s.input_tokens:,} / {s.output_tokens:,}",
                fmt_total_cost(s.cost, s.unpriced_calls),
            ]
            for s in self.summaries
        ]

    _HEADERS = ("", "name", "id", "model", "messages", "last activity", "tokens in / out", "cost")

    def html(self) -> str:
        if not self.summaries:
            return report_title("No sessions yet", "ask something and one starts")
        rows = [[esc(c) if i != 2 else _code(c) for i, c in enumerate(r)] for r in self._rows()]
        note = "resume one with %llmgine resume NAME or ID"
        return (report_title(plural(len(self.summaries), "session"), note) + html_table(self._HEADERS, rows, numeric=(4, 6, 7))
                + _note_html(self._unpriced_note()))

    def _unpriced_note(self) -> str:
        return unpriced_note([row[-1] for row in self._rows()])

    def text(self) -> str:
        if not self.summaries:
            return "No sessions yet."
        note = self._unpriced_note()
        return (text_table(self._HEADERS, self._rows()) + "\n(resume one with %llmgine resume NAME or ID)"
                + (f"\n{note}" if note else ""))


_ROLE_COLOUR = {"user": "#4e79a7", "assistant": "#59a14f", "tool": "#f28e2b", "system": "#9c755f"}


class HistoryReport(Report):
    """``%llmgine history``: a session's messages, with tool calls and message ids (to fork at)."""

    def __init__(self, session: Any, messages: Sequence[Any], tool_calls: Sequence[Any] = ()) -> None:
        self.session = session
        self.messages = list(messages)
        self.tool_calls = {c.call_id: c for c in tool_calls}

    def _content(self, message: Any) -> str:
        text = message.content or ""
        if message.tool_calls:
            calls = ", ".join(f"{c.name}({clip(c.raw_arguments, 60, one_line=True)})" for c in message.tool_calls)
            text = (text + "\n" if text else "") + f"→ calls {calls}"
        for image in message.images:
            text = (text + "\n" if text else "") + f"[image {image.describe()}]"
        if message.status == "interrupted":
            text += " [stopped: partial]"
        if getattr(message, "pinned", False):
            text = "[pinned] " + text
        if getattr(message, "forgotten", False):
            text = "[forgotten: not sent to the model] " + text
        return text

    def html(self) -> str:
        """The Markdown form: it is HTML, except for the messages, which render as Markdown."""
        return self.markdown()

    def markdown(self) -> str:
        """The table with each message as Markdown: a cell's content set apart by blank lines is
        read as Markdown by CommonMark renderers (JupyterLab, nbconvert), the rest is HTML."""
        name = self.session.name or self.session.id[:12]
        if not self.messages:
            return report_title(f"Session {name}", "no messages yet")
        rows = []
        for m in self.messages:
            colour = _ROLE_COLOUR.get(m.role, MUTED)
            content = safe_markdown(clip(self._content(m), 2000))
            rows.append(
                f'<tr><td style="{_TD}"><span style="color:{colour};font-weight:600">{esc(m.role)}</span></td>'
                f'<td style="{_TD}">\n\n{content}\n\n</td>'
                f'<td style="{_TD}">{_code(m.id[:12])}</td>'
                f'<td style="{_TD}">{esc(m.created.astimezone().strftime("%H:%M:%S"))}</td></tr>'
            )
        head = "".join(f'<th style="{_TH}">{h}</th>' for h in ("role", "message", "id", "time"))
        note = (f"{plural(len(self.messages), 'message')} · fork at one with %llmgine fork ID; "
                "%llmgine forget / pin / edit ID change what the model is sent")
        return (report_title(f"Session {name}", note) + f'\n\n<table style="{_TABLE}"><thead><tr>{head}</tr></thead>'
                f"<tbody>\n{chr(10).join(rows)}\n</tbody></table>")

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _repr_html_(self) -> None:
        return None  # the Markdown form is the one shown (its messages render)

    def text(self) -> str:
        name = self.session.name or self.session.id[:12]
        if not self.messages:
            return f"Session {name}: no messages yet."
        lines = [f"Session {name}: {plural(len(self.messages), 'message')}"]
        for m in self.messages:
            lines.append(f"[{m.role}] {clip(self._content(m), 300, one_line=True)}  ({m.id[:12]})")
        return "\n".join(lines)


class SearchReport(Report):
    """``%llmgine history --search``: matching messages across sessions."""

    def __init__(self, query: str, hits: Sequence[Any]) -> None:
        self.query = query
        self.hits = list(hits)

    @staticmethod
    def _snippet_html(snippet: str) -> str:
        parts = esc(snippet).split("**")
        return "".join(f"<mark>{p}</mark>" if i % 2 else p for i, p in enumerate(parts))

    def html(self) -> str:
        if not self.hits:
            return report_title(f"Nothing found for “{self.query}”")
        rows = [
            [esc(h.session_name or h.session_id[:12]), esc(h.role), self._snippet_html(h.snippet), esc(_when(h.created))]
            for h in self.hits
        ]
        return report_title(f"{plural(len(self.hits), 'message')} match “{self.query}”") + html_table(("session", "role", "match", "when"), rows)

    def text(self) -> str:
        if not self.hits:
            return f"Nothing found for {self.query!r}."
        return "\n".join(
            f"{h.session_name or h.session_id[:12]} [{h.role}] {clip(h.snippet, 160, one_line=True)}" for h in self.hits
        )


def _policy(tool: Any) -> str:
    from ..tools.tool import DEFAULT_APPROVAL

    policy = tool.approval
    if policy is None:
        asks = DEFAULT_APPROVAL.get(tool.risk, "always") == "always"
        return "asks (by risk)" if asks else "never asks (by risk)"
    if policy == "always":
        return "always asks"
    if policy == "never":
        return "never asks"
    return f"asks when {getattr(policy, '__name__', 'its rule')}(...) says so"


class ToolsReport(Report):
    """``%llmgine tools``: name, risk, approval policy, permissions, description, schema."""

    def __init__(self, tools: Sequence[Any], always: Iterable[str] = ()) -> None:
        self.tools = list(tools)
        self.always = set(always)

    def html(self) -> str:
        if not self.tools:
            return report_title("No tools yet", "decorate a function with @tool in this notebook to offer it to the model")
        rows = []
        for t in self.tools:
            policy = _policy(t) + (" · allowed for this session" if t.name in self.always else "")
            schema = (f'<details><summary style="cursor:pointer;color:{MUTED}">parameters</summary>'
                      f'<pre style="margin:.2em 0;padding:.4em;background:{PANEL};font-size:11px">'
                      f"{esc(pretty_json(t.parameters))}</pre></details>")
            rows.append([
                _code(t.name), risk_label(t.risk), esc(policy),
                esc(", ".join(sorted(t.permissions)) or "-"), esc(clip(t.description, 160, one_line=True)) + schema,
            ])
        return report_title(plural(len(self.tools), "tool")) + html_table(("tool", "risk", "approval", "permissions", "description"), rows)

    def text(self) -> str:
        if not self.tools:
            return "No tools yet: decorate a function with @tool in this notebook to offer it to the model."
        rows = [[t.name, t.risk, _policy(t), ", ".join(sorted(t.permissions)) or "-", clip(t.description, 70, one_line=True)]
                for t in self.tools]
        return text_table(("tool", "risk", "approval", "permissions", "description"), rows)


class ModelReport(Report):
    """``%llmgine model``: the model in use, the aliases that can be used instead and how to set them.

    ``offline``: no real model is configured, so an alias that points nowhere is the offline model.
    """

    def __init__(self, model: str, aliases: dict[str, Any], *, offline: bool = False) -> None:
        from ..llm.config import ALIAS_SETTINGS

        self.model = model
        self.aliases = dict(aliases)
        self.offline = offline
        self.settings = dict(ALIAS_SETTINGS)

    def _alias_rows(self) -> list[list[str]]:
        unset = "the offline model (nothing configured)" if self.offline else "not set"
        names = [*self.settings, *(a for a in self.aliases if a not in self.settings)]
        rows = []
        for name in names:
            target = self.aliases.get(name)
            shown = unset if target is None else target if isinstance(target, str) else str(target.get("model", target))
            rows.append([name, shown, self.settings.get(name, "-")])
        rows.append(["scripted", "the offline model (no key needed)", "-"])
        return rows

    _HOW = "switch with %llmgine model NAME (or -m NAME for one turn); set an alias in the environment or .env"

    def html(self) -> str:
        rows = [[_code(a), esc(b), _code(c) if c != "-" else "-"] for a, b, c in self._alias_rows()]
        return (report_title(f"Model: {self.model}", self._HOW)
                + html_table(("alias", "model", "set with"), rows))

    def text(self) -> str:
        return (f"Model: {self.model}\n\n" + text_table(("alias", "model", "set with"), self._alias_rows())
                + f"\n\n{self._HOW}, e.g. LLMGINE_FAST_MODEL=openai/gpt-4o-mini")


class KeysReport(Report):
    """``%llmgine keys``: which providers have a key, masked."""

    def __init__(self, status: dict[str, str | None]) -> None:
        self.status = dict(status)

    def _rows(self) -> list[list[str]]:
        return [[provider, masked or "not set"] for provider, masked in self.status.items()]

    def html(self) -> str:
        rows = [[esc(p), _code(k) if k != "not set" else f'<span style="color:{MUTED}">not set</span>']
                for p, k in self._rows()]
        count = sum(1 for k in self.status.values() if k)
        return report_title(f"{count} provider key{'s' if count != 1 else ''} set", "keys are never shown in full") + html_table(("provider", "key"), rows)

    def text(self) -> str:
        return text_table(("provider", "key"), self._rows())


class ConfigReport(Report):
    """``%llmgine config``: settings with where each comes from."""

    def __init__(self, rows: Sequence[tuple[str, Any, str]], ui: str = "") -> None:
        self.rows = [(name, str(value), source) for name, value, source in rows]
        self.ui = ui

    def html(self) -> str:
        rows = [[_code(n), esc(v), f'<span style="color:{MUTED}">{esc(s)}</span>'] for n, v, s in self.rows]
        note = f"front end in use: {self.ui} · change with %llmgine config NAME=VALUE"
        return report_title("Configuration", note) + html_table(("setting", "value", "from"), rows)

    def text(self) -> str:
        return text_table(("setting", "value", "from"), self.rows)


class UsageReport(Report):
    """``%llmgine usage``: totals per model and charts of tokens and cost over time."""

    def __init__(self, calls: Sequence[Any], rows: Sequence[Any], scope: str = "this session") -> None:
        self.calls = sorted((c for c in calls if c.created is not None), key=lambda c: c.created)
        self.rows = list(rows)
        self.scope = scope

    def _table_rows(self) -> list[list[str]]:
        out = []
        for r in self.rows:
            latency = fmt_duration(r.mean_latency_ms / 1000) if r.mean_latency_ms is not None else ""
            out.append([r.key or "?", str(r.calls), f"{r.input_tokens:,}", f"{r.output_tokens:,}",
                        f"{r.cached_tokens:,}", fmt_total_cost(r.cost, r.unpriced_calls), latency])
        if len(self.rows) > 1:
            out.append(["total", str(sum(r.calls for r in self.rows)),
                        f"{sum(r.input_tokens for r in self.rows):,}", f"{sum(r.output_tokens for r in self.rows):,}",
                        f"{sum(r.cached_tokens for r in self.rows):,}", fmt_total_cost(sum(r.cost for r in self.rows), sum(r.unpriced_calls for r in self.rows)), ""])
        return out

    _HEADERS = ("model", "calls", "tokens in", "tokens out", "cached", "cost", "mean latency")

    def series(self) -> tuple[dict[str, list[tuple[datetime, float]]], dict[str, list[tuple[datetime, float]]]]:
        """Cumulative tokens and cost per model over time."""
        tokens: dict[str, list[tuple[datetime, float]]] = {}
        cost: dict[str, list[tuple[datetime, float]]] = {}
        for call in self.calls:
            t_list = tokens.setdefault(call.model, [])
            c_list = cost.setdefault(call.model, [])
            t_total = (t_list[-1][1] if t_list else 0) + call.input_tokens + call.output_tokens
            c_total = (c_list[-1][1] if c_list else 0) + (call.cost or 0.0)
            t_list.append((call.created, t_total))
            c_list.append((call.created, c_total))
        return tokens, cost

    def html(self) -> str:
        if not self.rows:
            return report_title(f"No model calls yet ({self.scope})")
        tokens, cost = self.series()
        rows = [[esc(c) for c in r] for r in self._table_rows()]
        charts = (
            '<div style="display:flex;flex-wrap:wrap;gap:16px;margin-top:.6em">'
            + line_chart(tokens, title="Tokens over time (cumulative)", width=400)
            + line_chart(cost, title="Cost over time (cumulative, USD)", money=True, width=400)
            + "</div>"
        )
        return (report_title(f"Usage · {self.scope}") + html_table(self._HEADERS, rows, numeric=(1, 2, 3, 4, 5, 6))
                + _note_html(self._unpriced_note()) + charts)

    def _unpriced_note(self) -> str:
        return unpriced_note([row[5] for row in self._table_rows()])

    def text(self) -> str:
        if not self.rows:
            return f"No model calls yet ({self.scope})."
        note = self._unpriced_note()
        return f"Usage · {self.scope}\n" + text_table(self._HEADERS, self._table_rows()) + (f"\n{note}" if note else "")
