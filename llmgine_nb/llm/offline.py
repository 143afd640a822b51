"""What the offline model says when it has no script: the rules in ``ScriptedLLM``'s docstring.

1. After tool results (the conversation ends with ``tool`` messages) it reports
   what each tool returned, quoted, and asks for nothing more.
2. When the last user message writes a call of an offered tool the way Python
   does, ``add_expense(amount=18.4, category="food")``, it calls that tool with
   those arguments (several calls: all of them, in one reply).  Arguments are
   Python or JSON literals; positional ones fill the tool's parameters in order.
   A call whose arguments cannot be read is answered with a sentence saying so.
3. Anything else is echoed: the prompt quoted, and a sentence saying this is the
   offline model; with the images of that message listed (label, format, size,
   the bytes that arrived), as it cannot look at them.

Pure functions of the messages and the offered tools: the same conversation
always gets the same reply.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from typing import Any

from ..chat import ChatMessage, ImageRef

__all__ = ["default_reply", "calls_in_prompt", "PromptCallError"]

_QUOTE_LIMIT = 200
_JSON_NAMES = {"true": True, "false": False, "null": None}


class PromptCallError(ValueError):
    """A prompt names an offered tool (``tool``) but its arguments cannot be read."""

    def __init__(self, message: str, tool: str) -> None:
        super().__init__(message)
        self.tool = tool


def _quote(text: str) -> str:
    quoted = " ".join(text.split())
    return quoted if len(quoted) <= _QUOTE_LIMIT else quoted[: _QUOTE_LIMIT - 3] + "..."


def _tool_names(tools: Sequence[dict[str, Any]] | None) -> dict[str, list[str]]:
    """Offered tool name -> its parameter names in schema order."""
    names: dict[str, list[str]] = {}
    for schema in tools or ():
        function = schema.get("function", schema)
        name = function.get("name")
        if isinstance(name, str):
            names[name] = list((function.get("parameters") or {}).get("properties") or {})
    return names


def _literal(node: ast.expr, name: str) -> Any:
    if isinstance(node, ast.Name) and node.id in _JSON_NAMES:
        return _JSON_NAMES[node.id]
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        raise PromptCallError(
            f"{ast.unparse(node)} in the call of {name} is not a plain value (put text in quotes)", name
        ) from None


def _call_at(prompt: str, start: int) -> ast.Call | None:
    """The shortest Python call expression starting at ``start`` (the tool's name), if any."""
    for end in range(prompt.find("(", start) + 1, min(len(prompt), start + 4000) + 1):
        if prompt[end - 1] != ")":
            continue
        try:
            tree = ast.parse(prompt[start:end], mode="eval")
        except SyntaxError:
            continue
        if isinstance(tree.body, ast.Call):
            return tree.body
    return None


def calls_in_prompt(prompt: str, tools: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The tool calls a prompt writes out, ``[{"name": ..., "arguments": {...}}]``, in order."""
    offered = _tool_names(tools)
    if not offered:
        return []
    pattern = re.compile(r"(?<![\w.])(" + "|".join(re.escape(n) for n in sorted(offered, key=len, reverse=True)) + r")\s*\(")
    found: list[dict[str, Any]] = []
    for match in pattern.finditer(prompt):
        name = match.group(1)
        node = _call_at(prompt, match.start())
        if node is None:
            raise PromptCallError(f"the call of {name} is not closed or not written as Python", name)
        if any(k.arg is None for k in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
            raise PromptCallError(f"the call of {name} unpacks arguments (* or **), which cannot be read", name)
        arguments = {str(k.arg): _literal(k.value, name) for k in node.keywords}
        positional = [_literal(a, name) for a in node.args]
        parameters = offered[name]
        if len(positional) > len(parameters):
            raise PromptCallError(f"{name} takes {len(parameters)} arguments, the prompt gives {len(positional)}", name)
        arguments = {**dict(zip(parameters, positional)), **arguments}
        found.append({"name": name, "arguments": arguments})
    return found


def _tool_results(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The tool messages that end the conversation (the results not answered yet), in the order of the calls."""
    results: list[ChatMessage] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        results.append(message)
    order = {c.id: i for m in messages if m.role == "assistant" for i, c in enumerate(m.tool_calls)}
    return sorted(results, key=lambda r: order.get(r.tool_call_id or "", len(order)))


def _tool_name(result: ChatMessage, messages: Sequence[ChatMessage]) -> str:
    if result.name:
        return result.name
    for message in messages:
        for tool_call in message.tool_calls:
            if tool_call.id == result.tool_call_id:
                return tool_call.name
    return "the tool"


def default_reply(messages: Sequence[ChatMessage], tools: Sequence[dict[str, Any]] | None = None) -> Any:
    """The offline model's answer when it has no script (a str, or a reply dict with tool calls)."""
    results = _tool_results(messages)
    if results:
        said = [f'{_tool_name(r, messages)} returned "{_quote(r.content or "")}"' for r in results]
        if len(said) == 1:
            return f"The tool answered: {said[0]}."
        return "The tools answered:\n\n" + "\n".join(f"- {line}" for line in said)
    asked = next((m for m in reversed(messages) if m.role == "user" and (m.content or m.images)), None)
    if asked is None:
        return "This is the offline model (scripted); it received no user message to answer."
    prompt = asked.content or ""
    offered = _tool_names(tools)
    try:
        calls = calls_in_prompt(prompt, tools)
    except PromptCallError as exc:
        return (
            f"This is the offline model (scripted): your prompt names a tool, but {exc}. "
            f"Write the call as Python with plain values, e.g. `{_example(exc.tool, offered[exc.tool])}`."
        )
    if calls:
        return {"text": "Calling " + ", ".join(f"`{_signature(c)}`" for c in calls) + ".", "tool_calls": calls}
    if offered:
        example = _example(*next(iter(offered.items())))
        return (
            f'You said: "{_quote(prompt)}". This is the offline model (scripted): it echoes your prompt, '
            f"and calls a tool when the prompt writes the call with its arguments, e.g. `{example}`."
            + _images_seen(asked.images)
        )
    return (f'You said: "{_quote(prompt)}". This is the offline model (scripted), so it can only echo your prompt.'
            + _images_seen(asked.images))


def _images_seen(images: Sequence[ImageRef]) -> str:
    """`` It received 2 images: fig (PNG 640x480, 12,345 bytes); ...`` (nothing without images)."""
    if not images:
        return ""
    seen = []
    for image in images:
        size = f"{image.format} {image.width}x{image.height}"
        size += f", {len(image.data):,} bytes" if image.data is not None else " (by reference only: no bytes arrived)"
        seen.append(f"{image.label} ({size})" if image.label else size)
    return f" It received {len(images)} image{'s' if len(images) > 1 else ''}: {'; '.join(seen)}."


def _example(name: str, parameters: list[str]) -> str:
    return f"{name}({', '.join(f'{p}=...' for p in parameters[:2])})"


def _signature(call: dict[str, Any]) -> str:
    arguments = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in call["arguments"].items())
    return f"{call['name']}({arguments})"
