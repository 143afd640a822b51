"""Conversions between Python values and database columns: times and JSON.

Timestamps are stored as ISO 8601 text in UTC with microseconds
(``2025-01-31T12:00:00.000000+00:00``) so they sort as text and ``substr(created,
1, 10)`` is the UTC day.  JSON columns hold compact JSON text.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timezone
from typing import Any

__all__ = ["utc_text", "parse_time", "to_json", "from_json"]


def utc_text(moment: datetime | date | None = None) -> str:
    """``moment`` (default: now) as UTC ISO text; naive datetimes are taken as UTC."""
    if moment is None:
        moment = datetime.now(timezone.utc)
    elif not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(0), tzinfo=timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    else:
        moment = moment.astimezone(timezone.utc)
    return moment.isoformat(timespec="microseconds")


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def to_json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def from_json(text: str | None, default: Any = None) -> Any:
    return json.loads(text) if text else default
