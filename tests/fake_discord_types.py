"""The wire's vocabulary for tests/fake_discord.py: Discord's numbers, the test's users, the bot's messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["DiscordUser", "FakeMessage", "RecordedRequest", "EPHEMERAL", "options_payload", "now"]

EPHEMERAL = 1 << 6
# Discord's message flags and interaction types (https://discord.com/developers/docs).
APPLICATION_COMMAND, MESSAGE_COMPONENT = 2, 3
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 4, 5, 6, 7
HELLO, IDENTIFY, HEARTBEAT, HEARTBEAT_ACK, RESUME, DISPATCH = 10, 2, 1, 11, 6, 0
ALL_PERMISSIONS = str((1 << 41) - 1)
MEMBER_PERMISSIONS = str((1 << 10) | (1 << 11) | (1 << 31))  # view, send messages, use application commands
MANAGE_GUILD = 1 << 5


@dataclass(frozen=True)
class DiscordUser:
    """A person in the fake guild; ``admin`` members have Manage Server."""

    id: str
    username: str
    admin: bool = False

    def payload(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "discriminator": "0", "global_name": self.username,
                "avatar": None, "bot": False}


@dataclass
class FakeMessage:
    """A message the bot posted (an interaction response or a follow-up), with its edits."""

    id: str
    interaction_token: str
    content: str
    components: list[dict[str, Any]]
    flags: int = 0
    original: bool = False
    history: list[str] = field(default_factory=list)  # every content it had, oldest first

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    def custom_ids(self) -> list[str]:
        return [c.get("custom_id", "") for row in self.components for c in row.get("components", [])]

    def component(self, custom_id_part: str) -> dict[str, Any]:
        for row in self.components:
            for c in row.get("components", []):
                if custom_id_part in c.get("custom_id", ""):
                    return c
        raise LookupError(f"no component with {custom_id_part!r} in {self.custom_ids()}")


@dataclass
class RecordedRequest:
    method: str
    path: str
    body: Any
    status: int
    at: float


@dataclass
class Interaction:
    id: str
    token: str
    user: DiscordUser
    kind: int
    responded: bool = False
    original_id: str | None = None



def options_payload(options: dict[str, Any], resolved: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, value in options.items():
        if isinstance(value, dict):  # a subcommand with its own options
            out.append({"name": name, "type": 1, "options": options_payload(value, resolved)})
        elif isinstance(value, DiscordUser):
            resolved[value.id] = value.payload()
            out.append({"name": name, "type": 6, "value": value.id})
        else:
            out.append({"name": name, "type": 3, "value": str(value)})
    return out


def now() -> str:
    return datetime.now(timezone.utc).isoformat()
