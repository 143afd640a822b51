"""How the terminal client reaches an engine: in this process, or a server over HTTP and WebSocket.

Both connections offer the same small async API and hand out the same
event records (the stream texts of ``llmgine_nb.server.stream``, parsed),
so the client cannot tell them apart:

    conn = LocalConnection(store) | RemoteConnection(url, token)
    session = await conn.new_session()
    events = conn.events(session["id"], after=0)     # async iterator of records
    turn_id = await conn.send(session["id"], "hello")
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..server.hub_api import Hub

__all__ = ["Connection", "LocalConnection", "RemoteConnection", "ConnectionError_"]

#: The longest WebSocket frame of events taken from a server (bytes): one event may be long.
MAX_FRAME_BYTES = 64 * 1024 * 1024


class ConnectionError_(Exception):
    """The engine or server refused a request; the message is a sentence to show."""


class Connection(Protocol):
    who: str

    async def sessions(self) -> list[dict[str, Any]]: ...
    async def new_session(self, model: str | None = None) -> dict[str, Any]: ...
    async def send(self, session_id: str, text: str) -> str: ...
    async def cancel(self, session_id: str) -> bool: ...
    async def decide(self, session_id: str, call_id: str, decision: str, *, message: str | None = None,
                     arguments: dict[str, Any] | None = None, args_hash: str | None = None) -> None: ...
    async def answer(self, session_id: str, question_id: str, answer: Any) -> None: ...
    async def pending(self, session_id: str) -> list[dict[str, Any]]: ...
    async def usage(self, session_id: str) -> list[dict[str, Any]]: ...
    async def switch_model(self, session_id: str, model: str) -> str: ...
    def events(self, session_id: str, after: int = 0) -> AsyncIterator[dict[str, Any]]: ...
    async def close(self) -> None: ...


class LocalConnection:
    """An in-process ``SessionHub`` over a store: no server, no network."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.who = getpass.getuser()

    async def sessions(self) -> list[dict[str, Any]]:
        return [
            {"id": s.session.id, "name": s.session.name, "model": s.session.model, "message_count": s.message_count,
             "created": s.session.created.isoformat(), "last_seq": self.hub.streams.last_seq(s.session.id)}
            for s in self.hub.store.list_sessions()
        ]

    async def new_session(self, model: str | None = None) -> dict[str, Any]:
        record = await self.hub.create_session(None, model)
        return {"id": record.id, "model": record.model, "last_seq": self.hub.streams.last_seq(record.id)}

    async def send(self, session_id: str, text: str) -> str:
        return str(await self._call(self.hub.send(session_id, text)))

    async def cancel(self, session_id: str) -> bool:
        return bool(await self.hub.cancel(session_id))

    async def decide(self, session_id: str, call_id: str, decision: str, *, message: str | None = None,
                     arguments: dict[str, Any] | None = None, args_hash: str | None = None) -> None:
        await self._call(self.hub.decide(session_id, call_id, decision, message=message, arguments=arguments,
                                         decided_by=self.who, args_hash=args_hash))

    async def answer(self, session_id: str, question_id: str, answer: Any) -> None:
        await self._call(self.hub.answer(session_id, question_id, answer, decided_by=self.who))

    async def pending(self, session_id: str) -> list[dict[str, Any]]:
        await self.hub.open(session_id)  # a session cut by a restart asks its calls again first (as the routes do)
        return list(self.hub.pending(session_id))

    async def usage(self, session_id: str) -> list[dict[str, Any]]:
        rows = self.hub.store.usage("model", session=session_id)
        return [{"key": r.key, "calls": r.calls, "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
                 "cost": r.cost} for r in rows]

    async def switch_model(self, session_id: str, model: str) -> str:
        return str(await self._call(self.hub.switch_model(session_id, model)))

    async def events(self, session_id: str, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        await self.hub.open(session_id)
        queue = self.hub.streams.subscribe(session_id)
        last = after
        try:
            for seq, text in self.hub.streams.replay(session_id, after):
                last = seq
                yield json.loads(text)
            while True:
                record = json.loads(await queue.get())
                if isinstance(record, dict) and record.get("seq", 0) > last:
                    last = record["seq"]
                    yield record
        finally:
            self.hub.streams.unsubscribe(session_id, queue)

    async def _call(self, awaitable: Any) -> Any:
        from ..server.hub import HubError

        try:
            return await awaitable
        except (HubError, LookupError, ValueError) as exc:
            raise ConnectionError_(str(exc)) from None

    async def close(self) -> None:
        await self.hub.close()


class RemoteConnection:
    """A server: REST with ``Authorization: Bearer TOKEN``, events over its WebSocket."""

    def __init__(self, url: str, token: str) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.token = token
        self.http = httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        self.who = "?"

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ConnectionError_(f"Cannot reach the server at {self.url} ({type(exc).__name__}); is it running?") from None
        if response.status_code >= 400:
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = f"The server answered {response.status_code}."
            raise ConnectionError_(message)
        return response.json()

    async def sign_in(self) -> str:
        self.who = (await self._request("GET", "/api/me"))["name"]
        return self.who

    async def sessions(self) -> list[dict[str, Any]]:
        return list(await self._request("GET", "/api/sessions"))

    async def new_session(self, model: str | None = None) -> dict[str, Any]:
        return dict(await self._request("POST", "/api/sessions", json={"model": model} if model else {}))

    async def send(self, session_id: str, text: str) -> str:
        return str((await self._request("POST", f"/api/sessions/{session_id}/messages", json={"text": text}))["turn_id"])

    async def cancel(self, session_id: str) -> bool:
        return bool((await self._request("POST", f"/api/sessions/{session_id}/cancel"))["ok"])

    async def decide(self, session_id: str, call_id: str, decision: str, *, message: str | None = None,
                     arguments: dict[str, Any] | None = None, args_hash: str | None = None) -> None:
        body: dict[str, Any] = {"decision": decision}
        if args_hash is not None:
            body["args_hash"] = args_hash
        if message is not None:
            body["message"] = message
        if arguments is not None:
            body["arguments"] = arguments
        await self._request("POST", f"/api/sessions/{session_id}/approvals/{call_id}", json=body)

    async def answer(self, session_id: str, question_id: str, answer: Any) -> None:
        await self._request("POST", f"/api/sessions/{session_id}/questions/{question_id}", json={"answer": answer})

    async def pending(self, session_id: str) -> list[dict[str, Any]]:
        return list(await self._request("GET", f"/api/sessions/{session_id}/pending"))

    async def usage(self, session_id: str) -> list[dict[str, Any]]:
        return list(await self._request("GET", "/api/usage", params={"session_id": session_id}))

    async def switch_model(self, session_id: str, model: str) -> str:
        return str((await self._request("POST", f"/api/sessions/{session_id}/model", json={"model": model}))["model"])

    async def events(self, session_id: str, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        """The session's events; a dropped connection is resumed from the last number seen."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        ws_url = "ws" + self.url[len("http"):] + f"/api/sessions/{session_id}/ws"
        last = after
        while True:
            try:
                # A frame holds at most 256 KiB of events, but one event may be longer (a long reply).
                async with connect(ws_url, max_size=MAX_FRAME_BYTES) as ws:
                    # batch: the events ready at once come as one array (fewer frames on both ends).
                    await ws.send(json.dumps({"token": self.token, "after": last, "batch": True}))
                    async for text in ws:
                        data = json.loads(text)
                        if isinstance(data, dict) and "seq" not in data:  # a control message
                            if data.get("control") == "error":
                                raise ConnectionError_(data.get("error", "The server refused the stream."))
                            continue
                        # An array of events; a single event from a server that does not batch.
                        for record in data if isinstance(data, list) else [data]:
                            if record["seq"] > last:
                                last = record["seq"]
                                yield record
            except (ConnectionClosed, OSError):
                await asyncio.sleep(0.5)  # the server went away: come back from where we were

    async def close(self) -> None:
        await self.http.aclose()
