"""Event records as terminal text: streamed reply, tool lines, approval cards, the usage footer.

Plain text with a few ANSI colours (none when the output is not a terminal
or ``NO_COLOR`` is set); the reply streams as the Markdown the model wrote.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

__all__ = ["Renderer", "kind"]


def kind(record: dict[str, Any]) -> str:
    """``TurnStarted`` for ``llmgine_nb.engine.events.TurnStarted``."""
    return str(record.get("type", "")).rsplit(".", 1)[-1]


class Renderer:
    def __init__(self, out: TextIO | None = None, colour: bool | None = None) -> None:
        self.out = out or sys.stdout
        if colour is None:
            colour = self.out.isatty() and not os.environ.get("NO_COLOR")
        self.colour = colour
        self.mid_line = False  # the reply is streaming on the current line

    def _style(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def line(self, text: str = "", style: str | None = None) -> None:
        if self.mid_line:
            self.write("\n")
            self.mid_line = False
        self.write((self._style(text, style) if style else text) + "\n")

    def notice(self, text: str) -> None:
        self.line(text, "2")

    def error(self, text: str) -> None:
        self.line(f"! {text}", "31")

    def event(self, record: dict[str, Any]) -> None:
        name = kind(record)
        if name == "LLMTextDelta":
            self.write(record.get("text", ""))
            self.mid_line = not record.get("text", "").endswith("\n")
        elif name == "ToolStarted":
            self.line(f"[tool {record['tool_name']} {_arguments(record.get('arguments'))}]", "36")
        elif name == "ToolFinished":
            result = record.get("result") or {}
            content = str(result.get("content", ""))
            self.line(f"[tool {record['tool_name']}: {result.get('status', '?')}] {content[:300]}", "36")
        elif name == "ApprovalDecided":
            verdict = "approved" if record.get("approved") else "denied"
            reason = f" ({record['message']})" if record.get("message") else ""
            self.line(f"[{record['tool_name']}: {verdict}{reason}]", "33")
        elif name == "TurnFinished":
            self.line(self.footer(record), "2")
        elif name == "TurnFailed":
            self.error(record.get("reason", "The turn failed."))
        elif name == "TurnCancelled":
            self.line("[stopped; the partial reply is kept]", "33")
        elif name == "ModelSwitched":
            self.notice(f"[model: {record.get('model')}]")

    def footer(self, record: dict[str, Any]) -> str:
        usage = record.get("usage") or {}
        cost = record.get("cost_usd")
        price = f"${cost:.6f}" if isinstance(cost, (int, float)) else "cost unknown"
        return (f"[{record.get('model')} · {usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out tokens"
                f" · {price} · {float(record.get('latency_s') or 0):.2f} s]")

    def approval_card(self, item: dict[str, Any]) -> None:
        self.line(f"Approval needed [{item.get('display_id') or item['call_id']}]: {item['tool_name']} "
                  f"{_arguments(item.get('arguments'))}", "1;33")
        if item.get("reason"):
            self.line(f"  why: {item['reason']}")
        if item.get("preview"):
            self.line(f"  preview:\n{item['preview']}")

    def question(self, item: dict[str, Any]) -> None:
        self.line(f"Question from {item.get('tool_name') or 'a tool'}: {item.get('question')}", "1;33")
        for number, option in enumerate(item.get("options") or [], 1):
            self.line(f"  {number}) {option}")


def _arguments(arguments: Any) -> str:
    return json.dumps(arguments or {}, ensure_ascii=False)
