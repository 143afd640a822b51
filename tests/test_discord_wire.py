"""The Discord bot over the real wire: discord.py's own client code against tests/fake_discord.py.

Gateway handshake (HELLO, IDENTIFY, READY, heartbeats, zlib-stream),
application command registration, slash-command interactions answered with
a deferred response and edited in place, follow-ups, a 429 from the REST API
honoured with its Retry-After, replies split at 2,000 characters.
"""

from __future__ import annotations

from datetime import date

import pytest
from discord_support import demo_reviewed_board, running_bot
from fake_discord import DEFERRED_CHANNEL_MESSAGE, DiscordUser, FakeDiscord

from llmgine_nb.apps.tasks.discord_bot import BotSettings, darcy_assistant, split_message
from llmgine_nb.apps.tasks.offline import TaskPlanner
from llmgine_nb.llm import ScriptedLLM
from llmgine_nb.store import Store

TODAY = date(2026, 5, 6)
MEI = DiscordUser("1002", "mei")


@pytest.fixture
def fake():
    with FakeDiscord(token="wire-test-token", heartbeat_interval_ms=200) as server:
        yield server


@pytest.fixture
def board(tmp_path):
    board = demo_reviewed_board(str(tmp_path / "board.db"), TODAY)
    yield board
    board.close()


async def test_handshake_registers_commands_and_heartbeats(fake, board, tmp_path):
    assistant = darcy_assistant(board, store=Store(tmp_path / "darcy.db"), today=TODAY)
    async with running_bot(fake, assistant) as bot:
        assert [i["token"] for i in fake.identifies] == ["wire-test-token"]
        identify = fake.identifies[0]
        assert identify["intents"] == 1  # guilds only: no privileged intent is needed
        assert identify["shard"] == [0, 1]  # AutoShardedClient took the shard count from GET /gateway/bot
        assert fake.compression == ["zlib-stream"]
        assert any(r.path == "/gateway/bot" for r in fake.requests)
        names = sorted(c["name"] for c in fake.commands[fake.guild_id])
        assert names == ["darcy", "darcy-admin"]
        admin = next(c for c in fake.commands[fake.guild_id] if c["name"] == "darcy-admin")
        assert int(admin["default_member_permissions"]) == 1 << 5  # Manage Server
        assert sorted(o["name"] for o in admin["options"]) == ["confirm", "pending", "reject"]
        await fake.wait_for(lambda: fake.heartbeats >= 2, what="two heartbeats")
        assert bot.user is not None and str(bot.user.id) == fake.bot_user["id"]
    await assistant.close()


async def test_slash_command_is_deferred_then_edited_in_place(fake, board, tmp_path):
    # A slow model (one word every 20 ms) so the reply streams over several edits.
    llm = ScriptedLLM(TaskPlanner(), delay_s=0.02)
    assistant = darcy_assistant(board, store=Store(tmp_path / "darcy.db"), llm=llm, today=TODAY)
    async with running_bot(fake, assistant, BotSettings(guild_id=int(fake.guild_id), edit_interval=0.1)):
        interaction = await fake.slash(MEI, "darcy", request="show me Sam's tasks in Recruitment")
        await fake.wait_for(lambda: "Book rooms" in fake.transcript(), what="the task list")
        await fake.wait_for(lambda: not bot_busy(assistant), what="the turn to end")
        [callback] = [c for c in fake.callbacks if c["interaction_id"] == interaction]
        assert callback["type"] == DEFERRED_CHANNEL_MESSAGE  # "Darcy is thinking..." within 3 s
        [reply] = fake.messages_for(interaction)
        assert reply.original and reply.content.startswith("Sam Carter's active tasks in Recruitment:")
        assert "T3 Book rooms for recruitment interviews" in reply.content
        # Streamed in place: several edits, each the one before with more text, far fewer than words.
        shown = [h for h in reply.history if h]
        assert len(shown) >= 3, reply.history
        assert all(later.startswith(earlier.rstrip()) for earlier, later in zip(shown, shown[1:]))
        assert len(shown) < len(reply.content.split())
    await assistant.close()


def bot_busy(assistant) -> bool:
    return any(conv.turn is not None and not conv.turn.done() for conv in assistant._conversations.values())


async def test_rest_429_is_waited_out_and_retried(fake, board, tmp_path):
    assistant = darcy_assistant(board, store=Store(tmp_path / "darcy.db"), today=TODAY)
    async with running_bot(fake, assistant):
        # The first edit of the reply meets an exhausted bucket.
        fake.rate_limit("PATCH", r"/webhooks/\d+/[^/]+/messages/@original", retry_after=0.4)
        interaction = await fake.slash(MEI, "darcy", request="show me my tasks")
        await fake.wait_for(lambda: "Schedule the interview panel" in fake.transcript(), what="Mei's tasks")
        [limited] = fake.rate_limited
        retried = [r for r in fake.requests if r.method == "PATCH" and r.path == limited.path and r.status == 200]
        assert retried, "the edit was not retried after the 429"
        assert retried[0].at - limited.at >= 0.4  # discord.py waited out Retry-After before retrying
        [reply] = fake.messages_for(interaction)
        assert "Schedule the interview panel" in reply.content
    await assistant.close()


async def test_long_reply_is_split_at_discords_limit(fake, board, tmp_path):
    long_text = "\n".join(f"Line {i}: " + "word " * 30 for i in range(40))  # about 6,500 characters
    assistant = darcy_assistant(board, store=Store(tmp_path / "darcy.db"), llm=ScriptedLLM([long_text]), today=TODAY)
    async with running_bot(fake, assistant):
        interaction = await fake.slash(MEI, "darcy", request="tell me a long story")
        await fake.wait_for(lambda: len(fake.messages_for(interaction)) >= 4
                            and "Line 39" in fake.messages_for(interaction)[-1].content, what="four messages")
        await fake.wait_for(lambda: not bot_busy(assistant), what="the turn to end")
        parts = [m.content for m in fake.messages_for(interaction)]
        assert all(len(p) <= 2000 for p in parts)
        assert "".join(parts).replace("\n", "").replace(" ", "") == long_text.replace("\n", "").replace(" ", "")
        assert parts == split_message(long_text)
    await assistant.close()


def test_split_message_keeps_everything_and_code_blocks():
    assert split_message("short") == ["short"]
    text = "```python\n" + "\n".join(f"x = {i}" for i in range(600)) + "\n```"
    parts = split_message(text, limit=500)
    assert all(len(p) <= 500 for p in parts)
    assert all(p.startswith("```python") and p.endswith("```") for p in parts)
    body = [line for p in parts for line in p.split("\n") if not line.startswith("```")]
    assert body == [f"x = {i}" for i in range(600)]
    assert split_message("a" * 4500) == ["a" * 1996, "a" * 1996, "a" * 508]


async def test_text_of_two_model_calls_is_two_paragraphs(fake, board, tmp_path):
    from llmgine_nb.llm.scripted import ScriptedReply, call

    llm = ScriptedLLM([ScriptedReply(text="Let me look that up.", tool_calls=[call("whoami")]), "You are Mei Chen."],
                      delay_s=0.01)
    assistant = darcy_assistant(board, store=Store(tmp_path / "darcy.db"), llm=llm, today=TODAY)
    async with running_bot(fake, assistant, BotSettings(guild_id=int(fake.guild_id), edit_interval=0.02)):
        interaction = await fake.slash(MEI, "darcy", request="who am I?")
        await fake.wait_for(lambda: not bot_busy(assistant) and fake.messages_for(interaction)
                            and fake.messages_for(interaction)[0].content == "You are Mei Chen.", what="the final reply")
        [reply] = fake.messages_for(interaction)
        assert "Let me look that up.\n\nYou are" in "\n".join(reply.history)  # streamed as two paragraphs
    await assistant.close()
