"""Lenient import of tool lists written for older APIs (``register_openai(..., lenient=True)``).

Strict is the default: a schema with ``"type": "dict"`` or a tool named
``weather.get`` is refused with a clear error.  Asked to be lenient, the
import maps non-standard types to JSON Schema (``lenient_schema``) and names
to ones every model API accepts (``allowed_tool_name``), calls the handler
with the *original* name, and reports every change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .schema import allowed_tool_name, lenient_schema
from .tool import Tool, handler_for

if TYPE_CHECKING:
    from .registry import ToolRegistry

__all__ = ["ImportedTools", "import_leniently"]

log = logging.getLogger("llmgine_nb.tools")


class ImportedTools(list[Tool]):
    """The tools registered (a list), with ``changes`` (one sentence each) and ``renamed`` ({new: original})."""

    def __init__(self, tools: list[Tool], changes: list[str], renamed: dict[str, str]) -> None:
        super().__init__(tools)
        self.changes = changes
        self.renamed = renamed

    def report(self) -> str:
        return "\n".join(self.changes) if self.changes else "nothing needed changing"


def import_leniently(
    manager: ToolRegistry, specs: list[Any], handler: Any, *, replace: bool = False, **options: Any
) -> ImportedTools:

    tools: list[Tool] = []
    changes: list[str] = []
    renamed: dict[str, str] = {}
    taken = set(manager.names)
    for spec in specs:
        function = spec.get("function", spec) if isinstance(spec, Mapping) else None
        if not isinstance(function, Mapping) or not function.get("name"):
            raise ValueError(
                "each entry of a tool list needs a name: {'type': 'function', 'function': {'name': ..., "
                f"'parameters': {{...}}}}; got {spec!r}"
            )
        original = str(function["name"])
        name = allowed_tool_name(original)
        if name != original:
            base, n = name, 2
            while name in taken or name in renamed:  # two originals may map to one name
                suffix = f"_{n}"
                name, n = base[: 64 - len(suffix)] + suffix, n + 1
            changes.append(f"tool {original!r}: renamed to {name!r} (models accept only letters, digits, '_' and '-')")
            renamed[name] = original
        parameters, fixed = lenient_schema(function.get("parameters") or function.get("input_schema"), original)
        changes.extend(f"tool {original!r}: {change}" for change in fixed)
        tool = Tool.from_schema(
            name, handler_for(handler, original), parameters, function.get("description") or "", **options
        )
        tools.append(manager.register(tool, replace=replace))
        taken.add(name)
    if changes:
        log.info("lenient tool import changed: %s", "; ".join(changes))
    return ImportedTools(tools, changes, renamed)
