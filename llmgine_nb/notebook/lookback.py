"""Looking back: each report of ``%llmgine sessions/history/usage/log/config/keys`` as a function of the store.

Plain functions: they read what they need and return a report object
(``reports`` / ``log_report``) with HTML and text forms.  The runtime calls
them with its store and the current session; anything else may too.  The
report modules are imported when a report is first made, so that the
runtime (which imports this module) costs a notebook's first turn nothing
for them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from ..messages import event_type_names

if TYPE_CHECKING:
    from ..store import Store
    from .config import NotebookConfig
    from .log_report import LogReport
    from .reports import ConfigReport, HistoryReport, KeysReport, SearchReport, SessionsReport, ToolsReport, UsageReport

__all__ = [
    "sessions_report", "history_report", "search_report", "usage_report", "log_report", "tools_report",
    "settings_report", "keys_report",
]


def sessions_report(store: Store, *, current: str | None = None, limit: int = 20) -> SessionsReport:
    """The most recent sessions, the current one marked."""
    from .reports import SessionsReport

    return SessionsReport(store.list_sessions(limit=limit), current=current)


def history_report(store: Store, session_id: str, *, last: int | None = None) -> HistoryReport:
    """A session's messages (the last ``last``), with their tool calls."""
    from .reports import HistoryReport

    record = store.get_session(session_id)
    return HistoryReport(record, store.messages(session_id, last=last), store.tool_calls(session_id))


def search_report(store: Store, query: str, *, session: str | None = None, limit: int = 20) -> SearchReport:
    """Full-text search over every session's messages (or one session's)."""
    from .reports import SearchReport

    return SearchReport(query, store.search(query, session=session, limit=limit))


def usage_report(store: Store, session_id: str | None) -> UsageReport:
    """Tokens and cost per model, and over time: of one session, or of all (``None``)."""
    from .reports import UsageReport

    return UsageReport(store.llm_calls(session_id), store.usage("model", session=session_id),
                       scope="this session" if session_id else "all sessions")


def log_report(store: Store, session_id: str, *, types: Sequence[str] | None = None, limit: int | None = 2000) -> LogReport:
    """A session's events; ``types``: keep the events whose type name contains one of these words."""
    from .log_report import LogReport

    events = store.events(session_id, limit=limit)
    if not types:
        return LogReport(events, session_id=session_id)
    wanted = [t.lower() for t in types]
    known = event_type_names()
    unknown = [t for t, w in zip(types, wanted) if not any(w in name.lower() for name in known)]
    if unknown:
        in_log = sorted({type(e).__name__ for e in events})
        raise LookupError(
            f"there is no event type like {', '.join(map(repr, unknown))}; "
            f"this session's log has {', '.join(in_log) if in_log else 'no events yet'}"
        )
    shown = [e for e in events if any(w in type(e).__name__.lower() for w in wanted)]
    return LogReport(shown, session_id=session_id, timeline_events=events, filters=types)


def tools_report(tools: Iterable[Any], *, always: Iterable[str] = ()) -> ToolsReport:
    """The tools the model may call (``always``: the ones allowed for the rest of the session)."""
    from .reports import ToolsReport

    return ToolsReport(list(tools), always=always)


def settings_report(config: NotebookConfig, store: Store, *, model: str | None, session_id: str | None,
                    ui: str) -> ConfigReport:
    """The notebook settings, the model, the database and the environment's settings (never a secret)."""
    from ..llm.config import Settings, choose_model
    from .reports import ConfigReport

    env = Settings()
    rows: list[tuple[str, Any, str]] = [(f.name, getattr(config, f.name), "notebook setting") for f in fields(config)]
    choice = choose_model(None, env)
    rows += [
        ("model", model or choice.model, "this session" if model else f"from {choice.source}"),
        ("session", session_id or "(none yet)", "current session id"),
        ("database", store.location, "LLMGINE_DB" if os.environ.get("LLMGINE_DB") else "default location"),
    ]
    for name in ("LLMGINE_MODEL", "LLMGINE_API_BASE", "LLMGINE_FAST_MODEL", "LLMGINE_SMART_MODEL"):
        value, source = env.get(name)
        rows.append((name, _public_value(value) if value else "(not set)", source or ""))
    return ConfigReport(rows, ui=ui)


def keys_report() -> KeysReport:
    """Which providers have an API key (masked: ``sk-...abcd``)."""
    from ..llm.config import key_status
    from .reports import KeysReport

    return KeysReport(key_status())


def _public_value(value: str) -> str:
    """A URL without user:password or query (either may carry a key)."""
    if "://" in value:
        from ..llm.base import public_url

        return public_url(value)
    return value
