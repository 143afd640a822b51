"""A turn cut by a server restart: found in the session's numbered stream, ended as interrupted.

    cut = cut_turn(store, session_id)      # before the session's engine loads
    if cut is not None:
        await bus.publish(cut)              # a TurnCancelled: numbered and shown like any other

The stream is written as the turn runs (text deltas within 50 ms), so it
knows what a crash cut short: a ``TurnStarted`` with no end after it.  The
text the cut model call had streamed is kept as the session's last reply,
marked interrupted: the engine's draft of it is brought up to date, or the
reply is written when no draft was saved yet.  Nothing is asked of the
model again; the person sees where the reply stopped and may retry.

Across processes (``llmgine-nb worker``) a turn without an end may still be
running on another worker: one that lost its partition's lease mid-turn goes
on with it.  The worker therefore opens a session (and so calls ``cut_turn``)
only once no live worker marks the session as its running turn's
(``distributed/worker.py``, ``runner:<session>``).  ``stored_outcome`` is the
other half: a turn that ended in the store, whose worker stopped before
its result reached the sender, is answered from the store, not run again.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..chat import ChatMessage
from ..engine.events import TurnCancelled, TurnFailed, TurnFinished, TurnStarted
from ..engine.turn import TurnResult
from ..llm.events import LLMCallFinished, LLMCallStarted, LLMTextDelta
from ..messages import message_type_name

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["cut_turn", "stored_outcome", "RESTART_REASON"]

RESTART_REASON = "The server restarted during this turn; the reply so far is kept, marked interrupted."
#: The same cut seen by a worker (``llmgine-nb worker``): the one that ran the turn stopped, not a server.
WORKER_STOPPED_REASON = ("The worker running this turn stopped; another took the session over. "
                         "The reply so far is kept, marked interrupted.")

_TURN_TYPES = [message_type_name(cls) for cls in (TurnStarted, TurnFinished, TurnFailed, TurnCancelled)]
_STARTED = message_type_name(TurnStarted)
_FINISHED, _FAILED, _CANCELLED = (message_type_name(cls) for cls in (TurnFinished, TurnFailed, TurnCancelled))
_CALL_START, _CALL_END, _DELTA = (message_type_name(cls) for cls in (LLMCallStarted, LLMCallFinished, LLMTextDelta))


def cut_turn(store: Store, session_id: str, reason: str = RESTART_REASON) -> TurnCancelled | None:
    """The ``TurnCancelled`` that ends the session's cut turn (its partial reply stored), or None.

    ``reason`` says what cut it, as the process that finds the cut knows it (a server restart, a worker).
    """
    marks = ",".join("?" * len(_TURN_TYPES))
    last = store.database.read(
        f"SELECT seq, payload FROM events WHERE session_id = ? AND seq IS NOT NULL AND type IN ({marks}) "
        "ORDER BY seq DESC LIMIT 1", (session_id, *_TURN_TYPES))
    if not last or json.loads(last[0]["payload"]).get("type") != _STARTED:
        return None
    started = json.loads(last[0]["payload"])
    partial, model = _streamed_since(store, session_id, int(last[0]["seq"]))
    if partial:
        _keep(store, session_id, partial, model or started.get("model"))
    return TurnCancelled(session_id=session_id, turn_id=started["turn_id"], partial_text=partial,
                         reason=reason)


def stored_outcome(store: Store, session_id: str, user_message_id: str) -> TurnResult | None:
    """How the last turn on ``user_message_id`` ended, as stored; None if it did not (or a restart cut it)."""
    marks = ",".join("?" * len(_TURN_TYPES))
    rows = store.database.read(
        f"SELECT payload FROM events WHERE session_id = ? AND seq IS NOT NULL AND type IN ({marks}) ORDER BY seq",
        (session_id, *_TURN_TYPES))
    turn_id: str | None = None
    outcome: TurnResult | None = None
    for row in rows:
        record = json.loads(row["payload"])
        kind = record.get("type")
        if kind == _STARTED:
            turn_id = record["turn_id"] if record.get("user_message_id") == user_message_id else None
            outcome = None
        elif turn_id is not None and record.get("turn_id") == turn_id:
            outcome = _as_result(session_id, kind, record)
    return outcome


def _as_result(session_id: str, kind: str | None, record: dict) -> TurnResult | None:
    if kind == _FINISHED:
        return TurnResult(
            turn_id=record["turn_id"], session_id=session_id, status=record.get("status", "complete"),
            text=record.get("text", ""), model=record.get("model", ""), steps=record.get("steps", 1),
            usage=record.get("usage") or {}, cost_usd=record.get("cost_usd"), latency_s=record.get("latency_s", 0.0),
            message_id=record.get("message_id"), structured=record.get("structured"),
            reason=record.get("text") if record.get("status") == "step_limit" else None)
    if kind == _FAILED:
        return TurnResult(turn_id=record["turn_id"], session_id=session_id, status="failed",
                          reason=record.get("reason"), error_kind=record.get("kind"))
    if kind == _CANCELLED and record.get("reason") != RESTART_REASON:  # a person stopped it
        return TurnResult(turn_id=record["turn_id"], session_id=session_id, status="cancelled",
                          text=record.get("partial_text", ""), reason=record.get("reason"))
    return None  # cut by a restart: the retry runs it again


def _streamed_since(store: Store, session_id: str, after: int) -> tuple[str, str | None]:
    """The text the last, unfinished model call streamed after ``after`` ("" if its call finished), its model."""
    rows = store.database.read(
        "SELECT type, payload FROM events WHERE session_id = ? AND seq > ? AND type IN (?,?,?) ORDER BY seq",
        (session_id, after, _CALL_START, _CALL_END, _DELTA))
    pieces: list[str] = []
    model: str | None = None
    for row in rows:
        record = json.loads(row["payload"])
        if row["type"] == _DELTA:
            pieces.append(str(record.get("text", "")))
        else:  # a call started or finished: what came before is not the cut call's
            pieces = []
            model = record.get("model") or model
    return "".join(pieces), model


def _keep(store: Store, session_id: str, partial: str, model: str | None) -> None:
    messages = store.messages(session_id, last=1)
    draft = messages[-1] if messages and messages[-1].role == "assistant" else None
    if draft is not None and draft.status == "interrupted" and partial.startswith(draft.content or ""):
        store.update_message(draft.id, content=partial)  # the engine's draft, saved before the rest arrived
        return
    store.record_turn(session_id, [ChatMessage(role="assistant", content=partial, model=model, status="interrupted")])
