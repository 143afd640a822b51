"""Board links that wait for an administrator: a claimed email is not trusted until confirmed.

The seed design trusted any email a chat user claimed: "I'm sam@example.org"
made you Sam.  On a Discord server anyone can type anyone's email, so the
bot's board keeps such a claim aside until a board administrator confirms it
(``/darcy-admin confirm`` in Discord, or :meth:`ReviewedBoard.confirm_link`
in Python).  Until then the Discord user is not linked: the assistant treats
them as unverified and they get no grants.

    board = ReviewedBoard("board.db")
    board.link_platform("discord", "2001", "priya@example.org")   # what verify_user does: a claim
    board.user_for_platform("discord", "2001")                   # None: not confirmed yet
    [c.email for c in board.pending_links()]                     # ["priya@example.org"]
    board.confirm_link("discord", "2001", by="mei")              # now it is Priya
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from ..board import User
from ..sqlite_board import SQLiteBoard

__all__ = ["ReviewedBoard", "LinkClaim"]


@dataclass(frozen=True)
class LinkClaim:
    """A chat user's claim to be a board user, waiting for an administrator."""

    platform: str
    platform_user_id: str
    user_id: str
    email: str
    name: str
    claimed: str  # ISO time


class ReviewedBoard(SQLiteBoard):
    """A :class:`SQLiteBoard` whose platform links need an administrator's confirmation.

    ``link_platform`` (what the ``verify_user`` tool calls) records a claim
    instead of a link; ``confirm_link`` turns the claim into the link,
    ``reject_link`` drops it.  Links made before (or confirmed) behave as on
    any board.  ``trust_claims=True`` restores the seed design's behaviour
    (every claim is linked at once), for a private server.
    """

    def __init__(
        self,
        path_or_db: str | os.PathLike[str] | Database = ":memory:",
        *,
        clock: Callable[[], datetime] | None = None,
        trust_claims: bool = False,
    ) -> None:
        super().__init__(path_or_db, clock=clock)
        self.trust_claims = trust_claims
        with self._transaction():
            self.db.table("platform_link_claims").create(
                {"platform": str, "platform_user_id": str, "user_id": str, "claimed": str},
                pk=("platform", "platform_user_id"),
                not_null={"user_id", "claimed"},
                foreign_keys=[("user_id", "users", "id")],
                if_not_exists=True,
            )

    def _save_link(self, platform: str, platform_user_id: str, user_id: str) -> None:
        # Called by Board.link_platform inside its transaction, once the email named a board user.
        if self.trust_claims:
            super()._save_link(platform, platform_user_id, user_id)
            return
        self.db.table("platform_link_claims").upsert(
            {"platform": platform, "platform_user_id": platform_user_id, "user_id": user_id,
             "claimed": self._now().isoformat()},
            pk=("platform", "platform_user_id"),
        )

    def pending_links(self, platform: str | None = None) -> list[LinkClaim]:
        """The claims waiting for an administrator, oldest first."""
        sql = (
            "select c.platform, c.platform_user_id, c.user_id, c.claimed, u.email, u.name "
            "from platform_link_claims c join users u on u.id = c.user_id"
        )
        params: list[Any] = []
        if platform is not None:
            sql += " where c.platform = ?"
            params.append(platform.lower())
        rows = self._rows(sql + " order by c.claimed, c.platform_user_id", params)
        return [LinkClaim(r["platform"], r["platform_user_id"], r["user_id"], r["email"], r["name"], r["claimed"]) for r in rows]

    def pending_link(self, platform: str, platform_user_id: str) -> LinkClaim | None:
        """This chat user's claim, if one waits."""
        found = [c for c in self.pending_links(platform) if c.platform_user_id == str(platform_user_id)]
        return found[0] if found else None

    def confirm_link(self, platform: str, platform_user_id: str, *, by: str) -> User:
        """Confirm a waiting claim: the chat user is that board user from now on.

        ``by`` names the administrator (kept in the log).  Raises LookupError
        with a sentence when nothing waits for that user.
        """
        claim = self.pending_link(platform, platform_user_id)
        if claim is None:
            raise LookupError(
                f"No claim of {platform} user {platform_user_id} is waiting; they must first tell Darcy their board email."
            )
        key = self._link_key(platform, platform_user_id)
        with self._transaction():
            self._delete_link(*key)
            SQLiteBoard._save_link(self, *key, claim.user_id)
            self._drop_claim(*key)
        return self.user(claim.user_id)

    def reject_link(self, platform: str, platform_user_id: str, *, by: str) -> LinkClaim:
        """Drop a waiting claim (the chat user stays unverified); returns it."""
        claim = self.pending_link(platform, platform_user_id)
        if claim is None:
            raise LookupError(f"No claim of {platform} user {platform_user_id} is waiting.")
        with self._transaction():
            self._drop_claim(*self._link_key(platform, platform_user_id))
        return claim

    def _drop_claim(self, platform: str, platform_user_id: str) -> None:
        self.db.execute(
            "delete from platform_link_claims where platform = ? and platform_user_id = ?", (platform, platform_user_id)
        )
