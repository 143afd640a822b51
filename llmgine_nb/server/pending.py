"""What waits for a session's owner, as plain JSON: approvals and tool questions.

One small place that reads the approval queue, so that the switch to the
approval/question events of the shared interface touches only this file.
"""

from __future__ import annotations

from typing import Any

from ..tools import ApprovalQueue
from ..tools.commands import ChoiceRequest, ConfirmRequest, RequestApproval

__all__ = ["pending_items"]


def pending_items(approvals: ApprovalQueue, session_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for request in approvals.pending():
        if request.session_id != session_id:
            continue
        if isinstance(request, RequestApproval):
            items.append({
                "kind": "approval", "id": request.call_id, "call_id": request.call_id,
                "display_id": request.display_id or None, "args_hash": request.args_hash or None,
                "tool_name": request.tool_name, "arguments": request.arguments, "risk": request.risk,
                "reason": request.reason, "preview": request.preview, "allow_always": request.allow_always,
                "turn_id": request.metadata.get("turn_id"),
            })
        elif isinstance(request, (ConfirmRequest, ChoiceRequest)):
            items.append({
                "kind": "choice" if isinstance(request, ChoiceRequest) else "confirm",
                "id": request.id, "call_id": request.call_id, "tool_name": request.tool_name,
                "display_id": request.display_id or None,
                "question": request.question,
                "options": list(request.options) if isinstance(request, ChoiceRequest) else [],
                "turn_id": request.metadata.get("turn_id"),
            })
    return items
