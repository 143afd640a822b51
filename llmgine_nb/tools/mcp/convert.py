"""MCP tool definitions and results in our terms: risk levels, names, ``ToolOutput``.

Risk follows the protocol's defaults: ``readOnlyHint`` true is ``read``;
otherwise ``destructiveHint`` (which defaults to true) makes it
``destructive``, and false makes it ``write``.  So a tool without
annotations asks before it runs.  A server-wide or per-tool override in the
config wins over the hints.

A result keeps its structure: the model reads the text blocks (or the
structured content as JSON when there is no text); ``ToolResult.value``
keeps every block, the structured content and the images (base64, with
their MIME type) for front ends to show; ``isError`` results are errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..results import ToolError, ToolOutput
from ..tool import Risk

__all__ = ["risk_from_hints", "result_to_output", "tool_definition"]


def risk_from_hints(annotations: Mapping[str, Any] | None, override: Risk | None = None) -> Risk:
    """Our risk level for an MCP tool with these annotations (``override`` wins)."""
    if override is not None:
        return override
    hints = dict(annotations or {})
    read_only = hints.get("readOnlyHint", hints.get("read_only_hint"))
    if read_only is True:
        return "read"
    destructive = hints.get("destructiveHint", hints.get("destructive_hint"))
    return "write" if destructive is False else "destructive"


def tool_definition(tool: Any) -> dict[str, Any]:
    """An SDK ``Tool`` as the plain MCP definition dict (camelCase keys, as on the wire)."""
    data: dict[str, Any] = tool.model_dump(by_alias=True, exclude_none=True, mode="json")
    return data


def _block(block: Any) -> dict[str, Any]:
    data: dict[str, Any] = block.model_dump(by_alias=True, exclude_none=True, mode="json")
    return data


def _describe(block: Mapping[str, Any]) -> str | None:
    """The text a model reads for one content block."""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind in ("image", "audio"):
        size = len(str(block.get("data", ""))) * 3 // 4
        return f"[{kind}: {block.get('mimeType', 'unknown type')}, about {size} bytes]"
    if kind == "resource_link":
        return f"[resource: {block.get('name') or ''} {block.get('uri', '')}]".replace("  ", " ")
    if kind == "resource":
        resource = block.get("resource") or {}
        if "text" in resource:
            return str(resource["text"])
        return f"[resource: {resource.get('uri', '')}, {resource.get('mimeType', 'binary')}]"
    return None


def result_to_output(result: Any, *, server: str, tool: str) -> ToolOutput:
    """A ``CallToolResult`` as a ``ToolOutput``; raises ``ToolError`` for an ``isError`` result."""
    blocks = [_block(b) for b in (result.content or [])]
    structured = result.structured_content
    texts = [t for t in (_describe(b) for b in blocks) if t]
    text = "\n".join(texts)
    if not text and structured is not None:
        text = json.dumps(structured, ensure_ascii=False, separators=(",", ":"))
    value: dict[str, Any] = {"server": server, "tool": tool, "content": blocks}
    if structured is not None:
        value["structured"] = structured
    images = [b for b in blocks if b.get("type") == "image"]
    if images:
        value["images"] = [{"mimeType": b.get("mimeType"), "data": b.get("data")} for b in images]
    if result.is_error:
        raise ToolError(
            f"MCP server '{server}' reported an error from '{tool}': {text or 'no details given'}", value=value
        )
    return ToolOutput(content=text or "(the tool returned no content)", value=value)
