"""Tool calls a stopped process left without an answer: settle them before the next turn goes on.

The store records each call around its execution: ``running`` before the
tool runs (``ToolStarted``), the result after (``ToolFinished``), keyed by the
session and the model's call id - the call's idempotency record.  When a turn
is resumed elsewhere (a worker died, a kernel restarted), each call of the
cut turn that has no answer in the history is settled by what the store says:

- a result was recorded but its message never written: the recorded result
  is used, the tool does not run again;
- it started and no result was recorded: it may have had its effect, so it
  is not run again; the model and the user are told its outcome is unknown.
  A tool declared ``idempotent=True`` runs again instead;
- it never started (undecided, or approved and not begun): it is presented
  again for a decision.
"""

from __future__ import annotations

from ..bus import MessageBus
from ..chat import ToolCall
from ..store import Store
from ..tools import ToolManager
from ..tools.events import ToolFinished
from ..tools.results import ToolResult

__all__ = ["settle_cut_calls", "UNKNOWN_OUTCOME", "ASK_AGAIN"]

UNKNOWN_OUTCOME = (
    "The outcome of this call is unknown: it started, but the process running it stopped before its result "
    "was recorded. It was not run again because it may already have had its effect; check before repeating it."
)
ASK_AGAIN = "this call was left undecided or unfinished when the session stopped; it may already have run"


async def settle_cut_calls(
    bus: MessageBus, store: Store, tools: ToolManager, session_id: str, unanswered: list[ToolCall]
) -> tuple[list[ToolCall], list[ToolCall]]:
    """Answer what the store can answer; return ``(run again, ask again)``."""
    rerun: list[ToolCall] = []
    ask: list[ToolCall] = []
    waiting = {call.id for call in unanswered}
    for record in store.tool_calls(session_id):
        if record.call_id not in waiting or record.result_message_id is not None:
            continue
        waiting.discard(record.call_id)
        call = record.call
        tool = tools.get(record.tool)
        if record.status in ("done", "error") and (record.result is not None or record.error is not None):
            await _answer(bus, session_id, call, record.result if record.status == "done" else record.error,
                          error=record.status == "error", outcome="recorded")
        elif record.status == "running" and not (tool is not None and tool.idempotent):
            await _answer(bus, session_id, call, UNKNOWN_OUTCOME, error=True, outcome="unknown")
        elif record.status == "running":
            rerun.append(call)
        elif record.status in ("requested", "approved"):
            ask.append(call)
    return rerun, ask


async def _answer(bus: MessageBus, session_id: str, call: ToolCall, content: str | None, *, error: bool,
                  outcome: str) -> None:
    # The journal writes the answer (and settles the call's record) as for any finished call.
    result = ToolResult(call_id=call.id, tool_name=call.name, content=content or "", status="error" if error else "ok",
                        is_error=error, metadata={"outcome": outcome})
    await bus.publish(ToolFinished(session_id=session_id, call_id=call.id, tool_name=call.name, result=result))
