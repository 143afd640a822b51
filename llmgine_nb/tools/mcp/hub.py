"""``MCPServers``: the MCP servers of one ``ToolManager``, and their tools in it.

Reached as ``manager.mcp`` (made on first use) or through
``manager.add_mcp(...)``.  Connections live on one background loop of their
own, so a call from the engine's loop, a notebook cell or a test's loop all
reach the same server.  A server starts on first need: the first turn that
may use tools (a bus middleware waits for it before the turn reads the tool
list), a call, or ``start()``; ``close()`` (or the end of the process) stops
them all.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import weakref
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ...loop import BackgroundLoop
from ..results import ToolOutput
from ..schema import allowed_tool_name
from ..tool import Tool
from .config import MCPServerConfig, load_config
from .connection import MCPConnection, MCPServerError
from .convert import result_to_output, risk_from_hints, tool_definition
from .events import MCPServerFailed, MCPServerStarted, MCPToolsChanged

if TYPE_CHECKING:
    from ...messages import Command, CommandResult, Event
    from ..registry import ToolRegistry

__all__ = ["MCPServers"]

log = logging.getLogger("llmgine_nb.tools.mcp")
T = TypeVar("T")

_open_hubs: weakref.WeakSet[MCPServers] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:  # servers stop with the kernel
    for hub in list(_open_hubs):
        hub.close()


class MCPServers:
    """The MCP servers of a ``ToolManager`` (see the module docstring)."""

    def __init__(self, manager: ToolRegistry) -> None:
        self.manager = manager
        self._connections: dict[str, MCPConnection] = {}
        self._tool_names: dict[str, dict[str, str]] = {}  # server -> {our name: MCP name}
        self._loop = BackgroundLoop("llmgine-mcp")
        self._middleware: Any = None
        self._middleware_bus: Any = None
        # The loop the engine runs on (where a turn or a_start() was last awaited): MCP events
        # are published there, so observers see them on the same thread as the engine's events.
        self._home_loop: asyncio.AbstractEventLoop | None = None
        _open_hubs.add(self)

    # -- adding and removing ----------------------------------------------------------

    def add(self, config: MCPServerConfig, *, start: bool = False) -> MCPConnection:
        """Add a server (started on first need, or now with ``start=True``)."""
        if config.name in self._connections:
            raise ValueError(
                f"an MCP server named '{config.name}' is already added; remove it first "
                f"(%llmgine mcp remove {config.name}) or choose another name"
            )
        connection = MCPConnection(config, on_tools_changed=self._tools_changed)
        self._connections[config.name] = connection
        self._tool_names[config.name] = {}
        self._hook_bus()
        if start and not config.disabled:
            self.start(config.name)
        return connection

    def load(self, source: str | Mapping[str, Any], *, start: bool = False) -> list[MCPConnection]:
        """Add every server of an ``mcpServers`` config (a path, JSON text or a mapping)."""
        return [self.add(config, start=start) for config in load_config(source)]

    def remove(self, name: str) -> None:
        """Stop a server and take its tools out of the manager."""
        connection = self[name]
        self._run(connection.stop())
        self._unregister_all(name)
        del self._connections[name]
        del self._tool_names[name]

    def __getitem__(self, name: str) -> MCPConnection:
        try:
            return self._connections[name]
        except KeyError:
            known = ", ".join(self._connections) or "none"
            raise KeyError(f"no MCP server named '{name}' (added: {known}); add it with add_mcp") from None

    def __contains__(self, name: object) -> bool:
        return name in self._connections

    def __iter__(self) -> Any:
        return iter(list(self._connections.values()))

    def __len__(self) -> int:
        return len(self._connections)

    def status(self) -> list[dict[str, Any]]:
        """One row per server: name, transport, target, state, tools, last error."""
        rows = []
        for name, connection in self._connections.items():
            row = connection.status()
            row["tools"] = sorted(self._tool_names.get(name, {}))
            if connection.config.disabled:
                row["state"] = "disabled"
            rows.append(row)
        return rows

    # -- life cycle (blocking forms for cells and scripts; a_* forms for async code) ---------

    def start(self, name: str | None = None) -> list[str]:
        """Start one server (or every server not started yet); the tools now registered."""
        return self._run(self._start(name))

    async def a_start(self, name: str | None = None) -> list[str]:
        self._home_loop = asyncio.get_running_loop()
        return await self._on_loop(self._start(name))

    def restart(self, name: str) -> list[str]:
        """Stop and start a server again (after a change, or to recover by hand)."""
        return self._run(self._on_loop(self._restart(name)))

    def stop(self, name: str) -> None:
        self._run(self._on_loop(self[name].stop()))

    def close(self) -> None:
        """Stop every server and the background loop (a closed manager does this)."""
        if self._middleware is not None:
            self._middleware.unregister()
            self._middleware = None
        if self._connections:
            try:
                self._loop.run(self._stop_all(), timeout=20)
            except Exception:  # noqa: BLE001 - closing must not fail the caller
                log.debug("stopping MCP servers failed", exc_info=True)
        self._loop.stop()
        _open_hubs.discard(self)

    async def _stop_all(self) -> None:
        await asyncio.gather(*(c.stop() for c in self._connections.values()), return_exceptions=True)

    async def _restart(self, name: str) -> list[str]:
        await self[name].stop()
        return await self._start(name)

    async def _start(self, name: str | None) -> list[str]:
        chosen = [self[name]] if name is not None else [
            c for c in self._connections.values() if c.state in ("stopped",) and not c.config.disabled
        ]
        errors = []
        for connection in chosen:
            try:
                await connection.start()
            except MCPServerError as exc:
                errors.append(str(exc))
                await self._publish(MCPServerFailed(server=connection.name, error=str(exc)))
                continue
            self._sync_tools(connection)
            await self._publish(MCPServerStarted(
                server=connection.name, tools=sorted(self._tool_names[connection.name]),
                protocol_version=connection.protocol_version or "",
            ))
        if errors and name is not None:
            raise MCPServerError(errors[0])
        return sorted(n for c in chosen for n in self._tool_names.get(c.name, {}))

    # -- tools ------------------------------------------------------------------------------

    def _sync_tools(self, connection: MCPConnection) -> tuple[list[str], list[str]]:
        """Make the manager's tools of ``connection`` match its listing; (added, removed)."""
        config = connection.config
        old = self._tool_names[config.name]
        new: dict[str, str] = {}
        added: list[str] = []
        for mcp_tool in connection.tools:
            definition = tool_definition(mcp_tool)
            ours = allowed_tool_name(config.prefix + definition["name"])
            risk = risk_from_hints(definition.get("annotations"), config.tool_risk.get(definition["name"], config.risk))
            tool = Tool.from_mcp(
                {**definition, "name": ours}, self._caller(config.name, definition["name"]),
                risk=risk, permissions=config.permissions, timeout=config.timeout + 5,
            )
            existing = self.manager.get(ours)
            if existing is not None and ours not in old:
                msg = (
                    f"MCP server '{config.name}' offers a tool '{definition['name']}' but the session already has "
                    f"a tool named '{ours}'; add the server with a prefix (prefix='{config.name}_') to keep both"
                )
                log.warning("%s", msg)
                connection.error = msg
                continue
            self.manager.register(tool, replace=True)
            new[ours] = definition["name"]
            if ours not in old:
                added.append(ours)
        removed = [n for n in old if n not in new]
        for gone in removed:
            if gone in self.manager:
                self.manager.unregister(gone)
        self._tool_names[config.name] = new
        return added, removed

    def _unregister_all(self, server: str) -> None:
        for name in self._tool_names.get(server, {}):
            if name in self.manager:
                self.manager.unregister(name)
        self._tool_names[server] = {}

    async def _tools_changed(self, connection: MCPConnection) -> None:
        added, removed = self._sync_tools(connection)
        await self._publish(MCPToolsChanged(
            server=connection.name, tools=sorted(self._tool_names[connection.name]), added=added, removed=removed
        ))

    def _caller(self, server: str, tool: str) -> Any:
        async def call_mcp_tool(**arguments: Any) -> ToolOutput:
            connection = self[server]
            result = await self._on_loop(connection.call(tool, arguments))
            return result_to_output(result, server=server, tool=tool)

        call_mcp_tool.__qualname__ = f"mcp[{server}].{tool}"
        return call_mcp_tool

    def server_of(self, tool_name: str) -> tuple[str, str] | None:
        """(server, the server's name of the tool) for one of our tool names, or None."""
        for server, names in self._tool_names.items():
            if tool_name in names:
                return server, names[tool_name]
        return None

    # -- the lazy start: before a turn that may use tools ------------------------------------

    def _hook_bus(self) -> None:
        bus = self.manager.bus
        if bus is None or self._middleware_bus is bus:
            return
        if self._middleware is not None:
            self._middleware.unregister()
        self._middleware = bus.add_command_middleware(self._before_turn)
        self._middleware_bus = bus

    async def _before_turn(self, command: Command, call_next: Any) -> CommandResult:
        if getattr(command, "use_tools", False) is True and any(
            c.state == "stopped" and not c.config.disabled for c in self._connections.values()
        ):
            await self.a_start()  # failures are events and statuses; the turn goes on without those tools
        result: CommandResult = await call_next(command)
        return result

    # -- plumbing ---------------------------------------------------------------------------------

    async def _publish(self, event: Event) -> None:
        bus = self.manager.bus
        if bus is None:
            return
        home = self._home_loop
        if home is None or home.is_closed() or not home.is_running():
            home = bus.background.loop
        try:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(bus.publish(event), home))
        except Exception:  # noqa: BLE001 - an event that cannot be delivered must not stop a server
            log.debug("could not publish %s", type(event).__name__, exc_info=True)

    async def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the MCP loop and await it from whichever loop we are on."""
        if self._loop.in_loop_thread:
            return await coro
        return await asyncio.wrap_future(self._loop.submit(coro))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Block for ``coro`` on the MCP loop (from sync code, never from inside it)."""
        return self._loop.run(coro)

    def __repr__(self) -> str:
        names = ", ".join(f"{c.name}={c.state}" for c in self._connections.values()) or "none"
        return f"<MCPServers {names}>"

