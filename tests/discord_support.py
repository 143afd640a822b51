"""Point discord.py at the fake Discord (tests/fake_discord.py) instead of discord.com.

Why this module exists: discord.py has no public setting for the REST API's
base URL.  Every REST call it makes (the bot's own routes and the interaction
webhooks alike) builds its URL from the class attribute
``discord.http.Route.BASE`` ("https://discord.com/api/v10"), so a test that
wants discord.py's real client code to talk to a server on 127.0.0.1 must set
that one attribute.  Nothing else is changed: the gateway's address comes the
way it comes from Discord, from the ``url`` field of ``GET /gateway/bot``
(``discord.AutoShardedClient`` asks for it, and the fake answers with its own
WebSocket URL), and everything after that (IDENTIFY, heartbeats, dispatches,
interaction callbacks, follow-ups, 429 handling) is discord.py's own code
speaking the wire protocol.  This is the only place the tests touch
discord.py's configuration; the bot itself never does.

``running_bot(fake, assistant)`` starts a ``DarcyBot`` against the fake and
waits until it is ready; ``demo_reviewed_board`` is the demo organisation.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import date, datetime, time, timezone

import discord.http
from fake_discord import FakeDiscord

from llmgine_nb.apps.tasks import TaskAssistant, seed_demo_board
from llmgine_nb.apps.tasks.discord_bot import BotSettings, DarcyBot, ReviewedBoard

__all__ = ["pointed_at", "running_bot", "demo_reviewed_board"]


@contextmanager
def pointed_at(api_base: str) -> Iterator[None]:
    """While inside, discord.py's REST calls go to ``api_base`` (e.g. ``http://127.0.0.1:PORT/api/v10``)."""
    before = discord.http.Route.BASE
    discord.http.Route.BASE = api_base
    try:
        yield
    finally:
        discord.http.Route.BASE = before


# -- running the bot against the fake ----------------------------------------------------


def demo_reviewed_board(path: str, today: date) -> ReviewedBoard:
    """The demo organisation on a ReviewedBoard, its two demo links already confirmed (an admin did it)."""
    board = ReviewedBoard(path, clock=lambda: datetime.combine(today, time(9, 0), tzinfo=timezone.utc))
    if not board.users():
        seed_demo_board(board, today=today)
        for claim in board.pending_links():
            board.confirm_link(claim.platform, claim.platform_user_id, by="seed")
    return board


@asynccontextmanager
async def running_bot(
    fake: FakeDiscord, assistant: TaskAssistant, settings: BotSettings | None = None
) -> AsyncIterator[DarcyBot]:
    """``DarcyBot`` connected to ``fake`` (ready: commands registered, READY received), closed after."""
    bot = DarcyBot(assistant, settings or BotSettings(guild_id=int(fake.guild_id), edit_interval=0.05))
    with pointed_at(fake.api_base):
        task = asyncio.ensure_future(bot.start(fake.token))
        try:
            ready = asyncio.ensure_future(bot.wait_until_ready())
            done, _ = await asyncio.wait({task, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()  # raises what stopped the bot
            if ready not in done:
                raise AssertionError("the bot did not become ready within 20 s")
            yield bot
        finally:
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
