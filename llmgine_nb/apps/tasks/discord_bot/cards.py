"""Question cards: Confirm / Cancel buttons, and a select menu for "did you mean 1) 2) 3)?".

Every component's ``custom_id`` is ``darcy:<question key>:<action>`` and the
bot answers clicks itself (``DarcyBot.on_interaction``) instead of through
discord.py's view store: a click on a card whose question no longer waits
(answered, expired, or asked before the bot restarted) then still gets a
clear answer instead of Discord's "This interaction failed".  The views here
only describe the components; they are stopped before they are sent, so
discord.py does not keep them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import discord

from .live import Posted
from .questions import Answer, Question

__all__ = ["Card", "PREFIX", "parse_custom_id", "question_view", "card_text", "answered_text", "expired_text"]

PREFIX = "darcy"
# Discord allows 25 options in a select menu and 100 characters in a label.
_MAX_OPTIONS, _MAX_LABEL = 25, 100


@dataclass
class Card:
    """A question shown in Discord, waiting for the one person who may answer it."""

    question: Question
    owner_id: str  # the Discord user whose request it belongs to
    shown: asyncio.Future[Posted] | None = field(default=None, repr=False)  # posting it; its message after


def parse_custom_id(custom_id: str) -> tuple[str, str] | None:
    """``(question key, action)`` from a component's custom id, or None if it is not one of ours."""
    parts = custom_id.split(":")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    return parts[1], parts[2]


def question_view(question: Question) -> discord.ui.View:
    """The components of a card: buttons for a confirmation, a select menu (and "None of these") for a choice."""
    view = discord.ui.View(timeout=None)
    key = question.key
    if question.kind == "choice":
        options = [
            discord.SelectOption(label=_label(option), value=str(i))
            for i, option in enumerate(question.options[:_MAX_OPTIONS])
        ]
        view.add_item(discord.ui.Select(custom_id=f"{PREFIX}:{key}:pick", placeholder="Which one?", options=options))
        view.add_item(discord.ui.Button(label="None of these", style=discord.ButtonStyle.secondary,
                                        custom_id=f"{PREFIX}:{key}:none"))
    else:
        view.add_item(discord.ui.Button(label="Confirm", style=discord.ButtonStyle.success, custom_id=f"{PREFIX}:{key}:yes"))
        view.add_item(discord.ui.Button(label="Cancel", style=discord.ButtonStyle.danger, custom_id=f"{PREFIX}:{key}:no"))
    view.stop()  # described, not kept: the bot handles the clicks (see the module docstring)
    return view


def _label(option: str) -> str:
    return option if len(option) <= _MAX_LABEL else option[: _MAX_LABEL - 1] + "\u2026"


def answer_from(question: Question, action: str, values: list[str]) -> Answer:
    """What a click means: True/False for Confirm/Cancel, the option picked, or None."""
    if action == "yes":
        return True
    if action == "no":
        return False
    if action == "pick" and values:
        index = int(values[0])
        return question.options[index] if 0 <= index < len(question.options) else None
    return None


def card_text(question: Question, owner_id: str, timeout: float | None) -> str:
    lines = [f"<@{owner_id}> {question.text}"]
    if question.display_id:
        lines.append(f"-# question {question.display_id}")
    if timeout:
        lines.append(f"-# Only <@{owner_id}> can answer; this expires in {_duration(timeout)} and then nothing changes.")
    return "\n".join(lines)


def answered_text(question: Question, answer: Answer, by: str) -> str:
    if question.kind == "choice":
        said = f"\u2705 <@{by}> chose **{answer}**." if answer is not None else f"\u274c <@{by}> chose none of these."
    else:
        said = f"\u2705 Confirmed by <@{by}>." if answer is True else f"\u274c Cancelled by <@{by}>; nothing was changed."
    return f"{question.text}\n{said}"


def expired_text(question: Question, timeout: float) -> str:
    return f"{question.text}\n\u231b Nobody answered within {_duration(timeout)}, so nothing was changed."


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds" if seconds != 1 else "1 second"
