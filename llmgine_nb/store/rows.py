"""Conversions between the shared conversation types and database rows.

Timestamps are stored as ISO 8601 text in UTC with microseconds
(``2025-01-31T12:00:00.000000+00:00``) so they sort as text and ``substr(created,
1, 10)`` is the UTC day.  JSON columns hold compact JSON text.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timezone
from typing import Any

from ..chat import ChatMessage, ToolCall
from ..secret_names import is_secret_name, json_names_secret

__all__ = [
    "MESSAGE_COLUMNS",
    "utc_text",
    "parse_time",
    "to_json",
    "from_json",
    "message_row",
    "tool_calls_json",
    "tool_calls_from_json",
    "redact_secrets",
]

# Column order used by every message SELECT (see ``messages_from_rows``).
MESSAGE_COLUMNS = "id, role, content, tool_calls, tool_call_id, name, model, status, pinned, created"


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


REDACTED = "[redacted]"


def redact_secrets(value: Any) -> Any:
    """A copy of ``value`` with credential-named dict entries replaced by ``[redacted]``.

    Names are judged by ``llmgine_nb.secret_names.is_secret_name``, the rule
    the LLM layer hides settings by.

    Applied to everything free-form the store writes (session metadata,
    engine state, event payloads) so that a key placed there by mistake
    never reaches the disk.
    """
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_name(k) and v else redact_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    return value


def might_hold_secret(text: str) -> bool:
    """Whether a JSON payload has a credential-named key, so needs the redaction walk (exact and cheap)."""
    return json_names_secret(text)


def tool_calls_json(calls: list[ToolCall]) -> str | None:
    if not calls:
        return None
    return to_json([{"id": c.id, "name": c.name, "arguments": c.raw_arguments} for c in calls])


def message_row(message: ChatMessage, session_id: str, seq: int) -> tuple[Any, ...]:
    """Values for ``INSERT INTO messages (id, session_id, seq, role, content,
    tool_calls, tool_call_id, name, model, status, pinned, created)``."""
    return (
        message.id,
        session_id,
        seq,
        message.role,
        message.content,
        tool_calls_json(message.tool_calls),
        message.tool_call_id,
        message.name,
        message.model,
        message.status,
        1 if message.pinned else 0,
        utc_text(message.created),
    )


# Rows come from our own database, written from validated models, so loading
# skips re-validation and fills the models' attributes directly - what
# ``BaseModel.model_construct`` does, minus its per-field default handling.
# This keeps loading a long session close to the cost of the bare SELECT
# (see benchmarks/bench_store.py); tests/test_store_basic.py checks that the
# results equal validated models and behave like them.
#
# Every field is set, so all instances can share one "fields set": pydantic
# only ever adds names to it (already present) and copies it on model_copy.
_MESSAGE_FIELDS_SET = set(ChatMessage.model_fields)
_TOOL_CALL_FIELDS_SET = set(ToolCall.model_fields)
_new = object.__new__
_set = object.__setattr__
_fromiso = datetime.fromisoformat
_loads = json.loads


def tool_calls_from_json(text: str | None) -> list[ToolCall]:
    """ToolCalls from the ``tool_calls`` column (raw arguments kept, parsed ones rebuilt)."""
    if not text:
        return []
    calls = []
    for item in _loads(text):
        raw = item.get("arguments") or "{}"
        try:
            parsed = _loads(raw)
        except ValueError:
            parsed = None
        call = _new(ToolCall)
        _set(
            call,
            "__dict__",
            {
                "id": item["id"],
                "name": item["name"],
                "raw_arguments": raw,
                "arguments": parsed if isinstance(parsed, dict) else None,
            },
        )
        _set(call, "__pydantic_fields_set__", _TOOL_CALL_FIELDS_SET)
        _set(call, "__pydantic_extra__", None)
        _set(call, "__pydantic_private__", None)
        calls.append(call)
    return calls


def messages_from_rows(rows: list[tuple[Any, ...]]) -> list[ChatMessage]:
    """ChatMessages from rows selected as ``MESSAGE_COLUMNS``."""
    out: list[ChatMessage] = []
    append = out.append
    for r in rows:
        msg = _new(ChatMessage)
        _set(
            msg,
            "__dict__",
            {
                "id": r[0],
                "role": r[1],
                "content": r[2],
                "tool_calls": tool_calls_from_json(r[3]) if r[3] else [],
                "tool_call_id": r[4],
                "name": r[5],
                "model": r[6],
                "status": r[7],
                "pinned": r[8] == 1,
                "created": _fromiso(r[9]),
            },
        )
        _set(msg, "__pydantic_fields_set__", _MESSAGE_FIELDS_SET)
        _set(msg, "__pydantic_extra__", None)
        _set(msg, "__pydantic_private__", None)
        append(msg)
    return out

