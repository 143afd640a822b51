"""Users, their API tokens (stored as hashes only) and which sessions they own.

    user, token = add_user(store, "ada")     # the token is shown once; only its hash is kept
    user_for_token(store, token)             # -> User, or None for an unknown or revoked token
    set_owner(store, session_id, user.id)
    owner_of(store, session_id)              # -> user id, or None

A token is 32 random bytes (``lnb_`` + URL-safe base64): guessing one is
hopeless, so a plain SHA-256 of it is a safe thing to store and look up.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .database import Connection
from .records import StoreError
from .rows import utc_text

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "User",
    "UserExists",
    "add_user",
    "get_user",
    "list_users",
    "new_token",
    "revoke_tokens",
    "user_for_token",
    "set_owner",
    "owner_of",
    "owned_sessions",
    "forget_owner",
    "hash_token",
]

TOKEN_PREFIX = "lnb_"


@dataclass(frozen=True)
class User:
    id: str
    name: str


class UserExists(StoreError):
    """A user of that name exists already."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _make_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def add_user(store: Store, name: str) -> tuple[User, str]:
    """Create a user and their first token; returns ``(user, token)``."""
    name = (name or "").strip()
    if not name:
        raise ValueError("a user needs a name, e.g. llmgine-nb users add ada")
    if get_user(store, name) is not None:
        raise UserExists(f"a user named {name!r} exists already; give them a new token with: llmgine-nb users token {name}")
    user = User(uuid.uuid4().hex, name)
    token = _make_token()
    with store.transaction() as conn:
        conn.execute("INSERT INTO users (id, name, created) VALUES (?,?,?)", (user.id, name, utc_text()))
        _insert_token(conn, user.id, token)
    return user, token


def _insert_token(conn: Connection, user_id: str, token: str) -> None:
    conn.execute(
        "INSERT INTO api_tokens (id, user_id, token_hash, created) VALUES (?,?,?,?)",
        (uuid.uuid4().hex, user_id, hash_token(token), utc_text()),
    )


def new_token(store: Store, name: str) -> str:
    """Another token for an existing user (their old tokens keep working until revoked)."""
    user = get_user(store, name)
    if user is None:
        raise LookupError(f"there is no user named {name!r}; add them with: llmgine-nb users add {name}")
    token = _make_token()
    with store.transaction() as conn:
        _insert_token(conn, user.id, token)
    return token


def revoke_tokens(store: Store, name: str) -> int:
    """Revoke every token of a user; returns how many were live."""
    user = get_user(store, name)
    if user is None:
        raise LookupError(f"there is no user named {name!r}")
    with store.transaction() as conn:
        return int(
            conn.execute(
                "UPDATE api_tokens SET revoked = ? WHERE user_id = ? AND revoked IS NULL", (utc_text(), user.id)
            ).rowcount
        )


def get_user(store: Store, name_or_id: str) -> User | None:
    rows = store.database.read("SELECT id, name FROM users WHERE name = ? OR id = ?", (name_or_id, name_or_id))
    return User(*rows[0]) if rows else None


def list_users(store: Store) -> list[tuple[User, int]]:
    """Every user with their number of live tokens, by name."""
    rows = store.database.read(
        "SELECT u.id, u.name, (SELECT count(*) FROM api_tokens t WHERE t.user_id = u.id AND t.revoked IS NULL) "
        "FROM users u ORDER BY u.name"
    )
    return [(User(r[0], r[1]), int(r[2])) for r in rows]


def user_for_token(store: Store, token: str) -> User | None:
    """The user a live token belongs to, or None."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    rows = store.database.read(
        "SELECT u.id, u.name FROM api_tokens t JOIN users u ON u.id = t.user_id "
        "WHERE t.token_hash = ? AND t.revoked IS NULL",
        (hash_token(token),),
    )
    return User(*rows[0]) if rows else None


def set_owner(store: Store, session_id: str, user_id: str) -> None:
    with store.transaction() as conn:
        conn.execute("INSERT INTO session_owners (session_id, user_id) VALUES (?,?) "
            "ON CONFLICT (session_id) DO UPDATE SET user_id = excluded.user_id", (session_id, user_id))


def owner_of(store: Store, session_id: str) -> str | None:
    rows = store.database.read("SELECT user_id FROM session_owners WHERE session_id = ?", (session_id,))
    return rows[0][0] if rows else None


def owned_sessions(store: Store, user_id: str) -> set[str]:
    return {r[0] for r in store.database.read("SELECT session_id FROM session_owners WHERE user_id = ?", (user_id,))}


def forget_owner(store: Store, session_id: str) -> None:
    with store.transaction() as conn:
        conn.execute("DELETE FROM session_owners WHERE session_id = ?", (session_id,))
