"""Darcy, the task assistant, as a Discord bot (discord.py; the ``discord`` extra).

    from llmgine_nb.apps.tasks.discord_bot import BotSettings, DarcyBot, ReviewedBoard, darcy_assistant
    from llmgine_nb.store import Store

    board = ReviewedBoard("board.db")                   # email claims wait for an admin
    settings = BotSettings(guild_id=1234, confirm_timeout=300)
    bot = DarcyBot(darcy_assistant(board, store=Store("darcy.db"), settings=settings), settings)
    await bot.start(discord_token())                   # DISCORD_TOKEN from the environment or .env

``llmgine-nb discord`` does the same from the command line.  Modules:

- :mod:`.bot`: :class:`DarcyBot`, the ``/darcy`` and ``/darcy-admin`` commands;
- :mod:`.live`: a reply streamed by editing messages in place;
- :mod:`.cards`: question cards (buttons, select menus);
- :mod:`.questions`: the one adapter to how the engine asks and is answered;
- :mod:`.links`: :class:`ReviewedBoard`, email claims an admin confirms;
- :mod:`.text`: splitting at Discord's 2,000 characters, errors as sentences;
- :mod:`.settings`: :class:`BotSettings` and the token.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from ....store import Store
from ..assistant import TaskAssistant
from ..board import Board
from .bot import PLATFORM, DarcyBot, serve
from .links import LinkClaim, ReviewedBoard
from .settings import BotSettings, MissingToken, discord_token
from .text import MESSAGE_LIMIT, error_sentence, split_message

__all__ = [
    "BotSettings",
    "DarcyBot",
    "LinkClaim",
    "MESSAGE_LIMIT",
    "MissingToken",
    "ReviewedBoard",
    "darcy_assistant",
    "discord_token",
    "error_sentence",
    "serve",
    "split_message",
]

def darcy_assistant(
    board: Board,
    *,
    store: Store,
    settings: BotSettings | None = None,
    model: str | None = None,
    llm: Any = None,
    today: date | Callable[[], date] | None = None,
) -> TaskAssistant:
    """The ``TaskAssistant`` a :class:`DarcyBot` drives: Discord ids; questions wait ``confirm_timeout`` seconds.

    The cards are drawn from the engine's events and answered with its
    commands; nobody answering in time is the engine's "no".
    """
    settings = settings or BotSettings()
    return TaskAssistant(
        board, store=store, platform=PLATFORM, model=model, llm=llm, today=today,
        approval_timeout=settings.confirm_timeout,
    )
