"""Verification before execution: order of steps, permissions, impact, approval decisions, failing closed."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmgine_nb import MessageBus
from llmgine_nb.chat import ToolCall
from llmgine_nb.tools import (
    ApprovalDecided,
    ApprovalDecision,
    ApprovalQueue,
    AutoApproval,
    MalformedDecision,
    RequestApproval,
    ToolContext,
    ToolEvent,
    ToolFinished,
    ToolImpactAssessed,
    ToolManager,
    ToolStarted,
    tool,
)


def call(name: str, raw: str = "{}", id: str | None = None) -> ToolCall:
    return ToolCall.from_raw(id or f"call_{name}", name, raw)


class Board:
    """A tiny task board whose tools record what really ran."""

    def __init__(self) -> None:
        self.tasks: dict[int, str] = {1: "tea", 2: "milk"}
        self.ran: list[tuple[str, dict]] = []

    @tool(risk="read", permissions={"tasks:read"})
    def list_tasks(self) -> dict:
        """List the tasks."""
        self.ran.append(("list_tasks", {}))
        return self.tasks

    @tool(risk="write", permissions={"tasks:write"})
    def add_task(self, title: str) -> int:
        """Add a task."""
        self.ran.append(("add_task", {"title": title}))
        new_id = max(self.tasks) + 1
        self.tasks[new_id] = title
        return new_id

    @tool(risk="destructive", permissions={"tasks:write"})
    def delete_task(self, task_id: int) -> str:
        """Delete a task."""
        self.ran.append(("delete_task", {"task_id": task_id}))
        return f"deleted {self.tasks.pop(task_id)}"


def setup(handler=None, *, grants=("tasks:*",), approval_timeout=5.0):
    bus = MessageBus()
    log: list = []
    bus.subscribe(ToolEvent, log.append)
    board = Board()
    manager = ToolManager(bus=bus, grants=grants, approval_timeout=approval_timeout)
    manager.register_object(board)
    if handler is not None:

        async def recording(request: RequestApproval):
            log.append(request)
            answer = handler(request)
            return await answer if asyncio.iscoroutine(answer) else answer

        bus.register_command_handler(RequestApproval, recording)
    return bus, manager, board, log


def names(log: list) -> list[str]:
    return [type(item).__name__ for item in log]


# -- the order of the steps ------------------------------------------------------


async def test_steps_happen_in_order_each_as_an_event():
    bus, manager, board, log = setup(lambda r: ApprovalDecision.approve())
    result = await manager.execute_one(call("delete_task", '{"task_id": "2"}', "c1"))
    assert result.status == "ok" and result.content == "deleted milk"
    assert names(log) == [
        "ToolCallRequested",
        "ToolArgumentsValidated",
        "ToolPermissionChecked",
        "ToolImpactAssessed",
        "ApprovalRequested",
        "RequestApproval",  # the command the front end answered
        "ApprovalDecided",
        "ToolStarted",
        "ToolFinished",
    ]
    validated, permission, impact, requested, command, decided = log[1:7]
    assert validated.arguments == {"task_id": 2}  # coerced before anything else looks at it
    assert permission.required == ["tasks:write"] and permission.granted
    assert (impact.risk, impact.policy, impact.requires_approval) == ("destructive", "always", True)
    assert command.call_id == "c1" and command.arguments == {"task_id": 2} and command.risk == "destructive"
    assert command.reason == impact.reason == requested.reason
    assert (decided.decision, decided.approved, decided.source) == ("approve", True, "handler")
    assert all(e.call_id == "c1" for e in log if isinstance(e, ToolEvent))


async def test_invalid_arguments_stop_before_permissions_and_approval():
    bus, manager, board, log = setup(lambda r: ApprovalDecision.approve())
    result = await manager.execute_one(call("delete_task", '{"task_id": "two"}'))
    assert result.status == "invalid" and board.ran == []
    assert names(log) == ["ToolCallRequested", "ToolValidationFailed", "ToolFinished"]


async def test_read_tools_run_without_asking():
    bus, manager, board, log = setup(lambda r: pytest.fail("a read tool must not ask"))
    result = await manager.execute_one(call("list_tasks"))
    assert result.status == "ok"
    assert names(log) == [
        "ToolCallRequested", "ToolArgumentsValidated", "ToolPermissionChecked", "ToolImpactAssessed", "ToolStarted", "ToolFinished",
    ]
    assert (log[3].risk, log[3].policy, log[3].requires_approval) == ("read", "never", False)


# -- permissions -------------------------------------------------------------------


async def test_a_missing_grant_is_a_denial_with_a_reason_before_any_approval():
    bus, manager, board, log = setup(lambda r: ApprovalDecision.approve(), grants={"tasks:read"})
    manager.user = "ann"
    manager.grants = frozenset({"tasks:read"})
    result = await manager.execute_one(call("add_task", '{"title": "x"}'))
    assert result.status == "denied" and board.ran == []
    assert result.content == "Permission denied: 'add_task' needs 'tasks:write', which user 'ann' has not been granted, so the call was not run."
    assert names(log) == ["ToolCallRequested", "ToolArgumentsValidated", "ToolPermissionChecked", "ToolFinished"]
    check = log[2]
    assert (check.granted, check.missing, check.user) == (False, ["tasks:write"], "ann")


async def test_grants_come_from_the_call_the_session_or_the_manager():
    bus, manager, board, log = setup(AutoApproval.approve_all(), grants=())
    r = await manager.execute_one(call("list_tasks"), session_id="s1")
    assert r.status == "denied"
    manager.grant("s1", "tasks:read")
    assert (await manager.execute_one(call("list_tasks"), session_id="s1")).status == "ok"
    assert (await manager.execute_one(call("list_tasks"), session_id="s2")).status == "denied"
    assert (await manager.execute_one(call("list_tasks"), session_id="s2", grants={"*"})).status == "ok"
    manager.set_access("s3", user="bob", grants={"tasks:*"})
    assert (await manager.execute_one(call("add_task", '{"title": "t"}'), session_id="s3")).status == "ok"
    manager.revoke("s1", "tasks:read")
    assert (await manager.execute_one(call("list_tasks"), session_id="s1")).status == "denied"
    assert manager.grants_for("s3") == frozenset({"tasks:*"})


# -- impact and policies ------------------------------------------------------------------


async def test_policy_functions_decide_per_call_and_fail_closed():
    asked = []

    @tool(risk="write", approval=lambda args, ctx: args["amount"] > 100)
    def pay(amount: int) -> str:
        """Pay."""
        return f"paid {amount}"

    @tool(approval=lambda args: args["amount"] > 100)  # one-argument form
    def pay_small(amount: int) -> str:
        """Pay small."""
        return f"paid {amount}"

    @tool(approval=lambda args, ctx: 1 / 0)
    def broken_policy() -> str:
        """Policy raises."""
        return "ran"

    @tool(approval=lambda args, ctx: "maybe")
    def vague_policy() -> str:
        """Policy is vague."""
        return "ran"

    async def async_policy(args, ctx: ToolContext) -> bool:
        return ctx.user != "admin"

    @tool(approval=async_policy)
    def admin_only() -> str:
        """Admin skips approval."""
        return "ran"

    bus = MessageBus()
    impacts = []
    bus.subscribe(ToolImpactAssessed, impacts.append)
    bus.register_command_handler(RequestApproval, lambda r: asked.append(r.tool_name) or ApprovalDecision.deny())
    manager = ToolManager([pay, pay_small, broken_policy, vague_policy, admin_only], bus=bus)
    results = await manager.execute(
        [call("pay", '{"amount": 5}', "a"), call("pay", '{"amount": 500}', "b"), call("pay_small", '{"amount": 500}', "c"),
         call("broken_policy", "{}", "d"), call("vague_policy", "{}", "e")]
    )
    assert [r.status for r in results] == ["ok", "denied", "denied", "denied", "denied"]
    assert sorted(asked) == ["broken_policy", "pay", "pay_small", "vague_policy"]
    reasons = {i.call_id: i.reason for i in impacts}
    assert "failed (ZeroDivisionError" in reasons["d"] and "returned 'maybe'" in reasons["e"]
    assert (await manager.execute_one(call("admin_only"), user="admin")).status == "ok"
    assert (await manager.execute_one(call("admin_only"), user="ann")).status == "denied"


def test_default_policy_by_risk():
    from llmgine_nb.tools import DEFAULT_APPROVAL

    assert DEFAULT_APPROVAL == {"read": "never", "write": "always", "destructive": "always"}


# -- every decision kind ---------------------------------------------------------------------


async def test_approve():
    bus, manager, board, log = setup(lambda r: ApprovalDecision.approve())
    result = await manager.execute_one(call("add_task", '{"title": "bread"}'))
    assert (result.status, result.value) == ("ok", 3) and board.ran == [("add_task", {"title": "bread"})]


async def test_deny_with_a_message_for_the_model():
    bus, manager, board, log = setup(lambda r: ApprovalDecision.deny("Keep the milk task; delete nothing today."))
    result = await manager.execute_one(call("delete_task", '{"task_id": 2}'))
    assert board.ran == [] and result.status == "denied" and result.is_error
    assert result.content == (
        "The user denied this call of 'delete_task', so it was not run. Their message: Keep the milk task; delete nothing today."
    )
    decided = [e for e in log if isinstance(e, ApprovalDecided)][0]
    assert (decided.decision, decided.approved, decided.message) == ("deny", False, "Keep the milk task; delete nothing today.")
    assert "ToolStarted" not in names(log)


async def test_approve_with_edited_arguments_validates_them_again():
    bus, manager, board, log = setup(lambda r: ApprovalDecision.edit({"task_id": "1"}))
    result = await manager.execute_one(call("delete_task", '{"task_id": 2}'))
    assert board.ran == [("delete_task", {"task_id": 1})]  # coerced by the same model
    assert result.content.startswith("(The user changed the arguments before approving; it ran with {'task_id': 1}.)")
    assert result.arguments == {"task_id": 1}
    decided = [e for e in log if isinstance(e, ApprovalDecided)][0]
    assert (decided.decision, decided.approved, decided.arguments) == ("edit", True, {"task_id": 1})
    started = [e for e in log if isinstance(e, ToolStarted)][0]
    assert started.arguments == {"task_id": 1}


async def test_an_invalid_edit_is_not_run():
    bus, manager, board, log = setup(lambda r: ApprovalDecision.edit({"task_id": "all of them"}))
    result = await manager.execute_one(call("delete_task", '{"task_id": 2}'))
    assert board.ran == [] and result.status == "invalid"
    assert result.content.startswith("The user edited the arguments, but the edit is invalid, so the call was not run.")
    assert "- task_id: Input should be a valid integer" in result.content
    decided = [e for e in log if isinstance(e, ApprovalDecided)][0]
    assert (decided.decision, decided.approved) == ("edit", False)
    assert "ToolStarted" not in names(log)


async def test_always_allow_is_remembered_for_the_session_only():
    asked = []
    bus, manager, board, log = setup(lambda r: asked.append(r.session_id) or ApprovalDecision.always())
    for i in range(3):
        assert (await manager.execute_one(call("add_task", f'{{"title": "t{i}"}}', f"a{i}"), session_id="s1")).status == "ok"
    assert asked == ["s1"]
    assert manager.always_allowed("s1") == frozenset({"add_task"})
    remembered = [e for e in log if isinstance(e, ApprovalDecided) and e.source == "session"]
    assert [e.call_id for e in remembered] == ["a1", "a2"]
    # another tool in the same session, and the same tool in another session, ask again
    await manager.execute_one(call("delete_task", '{"task_id": 1}'), session_id="s1")
    await manager.execute_one(call("add_task", '{"title": "x"}'), session_id="s2")
    assert asked == ["s1", "s1", "s2"]
    manager.forget_session("s1")
    await manager.execute_one(call("add_task", '{"title": "y"}'), session_id="s1")
    assert asked == ["s1", "s1", "s2", "s1"]


async def test_always_is_a_one_time_approval_for_tools_that_forbid_remembering():
    @tool(approval="always", remember_approval=False)
    def launch() -> str:
        """Launch."""
        return "launched"

    bus = MessageBus()
    requests = []
    bus.register_command_handler(RequestApproval, lambda r: requests.append(r) or "always")
    manager = ToolManager([launch], bus=bus)
    for _ in range(2):
        assert (await manager.execute_one(call("launch"))).status == "ok"
    assert len(requests) == 2 and requests[0].allow_always is False
    assert manager.always_allowed(None) == frozenset()


@pytest.mark.parametrize(
    ("answer", "runs"),
    [("approve", True), ("always", True), ("deny", False), ({"kind": "approve"}, True), ({"kind": "deny", "message": "no"}, False),
     ({"kind": "edit", "arguments": {"title": "edited"}}, True)],
)
async def test_decisions_may_arrive_as_plain_words_or_dicts(answer, runs):
    bus, manager, board, log = setup(lambda r: answer)
    result = await manager.execute_one(call("add_task", '{"title": "x"}'))
    assert (result.status == "ok") is runs and bool(board.ran) is runs


# -- failing closed ------------------------------------------------------------------------------


async def test_no_bus_means_no_approval():
    board = Board()
    manager = ToolManager(grants={"tasks:*"})
    manager.register_object(board)
    result = await manager.execute_one(call("delete_task", '{"task_id": 1}'))
    assert board.ran == [] and result.status == "denied"
    assert result.content == "This call of 'delete_task' needs approval and none was given (no bus is attached to ask for approval), so it was not run."


async def test_no_handler_attached_is_a_denial():
    bus, manager, board, log = setup(None)
    result = await manager.execute_one(call("delete_task", '{"task_id": 1}'))
    assert board.ran == [] and result.status == "denied" and "no approval handler is attached" in result.content
    decided = [e for e in log if isinstance(e, ApprovalDecided)][0]
    assert (decided.approved, decided.source) == (False, "no_handler")


async def test_a_timeout_is_a_denial():
    async def slow(request):
        await asyncio.sleep(10)
        return ApprovalDecision.approve()

    bus, manager, board, log = setup(slow, approval_timeout=0.05)
    result = await manager.execute_one(call("delete_task", '{"task_id": 1}'))
    assert board.ran == [] and result.status == "denied" and "no decision within 0.05 s" in result.content
    assert [e for e in log if isinstance(e, ApprovalDecided)][0].source == "timeout"


async def test_a_handler_error_is_a_denial():
    def explode(request):
        raise RuntimeError("widget crashed")

    bus, manager, board, log = setup(explode)
    result = await manager.execute_one(call("delete_task", '{"task_id": 1}'))
    assert board.ran == [] and result.status == "denied"
    assert "the approval handler failed: RuntimeError: widget crashed" in result.content
    assert [e for e in log if isinstance(e, ApprovalDecided)][0].source == "handler_error"


@pytest.mark.parametrize(
    "answer",
    [True, 1, "yes", "y", None, {"kind": "maybe"}, {"kind": "edit"}, {"kind": "approve", "arguments": {"task_id": 9}},
     {"kind": "approve", "extra": 1}, ["approve"], ApprovalDecision],
    ids=["true", "one", "yes", "y", "none", "unknown-kind", "edit-without-arguments", "approve-with-arguments", "extra-key", "list", "class"],
)
async def test_malformed_or_ambiguous_answers_are_denials(answer):
    bus, manager, board, log = setup(lambda r: answer)
    result = await manager.execute_one(call("delete_task", '{"task_id": 1}'))
    assert board.ran == [] and result.status == "denied"
    source = [e for e in log if isinstance(e, ApprovalDecided)][0].source
    if answer is ApprovalDecision and "cannot cross the wire" in result.content:
        assert source == "handler_error"  # on the wire test's bus a class is not even a sendable answer
    else:
        assert "not a clear decision" in result.content and source == "malformed"


def test_decisions_refuse_ambiguity_when_built():
    with pytest.raises(ValueError):
        ApprovalDecision(kind="edit")
    with pytest.raises(ValueError):
        ApprovalDecision(kind="approve", arguments={"a": 1})
    with pytest.raises(MalformedDecision):
        from llmgine_nb.tools import parse_decision

        parse_decision("ok")


# -- ready-made handlers -------------------------------------------------------------------------------


async def test_auto_approval_rules():
    bus, manager, board, log = setup(None)
    auto = AutoApproval(lambda request: request.risk != "destructive")
    handle = auto.attach(bus)
    r1, r2 = await manager.execute([call("add_task", '{"title": "a"}', "c1"), call("delete_task", '{"task_id": 1}', "c2")])
    assert (r1.status, r2.status) == ("ok", "denied")
    assert [r.call_id for r in auto.requests] == ["c1", "c2"]
    handle.unregister()
    AutoApproval.deny_all("not today").attach(bus)
    r3 = await manager.execute_one(call("add_task", '{"title": "b"}'))
    assert r3.content.endswith("Their message: not today")


async def test_approval_queue_waits_for_decisions_by_call_id():
    bus, manager, board, log = setup(None)
    queue = ApprovalQueue()
    queue.attach(bus)
    running = asyncio.ensure_future(
        manager.execute([call("add_task", '{"title": "a"}', "call_abc1"), call("delete_task", '{"task_id": 2}', "call_xyz9")])
    )
    while len(queue.pending()) < 2:
        await asyncio.sleep(0.005)
    assert [r.call_id for r in queue.pending_approvals()] == ["call_abc1", "call_xyz9"]
    with pytest.raises(LookupError, match="at least 6 characters of the call's id after its provider prefix"):
        queue.approve("call_")
    with pytest.raises(LookupError, match="nothing is waiting for approval with id 'nope'"):
        queue.approve("nope")
    with pytest.raises(MalformedDecision):
        queue.decide("call_abc1", "yes please")
    assert len(queue.pending()) == 2  # a malformed decision leaves the request pending
    with pytest.raises(LookupError, match="at least 6 characters"):
        queue.approve("call_a")  # unique, but only the provider's prefix and one character
    first = queue.pending_approvals()[0]
    assert len(first.display_id) == 4 and first.display_id != queue.pending_approvals()[1].display_id
    queue.approve(first.display_id)  # the id shown on the card
    queue.deny("call_xyz9", "not that one")
    r1, r2 = await running
    assert (r1.status, r2.status) == ("ok", "denied") and "not that one" in r2.content
    assert queue.pending() == []


def test_approval_queue_decides_from_another_thread():
    bus, manager, board, log = setup(None)
    queue = ApprovalQueue()
    queue.attach(bus)
    future = bus.background.submit(manager.execute([call("delete_task", '{"task_id": 1}', "c1")]))
    deadline = time.monotonic() + 5
    while not queue.pending() and time.monotonic() < deadline:
        time.sleep(0.005)
    queue.edit("c1", {"task_id": 2})  # from the test's thread, as a notebook cell would
    [result] = future.result(5)
    assert result.status == "ok" and board.ran == [("delete_task", {"task_id": 2})]
    bus.close()


async def test_approval_queue_forgets_requests_that_timed_out_and_can_deny_all():
    bus, manager, board, log = setup(None, approval_timeout=0.05)
    queue = ApprovalQueue()
    queue.attach(bus)
    assert (await manager.execute_one(call("delete_task", '{"task_id": 1}'))).status == "denied"
    assert queue.pending() == []
    manager.approval_timeout = 5
    running = asyncio.ensure_future(manager.execute_one(call("delete_task", '{"task_id": 1}')))
    while not queue.pending():
        await asyncio.sleep(0.005)
    assert queue.deny_all() == 1
    assert (await running).status == "denied" and board.ran == []


async def test_approval_queue_answers_tool_questions():
    async def pick(ctx: ToolContext) -> str | None:
        """Pick one."""
        if not await ctx.confirm("Look for tasks?"):
            return None
        return await ctx.choose("Did you mean", ["milk", "silk"])

    bus = MessageBus()
    queue = ApprovalQueue()
    queue.attach(bus)
    manager = ToolManager([pick], bus=bus)
    running = asyncio.ensure_future(manager.execute_one(call("pick", id="c7")))
    while not queue.pending_questions():
        await asyncio.sleep(0.005)
    queue.answer("c7", True)
    while not any(q.question == "Did you mean" for q in queue.pending_questions()):
        await asyncio.sleep(0.005)
    queue.answer(queue.pending_questions()[0].id, "silk")
    assert (await running).value == "silk"


async def test_a_short_prefix_never_picks_a_request_and_an_ambiguous_one_names_the_matches():
    bus, manager, board, log = setup(None)
    queue = ApprovalQueue()
    queue.attach(bus)
    running = asyncio.ensure_future(manager.execute([
        call("add_task", '{"title": "a"}', "k7-add-the-task"),
        call("add_task", '{"title": "b"}', "call_abc1"),
        call("delete_task", '{"task_id": 2}', "call_abd2"),
    ]))
    while len(queue.pending()) < 3:
        await asyncio.sleep(0.005)
    for short in ("k", "k7", "k7-ad", "call_ab", "call_abd"):  # too short (after call_) to be sure whose it is
        with pytest.raises(LookupError, match="at least 6 characters of the call's id after its provider prefix"):
            queue.approve(short)
    assert len(queue.pending()) == 3  # nothing was decided by the refused ids
    # Front ends look requests up by the same rule before showing or answering them.
    assert queue.find_approval("k7-add").tool_name == "add_task"
    with pytest.raises(LookupError, match="nothing is waiting for approval with id 'call_abd2'"):
        queue.find_approval("call_abd2", session_id="another-session")
    queue.approve("k7-add")  # six characters, unique
    queue.approve("call_abc1")  # whole ids always work
    queue.deny(queue.find_approval("call_abd2").display_id)
    r1, r2, r3 = await running
    assert (r1.status, r2.status, r3.status) == ("ok", "ok", "denied")
    assert board.ran == [("add_task", {"title": "a"}), ("add_task", {"title": "b"})]


class Vault:
    """A sync tool that asks before it wipes; records what it was told and did."""

    def __init__(self) -> None:
        self.told: list = []
        self.wiped = False

    @tool(risk="read")
    def wipe(self, ctx: ToolContext) -> str:
        """Wipe the vault, after asking."""
        answer = ctx.confirm_sync("Wipe the vault?")
        self.told.append(answer)
        if answer:
            self.wiped = True
        return "wiped" if answer else "kept"


async def _late_answer_after(end_the_call, timeout: float | None = None) -> Vault:
    """Start wipe, let the question wait in an ApprovalQueue, end the call, then answer yes."""
    bus = MessageBus()
    queue = ApprovalQueue()
    queue.attach(bus)
    vault = Vault()
    manager = ToolManager(bus=bus, question_timeout=30)
    manager.register(vault.wipe, timeout=timeout)
    running = asyncio.ensure_future(manager.execute_one(call("wipe", id="call_vault1")))
    while not queue.pending_questions():
        await asyncio.sleep(0.005)
    await end_the_call(manager, running)
    withdrawn = not queue.pending()
    try:
        queue.answer("call_vault1", True)  # the person answers after the call is over
        late = "accepted"
    except LookupError:
        late = "refused"
    deadline = time.monotonic() + 5
    while not vault.told and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    manager.close()
    assert withdrawn, "the question should leave the queue when its call ends"
    assert late == "refused"
    return vault


async def test_a_cancelled_sync_tool_cannot_act_on_a_late_answer():
    async def cancel(manager, running):
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    vault = await _late_answer_after(cancel)
    assert vault.told == [False] and not vault.wiped


async def test_a_timed_out_sync_tool_cannot_act_on_a_late_answer():
    async def time_out(manager, running):
        result = await running
        assert result.status == "timeout"

    vault = await _late_answer_after(time_out, timeout=0.2)
    assert vault.told == [False] and not vault.wiped


# -- the property: nothing that needs approval runs without an approving decision ----------------------

BEHAVIOURS = [
    "approve", "always", "edit_valid",  # approving
    "deny", "deny_message", "edit_invalid", "timeout", "raise", "no_handler",
    "malformed_true", "malformed_word", "malformed_dict", "edit_without_arguments", "approve_with_arguments", "none",
]
APPROVING = {"approve", "always", "edit_valid"}

step = st.tuples(
    st.sampled_from(["guarded", "by_amount", "free"]),
    st.integers(min_value=0, max_value=20),
    st.sampled_from(BEHAVIOURS),
)
# a plan: model replies, each in a session, each with one to three tool calls
replies = st.lists(st.tuples(st.sampled_from(["s1", "s2"]), st.lists(step, min_size=1, max_size=3)), min_size=1, max_size=6)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(replies)
def test_no_call_that_needs_approval_runs_without_an_approving_decision(plan):
    asyncio.run(_scenario(plan))


async def _scenario(plan):
    clock = itertools.count()
    ran: dict[str, tuple[int, int]] = {}  # call id -> (when, amount it ran with)
    answered: dict[str, tuple[int, str]] = {}  # call id -> (when, behaviour the front end chose)
    behaviour_of: dict[str, str] = {}
    meta: dict[str, tuple[str, int, str]] = {}  # call id -> (tool, amount, session)

    def make(name):
        def body(amount: int, ctx: ToolContext) -> int:
            ran[ctx.call_id] = (next(clock), amount)
            return amount

        body.__name__ = name
        return body

    bus = MessageBus()
    events: list = []
    bus.subscribe(ToolEvent, events.append)
    manager = ToolManager(bus=bus, approval_timeout=0.01)
    manager.register(make("guarded"), approval="always")
    manager.register(make("by_amount"), approval=lambda args, ctx: args["amount"] > 10)
    manager.register(make("free"), approval="never")

    async def front_end(request: RequestApproval):
        behaviour = behaviour_of[request.call_id]
        answered[request.call_id] = (next(clock), behaviour)
        if behaviour == "timeout":
            await asyncio.sleep(1)
        if behaviour == "raise":
            raise RuntimeError("front end crashed")
        return {
            "approve": ApprovalDecision.approve(),
            "always": ApprovalDecision.always(),
            "edit_valid": ApprovalDecision.edit({"amount": request.arguments["amount"] + 100}),
            "deny": ApprovalDecision.deny(),
            "deny_message": {"kind": "deny", "message": "no"},
            "edit_invalid": ApprovalDecision.edit({"amount": "lots"}),
            "malformed_true": True,
            "malformed_word": "sure",
            "malformed_dict": {"kind": "approve!"},
            "edit_without_arguments": {"kind": "edit"},
            "approve_with_arguments": {"kind": "approve", "arguments": {"amount": 1}},
            "none": None,
        }[behaviour]

    numbers = itertools.count()
    for session, reply in plan:
        calls = []
        for tool_name, amount, behaviour in reply:
            call_id = f"c{next(numbers)}"
            behaviour_of[call_id] = behaviour
            meta[call_id] = (tool_name, amount, session)
            calls.append(ToolCall.from_raw(call_id, tool_name, f'{{"amount": {amount}}}'))
        # "no_handler": no front end is attached while this reply runs
        no_handler = any(behaviour == "no_handler" for _, _, behaviour in reply)
        registration = None if no_handler else bus.register_command_handler(RequestApproval, front_end)
        results = await manager.execute(calls, session_id=session)
        if registration is not None:
            registration.unregister()
        for result in results:
            tool_name, amount, sess = meta[result.call_id]
            needs = tool_name == "guarded" or (tool_name == "by_amount" and amount > 10)
            if result.call_id in ran:
                assert result.status == "ok"
            else:
                assert result.status in ("denied", "invalid") and "not run" in result.content
            if not needs:
                assert result.call_id in ran
                continue
            if result.call_id in ran:
                when, ran_amount = ran[result.call_id]
                own = answered.get(result.call_id)
                approved_itself = own is not None and own[1] in APPROVING and own[0] < when
                standing = any(
                    b == "always" and meta[other][0] == tool_name and meta[other][2] == sess and t < when
                    for other, (t, b) in answered.items()
                )
                assert approved_itself or standing, (result.call_id, own, answered)
                if own is not None and own[1] == "edit_valid":
                    assert ran_amount == amount + 100
            elif result.call_id in answered and answered[result.call_id][1] in APPROVING:
                # An approving answer runs the call, unless it came too late (a stalled
                # machine can push even an instant answer past the 10 ms timeout).
                decided = [e for e in events if isinstance(e, ApprovalDecided) and e.call_id == result.call_id]
                assert decided and decided[-1].source == "timeout", f"{result.call_id} was approved but did not run"
    # the events agree: a ToolStarted of a call that needed approval follows an approving ApprovalDecided
    for index, event in enumerate(events):
        if isinstance(event, ToolStarted):
            impact = next(e for e in events[:index] if isinstance(e, ToolImpactAssessed) and e.call_id == event.call_id)
            if impact.requires_approval:
                assert any(
                    isinstance(e, ApprovalDecided) and e.call_id == event.call_id and e.approved for e in events[:index]
                )
    assert len([e for e in events if isinstance(e, ToolStarted)]) == len(ran)
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert len(finished) == len(meta)
