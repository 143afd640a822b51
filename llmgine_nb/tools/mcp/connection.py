"""One MCP server, spoken to through the official SDK's ``mcp.Client``.

The SDK's client must be entered and left by the same task (it holds anyio
task groups), so each connection has a *supervisor* task that enters
``Client``, reports ready, and waits to be told to stop; calls are made from
other tasks on the same loop.  All of this runs on the ``MCPServers``
loop (one background thread), never on the caller's.

A server starts on first need (``start()``, a turn, a call) and is started
again by the next call after it crashed.  Every failure is an
``MCPServerError`` whose message names the server and says what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import IO, Any

from .config import MCPServerConfig, expand

__all__ = ["MCPConnection", "MCPServerError"]

log = logging.getLogger("llmgine_nb.tools.mcp")

# JSON-RPC error codes the SDK uses for a dead transport and a read timeout.
CONNECTION_CLOSED = -32000
REQUEST_TIMEOUT = -32001


class MCPServerError(RuntimeError):
    """Something went wrong with an MCP server; the message names it and says what to do."""


class MCPConnection:
    """A lazily started connection to one MCP server (see the module docstring)."""

    def __init__(
        self,
        config: MCPServerConfig,
        *,
        on_tools_changed: Callable[[MCPConnection], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.on_tools_changed = on_tools_changed
        self.state = "stopped"  # stopped | starting | running | crashed | failed
        self.error: str | None = None
        self.tools: list[Any] = []  # the SDK's Tool objects, as last listed
        self.protocol_version: str | None = None
        self.server_name: str | None = None
        self.starts = 0
        self.calls = 0
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._stderr: IO[str] | None = None
        self._refresh: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    # -- life cycle ------------------------------------------------------------

    async def start(self) -> None:
        """Start the server (if it is not running) and list its tools."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.state == "running":
                return
            await self._halt()
            self.state, self.error = "starting", None
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self._supervise(ready, self._stop), name=f"mcp-{self.name}")
            try:
                await asyncio.wait_for(asyncio.shield(ready), self.config.start_timeout)
            except asyncio.TimeoutError:
                message = (
                    f"MCP server '{self.name}' did not start within {self.config.start_timeout:g} s "
                    f"({self.config.target}){self._stderr_tail()}; check that it runs on its own, or raise start_timeout"
                )
                await self._halt(cancel=True)  # it never got going: nothing to close politely
                self._fail(message)
            except MCPServerError as exc:
                await self._halt()
                self._fail(str(exc))
            self.starts += 1
            self.state = "running"

    def _fail(self, message: str) -> None:
        self.state, self.error = "failed", message
        raise MCPServerError(message)

    async def stop(self) -> None:
        """Stop the server (a stdio server's process ends); the next use starts it again."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            await self._halt()
            self.state = "stopped"

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def _halt(self, *, cancel: bool = False) -> None:
        task, self._task = self._task, None
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        if task is not None and not task.done():
            assert self._stop is not None
            self._stop.set()
            try:
                if cancel:
                    raise asyncio.TimeoutError
                await asyncio.wait_for(asyncio.shield(task), 10)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - a server that will not stop is cancelled
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._client = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    async def _supervise(self, ready: asyncio.Future[None], stop: asyncio.Event) -> None:
        """Enter the SDK client, list the tools, then hold the connection until ``stop``."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                client = await self._open(stack)
                self._client = client
                self.protocol_version = client.protocol_version
                info = client.server_info
                self.server_name = info.name if info is not None else None
                self.tools = await self._list(client)
                await self._listen_for_changes(client, stack)
                if not ready.done():
                    ready.set_result(None)
                await stop.wait()
        except Exception as exc:  # noqa: BLE001 - reported as a sentence, never raised into the loop
            message = self._explain_start_failure(exc)
            log.info("%s", message, exc_info=exc)
            if not ready.done():
                ready.set_exception(MCPServerError(message))
            else:
                self.state, self.error = "crashed", message
        finally:
            self._client = None

    async def _open(self, stack: contextlib.AsyncExitStack) -> Any:
        from mcp import Client, StdioServerParameters  # local: the SDK loads only when a server is used

        config = self.config
        transport: Any
        if config.command:
            from mcp.client.stdio import stdio_client

            # The server's stderr goes to a file we can quote when it fails
            # (a kernel's sys.stderr has no file descriptor to hand a process).
            self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
            params = StdioServerParameters(
                command=config.command, args=expand(config.args), env=expand(config.env) or None, cwd=config.cwd
            )
            transport = _watched(stdio_client(params, errlog=self._stderr), self._transport_ended)
        elif config.server is not None:
            transport = config.server  # the SDK connects in-process (its in-memory transport)
        else:
            from mcp.client.streamable_http import streamable_http_client

            assert config.url is not None
            http_client = None
            if config.headers:
                import httpx2

                http_client = await stack.enter_async_context(
                    httpx2.AsyncClient(headers=expand(config.headers), timeout=httpx2.Timeout(30.0, read=300.0))
                )
            transport = _watched(streamable_http_client(config.url, http_client=http_client), self._transport_ended)
        client = Client(
            transport, message_handler=self._on_message, read_timeout_seconds=config.timeout, cache=None
        )
        return await stack.enter_async_context(client)

    def _transport_ended(self) -> None:
        """The server's side of the connection ended: a crash, unless we are stopping it."""
        if self.state == "running" and self._stop is not None and not self._stop.is_set():
            # The error first: another thread that sees "crashed" (a status call) sees why too.
            self.error = (
                f"MCP server '{self.name}' stopped{self._stderr_tail()}; it is started again on the next call"
            )
            self.state = "crashed"
            log.info("%s", self.error)

    async def _list(self, client: Any) -> list[Any]:
        tools: list[Any] = []
        cursor = None
        for _ in range(100):  # a server whose pages never end cannot hang us
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    async def _listen_for_changes(self, client: Any, stack: contextlib.AsyncExitStack) -> None:
        """On 2026-07-28 connections change notifications need a ``subscriptions/listen`` stream.

        Handshake-era servers send ``notifications/tools/list_changed`` unasked;
        both reach ``_on_message``.
        """
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        tools_caps = getattr(client.server_capabilities, "tools", None)
        if client.protocol_version not in MODERN_PROTOCOL_VERSIONS or not getattr(tools_caps, "list_changed", False):
            return

        async def listen() -> None:
            try:
                async with client.listen(tools_list_changed=True) as subscription:
                    async for _event in subscription:
                        pass  # the notification itself also reaches _on_message
            except Exception as exc:  # noqa: BLE001 - a lost stream only means no more live updates
                log.debug("MCP server '%s': change notifications ended: %s", self.name, exc)

        task = asyncio.create_task(listen(), name=f"mcp-{self.name}-listen")
        stack.callback(task.cancel)

    async def _on_message(self, message: Any) -> None:
        if type(message).__name__ == "ToolListChangedNotification":
            if self._refresh is None or self._refresh.done():
                self._refresh = asyncio.create_task(self._refresh_tools())

    async def _refresh_tools(self) -> None:
        await asyncio.sleep(0.05)  # several notifications in a burst make one listing
        client = self._client
        if client is None:
            return
        try:
            self.tools = await self._list(client)
        except Exception as exc:  # noqa: BLE001
            log.warning("MCP server '%s' said its tools changed but listing them failed: %s", self.name, exc)
            return
        if self.on_tools_changed is not None:
            await self.on_tools_changed(self)

    # -- calls ---------------------------------------------------------------------

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """Call ``tool``; the SDK's ``CallToolResult``, or ``MCPServerError`` with a sentence."""
        if self.state != "running":
            await self.start()  # the first use, or the first call after a crash
        client = self._client
        if client is None:
            self.state = "crashed"
            await self.start()
            client = self._client
        self.calls += 1
        started = time.monotonic()
        from mcp import MCPError

        try:
            return await client.call_tool(tool, arguments, read_timeout_seconds=self.config.timeout)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                self.error = (  # before the state, as in _transport_ended
                    f"MCP server '{self.name}' stopped while '{tool}' was running "
                    f"(after {time.monotonic() - started:.1f} s){self._stderr_tail()}. "
                    "It is started again on the next call; the call may or may not have taken effect."
                )
                self.state = "crashed"
                raise MCPServerError(self.error) from None
            if exc.code == REQUEST_TIMEOUT:
                raise MCPServerError(
                    f"MCP server '{self.name}' did not answer '{tool}' within {self.config.timeout:g} s; "
                    "the call was abandoned (raise the server's timeout if it needs longer)"
                ) from None
            raise MCPServerError(f"MCP server '{self.name}' refused the call of '{tool}': {exc}") from None

    def _stderr_tail(self, lines: int = 3) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.flush()
            self._stderr.seek(0)
            tail = [line.strip() for line in self._stderr.read().splitlines() if line.strip()][-lines:]
        except (OSError, ValueError):
            return ""
        return f"; it wrote: {' | '.join(tail)[-400:]}" if tail else ""

    def _explain_start_failure(self, exc: BaseException) -> str:
        target = self.config.target
        if isinstance(exc, MCPServerError):
            return str(exc)
        if isinstance(exc, FileNotFoundError) or (isinstance(exc, OSError) and self.config.command):
            return (
                f"MCP server '{self.name}' could not be started: {exc} ({target}). "
                "Check the command and that the program is installed"
            )
        inner = exc
        while isinstance(inner, BaseExceptionGroup_) and inner.exceptions:
            inner = inner.exceptions[0]
        return (
            f"MCP server '{self.name}' could not be reached ({target}): {type(inner).__name__}: {inner}"
            f"{self._stderr_tail()}. Check that it is running and speaks MCP"
        )

    def __repr__(self) -> str:
        return f"<MCPConnection {self.name} ({self.config.transport}) {self.state}>"

    def status(self) -> dict[str, Any]:
        """What ``%llmgine mcp`` shows (no env or header values)."""
        return {
            "name": self.name,
            "transport": self.config.transport,
            "target": self.config.target,
            "state": self.state,
            "tools": [t.name for t in self.tools],
            "protocol": self.protocol_version,
            "error": self.error,
        }


@contextlib.asynccontextmanager
async def _watched(transport: Any, on_end: Callable[[], None]) -> Any:
    """``transport`` whose read side calls ``on_end()`` when the server's stream ends (it exited)."""
    async with transport as (read_stream, write_stream):
        yield _WatchedReadStream(read_stream, on_end), write_stream


class _WatchedReadStream:
    """A transport's read stream, unchanged, except that its end is reported (the SDK's ReadStream protocol)."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except Exception:
            self._on_end()
            raise

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._inner.__anext__()
        except (StopAsyncIteration, Exception):
            self._on_end()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _WatchedReadStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._inner.__aexit__(*exc_info)

    def __getattr__(self, name: str) -> Any:  # anything else the SDK reads (e.g. last_context)
        return getattr(self._inner, name)


try:  # Python 3.11+; on 3.10 anyio brings the backport
    BaseExceptionGroup_: Any = BaseExceptionGroup  # type: ignore[name-defined]
except NameError:  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup as BaseExceptionGroup_  # type: ignore[no-redef]
