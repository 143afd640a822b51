"""The server's limits and switches, each with a safe default."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ServerConfig"]


@dataclass
class ServerConfig:
    """Limits and access rules of one server.

    ``max_body_bytes``: the largest request body (413 beyond).
    ``max_message_chars``: the longest message a user may send (413 beyond).
    ``max_turns_per_user``: turns one user may have running at once (429 beyond).
    ``requests_per_minute``: per user, a token bucket (429 with Retry-After beyond).
    ``cors_origins``: origins allowed to call the API from another site's page (none: CORS off).
    ``ws_origins``: origins besides the server's own whose pages may open its streams.
    ``ticket_ttl_s``: how long a stream ticket (for EventSource/WebSocket) stays valid.
    ``idle_unload_s``: an engine idle this long is unloaded (None: never); the next request reloads it.
    ``max_engines``: engines kept loaded at most; beyond, the least recently used idle ones are unloaded.
    """

    max_body_bytes: int = 256 * 1024
    max_message_chars: int = 32_000
    max_turns_per_user: int = 4
    requests_per_minute: int = 600
    cors_origins: list[str] = field(default_factory=list)
    ws_origins: list[str] = field(default_factory=list)
    ticket_ttl_s: float = 30.0
    first_message_timeout_s: float = 10.0
    idle_unload_s: float | None = 900.0
    max_engines: int | None = 1000
