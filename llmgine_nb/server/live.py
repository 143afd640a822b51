"""A session's events as they happen: a WebSocket and a Server-Sent Events stream.

Both carry the same texts: each event's JSON with its per-session number
first (``{"seq": 7, "type": "llmgine_nb.engine.events.TurnStarted", ...}``).
A client says the last number it saw (``after``; for SSE also the standard
``Last-Event-ID`` header) and gets everything after it from the store, then
live events, with nothing missed and nothing twice.

WebSocket ``/api/sessions/{id}/ws``: the first message authenticates,
``{"token": "lnb_..."}`` or ``{"ticket": "tkt_..."}``, with ``"after": N``
and, optionally, ``"batch": true``: then every frame of events is a JSON
array of them (those ready at once, up to ``MAX_BATCH`` and
``MAX_FRAME_CHARS``: the replay, a burst of a turn), one frame instead of
one each; control messages stay objects.
The server answers ``{"control": "ready", "last_seq": N}`` once the replay is
sent; an ``after`` beyond the session's last number is refused (close 4400,
the reason says the last number), as a binary frame is at any time (1003).  A page from another origin is refused before anything is read.
After that the socket also takes commands, the same as the REST routes and
under the same limits: ``{"command": "send", "text": "...", "ref": 1}``,
``{"command": "cancel"}``, ``{"command": "decide", "call_id": ..., "decision": ..., "args_hash": ...}``;
each is answered ``{"control": "accepted", "ref": 1, "turn_id": ...}`` or
``{"control": "refused", "ref": 1, "error": "sentence"}``.

SSE ``/api/sessions/{id}/sse?ticket=...&after=N`` (an ``after``/``Last-Event-ID``
beyond the last number: 400): the ticket comes from
``POST /api/tickets`` (an EventSource cannot send headers, and a long-lived
token must not sit in a URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from ..store.users import User
from .auth import Gate
from .config import ServerConfig
from .errors import ApiError, error_responses
from .hub_api import Hub, HubError
from .routes import NOTHING_TO_STOP, check_send
from .stream import OVERFLOW

__all__ = ["router", "origin_allowed"]

router = APIRouter(prefix="/api")

#: Close codes: the request was refused (the reason is in the close frame and a last message).
CLOSE_UNAUTHORISED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_BEHIND = 4408
CLOSE_BAD_AFTER = 4400
#: The standard code for a frame of a kind the endpoint does not take (here: binary).
CLOSE_UNSUPPORTED = 1003
BINARY_REFUSED = "This socket takes text frames of JSON only; send the message as text."


def _text_of(message: Any) -> str | None:
    """A received frame's text; None for a binary frame.  ``WebSocketDisconnect`` when the client left."""
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message.get("text")


def after_beyond(after: int, last: int) -> str | None:
    """Why ``after`` cannot be served (a number past the session's last event), or None.

    Trusting it would skip every live event up to that number without a word.
    """
    if after <= last:
        return None
    return (f"The session's last event is number {last}; 'after' {after} is beyond it (numbers from another "
            f"server or database?). Reconnect with after={last} or less, or 0 to replay everything.")


def origin_allowed(origin: str | None, host: str | None, config: ServerConfig) -> bool:
    """No Origin (not a browser) is fine; a browser page must come from this server or a configured origin."""
    if not origin:
        return True
    if origin in config.ws_origins or origin in config.cors_origins:
        return True
    scheme, _, rest = origin.partition("://")
    return bool(host) and rest == host and scheme in ("http", "https")


async def _refuse(ws: WebSocket, code: int, message: str) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps({"control": "error", "error": message}))
        await ws.close(code=code, reason=message[:120])


#: Put on a socket's queue when its client has gone (events are JSON objects, never this).
_LEFT = "left"

#: Events one frame carries at most, for a client that asked for ``"batch": true`` ...
MAX_BATCH = 256
#: ... and characters (an event longer than this goes in a frame of its own): well inside the
#: 1 MiB a client library takes by default.
MAX_FRAME_CHARS = 256 * 1024


@router.websocket("/sessions/{session_id}/ws")
async def events_ws(ws: WebSocket, session_id: str) -> None:
    config: ServerConfig = ws.app.state.config
    gate: Gate = ws.app.state.gate
    hub: Hub = ws.app.state.hub
    if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), config):
        await ws.close(code=1008, reason="this page's origin may not open the stream")
        return
    await ws.accept()
    try:
        text = _text_of(await asyncio.wait_for(ws.receive(), config.first_message_timeout_s))
        if text is None:
            await _refuse(ws, CLOSE_UNSUPPORTED, BINARY_REFUSED)
            return
        first = json.loads(text)
        if not isinstance(first, dict):
            raise ValueError
        after = int(first.get("after") or 0)
        batch = first.get("batch") is True
    except (asyncio.TimeoutError, ValueError, TypeError):
        await _refuse(ws, CLOSE_UNAUTHORISED, 'Send {"token": "...", "after": N} as the first message to sign in.')
        return
    except WebSocketDisconnect:
        return
    user: User | None = gate.user_from_token(first.get("token")) or gate.redeem_ticket(first.get("ticket"), session_id)
    if user is None:
        await _refuse(ws, CLOSE_UNAUTHORISED, "That token or ticket is not valid; sign in again.")
        return
    if not gate.owns(user, session_id):
        await _refuse(ws, CLOSE_NOT_FOUND, f"There is no session {session_id!r} of yours.")
        return
    await hub.open(session_id)
    refused = after_beyond(after, hub.streams.last_seq(session_id))
    if refused:
        await _refuse(ws, CLOSE_BAD_AFTER, refused)
        return
    queue = hub.streams.subscribe(session_id)
    lock = asyncio.Lock()  # events and command replies go out one whole message at a time

    async def send(text: str) -> None:
        async with lock:
            await ws.send_text(text)

    async def send_events(texts: list[str]) -> None:
        if not batch:
            for text in texts:
                await send(text)
            return
        for frame in _frames(texts):
            await send("[" + ",".join(frame) + "]")

    # Commands from the client (and its leaving) are read beside the events going out.
    leaving = asyncio.ensure_future(_listen(ws, user, session_id, send))
    # Its leaving wakes the sender through the same queue (no second waiter per event).
    leaving.add_done_callback(lambda _: queue.put_nowait(_LEFT))
    try:
        replayed = hub.streams.replay(session_id, after)
        last = replayed[-1][0] if replayed else after
        await send_events([text for _, text in replayed])
        await send(json.dumps({"control": "ready", "last_seq": last}))
        while True:
            ready = [await queue.get()]
            while batch and len(ready) < MAX_BATCH and not queue.empty():
                ready.append(queue.get_nowait())
            fresh: list[str] = []
            for text in ready:
                if text in (_LEFT, OVERFLOW):
                    await send_events(fresh)
                    if text == OVERFLOW:
                        await _refuse(ws, CLOSE_BEHIND,
                                      "This stream fell too far behind; reconnect with the last seq you saw.")
                    return
                seq = _seq_of(text)
                if seq > last:  # else already sent in the replay
                    fresh.append(text)
                    last = seq
            await send_events(fresh)
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        hub.streams.unsubscribe(session_id, queue)
        leaving.cancel()


async def _listen(ws: WebSocket, user: User, session_id: str, send: Any) -> None:
    """Carry out the client's commands until it goes away."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            text = _text_of(await ws.receive())
            if text is None:  # refused through ``send``: never in the middle of an event going out
                await send(json.dumps({"control": "error", "error": BINARY_REFUSED}))
                await ws.close(code=CLOSE_UNSUPPORTED, reason=BINARY_REFUSED)
                return
            if text:
                await send(json.dumps(await _command(ws, user, session_id, text)))


async def _command(ws: WebSocket, user: User, session_id: str, text: str) -> dict[str, Any]:
    hub: Hub = ws.app.state.hub
    gate: Gate = ws.app.state.gate
    limit = ws.app.state.config.max_body_bytes
    if len(text) > limit:  # held to the size a request body is
        return {"control": "refused", "status": 413,
                "error": f"That command is longer than the limit of {limit} bytes; send less."}
    try:
        request = json.loads(text)
        if not isinstance(request, dict):
            raise ValueError
    except ValueError:
        return {"control": "refused", "error": 'Send commands as JSON objects, e.g. {"command": "send", "text": "hi"}.'}
    ref = request.get("ref")
    try:
        gate.check_rate(user)
        name = request.get("command")
        if name == "send":
            message = request.get("text")
            if not isinstance(message, str):
                raise ApiError(422, 'A send needs "text", a string.')
            check_send(ws.app.state.config, gate, hub, user, message)
            model = request.get("model") if isinstance(request.get("model"), str) else None
            return {"control": "accepted", "ref": ref, "turn_id": await hub.send(session_id, message, model)}
        if name == "cancel":
            stopped = await hub.cancel(session_id)
            return {"control": "accepted", "ref": ref, "ok": stopped, **({} if stopped else {"message": NOTHING_TO_STOP})}
        if name == "decide":
            call_id, decision = request.get("call_id"), request.get("decision")
            if not isinstance(call_id, str) or decision not in ("approve", "deny", "edit", "always"):
                raise ApiError(422, 'A decide needs "call_id" and "decision" (approve, deny, edit or always).')
            arguments = request.get("arguments") if isinstance(request.get("arguments"), dict) else None
            message_text = request.get("message") if isinstance(request.get("message"), str) else None
            args_hash = request.get("args_hash") if isinstance(request.get("args_hash"), str) else None
            await hub.decide(session_id, call_id, decision, message=message_text, arguments=arguments,
                             decided_by=user.name, args_hash=args_hash)
            return {"control": "accepted", "ref": ref}
        raise ApiError(422, f"There is no command {name!r} here; use send, cancel or decide.")
    except ApiError as exc:
        return {"control": "refused", "ref": ref, "error": exc.message, "status": exc.status}
    except HubError as exc:
        return {"control": "refused", "ref": ref, "error": str(exc), "status": exc.status}


def _frames(texts: list[str]) -> list[list[str]]:
    """``texts`` in order, cut into frames of at most ``MAX_BATCH`` events and ``MAX_FRAME_CHARS``."""
    frames: list[list[str]] = []
    size = 0
    for text in texts:
        if not frames or len(frames[-1]) >= MAX_BATCH or size + len(text) > MAX_FRAME_CHARS:
            frames.append([])
            size = 0
        frames[-1].append(text)
        size += len(text) + 1
    return frames


def _seq_of(text: str) -> int:
    # The number is always first: '{"seq": 12, ...'
    return int(text[8 : text.index(",")]) if text.startswith('{"seq": ') and "," in text else int(json.loads(text)["seq"])


_SSE_DESCRIPTION = (
    "A Server-Sent Events stream: for each event, `id: SEQ` and `data: JSON` (the event with its `seq`; "
    "its fields are those of the schema component its `type` names), a blank line between events, and "
    "a `: keep-alive` comment every 15 s when nothing happens.")


@router.get("/sessions/{session_id}/sse", response_class=StreamingResponse, responses={
    200: {"description": _SSE_DESCRIPTION,
          "content": {"text/event-stream": {"schema": {"type": "string", "description": _SSE_DESCRIPTION}}}},
    **error_responses(400, 401, 404)})
async def events_sse(
    request: Request,
    session_id: str,
    ticket: Annotated[str | None, Query(max_length=200)] = None,
    after: Annotated[int, Query(ge=0)] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    gate: Gate = request.app.state.gate
    hub: Hub = request.app.state.hub
    user = gate.redeem_ticket(ticket, session_id) if ticket else None
    if user is None:
        if authorization:
            user = gate.user_from_header(authorization)
        else:
            raise ApiError(401, "Open the stream with a ticket from POST /api/tickets: ?ticket=...")
    gate.check_owner(user, session_id)
    if last_event_id and last_event_id.isdigit():
        after = max(after, int(last_event_id))
    await hub.open(session_id)
    refused = after_beyond(after, hub.streams.last_seq(session_id))
    if refused:
        raise ApiError(400, refused)
    queue = hub.streams.subscribe(session_id)
    replay = hub.streams.replay(session_id, after)

    async def stream() -> AsyncIterator[str]:
        last = after
        try:
            for seq, text in replay:
                yield f"id: {seq}\ndata: {text}\n\n"
                last = seq
            while True:
                try:
                    text = await asyncio.wait_for(queue.get(), 15.0)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if text == OVERFLOW:
                    return
                seq = _seq_of(text)
                if seq > last:
                    yield f"id: {seq}\ndata: {text}\n\n"
                    last = seq
        finally:
            hub.streams.unsubscribe(session_id, queue)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
