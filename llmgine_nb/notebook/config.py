"""The notebook front end's settings: what ``%llmgine config`` shows and sets."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..replies import is_on

__all__ = ["NotebookConfig", "UI_MODES", "APPROVAL_PROMPTS", "FORMATS"]

#: How an answer can be shown: the one list of the output formats (``-f``/``--format``, ``format=``).
FORMATS = ("markdown", "text", "code", "json")
UI_MODES = ("auto", "widgets", "markdown", "text")
APPROVAL_PROMPTS = ("command", "input")
# How a setting's kind reads in an error: "max_steps must be an integer, not 'x'".
_KIND_NAMES = {int: "an integer", float: "a number", bool: "on or off", str: "text"}


@dataclass
class NotebookConfig:
    """What ``%llmgine config`` shows and sets.

    * ``ui``: ``auto`` (widgets in a kernel, text in a plain shell),
      ``widgets``, ``markdown`` (outputs update in place, approvals by
      command) or ``text`` (printed as it streams).
    * ``approval_prompt``: without widgets, ``command`` prints the
      ``%llmgine approve ID`` to type; ``input`` asks with ``input()`` in the
      cell (the cell then waits for the turn).
    * ``format``: the default output format (markdown, text, code, json).
    * ``updates_per_second``: how often a streaming output may update.
    * ``user``: who decisions are recorded as made by.
    * ``approval_timeout``: seconds an approval may wait (then it is denied).
    * ``max_steps``: model calls per turn before the engine stops.
    * ``request_cache``: replay the stored answer to a request sent before
      exactly as now (model, messages, tools, options) instead of paying again.
    """

    ui: str = "auto"
    approval_prompt: str = "command"
    format: str = "markdown"
    updates_per_second: float = 15.0
    user: str = ""
    approval_timeout: float = 300.0
    max_steps: int = 10
    request_cache: bool = False

    def set(self, name: str, value: Any) -> Any:
        """Set one setting from text or a value, checked; returns the value set."""
        known = {f.name: f for f in fields(self)}
        if name not in known:
            raise ValueError(f"there is no setting {name!r}; the settings are {', '.join(known)}")
        current = getattr(self, name)
        try:
            if isinstance(current, bool):
                value = is_on(value)
            elif isinstance(current, int) and not isinstance(current, bool):
                value = int(value)
            elif isinstance(current, float):
                value = float(value)
            else:
                value = str(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be {_KIND_NAMES.get(type(current), 'text')}, not {value!r}") from None
        choices = {"ui": UI_MODES, "approval_prompt": APPROVAL_PROMPTS, "format": FORMATS}.get(name)
        if choices and value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        if name in ("updates_per_second", "approval_timeout", "max_steps") and value <= 0:
            raise ValueError(f"{name} must be a positive number, not {value!r}")
        setattr(self, name, value)
        return value
