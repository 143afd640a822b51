"""Step 4 of a tool call: ask for approval, and act only on a clear decision.

The request is announced by ``ApprovalRequested`` (every argument, a short
display id, the arguments' hash) and asked with a ``RequestApproval``
command; whoever answers (a queue a person decides through, a policy, a
test) returns an ``ApprovalDecision``.  Fail closed: no handler, an error,
a timeout, a malformed answer, or a decision made on other arguments than
the call has are all denials.  ``ApprovalDecided`` says what was decided,
by whom, with the edited arguments and the person's message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..chat import ToolCall
from ..messages import Event
from ..text import clip
from .approval import ApprovalDecision, MalformedDecision, parse_decision
from .commands import RequestApproval
from .events import ApprovalDecided, ApprovalExpired, ApprovalRequested, DecisionSource
from .pending import DisplayIds, args_hash
from .results import ToolResult
from .schema import ArgumentsInvalid, ValidatedArguments
from .tool import Tool

if TYPE_CHECKING:
    from ..bus import MessageBus

__all__ = ["ask_approval", "request_decision", "Run", "ApprovalHost"]

log = logging.getLogger("llmgine_nb.tools")


@dataclass(frozen=True)
class Run:
    """Who is calling, and on which bus: resolved once per ``execute``."""

    session_id: str | None
    user: str | None
    grants: frozenset[str]
    bus: MessageBus | None = None  # where this run's events go and its questions are asked
    ask_again: str | None = None  # why every call must be approved, whatever its policy

    async def publish(self, event: Event) -> None:
        if self.bus is not None:
            await self.bus.publish(event)


class ApprovalHost(Protocol):
    """What asking for approval needs of the tool manager."""

    approval_timeout: float | None
    display_ids: DisplayIds

    def always_allowed(self, session_id: str | None) -> frozenset[str]: ...

    def allow_always(self, session_id: str | None, tool_name: str) -> None: ...


async def ask_approval(
    manager: ApprovalHost, tool: Tool, call: ToolCall, validated: ValidatedArguments, run: Run, why: str
) -> ToolResult | tuple[ValidatedArguments, str]:
    """Ask for approval; the (possibly edited) arguments and a note, or the denial result."""
    base: dict[str, Any] = {"call_id": call.id, "tool_name": call.name, "session_id": run.session_id}
    if tool.remember_approval and tool.name in manager.always_allowed(run.session_id):
        await run.publish(ApprovalDecided(
            decision="always", approved=True, source="session",
            reason=f"'{tool.name}' was approved for every call in this session", **base
        ))
        return validated, ""

    display_id = manager.display_ids.allocate(run.session_id, call.id)
    try:
        request = RequestApproval(
            call_id=call.id, tool_name=tool.name, arguments=validated.data, risk=tool.risk, reason=why,
            permissions=sorted(tool.permissions), description=tool.description,
            preview=tool.preview(validated.data), allow_always=tool.remember_approval, session_id=run.session_id,
            display_id=display_id, args_hash=args_hash(validated.data),
        )
        await run.publish(ApprovalRequested(
            arguments=validated.data, risk=tool.risk, reason=why, preview=request.preview, request_id=request.id,
            display_id=display_id, args_hash=request.args_hash, description=tool.description,
            permissions=request.permissions, allow_always=request.allow_always, **base
        ))
        decision, source, failure = await request_decision(run.bus, request, manager.approval_timeout)
        if source == "timeout":
            await run.publish(ApprovalExpired(display_id=display_id, request_id=request.id, reason=failure, **base))
    finally:
        manager.display_ids.release(run.session_id, display_id)
    base["display_id"] = display_id
    decided_by = decision.decided_by if decision is not None else None

    if decision is None or not decision.approved:
        message = decision.message if decision is not None else None
        await run.publish(ApprovalDecided(
            decision="deny", approved=False, source=source, message=message, reason=failure or "denied",
            decided_by=decided_by, **base
        ))
        if decision is None:
            content = f"This call of '{tool.name}' needs approval and none was given ({failure}), so it was not run."
        else:
            content = f"The user denied this call of '{tool.name}', so it was not run."
            if message:
                content += f" Their message: {message}"
        return ToolResult(
            call_id=call.id, tool_name=tool.name, status="denied", is_error=True, content=content,
            arguments=validated.data, metadata={"denied_by": decided_by or source},
        )

    note = ""
    if decision.kind == "edit":
        assert decision.arguments is not None
        try:
            validated = tool.validate(decision.arguments)
        except ArgumentsInvalid as exc:
            await run.publish(ApprovalDecided(
                decision="edit", approved=False, source=source, message=decision.message,
                arguments=decision.arguments, reason="the edited arguments are invalid", decided_by=decided_by,
                **base
            ))
            return ToolResult(
                call_id=call.id, tool_name=tool.name, status="invalid", is_error=True,
                content=f"The user edited the arguments, but the edit is invalid, so the call was not run.\n{exc}",
                arguments=decision.arguments,
            )
        note = f"(The user changed the arguments before approving; it ran with {clip(str(validated.data), 200, note=True)}.)"
    reason = "approved"
    if decision.kind == "always":
        if tool.remember_approval:
            manager.allow_always(run.session_id, tool.name)
            reason = f"approved, and '{tool.name}' is allowed without asking for the rest of this session"
        else:
            reason = f"approved once: '{tool.name}' asks before every call"
    await run.publish(ApprovalDecided(
        decision=decision.kind, approved=True, source=source, message=decision.message,
        arguments=validated.data if decision.kind == "edit" else None, reason=reason, decided_by=decided_by, **base
    ))
    return validated, note


async def request_decision(
    bus: MessageBus | None, request: RequestApproval, timeout: float | None
) -> tuple[ApprovalDecision | None, DecisionSource, str]:
    """Ask ``request`` on ``bus``: (decision or None, where it came from, why there is none).  Fails closed.

    A decision whose ``args_hash`` is not the request's was made on other
    arguments than would run: no decision.
    """
    if bus is None:
        return None, "no_handler", "no bus is attached to ask for approval"
    try:
        result = await asyncio.wait_for(bus.execute(request), timeout)
    except asyncio.TimeoutError:
        return None, "timeout", f"no decision within {timeout:g} s"
    if not result.success:
        if result.traceback is None:  # the bus found no handler (a handler error carries its traceback)
            return None, "no_handler", "no approval handler is attached"
        return None, "handler_error", f"the approval handler failed: {result.error}"
    try:
        decision = parse_decision(result.result)
    except MalformedDecision as exc:
        log.warning("approval of call %s: %s; denied", request.call_id, exc)
        return None, "malformed", f"the answer was not a clear decision: {exc}"
    if decision.args_hash is not None and request.args_hash and decision.args_hash != request.args_hash:
        log.warning("approval of call %s was made on other arguments; denied", request.call_id)
        return None, "arguments_changed", "the decision was made on other arguments than the call has"
    return decision, "handler", ""

