"""The wire test's bus: every message crosses a (pretend) process boundary as JSON.

``WireBus`` is a ``MessageBus`` whose delivery serialises every command,
every command result and every event to JSON and rebuilds it
(``to_json()`` / ``Message.from_json()``) before any handler or subscriber
sees it - with the bus's own public middleware, nothing else changed.
Whatever still passes on such a bus passes information only through the
messages' fields: no shared objects, no mutation in flight, no Python
classes hidden in a field.  That is what the distributed transport needs.

``rerun_on_the_wire(module, monkeypatch)`` points a test module's
``MessageBus`` (and those of the modules that make buses of their own) at
``WireBus``, so that an existing scenario set runs unchanged on the wire
(see tests/test_wire_*.py).
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import pytest

from llmgine_nb.bus import MessageBus
from llmgine_nb.messages import Command, CommandResult, Event, Message

__all__ = ["WireBus", "cross", "rerun_on_the_wire"]


def cross(message: Message) -> Message:
    """``message`` as the other side of a wire gets it: rebuilt from its JSON text."""
    text = message.to_json()
    rebuilt = Message.from_json(text)
    if type(rebuilt) is not type(message):  # pragma: no cover - would mean the registry is wrong
        raise AssertionError(f"{type(message).__name__} came back as {type(rebuilt).__name__}")
    return rebuilt


class WireBus(MessageBus):
    """A bus on which every command, result and event is JSON before anyone sees it.

    ``crossed`` counts the messages that crossed, by class name, so a test
    can show the wire was really in the way.
    """

    def __init__(self, name: str = "wire") -> None:
        super().__init__(name)
        self.crossed: Counter[str] = Counter()
        self.add_command_middleware(self._command_over_the_wire)
        self.add_event_middleware(self._event_over_the_wire)

    async def _command_over_the_wire(
        self, command: Command, call_next: Callable[[Command], Awaitable[CommandResult]]
    ) -> CommandResult:
        self.crossed[type(command).__name__] += 1
        result = await call_next(cross(command))  # type: ignore[arg-type]
        self.crossed["CommandResult"] += 1
        try:
            return cross(result)  # type: ignore[return-value]
        except (TypeError, ValueError) as exc:
            # What a transport does with a result it cannot send: the command fails, with a reason.
            return CommandResult(
                command_id=command.id, command_type=command.type_name, session_id=command.session_id, success=False,
                error=f"the result of {type(command).__name__} cannot cross the wire: {type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
            )

    async def _event_over_the_wire(self, event: Event, call_next: Callable[[Event], Awaitable[None]]) -> None:
        self.crossed[type(event).__name__] += 1
        await call_next(cross(event))  # type: ignore[arg-type]


# Modules that make a MessageBus of their own (besides the test module itself).
_BUS_MAKERS = ("llmgine_nb.notebook.kernel_runtime", "llmgine_nb.apps.tasks.assistant")


def rerun_on_the_wire(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[WireBus]:
    """Make ``module`` (and the bus makers) build ``WireBus``es; returns the buses made, to inspect."""
    import importlib

    made: list[WireBus] = []

    class RecordedWireBus(WireBus):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    RecordedWireBus.__name__ = "WireBus"
    monkeypatch.setattr(module, "MessageBus", RecordedWireBus, raising=False)
    for name in _BUS_MAKERS:
        monkeypatch.setattr(importlib.import_module(name), "MessageBus", RecordedWireBus)
    return made
