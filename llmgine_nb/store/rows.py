"""Conversions between Python values and database columns: times, JSON and whole records.

Timestamps are stored as ISO 8601 text in UTC with microseconds
(``2025-01-31T12:00:00.000000+00:00``) so they sort as text and ``substr(created,
1, 10)`` is the UTC day.  JSON columns hold compact JSON text.  A record (a
dataclass of ``records.py``) whose fields are a table's columns is read from a
row with ``record_from_row`` and written as one with ``insert_record``.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, time, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from ..messages import finite
from .connection import Connection

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["utc_text", "parse_time", "to_json", "from_json", "record_from_row", "insert_record"]

R = TypeVar("R", bound="DataclassInstance")


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
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError:  # a NaN or an infinity (tool arguments, a result): stored as null, as JSON has neither
        return json.dumps(finite(value), ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)


def from_json(text: str | None, default: Any = None) -> Any:
    return json.loads(text) if text else default


def record_from_row(cls: type[R], row: Any, **converted: Any) -> R:
    """A record from a row whose columns have its fields' names (read by name).

    ``converted`` gives the fields not taken as they are stored: a time
    parsed, JSON read, a NULL counted as 0, a field that is no column.
    """
    names = [field.name for field in dataclasses.fields(cls) if field.name not in converted]
    return cls(**{name: row[name] for name in names}, **converted)


def insert_record(conn: Connection, table: str, record: DataclassInstance) -> None:
    """Write ``record`` as a new row of ``table``, whose columns have its fields' names.

    Times are written as UTC text, dicts and lists as JSON.
    """
    values = {field.name: getattr(record, field.name) for field in dataclasses.fields(record)}
    for name, value in values.items():
        if isinstance(value, (datetime, date)):
            values[name] = utc_text(value)
        elif isinstance(value, (dict, list)):
            values[name] = to_json(value)
    placeholders = ",".join("?" * len(values))
    conn.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({placeholders})", tuple(values.values()))
