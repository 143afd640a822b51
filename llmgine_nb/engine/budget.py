"""Token and cost budgets per turn and per session.

The engine checks a budget *before* each model call.  Going over is never
silent and never a crash: the user is asked, through the same approval
command the tools use, whether to spend more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..bus import MessageBus
from ..tools.approving import request_decision
from ..tools.commands import RequestApproval
from ..tools.events import ApprovalDecided, ApprovalExpired, ApprovalRequested
from ..tools.pending import DisplayIds, args_hash
from .events import BudgetExceeded
from .turn import RunningTurn

__all__ = ["Budget", "Overrun", "ask_to_spend", "approve_spending"]


@dataclass(frozen=True)
class Overrun:
    """One limit the next call would cross."""

    limit: str  # turn_tokens, turn_cost_usd, session_tokens, session_cost_usd
    used: float  # including the estimate for the next call's input
    allowed: float

    def sentence(self) -> str:
        scope, _, unit = self.limit.partition("_")
        if unit == "cost_usd":
            return f"this {scope} has cost ${self.used:.4f} of its ${self.allowed:.4f} budget"
        return f"this {scope} would use about {int(self.used):,} tokens of its {int(self.allowed):,}-token budget"


@dataclass(frozen=True)
class Budget:
    """Limits; None means no limit.  Tokens count input plus output."""

    turn_tokens: int | None = None
    turn_cost_usd: float | None = None
    session_tokens: int | None = None
    session_cost_usd: float | None = None

    def __post_init__(self) -> None:
        for name in ("turn_tokens", "turn_cost_usd", "session_tokens", "session_cost_usd"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"budget {name} must be a positive number or None (no limit), not {value!r}")

    def overruns(
        self,
        *,
        turn_tokens: int,
        turn_cost: float,
        session_tokens: int,
        session_cost: float,
        next_input_tokens: int,
    ) -> list[Overrun]:
        """The limits the next call (``next_input_tokens`` in) would cross."""
        checks = [
            ("turn_tokens", turn_tokens + next_input_tokens, self.turn_tokens),
            ("session_tokens", session_tokens + next_input_tokens, self.session_tokens),
            # Cost is known only after a call, so a cost limit stops the call after the one that crossed it.
            ("turn_cost_usd", turn_cost, self.turn_cost_usd),
            ("session_cost_usd", session_cost, self.session_cost_usd),
        ]
        return [Overrun(name, used, allowed) for name, used, allowed in checks if allowed is not None and used > allowed]


async def ask_to_spend(bus: MessageBus, *, session_id: str, turn_id: str, overrun: Overrun,
                       timeout: float | None, display_ids: DisplayIds | None = None) -> bool:
    """Ask whoever answers approvals whether to go over budget; anything but a clear yes is no.

    Announced like a tool's approval (``ApprovalRequested`` with a display id,
    then ``ApprovalDecided``), so every front end draws and answers it the same way.
    """
    ids = display_ids if display_ids is not None else DisplayIds()
    call_id = f"budget-{turn_id[:8]}-{overrun.limit}"
    arguments = {"limit": overrun.limit, "used": overrun.used, "allowed": overrun.allowed}
    display_id = ids.allocate(session_id, call_id)
    base = {"call_id": call_id, "tool_name": "budget", "session_id": session_id, "display_id": display_id}
    reason = f"Over budget: {overrun.sentence()}. Continue anyway?"
    try:
        request = RequestApproval(
            arguments=arguments, risk="write", reason=reason, allow_always=False, args_hash=args_hash(arguments),
            **base,
        )
        await bus.publish(ApprovalRequested(
            arguments=arguments, risk="write", reason=reason, request_id=request.id, args_hash=request.args_hash,
            allow_always=False, **base,
        ))
        decision, source, failure = await request_decision(bus, request, timeout)
        if source == "timeout":
            await bus.publish(ApprovalExpired(request_id=request.id, reason=failure, **base))
    finally:
        ids.release(session_id, display_id)
    approved = decision is not None and decision.kind in ("approve", "always")
    await bus.publish(ApprovalDecided(
        decision="approve" if approved else "deny", approved=approved, source=source,
        message=decision.message if decision is not None else None, reason=failure or reason,
        decided_by=decision.decided_by if decision is not None else None, **base,
    ))
    return approved


async def approve_spending(
    bus: MessageBus, budget: Budget, session_usage: Sequence[Any], turn: RunningTurn, *,
    session_id: str, next_input_tokens: int, timeout: float | None, display_ids: DisplayIds,
) -> bool:
    """True when the next model call may run: within every limit, or each limit it crosses approved.

    A limit approved once in a turn is not asked about again in that turn.
    """
    overruns = [
        overrun
        for overrun in budget.overruns(
            turn_tokens=turn.usage.total_tokens, turn_cost=turn.cost or 0.0,
            session_tokens=sum(row.total_tokens for row in session_usage),
            session_cost=sum(row.cost for row in session_usage),
            next_input_tokens=next_input_tokens,
        )
        if overrun.limit not in turn.approved_overruns
    ]
    for overrun in overruns:
        approved = await ask_to_spend(
            bus, session_id=session_id, turn_id=turn.id, overrun=overrun, timeout=timeout, display_ids=display_ids
        )
        await bus.publish(
            BudgetExceeded(session_id=session_id, turn_id=turn.id, limit=overrun.limit,
                           used=overrun.used, allowed=overrun.allowed, approved=approved)
        )
        if not approved:
            return False
        turn.approved_overruns.add(overrun.limit)
    return True
