"""The main job: ``python -m llmgine_nb.demo`` (what ``make demo`` runs).

A short, offline walk through the message bus: a command handler that
publishes events, an observer that prints them, and a session scope.
"""

from __future__ import annotations

import asyncio

from llmgine_nb import Command, Event, MessageBus


class Greet(Command):
    name: str


class Greeted(Event):
    greeting: str


async def main() -> None:
    bus = MessageBus()

    async def greet(command: Greet) -> str:
        greeting = f"Hello, {command.name}!"
        await bus.publish(Greeted(greeting=greeting))
        return greeting

    bus.register_command_handler(Greet, greet)
    bus.subscribe(Event, lambda e: print(f"  event  {type(e).__name__:<15} session={e.session_id}"))

    async with bus.session("demo") as session:
        print(f"session {session.id} started")
        result = await bus.execute(Greet(name="notebook"))
        print(f"  result {result.result!r} (success={result.success})")
        missing = await bus.execute(Command())
        print(f"  a command with no handler fails clearly: {missing.error}")


if __name__ == "__main__":
    asyncio.run(main())
