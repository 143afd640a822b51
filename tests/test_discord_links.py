"""ReviewedBoard: a claimed email is not a link until an admin confirms it (the Python API of /darcy-admin)."""

from __future__ import annotations

import pytest

from llmgine_nb.apps.tasks import seed_demo_board
from llmgine_nb.apps.tasks.board import UnknownUser
from llmgine_nb.apps.tasks.discord_bot import ReviewedBoard


@pytest.fixture
def board(tmp_path):
    board = ReviewedBoard(tmp_path / "board.db")
    seed_demo_board(board)
    yield board
    board.close()


def test_a_claim_waits_until_confirmed(board, tmp_path):
    board.link_platform("discord", "2001", "Priya@Example.org")
    assert board.user_for_platform("discord", "2001") is None
    [claim] = [c for c in board.pending_links("discord") if c.platform_user_id == "2001"]
    assert (claim.user_id, claim.email, claim.name) == ("priya", "priya@example.org", "Priya Natarajan")
    board.link_platform("discord", "2001", "alex@example.org")  # a second claim replaces the first
    assert board.pending_link("discord", "2001").user_id == "alex"
    assert board.confirm_link("discord", "2001", by="mei").id == "alex"
    assert board.user_for_platform("discord", "2001").id == "alex"
    assert board.pending_link("discord", "2001") is None
    board.close()
    reopened = ReviewedBoard(tmp_path / "board.db")  # links and claims are on disk
    assert reopened.user_for_platform("discord", "2001").id == "alex"
    reopened.close()


def test_reject_and_nothing_waiting(board):
    board.link_platform("discord", "2002", "sam@example.org")
    assert board.reject_link("discord", "2002", by="mei").user_id == "sam"
    assert board.user_for_platform("discord", "2002") is None
    with pytest.raises(LookupError, match="they must first tell Darcy their board email"):
        board.confirm_link("discord", "2002", by="mei")
    with pytest.raises(UnknownUser):
        board.link_platform("discord", "2003", "nobody@example.org")
    assert board.pending_link("discord", "2003") is None


def test_trusting_board_links_at_once(tmp_path):
    board = ReviewedBoard(tmp_path / "trusting.db", trust_claims=True)
    seed_demo_board(board)
    board.link_platform("discord", "2001", "priya@example.org")
    assert board.user_for_platform("discord", "2001").id == "priya"
    assert board.pending_links() == []
    board.close()
