"""Costs as people read them: the one formatter every front end, report and observer uses.

Two significant digits below a dollar ($0.00004 is not "$0.0000"), cents
above; a sum that leaves out calls whose price is unknown says so, and is
never shown as free.  This module imports nothing of the package, so any
layer may use it.
"""

from __future__ import annotations

import math

__all__ = ["fmt_cost", "fmt_total_cost", "unpriced_note"]


def fmt_cost(cost: float | None, known: bool = True) -> str:
    """Dollars with two significant digits below $1 ($0.00004, $0.0012, $0.50), cents above."""
    if cost is None or not known:
        return "cost unknown"
    if cost == 0:
        return "$0.00"
    if cost >= 1:
        return f"${cost:,.2f}"
    decimals = max(2, 1 - math.floor(math.log10(cost)))
    text = f"{cost:.{decimals}f}"
    if decimals > 2:
        text = text.rstrip("0")
        text = text if len(text.split(".")[1]) >= 2 else f"{cost:.2f}"
    return f"${text}"


def fmt_total_cost(known_cost: float, unpriced_calls: int = 0) -> str:
    """A sum of costs, honest about calls whose price is unknown: never shown as free."""
    if not unpriced_calls:
        return fmt_cost(known_cost)
    if not known_cost:
        return "cost unknown"
    return f">= {fmt_cost(known_cost)} (+{unpriced_calls} unpriced)"


def unpriced_note(shown_costs: list[str]) -> str:
    """What "(+N unpriced)" means, for a report whose cost column shows it ("" when none does)."""
    if not any("unpriced)" in cost for cost in shown_costs):
        return ""
    return (
        "(+N unpriced): N model calls whose price is not known (their model is not in litellm's price list), "
        "so the cost shown is a lower bound: it counts only the priced calls."
    )
