"""Darcy on Discord: the task assistant behind a ``/darcy`` slash command.

The bot is a front end like the notebook: it sends the task assistant the
person's request (``TaskAssistant.handle``, one session per Discord user,
named ``tasks:discord:<user id>`` in the store, so it resumes after a
restart) and renders what comes back on the bus: streamed text
(``LLMTextDelta``) edited into the reply in place, questions as cards with
buttons or a select menu (through :mod:`.questions`), the final reply.
Nothing Discord-specific is in the engine or in ``TaskAssistant``.

It is a ``discord.AutoShardedClient``: it asks Discord for the gateway's
address (``GET /gateway/bot``) and shards itself when a server list grows.
Slash commands need no privileged intents: only ``guilds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord
from discord import app_commands

from ....llm import LLMTextDelta
from ..assistant import Reply, TaskAssistant
from .cards import Card, answer_from, answered_text, card_text, expired_text, parse_custom_id, question_view
from .links import ReviewedBoard
from .live import LiveReply
from .questions import Question, QuestionDesk, Settled
from .settings import BotSettings
from .text import error_sentence

__all__ = ["DarcyBot", "PLATFORM"]

log = logging.getLogger("llmgine_nb.apps.tasks.discord")

PLATFORM = "discord"
NO_LONGER_WAITING = (
    "This question is no longer waiting (it was answered, it expired, or I restarted since), so nothing "
    "was changed. Ask me again with /darcy."
)
BUSY = "I'm still working on your last request: answer its question above, or wait for my reply, then ask again."


class DarcyBot(discord.AutoShardedClient):
    """The task assistant as a Discord bot.  ``await bot.start(token)`` runs it until ``await bot.close()``."""

    def __init__(self, assistant: TaskAssistant, settings: BotSettings | None = None) -> None:
        if assistant.platform != PLATFORM:
            raise ValueError(f"the assistant serves {assistant.platform!r} users; make it with platform='discord'")
        super().__init__(intents=discord.Intents(guilds=True))
        self.assistant = assistant
        self.settings = settings or BotSettings()
        self.tree = app_commands.CommandTree(self)
        self.desk = QuestionDesk(assistant.bus, self._on_question, self._on_settled)
        self._replies: dict[str, LiveReply] = {}  # session id -> the reply being written
        self._owners: dict[str, str] = {}  # session id -> the Discord user whose turn runs
        self._busy: set[str] = set()  # Discord users with a turn running
        self._cards: dict[str, Card] = {}  # question key -> the card waiting for its answer
        self._tasks: set[asyncio.Future[Any]] = set()
        self._deltas: Any = None
        self._add_commands()

    # -- lifecycle -------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        self.desk.attach()
        self._deltas = self.assistant.bus.subscribe(LLMTextDelta, self._on_delta, inline=True)  # it schedules edits on the loop
        guild = discord.Object(id=self.settings.guild_id) if self.settings.guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        commands = await self.tree.sync(guild=guild)
        log.info("registered %d slash commands (%s)", len(commands), f"guild {guild.id}" if guild else "global")

    async def close(self) -> None:
        """Disconnect (closing the assistant refuses whatever question still waits: nothing changes)."""
        self._cards.clear()
        self.desk.close()
        if self._deltas is not None:
            self._deltas.unregister()
            self._deltas = None
        await super().close()

    def _add_commands(self) -> None:
        @app_commands.command(name="darcy", description="Ask Darcy, the task assistant")
        @app_commands.describe(request="What you need, e.g. \"show me my tasks\"")
        async def darcy(interaction: discord.Interaction[Any], request: str) -> None:
            await self.ask(interaction, request)

        admin = app_commands.Group(
            name="darcy-admin", description="Confirm who is who on the task board",
            default_permissions=discord.Permissions(manage_guild=True), guild_only=True,
        )

        @admin.command(name="pending", description="Email claims waiting for confirmation")
        async def pending(interaction: discord.Interaction[Any]) -> None:
            await self._admin(interaction, "pending", None)

        @admin.command(name="confirm", description="Confirm that a member is who they said on the board")
        async def confirm(interaction: discord.Interaction[Any], user: discord.User) -> None:
            await self._admin(interaction, "confirm", user)

        @admin.command(name="reject", description="Reject a member's email claim")
        async def reject(interaction: discord.Interaction[Any], user: discord.User) -> None:
            await self._admin(interaction, "reject", user)

        self.tree.add_command(darcy)
        self.tree.add_command(admin)

    # -- /darcy ---------------------------------------------------------------------------

    async def ask(self, interaction: discord.Interaction[Any], request: str) -> None:
        """Run one request of ``interaction.user`` as a turn of their session, rendered in place."""
        user_id = str(interaction.user.id)
        if not request.strip():
            await interaction.response.send_message("Tell me what you need, e.g. `/darcy show me my tasks`.", ephemeral=True)
            return
        if user_id in self._busy:
            await interaction.response.send_message(BUSY, ephemeral=True)
            return
        self._busy.add(user_id)
        session_id = ""
        try:
            await interaction.response.defer(thinking=True)
            live = LiveReply(interaction, edit_interval=self.settings.edit_interval)
            try:
                session_id = (await self.assistant.engine(user_id)).session_id
                self._replies[session_id], self._owners[session_id] = live, user_id
                reply = await self.assistant.handle(user_id, request)
                while reply.waiting:  # its card is up (drawn from the event); the answer comes by a click
                    reply = await self.assistant.wait(user_id)
                text = _reply_text(reply)
            except Exception as exc:
                log.exception("a /darcy request failed")
                text = error_sentence(exc)
            await live.finish(text)
        finally:
            self._replies.pop(session_id, None)
            self._owners.pop(session_id, None)
            self._busy.discard(user_id)

    def _on_delta(self, event: LLMTextDelta) -> None:
        live = self._replies.get(event.session_id or "")
        if live is not None:
            live.stream(event.text, call_id=event.call_id)

    # -- questions ----------------------------------------------------------------------

    def _on_question(self, question: Question) -> None:
        live = self._replies.get(question.session_id)
        owner = self._owners.get(question.session_id)
        if live is None or owner is None:
            return  # not a turn this bot renders: another front end may answer; else the engine's timeout says no
        card = Card(question, owner)
        self._cards[question.key] = card
        content = card_text(question, owner, self.settings.confirm_timeout)
        card.shown = self._spawn(live.ask(content, question_view(question)))

    def _on_settled(self, settled: Settled) -> None:
        """A question stopped waiting without a click here (it expired, or was answered elsewhere)."""
        for key, card in list(self._cards.items()):
            if settled.concerns(card.question):
                del self._cards[key]
                self._spawn(self._take_down(card, settled))

    async def _take_down(self, card: Card, settled: Settled) -> None:
        if card.shown is None:
            return
        posted = await card.shown
        if settled.expired:
            content = expired_text(card.question, self.settings.confirm_timeout)
        else:
            content = f"{card.question.text}\n\u2705 Answered by {settled.decided_by or 'someone else'}."
        await posted.edit(content=content, view=None)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Clicks on question cards (slash commands go to the command tree)."""
        if interaction.type is not discord.InteractionType.component or not isinstance(interaction.data, dict):
            return
        parsed = parse_custom_id(str(interaction.data.get("custom_id", "")))
        if parsed is not None:
            await self._on_click(interaction, *parsed)

    async def _on_click(self, interaction: discord.Interaction[Any], key: str, action: str) -> None:
        card = self._cards.get(key)
        clicker = str(interaction.user.id)
        if card is None:
            await interaction.response.send_message(NO_LONGER_WAITING, ephemeral=True)
            return
        if clicker != card.owner_id:
            await interaction.response.send_message(
                f"Only <@{card.owner_id}> can answer this question; ask me yourself with /darcy.", ephemeral=True
            )
            return
        del self._cards[key]
        data: dict[str, Any] = dict(interaction.data or {})
        values = [str(v) for v in data.get("values", [])]
        answer = answer_from(card.question, action, values)
        answered = await self.desk.answer(card.question, answer, decided_by=self._who(clicker))
        content = answered_text(card.question, answer, clicker) if answered else NO_LONGER_WAITING
        await interaction.response.edit_message(content=content, view=None)

    def _who(self, discord_id: str) -> str:
        user = self.assistant.user_for(discord_id)
        return f"{user.name} <{user.email}>" if user is not None else f"discord user {discord_id} (unverified)"

    # -- /darcy-admin -----------------------------------------------------------------------

    async def _admin(self, interaction: discord.Interaction[Any], action: str, member: discord.User | None) -> None:
        permissions = interaction.permissions
        allowed = permissions.manage_guild or permissions.administrator or str(interaction.user.id) in self.settings.admin_ids
        if not allowed:
            await interaction.response.send_message("Only server admins (Manage Server) can do that.", ephemeral=True)
            return
        board = self.assistant.board
        if not isinstance(board, ReviewedBoard) or board.trust_claims:
            await interaction.response.send_message(
                "This board trusts the emails people give, so there is nothing to confirm.", ephemeral=True
            )
            return
        await interaction.response.send_message(_admin_action(board, action, member, str(interaction.user.id)), ephemeral=True)

    def _spawn(self, coro: Any) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task


def _admin_action(board: ReviewedBoard, action: str, member: discord.User | None, admin_id: str) -> str:
    if action == "pending":
        claims = board.pending_links(PLATFORM)
        if not claims:
            return "No email claims are waiting."
        lines = [f"- <@{c.platform_user_id}> says they are {c.name} ({c.email})" for c in claims]
        return "Waiting for confirmation:\n" + "\n".join(lines) + "\nUse `/darcy-admin confirm` or `/darcy-admin reject`."
    assert member is not None
    try:
        if action == "confirm":
            user = board.confirm_link(PLATFORM, str(member.id), by=f"discord user {admin_id}")
            return f"Confirmed: <@{member.id}> is {user.name} ({user.email}) on the board."
        claim = board.reject_link(PLATFORM, str(member.id), by=f"discord user {admin_id}")
        return f"Rejected <@{member.id}>'s claim to be {claim.name}; they stay unverified."
    except LookupError as exc:
        return str(exc)


def _reply_text(reply: Reply) -> str:
    turn = reply.turn
    if turn is not None and not turn.ok:
        if turn.status == "cancelled":
            return "I stopped before finishing; nothing more was changed."
        reason = (turn.reason or "the model did not answer").rstrip(".")
        return f"Sorry, I couldn't finish that: {reason}."
    return str(reply)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a Discord update failed: %s", task.exception())


async def serve(bot: DarcyBot, token: str) -> None:
    """Run ``bot`` until it is closed (Ctrl-C in the console script)."""
    try:
        await bot.start(token)
    finally:
        with contextlib.suppress(Exception):
            await bot.close()
