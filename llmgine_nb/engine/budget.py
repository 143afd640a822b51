"""Token and cost budgets per turn and per session.

The engine checks a budget *before* each model call.  Going over is never
silent and never a crash: the user is asked, through the same approval
command the tools use, whether to spend more.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..bus import MessageBus
from ..tools.approval import MalformedDecision, parse_decision
from ..tools.commands import RequestApproval

__all__ = ["Budget", "Overrun", "ask_to_spend"]


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
                       timeout: float | None) -> bool:
    """Ask whoever answers approvals whether to go over budget; anything but a clear yes is no."""
    request = RequestApproval(
        session_id=session_id, call_id=f"budget-{turn_id[:8]}-{overrun.limit}", tool_name="budget",
        arguments={"limit": overrun.limit, "used": overrun.used, "allowed": overrun.allowed},
        risk="write", reason=f"Over budget: {overrun.sentence()}. Continue anyway?", allow_always=False,
    )
    try:
        result = await asyncio.wait_for(bus.execute(request), timeout)
        decision = parse_decision(result.result) if result.success else None
    except (asyncio.TimeoutError, MalformedDecision):
        return False  # fail closed
    return decision is not None and decision.kind in ("approve", "always")
