"""Who is asking: API tokens in the Authorization header, short-lived stream tickets, rate limits.

A long-lived token never travels in a URL (so it never reaches an access
log): REST calls send ``Authorization: Bearer TOKEN``; a WebSocket sends
its token (or a ticket) in its first message; an ``EventSource``, which can
set no header, gets a ticket from ``POST /api/tickets`` and puts that in
the URL - single use and valid for seconds.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass

from ..store import Store
from ..store.users import User, hash_token, owner_of, user_for_token
from .config import ServerConfig
from .errors import ApiError

__all__ = ["Gate", "SIGN_IN"]

#: How every ticket starts (a log or a check can tell one from other text).
TICKET_PREFIX = "tkt_"

#: Seconds a checked token is trusted without asking the store again (a revoked token stops within this).
TOKEN_CHECK_S = 5.0

SIGN_IN = (
    "Sign in: send your API token as the header 'Authorization: Bearer TOKEN' "
    "(an administrator makes one with: llmgine-nb users add NAME)."
)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class Gate:
    """Checks tokens, tickets, rate limits and session ownership for one server."""

    def __init__(self, store: Store, config: ServerConfig) -> None:
        self.store = store
        self.config = config
        self._tickets: dict[str, tuple[User, str | None, float]] = {}  # ticket -> (user, session, expires)
        self._buckets: dict[str, _Bucket] = {}
        self._users: dict[str, tuple[User, float]] = {}  # token hash -> (user, when checked)
        self._owners: dict[str, str] = {}  # session -> owner (set once; forgotten when deleted)

    # -- who -----------------------------------------------------------------

    def user_from_header(self, authorization: str | None) -> User:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, SIGN_IN, headers={"WWW-Authenticate": "Bearer"})
        user = self._user(token.strip())
        if user is None:
            raise ApiError(401, "That API token is not valid (or was revoked); ask for a new one.",
                           headers={"WWW-Authenticate": "Bearer"})
        self.check_rate(user)
        return user

    def user_from_token(self, token: str | None) -> User | None:
        return self._user(token) if isinstance(token, str) and token else None

    def _user(self, token: str) -> User | None:
        key = hash_token(token)
        now = time.monotonic()
        cached = self._users.get(key)
        if cached is not None and now - cached[1] < TOKEN_CHECK_S:
            return cached[0]
        user = user_for_token(self.store, token)
        if user is None:
            self._users.pop(key, None)
        else:
            self._users[key] = (user, now)
        return user

    # -- tickets ---------------------------------------------------------------

    def issue_ticket(self, user: User, session_id: str | None = None) -> str:
        now = time.monotonic()
        for ticket, (_, _, expires) in list(self._tickets.items()):
            if expires < now:
                del self._tickets[ticket]
        ticket = TICKET_PREFIX + secrets.token_urlsafe(24)
        self._tickets[ticket] = (user, session_id, now + self.config.ticket_ttl_s)
        return ticket

    def redeem_ticket(self, ticket: str | None, session_id: str) -> User | None:
        """The ticket's user, once: a ticket is single use, short-lived and may name one session."""
        if not isinstance(ticket, str) or not ticket:
            return None
        entry = self._tickets.pop(ticket, None)
        if entry is None:
            return None
        user, for_session, expires = entry
        if expires < time.monotonic() or (for_session is not None and for_session != session_id):
            return None
        return user

    # -- limits ------------------------------------------------------------------

    def check_rate(self, user: User) -> None:
        """A token bucket per user: ``requests_per_minute`` on average, bursts up to the same."""
        rate = self.config.requests_per_minute / 60.0
        capacity = float(self.config.requests_per_minute)
        now = time.monotonic()
        bucket = self._buckets.get(user.id)
        if bucket is None:
            bucket = self._buckets[user.id] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            wait = max(1, math.ceil((1.0 - bucket.tokens) / rate))
            raise ApiError(
                429, f"Too many requests: the limit is {self.config.requests_per_minute} a minute. "
                f"Try again in {wait} s.", headers={"Retry-After": str(wait)},
            )
        bucket.tokens -= 1.0

    # -- whose -------------------------------------------------------------------

    def owns(self, user: User, session_id: str) -> bool:
        owner = self._owners.get(session_id)
        if owner is None:
            owner = owner_of(self.store, session_id)
            if owner is not None:
                self._owners[session_id] = owner
        return owner == user.id

    def forget(self, session_id: str) -> None:
        """The session was deleted: nobody owns it any more."""
        self._owners.pop(session_id, None)

    def check_owner(self, user: User, session_id: str) -> None:
        """Another user's session (or none at all) is a 404: its existence is not told."""
        if not self.owns(user, session_id):
            raise ApiError(404, f"There is no session {session_id!r} of yours; list yours with GET /api/sessions.")
