"""What ``%llmgine log`` shows: a timeline of the session and its events as a table.

``event_summary`` says in one line what an event says; ``event_spans``
pairs start and end events into the spans of the timeline (turns, model
calls, tool runs, approval waits; failed, stopped).  ``LogReport`` has HTML
(static: a saved notebook shows it without a kernel; each row opens to the
event's every field) and text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..text import clip
from .charts import Span, timeline
from .reports import Report, html_table, plural, report_title, text_table
from .style import ERROR, MUTED, PANEL, WARN, esc, fmt_cost, fmt_duration, pretty_json

__all__ = ["LogReport", "event_summary", "event_spans"]


def event_summary(event: Any) -> str:
    """One line saying what an event says."""
    name = type(event).__name__

    def get(key: str, default: Any = None) -> Any:
        return getattr(event, key, default)

    if name == "TurnStarted":
        return f"{get('model')} · “{clip(get('text'), 80, one_line=True)}”"
    if name == "TurnFinished":
        usage = get("usage")
        return (f"{get('status')} · {usage.input_tokens:,} in / {usage.output_tokens:,} out · "
                f"{fmt_cost(get('cost_usd'))} · {fmt_duration(get('latency_s'))}")
    if name == "TurnFailed":
        return f"{get('kind')}: {clip(get('reason'), 160, one_line=True)}"
    if name == "TurnCancelled":
        return f"{get('reason')} · {len(get('partial_text') or '')} characters kept"
    if name == "LLMCallStarted":
        tools = f" · tools: {', '.join(get('tool_names'))}" if get("tool_names") else ""
        return f"{get('model')} · {plural(get('message_count'), 'message')}{tools}"
    if name == "LLMCallFinished":
        usage = get("usage")
        return (f"{get('model')} · {get('finish_reason') or ''} · {usage.input_tokens:,} in / "
                f"{usage.output_tokens:,} out · {fmt_cost(get('cost_usd'))} · {fmt_duration(get('latency_s'))}")
    if name == "LLMCallFailed":
        retry = " (retrying)" if get("will_retry") else ""
        status = f"HTTP {get('status_code')} · " if get("status_code") else ""
        return f"{status}{get('error_kind')}: {clip(get('message'), 140, one_line=True)}{retry}"
    if name in ("LLMRetry", "LLMFallback", "LLMNotice"):
        return clip(get("message"), 160, one_line=True)
    if name == "ContextCompiled":
        return f"{get('total_tokens'):,} of {get('budget_tokens'):,} tokens · {get('dropped_messages')} dropped"
    if name == "ToolCallRequested":
        return f"{get('tool_name')}({clip(get('raw_arguments'), 80, one_line=True)})"
    if name == "ToolValidationFailed":
        return f"{get('tool_name')}: {clip(get('error'), 140, one_line=True)}"
    if name == "ToolPermissionChecked":
        return f"{get('tool_name')}: {'granted' if get('granted') else 'missing ' + ', '.join(get('missing'))}"
    if name == "ToolImpactAssessed":
        return f"{get('tool_name')}: risk {get('risk')}, {'asks' if get('requires_approval') else 'no approval'}"
    if name == "ApprovalRequested":
        return f"{get('tool_name')}: {clip(get('reason'), 120, one_line=True)}"
    if name == "ApprovalDecided":
        who = get("decided_by") or event.metadata.get("decided_by") or get("source")  # the field; older logs: metadata
        return f"{get('tool_name')}: {get('decision')} by {who}" + (f" · {get('message')}" if get("message") else "")
    if name in ("ToolStarted", "ToolArgumentsValidated"):
        return f"{get('tool_name')}({clip(json.dumps(get('arguments'), default=str), 80, one_line=True)})"
    if name == "ToolFinished":
        result = get("result")
        return f"{get('tool_name')}: {result.status} · {fmt_duration(result.duration)} · {clip(result.content, 100, one_line=True)}"
    if name == "HandlerFailed":
        return f"{get('handler')}: {clip(get('error'), 140, one_line=True)}"
    if name == "UnknownEvent":
        return f"(stored as {get('stored_type')})"
    data = event.model_dump(mode="json", exclude={"id", "timestamp", "session_id", "metadata"})
    return clip(json.dumps(data, default=str), 160, one_line=True)


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
        status = {"TurnCancelled": "stopped", "TurnFailed": "failed", "LLMCallFailed": "failed"}.get(name, "ok")
        if kind == "turn":
            turn_number += 1
            row, label = f"turn {turn_number}", clip(getattr(start, "text", ""), 60, one_line=True)
        elif kind == "model":
            row, label = f"model · {start.model}", start.model
        elif kind == "tool":
            result = getattr(event, "result", None)
            if result is not None and result.status != "ok":
                status = "failed"
            row, label = f"tool · {start.tool_name}", start.tool_name
        else:
            if not getattr(event, "approved", True):
                status = "stopped"
            row, label = f"approval · {start.tool_name}", f"{start.tool_name}: {getattr(event, 'decision', '')}"
        spans.append(Span(row, start.timestamp, event.timestamp, kind, label, status))
    return spans


class LogReport(Report):
    """``%llmgine log``: a timeline of the session's spans and its events as a table whose rows expand.

    ``events`` are the rows (``%llmgine log TYPE`` keeps some); the timeline is
    drawn from ``timeline_events`` (by default the same), so a filtered table
    keeps the whole session's timeline above it.  The output is static HTML:
    it reads the same in a saved notebook, with no kernel behind it.
    """

    MAX_ROWS = 500

    def __init__(self, events: Sequence[Any], session_id: str = "", *,
                 timeline_events: Sequence[Any] | None = None, filters: Sequence[str] = ()) -> None:
        self.events = list(events)
        self.session_id = session_id
        self.timeline_events = self.events if timeline_events is None else list(timeline_events)
        self.filters = list(filters)

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

    @staticmethod
    def _fields_html(event: Any) -> str:
        """Every field of the event (the full error, the HTTP status, ...), shown when its row is opened."""
        fields = event.model_dump(mode="json", exclude={"metadata"})
        return (f'<pre style="margin:.3em 0 .2em;padding:.4em .6em;background:{PANEL};border-radius:4px;'
                f'white-space:pre-wrap;word-break:break-word;font-size:11px;max-height:24em;overflow:auto">'
                f"{esc(pretty_json(fields))}</pre>")

    def table_html(self, events: Sequence[Any] | None = None) -> str:
        events = self.events if events is None else events
        shown = events[-self.MAX_ROWS:]
        rows = []
        for event, (when, name, summary) in zip(shown, self._rows(shown)):
            colour = ERROR if "Failed" in name else WARN if name.startswith("Approval") else MUTED
            what = (f'<details><summary style="cursor:pointer">{esc(summary)}</summary>'
                    f"{self._fields_html(event)}</details>")
            rows.append([f'<span style="color:{MUTED};font-variant-numeric:tabular-nums">{esc(when)}</span>',
                         f'<span style="color:{colour};font-weight:600">{esc(name)}</span>', what])
        note = "" if len(shown) == len(events) else f'<div style="color:{MUTED}">showing the last {len(shown)} of {len(events)}</div>'
        table = html_table(("time", "event", "what (click a row for every field)"), rows)
        return f'<div style="max-height:32em;overflow:auto">{table}</div>{note}'

    def timeline_html(self) -> str:
        return timeline(event_spans(self.timeline_events))

    def _title(self) -> str:
        shown = f" · {len(self.events)} of them shown (only {', '.join(self.filters)})" if self.filters else ""
        return f"Event log · {len(self.timeline_events)} events{shown}"

    def html(self) -> str:
        if not self.timeline_events:
            return report_title("No events logged for this session yet")
        return report_title(self._title(), f"session {self.session_id[:12]}") + self.timeline_html() + self.table_html()

    def text(self) -> str:
        if not self.timeline_events:
            return "No events logged for this session yet."
        rows = self._rows(self.events[-self.MAX_ROWS:])
        return f"{self._title()}\n" + text_table(("time", "event", "what"), [[a, b, clip(c, 100, one_line=True)] for a, b, c in rows])
