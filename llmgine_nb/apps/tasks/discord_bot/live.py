"""One turn's reply in Discord: text streamed by editing messages in place, questions as cards.

The reply to ``/darcy`` starts as the interaction's deferred ("Darcy is
thinking...") response.  Streamed text is written into it by editing it at
most once per ``edit_interval`` seconds, whatever the model's pace, so a
reply makes a handful of edits, not one per word; Discord's rate limits are
also honoured underneath (discord.py waits out a 429's ``Retry-After`` before
retrying, and this writer never has more than one edit in flight, so it
simply falls behind and catches up with the latest text).  Text longer than
Discord's limit continues in follow-up messages.  A question (a card with
buttons or a select menu) goes below what was said so far, and what the
turn says after it goes below the card.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import discord

from .text import split_message

__all__ = ["LiveReply", "Posted"]


class Posted:
    """A message posted under an interaction (its original response or a follow-up), editable later."""

    def __init__(self, interaction: discord.Interaction[Any], message: discord.WebhookMessage | None) -> None:
        self.interaction = interaction
        self.message = message  # None: the interaction's original response

    async def edit(self, **fields: Any) -> None:
        if self.message is None:
            await self.interaction.edit_original_response(**fields)
        else:
            await self.message.edit(**fields)


class LiveReply:
    """Writes one turn's reply under ``interaction`` (already deferred)."""

    def __init__(self, interaction: discord.Interaction[Any], *, edit_interval: float = 1.0) -> None:
        self.interaction = interaction
        self.edit_interval = edit_interval
        self._original_used = False
        self._text = ""  # the text of the current part (since the last question)
        self._shown: list[str] = []  # what each message of the current part shows
        self._posted: list[Posted] = []
        self._lock = asyncio.Lock()  # one write at a time
        self._dirty = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._finished = False
        self._call_id = ""

    def stream(self, delta: str, *, call_id: str = "") -> None:
        """More text of the reply (a model's delta); shown at the next edit.

        A new model call (``call_id``) starts a new paragraph, so the text a
        model says before using a tool does not run into what it says after.
        """
        if self._finished:
            return
        if call_id != self._call_id and self._text.strip():
            self._text = self._text.rstrip() + "\n\n"
        self._call_id = call_id
        self._text += delta
        self._dirty.set()
        if self._pump is None:
            self._pump = asyncio.ensure_future(self._pumping())

    async def _pumping(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            async with self._lock:
                await self._sync()
            await asyncio.sleep(self.edit_interval)

    async def ask(self, content: str, view: discord.ui.View) -> Posted:
        """Post a question card below what was said so far; later text goes below it."""
        async with self._lock:
            await self._sync()
            self._text, self._shown, self._posted = "", [], []
            return await self._post(content, view)

    async def finish(self, text: str) -> None:
        """The turn is over: show ``text`` (the whole final reply) in place of the streamed part."""
        async with self._lock:
            self._finished = True
            if self._pump is not None:
                self._pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._pump
            self._text = text
            await self._sync(final=True)

    async def _sync(self, *, final: bool = False) -> None:
        """Make the messages of the current part show ``_text`` (the caller holds the lock)."""
        if not self._text.strip():
            if final and not self._original_used:
                await self._post("(I have nothing to add.)")
            return
        for i, chunk in enumerate(split_message(self._text)):
            if i < len(self._shown):
                if self._shown[i] != chunk:
                    await self._posted[i].edit(content=chunk)
                    self._shown[i] = chunk
            else:
                self._posted.append(await self._post(chunk))
                self._shown.append(chunk)

    async def _post(self, content: str, view: discord.ui.View | None = None) -> Posted:
        if not self._original_used:
            self._original_used = True
            if view is None:
                await self.interaction.edit_original_response(content=content)
            else:
                await self.interaction.edit_original_response(content=content, view=view)
            return Posted(self.interaction, None)
        if view is None:
            message = await self.interaction.followup.send(content, wait=True)
        else:
            message = await self.interaction.followup.send(content, view=view, wait=True)
        return Posted(self.interaction, message)
