"""Event records as terminal output (rich): streamed Markdown, tool boxes, approval cards, the usage footer.

The reply streams as Markdown re-rendered in place while it grows (a rich
``Live``), and is left as its final rendering when anything else is shown.
Tool calls, their results, approvals and questions are boxes; the usage
footer is a dim line.  Colours follow the terminal (none when the output is
not one or ``NO_COLOR`` is set); the layout is the same either way.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.text import Text

__all__ = ["Renderer", "kind"]

#: Re-render the growing reply at most this often (seconds); the last state is always drawn.
REDRAW_S = 1 / 15


def kind(record: dict[str, Any]) -> str:
    """``TurnStarted`` for ``llmgine_nb.engine.events.TurnStarted``."""
    return str(record.get("type", "")).rsplit(".", 1)[-1]


# Failures another model (or a key) fixes: the terminal says how to switch.
_MODEL_PROBLEMS = ("no_api_key", "authentication", "config")


class Renderer:
    def __init__(self, out: TextIO | None = None, colour: bool | None = None) -> None:
        out = out or sys.stdout
        if colour is None:
            colour = out.isatty() and not os.environ.get("NO_COLOR")
        self.console = Console(file=out, no_color=not colour, highlight=False, emoji=False)
        self._reply = ""  # the Markdown streamed so far by the current model call
        self._reply_call: str | None = None
        self._live: Live | None = None
        self._drawn_at = 0.0

    # -- the streaming reply ------------------------------------------------------

    def _stream(self, call_id: str | None, text: str) -> None:
        if call_id != self._reply_call:
            self.end_reply()
            self._reply_call = call_id
        self._reply += text
        if self._live is None:
            self._live = Live(Markdown(self._reply), console=self.console, auto_refresh=False,
                              transient=False, redirect_stdout=False, redirect_stderr=False,
                              vertical_overflow="visible")
            self._live.start(refresh=True)
            self._drawn_at = time.monotonic()
        elif time.monotonic() - self._drawn_at >= REDRAW_S:
            self._live.update(Markdown(self._reply), refresh=True)
            self._drawn_at = time.monotonic()

    def end_reply(self) -> None:
        """Draw the reply's final state and leave it there (before anything else is shown)."""
        if self._live is not None:
            self._live.update(Markdown(self._reply), refresh=True)
            self._live.stop()
            self._live = None
        self._reply, self._reply_call = "", None

    # -- lines and boxes --------------------------------------------------------------

    def line(self, text: str = "", style: str | None = None) -> None:
        self.end_reply()
        self.console.print(Text(text, style=style or ""), soft_wrap=True)

    def notice(self, text: str) -> None:
        self.line(text, "dim")

    def error(self, text: str) -> None:
        self.line(f"! {text}", "red")

    def box(self, body: str, title: str, style: str) -> None:
        self.end_reply()
        self.console.print(Panel(Text(body), title=Text(title), title_align="left", border_style=style, expand=False))

    def event(self, record: dict[str, Any]) -> None:
        name = kind(record)
        if name == "LLMTextDelta":
            self._stream(record.get("call_id"), str(record.get("text", "")))
        elif name == "ToolStarted":
            self.box(_arguments(record.get("arguments")), f"tool {record['tool_name']}", "cyan")
        elif name == "ToolFinished":
            result = record.get("result") or {}
            self.box(str(result.get("content", ""))[:600], f"tool {record['tool_name']}: {result.get('status', '?')}",
                     "cyan")
        elif name == "ApprovalDecided":
            verdict = "approved" if record.get("approved") else "denied"
            reason = f" ({record['message']})" if record.get("message") else ""
            self.line(f"[{record['tool_name']}: {verdict}{reason}]", "yellow")
        elif name == "ApprovalExpired":
            self.line(f"[{record['tool_name']}: nobody decided in time; denied]", "yellow")
        elif name == "QuestionExpired":
            self.line(f"[{record.get('tool_name') or 'a tool'}: the question expired unanswered]", "yellow")
        elif name == "TurnFinished":
            self.line(self.footer(record), "dim")
        elif name == "TurnFailed":
            self.error(record.get("reason", "The turn failed."))
            if record.get("kind") in _MODEL_PROBLEMS:  # the engine's reason names no front end: the hint is ours
                self.notice("/model NAME switches this session to another model.")
        elif name == "TurnCancelled":
            kept = "the partial reply is kept" if record.get("partial_text") else "nothing had arrived, so nothing is kept"
            self.line(f"[stopped; {kept}]", "yellow")
        elif name == "ModelSwitched":
            self.notice(f"[model: {record.get('model')}]")

    def footer(self, record: dict[str, Any]) -> str:
        usage = record.get("usage") or {}
        cost = record.get("cost_usd")
        price = f"${cost:.6f}" if isinstance(cost, (int, float)) else "cost unknown"
        return (f"[{record.get('model')} · {usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out tokens"
                f" · {price} · {float(record.get('latency_s') or 0):.2f} s]")

    def approval_card(self, item: dict[str, Any]) -> None:
        body = f"{item['tool_name']} {_arguments(item.get('arguments'))}"
        if item.get("reason"):
            body += f"\nwhy: {item['reason']}"
        if item.get("preview"):
            body += f"\npreview:\n{item['preview']}"
        self.box(body, f"Approval needed [{item.get('display_id') or item['call_id']}]", "yellow")

    def question(self, item: dict[str, Any]) -> None:
        options = "".join(f"\n  {number}) {option}" for number, option in enumerate(item.get("options") or [], 1))
        self.box(f"{item.get('question')}{options}", f"Question from {item.get('tool_name') or 'a tool'}", "yellow")


def _arguments(arguments: Any) -> str:
    return json.dumps(arguments or {}, ensure_ascii=False)
