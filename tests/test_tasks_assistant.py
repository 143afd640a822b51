"""The task assistant end to end: the seed's "Darcy" flows through the real engine, tools and board.

Every test runs a real ``ChatEngine`` with a real ``ToolManager`` over a
real SQLite board in ``tmp_path``; the model is the offline planner (one
test uses a real litellm client against a local OpenAI-compatible server).
Questions are answered through the bus commands: the assistant's
``ApprovalQueue`` (by chat message or by call id), ``AutoApproval``, or a
test's own ``ChoiceRequest`` handler.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date

import pytest
from fake_openai import FAKE_API_KEY, ToolCallSpec  # the fixture comes from conftest
from fake_openai import Reply as WireReply

from llmgine_nb import Event, MessageBus
from llmgine_nb.apps.tasks import (
    SQLiteBoard,
    TaskAssistant,
    TaskCompleted,
    TaskCreated,
    TaskTools,
    UserVerified,
    demo_board,
    parse_choice,
    parse_yes_no,
)
from llmgine_nb.apps.tasks.offline import ASK_EMAIL, parse_request
from llmgine_nb.chat import ToolCall
from llmgine_nb.store import Store
from llmgine_nb.tools import (
    ApprovalDecided,
    ApprovalQueue,
    ApprovalRequested,
    AutoApproval,
    ChoiceRequest,
    ConfirmRequest,
    RequestApproval,
    ToolManager,
    ToolPermissionChecked,
)

TODAY = date(2026, 5, 6)  # a Wednesday: "Friday" is 8 May, "next Friday" 15 May
SAM, MEI, RILEY, STRANGER = "1001", "1002", "3003", "2001"  # Discord ids; Sam and Mei are linked in the demo


@pytest.fixture
def board(tmp_path):
    board = demo_board(today=TODAY, path=str(tmp_path / "board.db"))
    yield board
    board.close()


class Recorder:
    def __init__(self, bus: MessageBus) -> None:
        self.events: list[Event] = []
        bus.subscribe(Event, self.events.append)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
async def make(board, tmp_path):
    made: list[TaskAssistant] = []

    async def factory(**options) -> tuple[TaskAssistant, Recorder]:
        bus = options.pop("bus", None) or MessageBus()
        recorder = Recorder(bus)
        options.setdefault("store", Store(tmp_path / "chat.db"))
        assistant = TaskAssistant(board, bus=bus, today=TODAY, **options)
        made.append(assistant)
        return assistant, recorder

    yield factory
    for assistant in made:
        await assistant.close()


def snapshot(board) -> list[tuple]:
    return [(t.id, t.title, t.status, t.assignee_id, t.project_id, t.due) for t in board.tasks()]


async def tools_called(assistant: TaskAssistant, user: str) -> list[tuple[str, dict, str]]:
    engine = await assistant.engine(user)
    return [(r.tool, json.loads(r.arguments), r.status) for r in engine.store.tool_calls(engine.session_id)]


# -- view tasks ---------------------------------------------------------------


async def test_view_tasks_parses_the_request_and_shows_a_formatted_list(make, board):
    assistant, rec = await make()
    before = snapshot(board)

    reply = await assistant.handle(MEI, "show me Sam's tasks in Recruitment")

    assert reply.kind == "answer" and reply.turn is not None and reply.turn.ok
    assert reply.text == (
        "Sam Carter's active tasks in Recruitment:\n"
        "1. T1 Send out recruitment forms - Sam Carter - Recruitment - due Fri 8 May 2026 - to do\n"
        "2. T3 Book rooms for recruitment interviews - Sam Carter - Recruitment - due Mon 11 May 2026 - in progress\n"
        "3. T2 Review recruitment form responses - Sam Carter - Recruitment - due Fri 15 May 2026 - to do"
    )
    assert await tools_called(assistant, MEI) == [
        ("find_tasks", {"assignee": "Sam", "project": "Recruitment"}, "done")
    ]
    assert snapshot(board) == before  # a read writes nothing
    # The model was told who it talks to, from the board, not from the chat.
    assert "Current user: Mei Chen (id mei" in assistant.llm.calls[0].messages[0].content


# -- assign a task ----------------------------------------------------------------


async def test_assign_looks_up_projects_confirms_then_creates(make, board):
    assistant, rec = await make()
    before = snapshot(board)

    reply = await assistant.handle(MEI, "assign the budget review to Sam due Friday in Finance")

    assert reply.kind == "approval" and isinstance(reply.question, RequestApproval)
    assert reply.question.preview == "I'm going to assign 'Budget review' to Sam Carter due Fri 8 May 2026 in Finance - confirm?"
    assert reply.text.startswith("I'm going to assign 'Budget review' to Sam Carter")
    assert snapshot(board) == before  # nothing is written before the user confirms
    called = await tools_called(assistant, MEI)
    assert [c[0] for c in called] == ["list_projects", "create_task"]
    assert called[1][1] == {"title": "Budget review", "assignee": "Sam", "project": "finance", "due": "Friday"}

    reply = await assistant.handle(MEI, "yes")

    assert reply.kind == "answer" and reply.turn.ok
    assert reply.text == "Done! Created T13: 'Budget review' assigned to Sam Carter, due Fri 8 May 2026, in Finance."
    task = board.task("T13")
    assert (task.title, task.assignee_id, task.project_id, task.due, task.created_by) == (
        "Budget review", "sam", "finance", date(2026, 5, 8), "mei",
    )
    assert len(board.tasks()) == len(before) + 1
    [created] = rec.of(TaskCreated)
    assert created.task_id == "T13" and created.created_by == "mei"
    engine = await assistant.engine(MEI)
    record = engine.store.tool_calls(engine.session_id)[-1]
    assert record.tool == "create_task" and record.status == "done" and record.approval.decision == "approved"
    # The journal records who said yes in the chat: the board user, not "handler".
    mei = board.user("mei")
    assert record.approval.who == f"{mei.name} <{mei.email}>"
    [decided] = rec.of(ApprovalDecided)
    assert decided.decided_by == f"{mei.name} <{mei.email}>"


async def test_a_denied_assignment_writes_nothing(make, board):
    assistant, rec = await make()
    before = snapshot(board)

    asked = await assistant.handle(MEI, "assign the budget review to Sam due Friday in Finance")
    assert asked.kind == "approval"
    reply = await assistant.handle(MEI, "no")

    assert reply.text == "OK, I won't do that. Nothing was changed."
    assert snapshot(board) == before
    assert rec.of(TaskCreated) == []
    [decided] = rec.of(ApprovalDecided)
    assert decided.approved is False
    engine = await assistant.engine(MEI)
    assert engine.store.tool_calls(engine.session_id)[-1].status == "denied"


async def test_an_unclear_answer_to_a_confirmation_is_a_denial(make, board):
    assistant, rec = await make()
    before = snapshot(board)
    await assistant.handle(MEI, "assign the budget review to Sam due Friday in Finance")

    reply = await assistant.handle(MEI, "hmm, maybe Monday instead?")

    assert snapshot(board) == before
    [decided] = rec.of(ApprovalDecided)
    assert decided.approved is False and "maybe Monday" in decided.message
    assert reply.turn is not None and reply.turn.ok


@pytest.mark.parametrize(
    "answer",
    ["sure, but assign it to Jordan", "ok what does that do exactly?", "okay so which project is that?",
     "sure, assign it to Jordan", "yeah right", "right?"],
)
async def test_a_question_or_a_yes_but_never_confirms(make, board, answer):
    assistant, rec = await make()
    before = snapshot(board)
    asked = await assistant.handle(MEI, "assign the budget review to Sam due Friday in Finance")
    assert asked.kind == "approval"

    reply = await assistant.handle(MEI, answer)

    assert snapshot(board) == before and rec.of(TaskCreated) == []
    [decided] = rec.of(ApprovalDecided)
    assert decided.approved is False and answer in decided.message
    assert reply.turn is not None
    # The denial is recorded as Mei's answer too.
    engine = await assistant.engine(MEI)
    assert engine.store.tool_calls(engine.session_id)[-1].approval.who.startswith("Mei Chen <")


async def test_a_denying_policy_on_the_bus_writes_nothing(make, board):
    policy = AutoApproval.deny_all("assignments are frozen this week")
    assistant, rec = await make(approvals=policy)
    before = snapshot(board)

    reply = await assistant.handle(MEI, "assign the budget review to Sam due Friday in Finance")

    assert reply.kind == "answer" and reply.text == "OK, I won't do that. Nothing was changed."
    assert [r.preview for r in policy.requests] == [
        "I'm going to assign 'Budget review' to Sam Carter due Fri 8 May 2026 in Finance - confirm?"
    ]
    assert snapshot(board) == before


async def test_an_ambiguous_project_name_leads_to_a_choice_then_a_confirmation(make, board):
    assistant, rec = await make()
    before = snapshot(board)

    reply = await assistant.handle(MEI, "assign the audit prep to Priya due next Friday in Fin")

    assert reply.kind == "choice" and isinstance(reply.question, ChoiceRequest)
    assert reply.question.question == "By 'Fin', do you mean 1) Finance or 2) Finance Ops?"
    assert reply.options == ["Finance", "Finance Ops"]
    assert snapshot(board) == before and rec.of(ApprovalRequested) == []

    reply = await assistant.handle(MEI, "2")

    assert reply.kind == "approval"
    assert reply.question.preview == (
        "I'm going to assign 'Audit prep' to Priya Natarajan due Fri 15 May 2026 in Finance Ops - confirm?"
    )
    assert snapshot(board) == before

    reply = await assistant.handle(MEI, "yes")

    assert reply.text.startswith("Done! Created T13: 'Audit prep' assigned to Priya Natarajan")
    assert board.task("T13").project_id == "finance-ops"
    creates = [c for c in await tools_called(assistant, MEI) if c[0] == "create_task"]
    assert [c[1]["project"] for c in creates] == ["Fin", "finance-ops"]


async def test_an_ambiguous_person_is_settled_the_same_way(make, board):
    board.add_user("Sam Lee", "sam.lee@example.org", grants=("tasks:read", "tasks:write"), id="samlee")
    assistant, _ = await make()

    reply = await assistant.handle(MEI, "assign the float count to Sam due Friday in Finance Ops")
    assert reply.question.question == "By 'Sam', do you mean 1) Sam Carter or 2) Sam Lee?"
    reply = await assistant.handle(MEI, "Sam Lee")
    assert reply.question.preview == "I'm going to assign 'Float count' to Sam Lee due Fri 8 May 2026 in Finance Ops - confirm?"
    reply = await assistant.handle(MEI, "yes")

    assert (board.task("T13").assignee_id, board.task("T13").project_id) == ("samlee", "finance-ops")


async def test_an_unknown_project_is_a_clear_error_and_nothing_is_asked(make, board):
    assistant, rec = await make()
    before = snapshot(board)

    reply = await assistant.handle(MEI, "assign the poster design to Sam due Friday in Marketing")

    assert reply.kind == "answer"
    assert reply.text == (
        "There is no active project called 'Marketing'; active projects are: Finance (id finance), "
        "Finance Ops (id finance-ops), Recruitment (id recruitment)."
    )
    assert rec.of(ApprovalRequested) == [] and snapshot(board) == before


async def test_an_archived_project_is_refused_with_the_active_ones(make, board):
    assistant, _ = await make()
    reply = await assistant.handle(MEI, "assign the blog import to Alex due Friday in Website Relaunch")
    assert "Project 'Website Relaunch' is archived and takes no new tasks" in reply.text
    assert "Finance (id finance)" in reply.text


async def test_an_approval_can_be_answered_by_call_id_from_another_front_end(make, board):
    assistant, _ = await make()
    reply = await assistant.handle(SAM, "assign the sponsor thank-you notes to me due tomorrow in Recruitment")
    assert reply.question.preview == (
        "I'm going to assign 'Sponsor thank-you notes' to you due Thu 7 May 2026 in Recruitment - confirm?"
    )
    assert assistant.approvals is not None

    assistant.approvals.approve(reply.question.call_id)  # a button in a web page, say
    reply = await assistant.wait(SAM)

    assert reply.text.startswith("Done! Created T13: 'Sponsor thank-you notes' assigned to Sam Carter")
    assert board.task("T13").assignee_id == "sam"


# -- update a task's status ---------------------------------------------------------


async def test_did_you_mean_answered_with_option_2_marks_exactly_that_task_done(make, board):
    # Another front end answers on the bus: a ChoiceRequest handler that picks the second option.
    bus = MessageBus()
    asked: list[ChoiceRequest] = []

    def pick_second(request: ChoiceRequest) -> str:
        asked.append(request)
        return request.options[1]

    bus.register_command_handler(ChoiceRequest, pick_second)
    assistant, rec = await make(bus=bus, approvals=None)
    before = {t.id: t.status for t in board.tasks()}

    reply = await assistant.handle(SAM, "I finished the recruitment stuff")

    assert [r.question for r in asked] == [
        "Do you mean 1) Send out recruitment forms, 2) Book rooms for recruitment interviews "
        "or 3) Review recruitment form responses?"
    ]
    assert reply.text == "Nice work! Marked T3 'Book rooms for recruitment interviews' as done."
    after = {t.id: t.status for t in board.tasks()}
    assert after == {**before, "T3": "done"}  # exactly that task, nothing else
    [completed] = rec.of(TaskCompleted)
    assert (completed.task_id, completed.by) == ("T3", "sam")


async def test_update_flow_in_chat_matches_the_statement_and_confirms(make, board):
    assistant, _ = await make()

    reply = await assistant.handle(SAM, "I've just finished sending out the recruitment forms")

    assert reply.kind == "confirm" and isinstance(reply.question, ConfirmRequest)
    assert reply.question.question == "Do you mean 'Send out recruitment forms' (T1)? I'll mark it as done."
    assert board.task("T1").status == "todo"

    reply = await assistant.handle(SAM, "yes")

    assert reply.text == "Nice work! Marked T1 'Send out recruitment forms' as done."
    assert board.task("T1").status == "done"
    assert [t.id for t in board.active_tasks("sam")] == ["T3", "T2"]


async def test_choosing_none_changes_nothing(make, board):
    assistant, _ = await make()
    before = snapshot(board)
    reply = await assistant.handle(SAM, "I finished the recruitment stuff")
    assert reply.kind == "choice" and len(reply.options) == 3

    reply = await assistant.handle(SAM, "none of them")

    assert reply.text == "OK, I haven't changed anything. Which task did you finish?"
    assert snapshot(board) == before


# -- user verification ------------------------------------------------------------------


async def test_unknown_user_is_asked_for_their_email_verified_and_remembered(make, board):
    assistant, rec = await make()
    assert assistant.user_for(STRANGER) is None

    reply = await assistant.handle(STRANGER, "show me my tasks")

    assert reply.text == ASK_EMAIL
    assert [c[0] for c in await tools_called(assistant, STRANGER)] == ["whoami"]

    reply = await assistant.handle(STRANGER, "I'm priya@example.org")

    assert reply.text == (
        "Thanks! Verified: this Discord account belongs to Priya Natarajan (priya@example.org) from now on. "
        "What can I do for you?"
    )
    assert assistant.user_for(STRANGER).id == "priya"  # stored on the board
    [verified] = rec.of(UserVerified)
    assert (verified.platform_user_id, verified.user_id) == (STRANGER, "priya")

    reply = await assistant.handle(STRANGER, "show me my tasks")  # no second verification

    assert reply.text.startswith("Your active tasks:\n1. T7 Prepare Q3 budget review - Priya Natarajan")
    assert [c[0] for c in await tools_called(assistant, STRANGER)] == ["whoami", "verify_user", "find_tasks"]


async def test_an_email_not_on_the_board_is_refused_and_nothing_is_linked(make, board):
    assistant, _ = await make()
    reply = await assistant.handle(STRANGER, "it's nobody@example.org")
    assert reply.text.startswith("No board user has the email 'nobody@example.org'")
    assert assistant.user_for(STRANGER) is None


async def test_an_unverified_user_cannot_read_or_write_even_if_the_model_tries(board):
    # A model might skip verification: the session's missing grants stop it anyway.
    bus = MessageBus()
    manager = ToolManager(bus=bus)
    TaskTools(board, today=TODAY).register(manager)
    manager.set_access("s1", user=None, grants=())
    calls = [
        ToolCall.from_raw("c1", "find_tasks", json.dumps({"assignee": "Sam"})),
        ToolCall.from_raw("c2", "complete_task", json.dumps({"task": "T1"})),
        ToolCall.from_raw("c3", "whoami", "{}"),
    ]
    results = await manager.execute(calls, session_id="s1")
    assert [r.status for r in results] == ["denied", "denied", "ok"]
    assert "not verified yet" in results[2].content
    assert board.task("T1").status == "todo"


async def test_verification_is_remembered_across_a_restart(board, tmp_path):
    store_path = tmp_path / "chat.db"
    first = TaskAssistant(board, store=Store(store_path), today=TODAY)
    await first.handle(STRANGER, "hello")
    await first.handle(STRANGER, "I'm alex@example.org")
    session_id = (await first.engine(STRANGER)).session_id
    await first.close()
    board.close()

    reopened = SQLiteBoard(tmp_path / "board.db")
    second = TaskAssistant(reopened, store=Store(store_path), today=TODAY)
    try:
        reply = await second.handle(STRANGER, "who am I?")
        assert reply.text == "You are talking to Alex Morgan (id alex, alex@example.org), who may read and change tasks."
        engine = await second.engine(STRANGER)
        assert engine.session_id == session_id  # the same conversation, resumed
        assert [m.content for m in engine.history if m.role == "user"][:2] == ["hello", "I'm alex@example.org"]
    finally:
        await second.close()
        reopened.close()


# -- permissions -----------------------------------------------------------------------------


async def test_a_read_only_user_cannot_assign_or_complete(make, board):
    board.link_platform("discord", RILEY, "riley@example.org")
    assistant, rec = await make()
    before = snapshot(board)

    shown = await assistant.handle(RILEY, "show me Sam's tasks in Recruitment")
    assert shown.text.startswith("Sam Carter's active tasks in Recruitment:")  # reading is allowed

    assign = await assistant.handle(RILEY, "assign the budget review to Sam due Friday in Finance")
    complete = await assistant.handle(RILEY, "I finished the recruitment stuff")

    expected = "Sorry, you can't do that: '{}' needs 'tasks:write', which user 'riley' has not been granted. Ask a board admin for access."
    assert assign.text == expected.format("create_task") and not assign.waiting
    assert complete.text == expected.format("complete_task") and not complete.waiting
    assert snapshot(board) == before
    assert rec.of(ApprovalRequested) == []  # refused before anyone is asked
    denied = [e for e in rec.of(ToolPermissionChecked) if not e.granted]
    assert [e.tool_name for e in denied] == ["create_task", "complete_task"]


# -- other front ends and models ------------------------------------------------------------


def test_the_sync_api_drives_the_same_flows(board, tmp_path):
    assistant = TaskAssistant(board, store=Store(tmp_path / "chat.db"), today=TODAY)
    try:
        reply = assistant.handle_sync(SAM, "assign the budget review to Mei due Friday in Finance", timeout=10)
        assert reply.kind == "approval"
        reply = assistant.handle_sync(SAM, "y", timeout=10)
        assert reply.text.startswith("Done! Created T13")
        assert board.task("T13").assignee_id == "mei"
    finally:
        assistant.close_sync()


async def test_the_notebooks_approval_queue_can_answer_instead_of_the_chat(make, board):
    # approvals=None: the bus's own front end (here a global ApprovalQueue, as the notebook runtime has) decides.
    bus = MessageBus()
    queue = ApprovalQueue()
    queue.attach(bus)
    assistant, _ = await make(bus=bus, approvals=None)

    turn = asyncio.ensure_future(assistant.handle(MEI, "assign the budget review to Sam due Friday in Finance"))
    for _ in range(200):
        if queue.pending_approvals():
            break
        await asyncio.sleep(0.01)
    [request] = queue.pending_approvals()
    assert request.preview.startswith("I'm going to assign 'Budget review' to Sam Carter")
    queue.approve(request.call_id)
    reply = await asyncio.wait_for(turn, 10)
    assert reply.text.startswith("Done! Created T13")


async def test_a_real_model_client_uses_the_same_tools_and_prompt(make, board, fake_openai):
    # A real litellm client over HTTP to a local OpenAI-compatible server plays the model.
    fake_openai.add(
        WireReply(tool_calls=[ToolCallSpec("list_projects", {}, id="call_a")]),
        WireReply(tool_calls=[ToolCallSpec(
            "create_task", {"title": "Budget review", "assignee": "Sam", "project": "finance", "due": "Friday"},
            id="call_b",
        )]),
        WireReply("Assigned the budget review to Sam, due Friday."),
    )
    assistant, _ = await make(
        model="openai/gpt-4o-mini", llm_options={"api_base": fake_openai.base_url, "api_key": FAKE_API_KEY}
    )

    reply = await assistant.handle(MEI, "assign the budget review to Sam due Friday in Finance")
    assert reply.question.preview == "I'm going to assign 'Budget review' to Sam Carter due Fri 8 May 2026 in Finance - confirm?"
    reply = await assistant.handle(MEI, "yes")

    assert reply.text == "Assigned the budget review to Sam, due Friday."
    assert board.task("T13").project_id == "finance"
    first = fake_openai.requests[0].body
    assert sorted(t["function"]["name"] for t in first["tools"]) == [
        "complete_task", "create_task", "find_tasks", "list_projects", "verify_user", "whoami",
    ]
    assert "Current user: Mei Chen" in first["messages"][0]["content"]
    last = fake_openai.requests[2].body["messages"][-1]
    assert last["role"] == "tool" and last["content"].startswith("Created T13")


# -- the offline planner and chat answers ------------------------------------------------------


@pytest.mark.parametrize(
    "text, kind, fields",
    [
        ("I'm sam@example.org", "verify", {"email": "sam@example.org"}),
        ("show me Sam's tasks in Recruitment", "view", {"assignee": "Sam", "project": "Recruitment"}),
        ("what are my tasks?", "view", {"assignee": "me"}),
        ("list all tasks for Priya", "view", {"assignee": "Priya", "status": "all"}),
        (
            "assign the budget review to Sam due Friday in Finance",
            "assign",
            {"title": "Budget review", "assignee": "Sam", "due": "Friday", "project": "Finance"},
        ),
        (
            "/darcy assign posters to Jordan in the Recruitment project by next Friday",
            "assign",
            {"title": "Posters", "assignee": "Jordan", "project": "Recruitment", "due": "next Friday"},
        ),
        ("I've just finished sending out the recruitment forms", "complete", {"task": "sending out the recruitment forms"}),
        ("mark T3 as done", "complete", {"task": "T3"}),
        (
            "assign the minutes to mei@example.org in Finance",
            "assign",
            {"title": "Minutes", "assignee": "mei@example.org", "project": "Finance"},
        ),
        ("the budget review is done", "complete", {"task": "the budget review"}),
        ("what's the weather?", "unknown", {}),
    ],
)
def test_the_planner_reads_the_four_request_shapes(text, kind, fields):
    request = parse_request(text)
    assert (request.kind, request.fields) == (kind, fields)


def test_chat_answers_are_read_strictly():
    options = ["Send out recruitment forms", "Book rooms for recruitment interviews", "Review recruitment form responses"]
    assert [parse_choice(t, options) for t in ("2", "option 3", "the first one", "Book rooms")] == [
        options[1], options[2], options[0], options[1],
    ]
    assert [parse_choice(t, options) for t in ("4", "none", "recruitment", "yes")] == [None] * 4
    assert [parse_yes_no(t) for t in ("y", "Yes, go ahead", "no", "yes but on Monday", "maybe")] == [
        True, True, False, None, None,
    ]
    # Questions and a yes with anything but courtesy after it are unclear (None: not a yes).
    unclear = ["ok what does that do?", "okay so which project is that?", "sure, assign it to Jordan",
               "yeah right", "right?", "yes?", "ok what does that do exactly", "sure but later"]
    assert [parse_yes_no(t) for t in unclear] == [None] * len(unclear)
    clear = ["yes please", "Yep, do it", "OK, thank you!", "sure, go ahead", "yes please, go for it", "Sounds good."]
    assert [parse_yes_no(t) for t in clear] == [True] * len(clear)
    assert parse_choice("yes?", options[:1]) is None and parse_choice("yes", options[:1]) == options[0]
