"""The ``@tool`` functions of the user's namespace, kept registered as the notebook changes."""

from __future__ import annotations

import logging
import types
from typing import Any

from ..tools.manager import ToolManager
from ..tools.tool import Tool, tool_options

__all__ = ["NamespaceTools"]

log = logging.getLogger("llmgine_nb.notebook")


class NamespaceTools:
    """Registers the namespace's tools with ``tools`` before each turn, and drops the ones deleted since."""

    def __init__(self, tools: ToolManager, namespace: dict[str, Any] | None) -> None:
        self.tools = tools
        self.namespace = namespace
        self._registered: set[str] = set()

    def refresh(self) -> list[str]:
        """Register the ``@tool`` functions of the namespace (and drop deleted ones); their names."""
        if self.namespace is None:
            return []
        registered = set()
        for name, value in list(self.namespace.items()):
            if name.startswith("_") or not _is_tool(value):
                continue
            try:
                registered.add(self.tools.register(value, replace=True).name)
            except (TypeError, ValueError) as exc:
                log.warning("could not register %r as a tool: %s", value, exc)
        for gone in self._registered - registered:
            if gone in self.tools:
                self.tools.unregister(gone)
        self._registered = registered
        return sorted(registered)


def _is_tool(value: Any) -> bool:
    return isinstance(value, Tool) or (
        isinstance(value, (types.FunctionType, types.MethodType)) and tool_options(value) is not None
    )
