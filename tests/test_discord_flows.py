"""The four Darcy flows end to end on Discord: discord.py against the fake Discord, the real engine and board.

Buttons and select menus are clicked as Discord sends clicks (INTERACTION_CREATE
with a component's custom id); a click from someone else is refused; an
unanswered card expires and nothing changes.
"""

from __future__ import annotations

from datetime import date

import pytest
from discord_support import demo_reviewed_board, running_bot
from fake_discord import DiscordUser, FakeDiscord, FakeMessage

from llmgine_nb.apps.tasks.discord_bot import BotSettings, darcy_assistant
from llmgine_nb.store import Store
from llmgine_nb.tools.events import ApprovalDecided, QuestionAnswered

TODAY = date(2026, 5, 6)
MEI = DiscordUser("1002", "mei", admin=True)  # linked to the board's Mei; a server admin
SAM = DiscordUser("1001", "sam")  # linked to Sam
PRIYA = DiscordUser("2001", "priya")  # not linked yet


@pytest.fixture
def fake():
    with FakeDiscord(token="flows-test-token") as server:
        yield server


@pytest.fixture
def board(tmp_path):
    board = demo_reviewed_board(str(tmp_path / "board.db"), TODAY)
    yield board
    board.close()


@pytest.fixture
async def bot(fake, board, tmp_path, request):
    timeout = getattr(request, "param", 30.0)
    settings = BotSettings(guild_id=int(fake.guild_id), edit_interval=0.05, confirm_timeout=timeout)
    assistant = darcy_assistant(board, store=Store(tmp_path / "darcy.db"), settings=settings, today=TODAY)
    async with running_bot(fake, assistant, settings) as running:
        yield running
    await assistant.close()


async def card(fake: FakeDiscord, interaction: str) -> FakeMessage:
    """The question card posted for ``interaction`` (a message with components)."""
    def find():
        return next((m for m in fake.messages_for(interaction) if m.components), None)
    return await fake.wait_for(find, what="a question card")


async def reply(fake: FakeDiscord, interaction: str, text: str) -> str:
    """Wait until the messages of ``interaction`` contain ``text``; returns them joined."""
    def joined():
        return "\n".join(m.content for m in fake.messages_for(interaction))
    await fake.wait_for(lambda: text in joined(), what=repr(text))
    return joined()


def budget_review(board) -> list:
    return [t for t in board.tasks() if t.title == "Budget review"]


def ephemeral_answers(fake: FakeDiscord) -> list[str]:
    return [m.content for m in fake.messages.values() if m.ephemeral]


async def test_view_tasks(fake, bot):
    asked = await fake.slash(MEI, "darcy", request="show me Sam's tasks in Recruitment")
    text = await reply(fake, asked, "T3 Book rooms for recruitment interviews")
    assert text.startswith("Sam Carter's active tasks in Recruitment:")


async def test_assign_after_confirm_button(fake, bot, board):
    decided: list[ApprovalDecided] = []
    bot.assistant.bus.subscribe(ApprovalDecided, decided.append, inline=True)
    asked = await fake.slash(MEI, "darcy", request="assign the budget review to Sam due Friday in Finance")
    question = await card(fake, asked)
    assert "I'm going to assign 'Budget review' to Sam Carter due Fri 8 May 2026 in Finance - confirm?" in question.content
    assert [c.split(":")[-1] for c in question.custom_ids()] == ["yes", "no"]
    assert not budget_review(board)
    await fake.click(MEI, question, ":yes")
    text = await reply(fake, asked, "Done! Created T13")
    assert "Confirmed by <@1002>" in question.content and question.components == []
    assert "Budget review" in text
    [decision] = decided  # sent as DecideApproval, with who clicked and the hash of what the card showed
    assert decision.approved and decision.decided_by == "Mei Chen <mei@example.org>"
    created = board.task("T13")
    assert (created.title, created.assignee_id, created.project_id) == ("Budget review", "sam", "finance")


async def test_cancel_button_changes_nothing(fake, bot, board):
    asked = await fake.slash(MEI, "darcy", request="assign the budget review to Sam due Friday in Finance")
    question = await card(fake, asked)
    await fake.click(MEI, question, ":no")
    await reply(fake, asked, "Nothing was changed")
    assert "Cancelled by <@1002>" in question.content
    assert not budget_review(board)


async def test_mark_done_after_did_you_mean_select(fake, bot, board):
    answered: list[QuestionAnswered] = []
    bot.assistant.bus.subscribe(QuestionAnswered, answered.append, inline=True)
    asked = await fake.slash(SAM, "darcy", request="I finished the recruitment stuff")
    question = await card(fake, asked)
    assert "Do you mean 1) Send out recruitment forms" in question.content
    menu = question.component(":pick")
    assert menu["type"] == 3  # a string select menu
    labels = [o["label"] for o in menu["options"]]
    assert labels == ["Send out recruitment forms", "Book rooms for recruitment interviews",
                      "Review recruitment form responses"]
    await fake.select(SAM, question, ":pick", ["1"])
    await reply(fake, asked, "Nice work! Marked T3 'Book rooms for recruitment interviews' as done.")
    assert "chose **Book rooms for recruitment interviews**" in question.content
    assert [(a.answer, a.decided_by) for a in answered] == [("Book rooms for recruitment interviews",
                                                            "Sam Carter <sam@example.org>")]
    assert board.task("T3").status == "done"
    assert board.task("T1").status == "todo"


async def test_none_of_these_marks_nothing(fake, bot, board):
    asked = await fake.slash(SAM, "darcy", request="I finished the recruitment stuff")
    question = await card(fake, asked)
    await fake.click(SAM, question, ":none")
    await fake.wait_for(lambda: "chose none of these" in question.content, what="the card to say so")
    await fake.wait_for(lambda: len([m for m in fake.messages_for(asked) if m.content]) >= 2, what="the reply")
    assert [board.task(t).status for t in ("T1", "T2", "T3")] == ["todo", "todo", "in_progress"]


async def test_verify_waits_for_an_admin(fake, bot, board):
    first = await fake.slash(PRIYA, "darcy", request="show me my tasks")
    await reply(fake, first, "Please tell me the email you use on the task board")
    claimed = await fake.slash(PRIYA, "darcy", request="I'm priya@example.org")
    await reply(fake, claimed, "Waiting for a board admin to confirm that this Discord account belongs to Priya Natarajan")
    assert board.user_for_platform("discord", PRIYA.id) is None  # a claim, not a link

    still = await fake.slash(PRIYA, "darcy", request="show me my tasks")
    await reply(fake, still, "Please tell me the email")  # no access before the admin confirms

    await fake.slash(SAM, "darcy-admin", pending={})  # Sam is no admin
    await fake.wait_for(lambda: any("Only server admins" in a for a in ephemeral_answers(fake)), what="a refusal")
    await fake.slash(MEI, "darcy-admin", pending={})
    await fake.wait_for(lambda: any("<@2001> says they are Priya Natarajan (priya@example.org)" in a
                                    for a in ephemeral_answers(fake)), what="the pending list")
    await fake.slash(MEI, "darcy-admin", confirm={"user": PRIYA})
    await fake.wait_for(lambda: any("Confirmed: <@2001> is Priya Natarajan" in a for a in ephemeral_answers(fake)),
                        what="the confirmation")
    assert board.user_for_platform("discord", PRIYA.id).id == "priya"

    now = await fake.slash(PRIYA, "darcy", request="show me my tasks")
    await reply(fake, now, "Prepare Q3 budget review")


async def test_admin_can_reject_a_claim(fake, bot, board):
    claimed = await fake.slash(PRIYA, "darcy", request="I'm sam@example.org")  # claims to be someone else
    await reply(fake, claimed, "Waiting for a board admin")
    await fake.slash(MEI, "darcy-admin", reject={"user": PRIYA})
    await fake.wait_for(lambda: any("Rejected <@2001>'s claim to be Sam Carter" in a for a in ephemeral_answers(fake)),
                        what="the rejection")
    assert board.user_for_platform("discord", PRIYA.id) is None and board.pending_links() == []


async def test_a_click_from_someone_else_is_refused(fake, bot, board):
    asked = await fake.slash(MEI, "darcy", request="assign the budget review to Sam due Friday in Finance")
    question = await card(fake, asked)
    await fake.click(SAM, question, ":yes")  # Sam tries to confirm Mei's assignment
    await fake.wait_for(lambda: any("Only <@1002> can answer this question" in a for a in ephemeral_answers(fake)),
                        what="the refusal")
    assert question.components  # still waiting for Mei
    assert not budget_review(board)
    await fake.click(MEI, question, ":yes")
    await reply(fake, asked, "Done! Created T13")


async def test_a_second_request_while_one_waits_is_turned_away(fake, bot):
    asked = await fake.slash(MEI, "darcy", request="assign the budget review to Sam due Friday in Finance")
    question = await card(fake, asked)
    await fake.slash(MEI, "darcy", request="show me my tasks")
    await fake.wait_for(lambda: any("still working on your last request" in a for a in ephemeral_answers(fake)),
                        what="the busy answer")
    await fake.click(MEI, question, ":no")
    await reply(fake, asked, "Nothing was changed")


@pytest.mark.parametrize("bot", [1.0], indirect=True)
async def test_an_unanswered_card_expires_and_fails_closed(fake, bot, board):
    asked = await fake.slash(MEI, "darcy", request="assign the budget review to Sam due Friday in Finance")
    question = await card(fake, asked)
    assert "expires in 1 second" in question.content
    await fake.wait_for(lambda: "Nobody answered within 1 second, so nothing was changed." in question.content,
                        what="the card to expire")
    assert question.components == []
    await reply(fake, asked, "Nobody confirmed that, so nothing was changed.")  # the engine's timeout: a "no"
    assert not budget_review(board)
