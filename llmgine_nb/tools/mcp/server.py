"""A ``ToolManager``'s tools as an MCP server (stdio or streamable HTTP), on the official SDK.

    server = ToolServer(tools, allow={"add_note"})
    await server.run_stdio()                 # what `llmgine-nb mcp-serve MODULE:TOOLS` does
    handle = server.serve_http_in_thread(port=8765)   # a kernel serving its own tools; handle.stop()

Every call goes through ``ToolManager.execute``: arguments, permissions,
risk and the tool's approval policy apply exactly as for the model's calls,
and its events reach the bus.  Approval still happens on our side, whoever
the MCP client is.  When a call needs it, the decision comes from, in order:

1. ``allow``: tools the person serving has allowed beforehand (a policy);
2. the MCP client, through elicitation, when it declared the capability and
   the connection can carry a request back (handshake-era connections;
   2026-07-28 connections have no such channel);
3. whoever answers ``RequestApproval`` on the bus (a notebook's approval
   queue, a server session): the call waits for them;
4. nobody: write and destructive calls are refused with a sentence saying
   how to allow them.

When the manager's tools change, clients are told (the protocol's
list-changed) at their next call, or at once with ``notify_tools_changed()``.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import uuid
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ...chat import ToolCall
from ..approval import ApprovalDecision
from ..commands import RequestApproval
from ..results import ToolResult

if TYPE_CHECKING:
    from ..manager import ToolManager

__all__ = ["ToolServer", "ServerHandle"]

log = logging.getLogger("llmgine_nb.tools.mcp")

APPROVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approve": {"type": "boolean", "title": "Approve", "description": "Run this call?"},
        "reason": {"type": "string", "title": "Reason", "description": "Why not (sent back to the caller)"},
    },
    "required": ["approve"],
}


class ToolServer:
    """Serve ``tools`` over MCP (see the module docstring).

    ``allow``: tool names approved without asking (``"*"`` for all) - for a
    trusted client, and recorded as a policy decision.  ``ask_client``:
    whether to ask the MCP client by elicitation.  ``session_id``: the bus
    session the calls belong to (a notebook's, to approve them there).
    """

    def __init__(
        self,
        tools: ToolManager,
        *,
        name: str = "llmgine-nb",
        allow: Iterable[str] = (),
        ask_client: bool = True,
        session_id: str | None = None,
        user: str | None = None,
    ) -> None:
        from mcp.server import Server  # local: the SDK loads only when serving
        from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler

        self.tools = tools
        self.allow = frozenset(allow)
        self.ask_client = ask_client
        self.session_id = session_id or f"mcp-serve-{uuid.uuid4().hex[:8]}"
        self.user = user
        self._numbers = itertools.count(1)
        # Telling clients the tool list changed: 2026-07-28 clients listen on a subscription
        # stream; handshake-era sessions get a notification each (remembered as they ask).
        self._subscriptions = InMemorySubscriptionBus()
        self._sessions: weakref.WeakSet[Any] = weakref.WeakSet()
        self._listed: tuple[Any, ...] | None = None
        self.server = Server(
            name, on_list_tools=self._list_tools, on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self._subscriptions),
        )

    # -- the two requests ----------------------------------------------------------------------

    async def _list_tools(self, ctx: Any, params: Any) -> Any:
        from mcp import types

        self._remember(ctx)
        self._listed = self._fingerprint()
        return types.ListToolsResult(tools=[
            types.Tool(
                name=tool.name,
                description=tool.description or None,
                input_schema=tool.parameters,
                annotations=types.ToolAnnotations(
                    read_only_hint=tool.risk == "read", destructive_hint=tool.risk == "destructive"
                ),
            )
            for tool in self.tools
        ])

    async def _call_tool(self, ctx: Any, params: Any) -> Any:
        from mcp import types

        self._remember(ctx)
        if self._listed is not None and self._fingerprint() != self._listed:
            await self.notify_tools_changed()  # the notebook's tools changed since the client listed them
        number = next(self._numbers)
        call = ToolCall(id=f"mcp-{uuid.uuid4().hex[:12]}", name=params.name, arguments=dict(params.arguments or {}))
        call_session = f"{self.session_id}/{number}"
        refused: dict[str, str] = {}
        bus = self.tools.bus
        registration = None
        if bus is not None:
            registration = bus.register_command_handler(
                RequestApproval, self._approver(ctx, refused), session_id=call_session
            )
        try:
            result = await self.tools.execute_one(call, session_id=call_session, user=self.user)
        finally:
            if registration is not None:
                registration.unregister()
        if call.id in refused and result.status == "denied":
            result = result.model_copy(update={"content": refused[call.id]})
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=result.content)],
            structured_content=_structured(result),
            is_error=result.is_error,
        )

    # -- telling clients the tools changed ------------------------------------------------------

    async def notify_tools_changed(self) -> None:
        """Tell connected clients to list the tools again (call it after registering or removing tools)."""
        from mcp.server.subscriptions import ToolsListChanged

        self._listed = None
        await self._subscriptions.publish(ToolsListChanged())
        for session in list(self._sessions):
            try:
                await session.send_tool_list_changed()
            except Exception:  # noqa: BLE001 - a session that went away cannot be told
                self._sessions.discard(session)

    def _remember(self, ctx: Any) -> None:
        session = getattr(ctx, "session", None)
        if session is not None and getattr(session, "protocol_version", "") < "2026":
            self._sessions.add(session)  # handshake era: notifications go to the session

    def _fingerprint(self) -> tuple[Any, ...]:
        return tuple((t.name, t.risk, json.dumps(t.parameters, sort_keys=True)) for t in self.tools)

    # -- who decides ---------------------------------------------------------------------------------

    def _approver(self, ctx: Any, refused: dict[str, str]) -> Any:
        async def decide(request: RequestApproval) -> Any:
            if request.tool_name in self.allow or "*" in self.allow:
                return ApprovalDecision.approve(f"allowed by the MCP server's policy (allow={sorted(self.allow)})")
            if self.ask_client and _can_elicit(ctx):
                return await self._elicit(ctx, request)
            # Ask whoever answers on the bus, outside this call's session (where we are the handler).
            bus = self.tools.bus
            assert bus is not None
            forwarded = request.model_copy(update={"session_id": self.session_id})
            result = await bus.execute(forwarded)
            if result.success:
                return result.result
            if result.traceback is not None:
                raise RuntimeError(result.error)
            refused[request.call_id] = _refusal(request)
            return ApprovalDecision.deny(refused[request.call_id])

        return decide

    async def _elicit(self, ctx: Any, request: RequestApproval) -> ApprovalDecision:
        arguments = json.dumps(request.arguments, ensure_ascii=False, indent=1)
        message = (
            f"Approve this call of '{request.tool_name}' ({request.risk})?\n{request.reason}\narguments: {arguments}"
            + (f"\n{request.preview}" if request.preview else "")
        )
        answer = await ctx.session.elicit_form(message, APPROVE_SCHEMA)
        content = answer.content or {}
        if answer.action == "accept" and content.get("approve") is True:
            return ApprovalDecision.approve("approved by the MCP client")
        reason = content.get("reason") if isinstance(content.get("reason"), str) else None
        return ApprovalDecision.deny(reason or f"the MCP client answered '{answer.action}'")

    # -- serving ---------------------------------------------------------------------------------------

    async def run_stdio(self) -> None:
        """Serve on this process's stdin/stdout until the client closes them."""
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read_stream, write_stream):
            await self.server.run(read_stream, write_stream, self.server.create_initialization_options())

    def http_app(self, *, path: str = "/mcp", host: str = "127.0.0.1") -> Any:
        """The streamable HTTP endpoint as an ASGI app (mount it, or run it with uvicorn)."""
        return self.server.streamable_http_app(streamable_http_path=path, host=host)

    async def run_http(self, *, host: str = "127.0.0.1", port: int = 8765, path: str = "/mcp") -> None:
        import uvicorn

        config = uvicorn.Config(self.http_app(path=path, host=host), host=host, port=port, log_level="warning")
        await uvicorn.Server(config).serve()

    def serve_http_in_thread(self, *, host: str = "127.0.0.1", port: int = 8765, path: str = "/mcp") -> ServerHandle:
        """Serve over HTTP from a daemon thread (a kernel offering its tools); returns a handle to stop it."""
        import uvicorn

        config = uvicorn.Config(self.http_app(path=path, host=host), host=host, port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"mcp-serve-{port}", daemon=True)
        thread.start()
        return ServerHandle(f"http://{host}:{port}{path}", server, thread)


class ServerHandle:
    """A server running in a thread: ``url``, ``wait_ready()``, ``stop()``."""

    def __init__(self, url: str, server: Any, thread: threading.Thread) -> None:
        self.url = url
        self._server = server
        self._thread = thread

    def wait_ready(self, timeout: float = 10.0) -> ServerHandle:
        import time

        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the MCP server at {self.url} did not start (is the port free?)")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __repr__(self) -> str:
        return f"<MCP server {self.url} {'running' if self._thread.is_alive() else 'stopped'}>"


def _can_elicit(ctx: Any) -> bool:
    session = getattr(ctx, "session", None)
    capabilities = getattr(session, "client_capabilities", None)
    return bool(getattr(capabilities, "elicitation", None)) and bool(getattr(session, "can_send_request", False))


def _refusal(request: RequestApproval) -> str:
    return (
        f"'{request.tool_name}' is a {request.risk} tool and this call needs approval, but nobody can give it here: "
        "the MCP client cannot be asked (no elicitation) and no notebook or server session answers approvals "
        f"on the bus, so it was refused. To allow it, serve with --allow {request.tool_name} "
        f"(or ToolServer(..., allow={{'{request.tool_name}'}})), or attach an approval queue to the bus "
        "of the serving kernel and decide there."
    )


def _structured(result: ToolResult) -> dict[str, Any] | None:
    return result.value if isinstance(result.value, dict) and result.ran else None
