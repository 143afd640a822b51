"""What ``%llmgine sessions/history/tools/usage/log/config/keys/model`` show: tables and charts.

Each report is a plain object with ``_repr_html_`` (a styled table, inline
SVG charts) and a ``text/plain`` fallback (``__repr__``) that reads well in a
terminal and in nbval.  ``LogReport`` also offers a widget form with a
filter (``widget_bundle()``), used where the frontend has widgets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from .render import (
    BORDER,
    CODE_FONT,
    ERROR,
    MUTED,
    OK,
    PANEL,
    WARN,
    esc,
    fmt_cost,
    fmt_duration,
    fmt_total_cost,
    pretty_json,
)
from .svg import Span, line_chart, timeline

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
    "LogReport",
    "html_table",
    "text_table",
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


def _title(text: str, note: str = "") -> str:
    note_html = f' <span style="color:{MUTED};font-weight:400;font-size:12px">{esc(note)}</span>' if note else ""
    return f'<div style="font-weight:600;margin:.2em 0 .3em">{esc(text)}{note_html}</div>'


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else ""


def _clip(text: str | None, limit: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _code(text: str) -> str:
    return f'<code style="font-family:{CODE_FONT};font-size:.95em">{esc(text)}</code>'


class Report:
    """Base: HTML for notebooks, text for terminals."""

    def html(self) -> str:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self.html()

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
            return _title("No sessions yet", "ask something and one starts")
        rows = [[esc(c) if i != 2 else _code(c) for i, c in enumerate(r)] for r in self._rows()]
        note = "resume one with %llmgine resume NAME or ID"
        return _title(_plural(len(self.summaries), "session"), note) + html_table(self._HEADERS, rows, numeric=(4, 6, 7))

    def text(self) -> str:
        if not self.summaries:
            return "No sessions yet."
        return text_table(self._HEADERS, self._rows()) + "\n(resume one with %llmgine resume NAME or ID)"


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
            calls = ", ".join(f"{c.name}({_clip(c.raw_arguments, 60)})" for c in message.tool_calls)
            text = (text + "\n" if text else "") + f"→ calls {calls}"
        if message.status == "interrupted":
            text += " [stopped: partial]"
        return text

    def html(self) -> str:
        name = self.session.name or self.session.id[:12]
        if not self.messages:
            return _title(f"Session {name}", "no messages yet")
        rows = []
        for m in self.messages:
            colour = _ROLE_COLOUR.get(m.role, MUTED)
            role = f'<span style="color:{colour};font-weight:600">{esc(m.role)}</span>'
            content = esc(_clip(self._content(m), 600))
            rows.append([role, f'<div style="white-space:pre-wrap;max-width:60em">{content}</div>',
                         _code(m.id[:12]), esc(m.created.astimezone().strftime("%H:%M:%S"))])
        note = f"{_plural(len(self.messages), 'message')} · fork at one with %llmgine fork ID"
        return _title(f"Session {name}", note) + html_table(("role", "message", "id", "time"), rows)

    def text(self) -> str:
        name = self.session.name or self.session.id[:12]
        if not self.messages:
            return f"Session {name}: no messages yet."
        lines = [f"Session {name}: {_plural(len(self.messages), 'message')}"]
        for m in self.messages:
            lines.append(f"[{m.role}] {_clip(self._content(m), 300)}  ({m.id[:12]})")
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
            return _title(f"Nothing found for “{self.query}”")
        rows = [
            [esc(h.session_name or h.session_id[:12]), esc(h.role), self._snippet_html(h.snippet), esc(_when(h.created))]
            for h in self.hits
        ]
        return _title(f"{_plural(len(self.hits), 'message')} match “{self.query}”") + html_table(("session", "role", "match", "when"), rows)

    def text(self) -> str:
        if not self.hits:
            return f"Nothing found for {self.query!r}."
        return "\n".join(
            f"{h.session_name or h.session_id[:12]} [{h.role}] {_clip(h.snippet, 160)}" for h in self.hits
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
            return _title("No tools yet", "decorate a function with @tool in this notebook to offer it to the model")
        rows = []
        for t in self.tools:
            colour = {"read": OK, "write": WARN, "destructive": ERROR}.get(t.risk, WARN)
            policy = _policy(t) + (" · allowed for this session" if t.name in self.always else "")
            schema = (f'<details><summary style="cursor:pointer;color:{MUTED}">parameters</summary>'
                      f'<pre style="margin:.2em 0;padding:.4em;background:{PANEL};font-size:11px">'
                      f"{esc(pretty_json(t.parameters))}</pre></details>")
            rows.append([
                _code(t.name), f'<span style="color:{colour};font-weight:600">{esc(t.risk)}</span>', esc(policy),
                esc(", ".join(sorted(t.permissions)) or "-"), esc(_clip(t.description, 160)) + schema,
            ])
        return _title(_plural(len(self.tools), "tool")) + html_table(("tool", "risk", "approval", "permissions", "description"), rows)

    def text(self) -> str:
        if not self.tools:
            return "No tools yet: decorate a function with @tool in this notebook to offer it to the model."
        rows = [[t.name, t.risk, _policy(t), ", ".join(sorted(t.permissions)) or "-", _clip(t.description, 70)]
                for t in self.tools]
        return text_table(("tool", "risk", "approval", "permissions", "description"), rows)


class ModelReport(Report):
    """``%llmgine model``: the model in use and the aliases that can be used instead."""

    def __init__(self, model: str, aliases: dict[str, Any]) -> None:
        self.model = model
        self.aliases = dict(aliases)

    def _alias_rows(self) -> list[list[str]]:
        rows = [[name, target if isinstance(target, str) else str(target.get("model", target))]
                for name, target in self.aliases.items()]
        rows.append(["scripted", "the offline model (no key needed)"])
        return rows

    def html(self) -> str:
        rows = [[_code(a), esc(b)] for a, b in self._alias_rows()]
        return (_title(f"Model: {self.model}", "switch with %llmgine model NAME")
                + html_table(("alias", "model"), rows))

    def text(self) -> str:
        return f"Model: {self.model}\n\n" + text_table(("alias", "model"), self._alias_rows())


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
        return _title(f"{count} provider key{'s' if count != 1 else ''} set", "keys are never shown in full") + html_table(("provider", "key"), rows)

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
        return _title("Configuration", note) + html_table(("setting", "value", "from"), rows)

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
            return _title(f"No model calls yet ({self.scope})")
        tokens, cost = self.series()
        rows = [[esc(c) for c in r] for r in self._table_rows()]
        charts = (
            '<div style="display:flex;flex-wrap:wrap;gap:12px;margin-top:.4em">'
            + line_chart(tokens, title="Tokens over time (cumulative)", width=460)
            + line_chart(cost, title="Cost over time (cumulative, USD)", money=True, width=460)
            + "</div>"
        )
        return _title(f"Usage · {self.scope}") + html_table(self._HEADERS, rows, numeric=(1, 2, 3, 4, 5, 6)) + charts

    def text(self) -> str:
        if not self.rows:
            return f"No model calls yet ({self.scope})."
        return f"Usage · {self.scope}\n" + text_table(self._HEADERS, self._table_rows())


# -- the event log ---------------------------------------------------------------------------


def event_summary(event: Any) -> str:
    """One line saying what an event says."""
    name = type(event).__name__
    get = lambda key, default=None: getattr(event, key, default)  # noqa: E731
    if name == "TurnStarted":
        return f"{get('model')} · “{_clip(get('text'), 80)}”"
    if name == "TurnFinished":
        usage = get("usage")
        return (f"{get('status')} · {usage.input_tokens:,} in / {usage.output_tokens:,} out · "
                f"{fmt_cost(get('cost_usd'))} · {fmt_duration(get('latency_s'))}")
    if name == "TurnFailed":
        return f"{get('kind')}: {_clip(get('reason'), 160)}"
    if name == "TurnCancelled":
        return f"{get('reason')} · {len(get('partial_text') or '')} characters kept"
    if name == "LLMCallStarted":
        tools = f" · tools: {', '.join(get('tool_names'))}" if get("tool_names") else ""
        return f"{get('model')} · {_plural(get('message_count'), 'message')}{tools}"
    if name == "LLMCallFinished":
        usage = get("usage")
        return (f"{get('model')} · {get('finish_reason') or ''} · {usage.input_tokens:,} in / "
                f"{usage.output_tokens:,} out · {fmt_cost(get('cost_usd'))} · {fmt_duration(get('latency_s'))}")
    if name == "LLMCallFailed":
        retry = " (retrying)" if get("will_retry") else ""
        return f"{get('error_kind')}: {_clip(get('message'), 140)}{retry}"
    if name in ("LLMRetry", "LLMFallback", "LLMNotice"):
        return _clip(get("message"), 160)
    if name == "ContextCompiled":
        return f"{get('total_tokens'):,} of {get('budget_tokens'):,} tokens · {get('dropped_messages')} dropped"
    if name == "ToolCallRequested":
        return f"{get('tool_name')}({_clip(get('raw_arguments'), 80)})"
    if name == "ToolValidationFailed":
        return f"{get('tool_name')}: {_clip(get('error'), 140)}"
    if name == "ToolPermissionChecked":
        return f"{get('tool_name')}: {'granted' if get('granted') else 'missing ' + ', '.join(get('missing'))}"
    if name == "ToolImpactAssessed":
        return f"{get('tool_name')}: risk {get('risk')}, {'asks' if get('requires_approval') else 'no approval'}"
    if name == "ApprovalRequested":
        return f"{get('tool_name')}: {_clip(get('reason'), 120)}"
    if name == "ApprovalDecided":
        who = event.metadata.get("decided_by") or get("source")
        return f"{get('tool_name')}: {get('decision')} by {who}" + (f" · {get('message')}" if get("message") else "")
    if name in ("ToolStarted", "ToolArgumentsValidated"):
        return f"{get('tool_name')}({_clip(json.dumps(get('arguments'), default=str), 80)})"
    if name == "ToolFinished":
        result = get("result")
        return f"{get('tool_name')}: {result.status} · {fmt_duration(result.duration)} · {_clip(result.content, 100)}"
    if name == "HandlerFailed":
        return f"{get('handler')}: {_clip(get('error'), 140)}"
    if name == "UnknownEvent":
        return f"(stored as {get('stored_type')})"
    data = event.model_dump(mode="json", exclude={"id", "timestamp", "session_id", "metadata"})
    return _clip(json.dumps(data, default=str), 160)


def event_spans(events: Sequence[Any]) -> list[Span]:
    """Turns, model calls, tool runs and approval waits, from start and end events."""
    open_: dict[tuple[str, str], Any] = {}
    spans: list[Span] = []
    turn_number = 0
    starts = {"TurnStarted": "turn", "LLMCallStarted": "model", "ToolStarted": "tool", "ApprovalRequested": "approval"}
    ends = {
        "TurnFinished": "turn", "TurnFailed": "turn", "TurnCancelled": "turn",
        "LLMCallFinished": "model", "LLMCallFailed": "model", "ToolFinished": "tool", "ApprovalDecided": "approval",
    }
    for event in events:
        name = type(event).__name__
        kind = starts.get(name) or ends.get(name)
        if kind is None:
            continue
        key = (kind, getattr(event, "turn_id", None) or getattr(event, "call_id", None) or "")
        if name in starts:
            open_[key] = event
            continue
        if name == "LLMCallFailed" and getattr(event, "will_retry", False):
            continue
        start = open_.pop(key, None)
        if start is None:
            continue
        ok = name not in ("TurnFailed", "TurnCancelled", "LLMCallFailed")
        if kind == "turn":
            turn_number += 1
            row, label = f"turn {turn_number}", _clip(getattr(start, "text", ""), 60)
        elif kind == "model":
            row, label = f"model · {start.model}", start.model
        elif kind == "tool":
            result = getattr(event, "result", None)
            ok = ok and (result is None or result.status == "ok")
            row, label = f"tool · {start.tool_name}", start.tool_name
        else:
            ok = bool(getattr(event, "approved", True))
            row, label = f"approval · {start.tool_name}", f"{start.tool_name}: {getattr(event, 'decision', '')}"
        spans.append(Span(row, start.timestamp, event.timestamp, kind, label, ok))
    return spans


class LogReport(Report):
    """``%llmgine log``: the session's events as a filterable table and a timeline of spans."""

    MAX_ROWS = 500

    def __init__(self, events: Sequence[Any], session_id: str = "") -> None:
        self.events = list(events)
        self.session_id = session_id

    def _rows(self, events: Sequence[Any]) -> list[list[str]]:
        return [
            [e.timestamp.astimezone().strftime("%H:%M:%S.%f")[:-3], type(e).__name__, event_summary(e)]
            for e in events
        ]

    def filtered(self, text: str = "", kind: str = "") -> list[Any]:
        text = text.lower()
        return [
            e for e in self.events
            if (not kind or type(e).__name__ == kind)
            and (not text or text in type(e).__name__.lower() or text in event_summary(e).lower())
        ]

    def table_html(self, events: Sequence[Any] | None = None) -> str:
        events = self.events if events is None else events
        shown = events[-self.MAX_ROWS:]
        rows = []
        for when, name, summary in self._rows(shown):
            colour = ERROR if "Failed" in name else WARN if name.startswith("Approval") else MUTED
            rows.append([f'<span style="color:{MUTED};font-variant-numeric:tabular-nums">{esc(when)}</span>',
                         f'<span style="color:{colour};font-weight:600">{esc(name)}</span>', esc(summary)])
        note = "" if len(shown) == len(events) else f'<div style="color:{MUTED}">showing the last {len(shown)} of {len(events)}</div>'
        table = html_table(("time", "event", "what"), rows)
        return f'<div style="max-height:28em;overflow:auto">{table}</div>{note}'

    def timeline_html(self) -> str:
        return timeline(event_spans(self.events))

    def html(self) -> str:
        if not self.events:
            return _title("No events logged for this session yet")
        return (_title(f"Event log · {len(self.events)} events", f"session {self.session_id[:12]}")
                + self.timeline_html() + self.table_html())

    def text(self) -> str:
        if not self.events:
            return "No events logged for this session yet."
        rows = self._rows(self.events[-self.MAX_ROWS:])
        return f"Event log · {len(self.events)} events\n" + text_table(("time", "event", "what"), [[a, b, _clip(c, 100)] for a, b, c in rows])

    # -- the widget form: a filter above the table --------------------------------------

    def widget(self) -> Any:
        import ipywidgets as w

        kinds = sorted({type(e).__name__ for e in self.events})
        search = w.Text(placeholder="filter: words in the event or its summary", layout=w.Layout(width="22em"))
        kind = w.Dropdown(options=[("all events", "")] + [(k, k) for k in kinds], value="",
                          layout=w.Layout(width="16em"))
        count = w.HTML()
        table = w.HTML()

        def refresh(_: Any = None) -> None:
            chosen = self.filtered(search.value, kind.value)
            count.value = f'<span style="color:{MUTED}">{len(chosen)} of {len(self.events)} events</span>'
            table.value = self.table_html(chosen)

        search.observe(refresh, names="value")
        kind.observe(refresh, names="value")
        refresh()
        header = w.HTML(_title(f"Event log · {len(self.events)} events", f"session {self.session_id[:12]}")
                        + self.timeline_html())
        return w.VBox([header, w.HBox([search, kind, count]), table])

    def widget_bundle(self) -> dict[str, Any]:
        """The widget, with the static HTML and the text as fallbacks."""
        view = self.widget()
        return {
            "application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 0, "model_id": view.model_id},
            "text/html": self.html(),
            "text/plain": self.text(),
        }
