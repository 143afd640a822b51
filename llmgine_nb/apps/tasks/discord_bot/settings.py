"""The bot's settings, and its token from ``DISCORD_TOKEN`` (the environment or a ``.env`` file)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

__all__ = ["BotSettings", "discord_token", "MissingToken"]

TOKEN_NAME = "DISCORD_TOKEN"


class MissingToken(RuntimeError):
    """No bot token was found."""


@dataclass(frozen=True)
class BotSettings:
    """How the bot behaves.

    ``guild_id``: register the slash commands in this server only (they
    appear at once; global commands can take a while to reach every
    server), else globally.  ``confirm_timeout``: seconds a question card
    waits for its answer before it expires and nothing changes (keep it
    under Discord's 15 minutes, after which the interaction can no longer
    be answered or edited).  ``edit_interval``: the least time between two
    edits of a streaming reply.  ``admin_ids``: Discord user ids allowed to
    confirm email claims besides members with Manage Server.
    """

    guild_id: int | None = None
    confirm_timeout: float = 300.0
    edit_interval: float = 1.0
    admin_ids: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not 0 < self.confirm_timeout <= 14 * 60:
            raise ValueError(
                "confirm_timeout must be more than 0 and at most 840 seconds (Discord lets a bot edit "
                "its reply for 15 minutes)"
            )
        if self.edit_interval < 0:
            raise ValueError("edit_interval must be 0 or more seconds")


def discord_token(env_file: str | os.PathLike[str] = ".env") -> str:
    """The bot token: ``DISCORD_TOKEN`` from the environment, else from ``env_file``.

    The value is returned to the caller only; it is never logged or stored.
    """
    token = os.environ.get(TOKEN_NAME, "").strip()
    if not token and Path(env_file).is_file():
        token = (dotenv_values(env_file).get(TOKEN_NAME) or "").strip()
    if not token:
        raise MissingToken(
            f"No Discord bot token: set {TOKEN_NAME} in the environment or in a .env file "
            "(Developer Portal -> your application -> Bot -> Reset Token)."
        )
    return token
