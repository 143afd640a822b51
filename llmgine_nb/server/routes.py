"""The REST API: sessions, turns, approvals and questions, history, search, usage, export.

Every route acts for the signed-in user (``Authorization: Bearer TOKEN``)
and only on that user's sessions: another user's session is a 404.  A
route sends the engine's commands through the ``SessionHub``; the events
come back on the session's stream (``live.py``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import PlainTextResponse, Response

from ..store import SessionNotFound, StoreError
from ..store.users import User, forget_owner, owned_sessions, set_owner
from .auth import Gate
from .config import ServerConfig
from .errors import ApiError, error_responses
from .hub_api import Hub, HubError, sentence
from .schemas import (
    AnswerBody,
    DecideBody,
    ForkBody,
    MeOut,
    MessageOut,
    ModelBody,
    ModelOut,
    NewSession,
    OkOut,
    PendingItem,
    SearchHitOut,
    SendBody,
    SessionOut,
    StopOut,
    StreamEventOut,
    TicketBody,
    TicketOut,
    TurnStartedOut,
    UsageOut,
)

__all__ = ["router"]

# 413: any request whose body is over the limit (declared or streamed).
router = APIRouter(prefix="/api", responses=error_responses(401, 404, 413, 422, 429))


def _hub(request: Request) -> Hub:
    return request.app.state.hub


def _gate(request: Request) -> Gate:
    return request.app.state.gate


def _config(request: Request) -> ServerConfig:
    return request.app.state.config


def current_user(request: Request, authorization: Annotated[str | None, Header()] = None) -> User:
    return _gate(request).user_from_header(authorization)


UserDep = Annotated[User, Depends(current_user)]


def _own(request: Request, user: User, session_id: str) -> Hub:
    _gate(request).check_owner(user, session_id)
    return _hub(request)


async def _live(request: Request, user: User, session_id: str) -> Hub:
    """The hub, with the session open: a session cut by a restart is recovered (its turn resumed,
    its approvals asked again) before a route reads or changes what is running or waiting in it."""
    hub = _own(request, user, session_id)
    await hub.open(session_id)
    return hub


def _hub_error(exc: HubError) -> ApiError:
    return ApiError(exc.status, str(exc))


def _session_out(hub: Hub, session_id: str) -> SessionOut:
    record = hub.store.get_session(session_id)
    return SessionOut.of(record, running=hub.running(session_id), last_seq=hub.streams.last_seq(session_id))


# -- who am I, tickets ---------------------------------------------------------------


@router.get("/me", response_model=MeOut)
async def me(user: UserDep) -> MeOut:
    return MeOut(name=user.name)


@router.post("/tickets", response_model=TicketOut, responses=error_responses(400))
async def ticket(request: Request, user: UserDep, body: TicketBody | None = None) -> TicketOut:
    """A single-use ticket, valid for seconds, for a stream URL (``?ticket=``) or a WebSocket's first message."""
    session_id = body.session_id if body is not None else None
    if session_id is not None:
        _gate(request).check_owner(user, session_id)
    config = _config(request)
    return TicketOut(ticket=_gate(request).issue_ticket(user, session_id), expires_in=config.ticket_ttl_s)


# -- sessions ----------------------------------------------------------------------


@router.get("/sessions", response_model=list[SessionOut])
async def list_sessions(request: Request, user: UserDep) -> list[SessionOut]:
    hub = _hub(request)
    mine = owned_sessions(hub.store, user.id)
    return [
        SessionOut.of(s.session, running=hub.running(s.session.id), summary=s,
                      last_seq=hub.streams.last_seq(s.session.id))
        for s in hub.store.list_sessions() if s.session.id in mine
    ]


@router.post("/sessions", response_model=SessionOut, status_code=201, responses=error_responses(400, 409))
async def create_session(request: Request, user: UserDep, body: NewSession | None = None) -> SessionOut:
    hub = _hub(request)
    body = body or NewSession()
    try:
        record = await hub.create_session(None, body.model)
    except HubError as exc:
        raise _hub_error(exc) from None
    set_owner(hub.store, record.id, user.id)
    if body.name:
        # Names are unique in the store; another user's name must not collide, so it goes in metadata.
        hub.store.update_session_metadata(record.id, title=body.name)
    return _session_out(hub, record.id)


@router.get("/sessions/{session_id}", response_model=SessionOut)
async def get_session(request: Request, user: UserDep, session_id: str) -> SessionOut:
    return _session_out(await _live(request, user, session_id), session_id)


@router.delete("/sessions/{session_id}", response_model=OkOut, responses=error_responses(409))
async def delete_session(request: Request, user: UserDep, session_id: str) -> OkOut:
    """Delete the session and its history.  409 while a turn runs in it: stop the turn first."""
    hub = _own(request, user, session_id)
    try:
        await hub.delete_session(session_id)
    except HubError as exc:
        raise _hub_error(exc) from None
    forget_owner(hub.store, session_id)
    _gate(request).forget(session_id)
    return OkOut()


@router.post("/sessions/{session_id}/fork", response_model=SessionOut, status_code=201, responses=error_responses(400, 409))
async def fork_session(request: Request, user: UserDep, session_id: str, body: ForkBody | None = None) -> SessionOut:
    hub = _own(request, user, session_id)
    body = body or ForkBody()
    try:
        record = await hub.fork(session_id, body.at_message_id, None)
    except HubError as exc:
        raise _hub_error(exc) from None
    except (LookupError, ValueError, StoreError) as exc:  # a message id of another session, say
        raise ApiError(400, f"Cannot fork there: {sentence(str(exc))}") from None
    set_owner(hub.store, record.id, user.id)
    return _session_out(hub, record.id)


#: What a stop answers when no turn was running (not an error: a stop may cross the turn's end).
NOTHING_TO_STOP = "No turn is running in this session, so there was nothing to stop."


def check_send(config: ServerConfig, gate: Gate, hub: Hub, user: User, text: str) -> None:
    """What a turn needs before it is accepted: some text (400), its length (413), turns running at once (429).

    Refused here, not after a 202 as a ``TurnFailed`` the client must wait for.
    """
    if not text.strip():
        raise ApiError(400, 'The message is empty; send some text, e.g. {"text": "hello"}.')
    if len(text) > config.max_message_chars:
        raise ApiError(413, f"The message is {len(text)} characters long; the limit is "
                            f"{config.max_message_chars}. Send a shorter one.")
    # Running sessions were opened by their owner, so ``owns`` answers from the gate's memory.
    running = sum(1 for session_id in hub.running_sessions() if gate.owns(user, session_id))
    if running >= config.max_turns_per_user:
        raise ApiError(429, f"You have {running} turns running, the most allowed at once; wait for one to end.",
                       headers={"Retry-After": "2"})


# -- turns ----------------------------------------------------------------------------


@router.post("/sessions/{session_id}/messages", response_model=TurnStartedOut, status_code=202,
             responses=error_responses(400, 409, 413, 504))
async def send_message(request: Request, user: UserDep, session_id: str, body: SendBody) -> TurnStartedOut:
    """Start a turn; answers with its id at once.  The reply streams on the session's events."""
    hub = _own(request, user, session_id)
    check_send(_config(request), _gate(request), hub, user, body.text)
    try:
        turn_id = await hub.send(session_id, body.text, body.model)
    except HubError as exc:
        raise _hub_error(exc) from None
    return TurnStartedOut(turn_id=turn_id, session_id=session_id)


@router.post("/sessions/{session_id}/cancel", response_model=StopOut, response_model_exclude_none=True,
             responses=error_responses(400, 504))
async def cancel_turn(request: Request, user: UserDep, session_id: str) -> StopOut:
    hub = await _live(request, user, session_id)
    stopped = await hub.cancel(session_id)
    return StopOut(ok=stopped, message=None if stopped else NOTHING_TO_STOP)


@router.post("/sessions/{session_id}/retry", response_model=TurnStartedOut, status_code=202,
             responses=error_responses(400, 409, 504))
async def retry_turn(request: Request, user: UserDep, session_id: str) -> TurnStartedOut:
    hub = await _live(request, user, session_id)
    if not any(message.role == "user" for message in hub.store.messages(session_id)):
        raise ApiError(400, "There is no earlier message to retry in this session; send one first.")
    try:
        turn_id = await hub.retry(session_id)
    except HubError as exc:
        raise _hub_error(exc) from None
    return TurnStartedOut(turn_id=turn_id, session_id=session_id)


@router.post("/sessions/{session_id}/model", response_model=ModelOut, responses=error_responses(400, 504))
async def switch_model(request: Request, user: UserDep, session_id: str, body: ModelBody) -> ModelOut:
    """The model of the session's next turns (a name, an alias, or ``scripted``)."""
    hub = await _live(request, user, session_id)
    try:
        return ModelOut(model=await hub.switch_model(session_id, body.model))
    except HubError as exc:
        raise _hub_error(exc) from None


# -- approvals and questions ------------------------------------------------------------


@router.get("/sessions/{session_id}/pending", response_model=list[PendingItem])
async def pending(request: Request, user: UserDep, session_id: str) -> list[PendingItem]:
    hub = await _live(request, user, session_id)
    return [PendingItem(**item) for item in hub.pending(session_id)]


@router.post("/sessions/{session_id}/approvals/{call_id}", response_model=OkOut,
             responses=error_responses(400, 404, 409, 504))
async def decide(request: Request, user: UserDep, session_id: str, call_id: str, body: DecideBody) -> OkOut:
    """Approve, deny (``message`` is told to the model), edit (``arguments``) or always allow."""
    hub = await _live(request, user, session_id)
    if body.decision == "edit" and body.arguments is None:
        raise ApiError(400, "An 'edit' decision needs the edited 'arguments' (a JSON object).")
    if body.decision != "edit" and body.arguments is not None:
        raise ApiError(400, f"A '{body.decision}' decision takes no 'arguments'; use decision 'edit' to change them.")
    try:
        await hub.decide(session_id, call_id, body.decision, message=body.message, arguments=body.arguments,
                         decided_by=user.name, args_hash=body.args_hash)
    except HubError as exc:
        raise _hub_error(exc) from None
    return OkOut()


@router.post("/sessions/{session_id}/questions/{question_id}", response_model=OkOut,
             responses=error_responses(400, 404, 504))
async def answer(request: Request, user: UserDep, session_id: str, question_id: str, body: AnswerBody) -> OkOut:
    hub = await _live(request, user, session_id)
    try:
        await hub.answer(session_id, question_id, body.answer, decided_by=user.name)
    except HubError as exc:
        raise _hub_error(exc) from None
    return OkOut()


# -- history, search, usage, export -----------------------------------------------------------


@router.get("/sessions/{session_id}/messages", response_model=list[MessageOut])
async def history(request: Request, user: UserDep, session_id: str,
                  last: Annotated[int | None, Query(ge=1, le=10_000)] = None) -> list[MessageOut]:
    hub = await _live(request, user, session_id)
    return [MessageOut(**m.model_dump(mode="json", exclude={"pinned"})) for m in hub.store.messages(session_id, last=last)]


@router.get("/sessions/{session_id}/events", response_model=list[StreamEventOut])
async def events(request: Request, user: UserDep, session_id: str, after: Annotated[int, Query(ge=0)] = 0,
                 limit: Annotated[int, Query(ge=1, le=5000)] = 1000) -> Response:
    """The session's numbered events after ``after`` (what the streams replay), as a JSON list."""
    hub = await _live(request, user, session_id)
    texts = [text for _, text in hub.streams.replay(session_id, after, limit)]
    return Response("[" + ",".join(texts) + "]", media_type="application/json")


@router.get("/search", response_model=list[SearchHitOut])
async def search(request: Request, user: UserDep, q: Annotated[str, Query(min_length=1, max_length=500)],
                 limit: Annotated[int, Query(ge=1, le=200)] = 20) -> list[SearchHitOut]:
    hub = _hub(request)
    if not q.strip():
        raise ApiError(422, "Give at least one word to search for (?q=...).")
    mine = owned_sessions(hub.store, user.id)
    try:
        hits = hub.store.search(q, limit=max(limit * 5, 100))
    except (ValueError, StoreError) as exc:  # e.g. nothing but punctuation: the store says what to do
        raise ApiError(422, sentence(str(exc)) or "Search for a word or a number.") from None
    return [SearchHitOut(message_id=h.message_id, session_id=h.session_id, role=h.role, snippet=h.snippet)
            for h in hits if h.session_id in mine][:limit]


@router.get("/usage", response_model=list[UsageOut])
async def usage(request: Request, user: UserDep, session_id: str | None = None) -> list[UsageOut]:
    """Tokens and cost per session of yours (or, with ``session_id``, per model of that session)."""
    hub = _hub(request)
    if session_id is not None:
        _gate(request).check_owner(user, session_id)
        rows = hub.store.usage("model", session=session_id)
    else:
        mine = owned_sessions(hub.store, user.id)
        rows = [r for r in hub.store.usage("session") if r.key in mine]
    return [UsageOut(key=r.key or "", calls=r.calls, input_tokens=r.input_tokens, output_tokens=r.output_tokens,
                     cost=r.cost) for r in rows]


@router.get("/sessions/{session_id}/export", responses={200: {"content": {"text/markdown": {}, "application/json": {}}}})
async def export(request: Request, user: UserDep, session_id: str,
                 format: Literal["markdown", "ipynb"] = "markdown") -> Response:
    # Imported here: nbformat pulls in jsonschema, whose URI grammar takes seconds to build at start-up.
    from ..store.export import session_markdown, session_notebook

    hub = _own(request, user, session_id)
    try:
        if format == "ipynb":
            import nbformat

            return Response(nbformat.writes(session_notebook(hub.store, session_id)), media_type="application/json")
        return PlainTextResponse(session_markdown(hub.store, session_id), media_type="text/markdown")
    except SessionNotFound:
        raise ApiError(404, f"There is no session {session_id!r} of yours.") from None
