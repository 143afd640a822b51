"""A bot restart: each Discord user's session resumes from the store; a card left waiting fails closed.

Also: the bot token never reaches the store, the board or the logs.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

from discord_support import demo_reviewed_board, running_bot
from fake_discord import DiscordUser, FakeDiscord

from llmgine_nb.apps.tasks.discord_bot import BotSettings, ReviewedBoard, darcy_assistant
from llmgine_nb.store import Store

TODAY = date(2026, 5, 6)
TOKEN = "restart-test-token-SECRET-4242"
MEI = DiscordUser("1002", "mei", admin=True)
PRIYA = DiscordUser("2001", "priya")


def joined(fake: FakeDiscord, interaction: str) -> str:
    return "\n".join(m.content for m in fake.messages_for(interaction))


async def test_restart_resumes_sessions_and_refuses_stale_cards(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    board_path, store_path = str(tmp_path / "board.db"), tmp_path / "darcy.db"
    with FakeDiscord(token=TOKEN) as fake:
        settings = BotSettings(guild_id=int(fake.guild_id), edit_interval=0.05, confirm_timeout=60)

        # First run: Priya claims her email, an admin confirms it; Mei leaves a card unanswered.
        board = demo_reviewed_board(board_path, TODAY)
        assistant = darcy_assistant(board, store=Store(store_path), settings=settings, today=TODAY)
        async with running_bot(fake, assistant, settings):
            claimed = await fake.slash(PRIYA, "darcy", request="I'm priya@example.org")
            await fake.wait_for(lambda: "Waiting for a board admin" in joined(fake, claimed), what="the claim")
            await fake.slash(MEI, "darcy-admin", confirm={"user": PRIYA})
            await fake.wait_for(lambda: any("Confirmed: <@2001>" in m.content for m in fake.messages.values()),
                                what="the admin's confirmation")
            assigning = await fake.slash(MEI, "darcy", request="assign the budget review to Sam due Friday in Finance")
            card = await fake.wait_for(lambda: next((m for m in fake.messages_for(assigning) if m.components), None),
                                       what="the card")
            first_session = (await assistant.engine(PRIYA.id)).session_id
        await assistant.close()
        assistant.store.close()
        board.close()
        assert card.components  # the bot went away with the card still showing its buttons

        # Second run: new objects over the same files, a new gateway session.
        board = ReviewedBoard(board_path)
        assistant = darcy_assistant(board, store=Store(store_path), settings=settings, today=TODAY)
        async with running_bot(fake, assistant, settings):
            assert len(fake.identifies) == 2
            await fake.click(MEI, card, ":yes")
            await fake.wait_for(lambda: any("no longer waiting" in m.content for m in fake.messages.values() if m.ephemeral),
                                what="the stale click's answer")
            assert not [t for t in board.tasks() if t.title == "Budget review"]  # failed closed

            again = await fake.slash(PRIYA, "darcy", request="show me my tasks")
            await fake.wait_for(lambda: "Prepare Q3 budget review" in joined(fake, again), what="Priya's tasks")
            engine = await assistant.engine(PRIYA.id)
            assert engine.session_id == first_session  # the same session, resumed from the store
            said = [m.content for m in engine.history if m.role == "user"]
            assert said[0] == "I'm priya@example.org" and said[-1] == "show me my tasks"
        await assistant.close()
        assistant.store.close()
        board.close()

    for path in Path(tmp_path).iterdir():
        assert TOKEN.encode() not in path.read_bytes(), f"the token was written to {path.name}"
    assert TOKEN not in caplog.text
    assert "logging in using static token" in caplog.text  # discord.py's login was logged, without the token
