"""Where an MCP server is and how its tools are treated: ``MCPServerConfig``.

One config per server, from Python (``ToolManager.add_mcp``), a magic
(``%llmgine mcp add``) or a file in the ``mcpServers`` JSON format other MCP
hosts use (Claude Desktop, VS Code, Cursor)::

    {"mcpServers": {
        "time":   {"command": "python", "args": ["-m", "mcp_server_time"]},
        "search": {"url": "http://127.0.0.1:8000/mcp", "headers": {"Authorization": "Bearer ${SEARCH_TOKEN}"}},
        "files":  {"command": "npx", "args": ["@modelcontextprotocol/server-filesystem", "."],
                   "risk": "write", "toolRisk": {"read_file": "read"}, "timeout": 30}
    }}

``${NAME}`` in ``env``, ``headers`` and ``args`` is read from the environment
when the server starts, so a token need not be written in the file.  The
keys beyond the common format (``risk``, ``toolRisk``, ``timeout``,
``prefix``, ``permissions``, ``disabled``) are ours; other hosts ignore them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..tool import RISKS, Risk, string_set

__all__ = ["MCPServerConfig", "MCPConfigError", "load_config", "expand"]

_SERVER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MCPConfigError(ValueError):
    """A server description that cannot be used; the message says what to change."""


@dataclass(frozen=True)
class MCPServerConfig:
    """How to reach one MCP server (``command`` for stdio or ``url`` for streamable HTTP).

    ``risk`` overrides the risk the MCP hints give every tool of the server;
    ``tool_risk`` overrides it per tool (by the server's tool name).
    ``timeout``: seconds for each call (the call fails with a sentence after);
    ``start_timeout``: seconds to start and list the tools.  ``prefix`` is put
    before every tool name (``"time_"`` -> ``time_get_current_time``), for two
    servers that offer the same name.  ``permissions`` are required of every
    call, as for a local tool.
    """

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets: never shown
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets: never shown
    risk: Risk | None = None
    tool_risk: Mapping[str, Risk] = field(default_factory=dict)
    timeout: float = 60.0
    start_timeout: float = 30.0
    prefix: str = ""
    permissions: frozenset[str] = field(default_factory=frozenset)
    disabled: bool = False
    # An SDK server object (``MCPServer`` or lowlevel ``Server``) in this process,
    # reached through the SDK's in-memory transport: for tests and kernel-defined servers.
    server: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(str(a) for a in self.args))
        object.__setattr__(self, "env", {str(k): str(v) for k, v in dict(self.env or {}).items()})
        object.__setattr__(self, "headers", {str(k): str(v) for k, v in dict(self.headers or {}).items()})
        object.__setattr__(self, "tool_risk", dict(self.tool_risk or {}))
        object.__setattr__(self, "permissions", string_set(self.permissions, "permissions"))
        self._check()

    def _check(self) -> None:
        where = f"MCP server '{self.name}'"
        if not isinstance(self.name, str) or not _SERVER_NAME.match(self.name):
            raise MCPConfigError(
                f"{self.name!r} cannot name an MCP server: use 1 to 64 letters, digits, '_', '-' or '.'"
            )
        if sum(map(bool, (self.command, self.url, self.server is not None))) != 1:
            raise MCPConfigError(
                f"{where} needs exactly one of 'command' (a program to start, spoken to over stdio), "
                "'url' (a streamable HTTP endpoint such as http://127.0.0.1:8000/mcp) "
                "or server= (an MCP server object in this process)"
            )
        if self.url and not self.url.startswith(("http://", "https://")):
            raise MCPConfigError(f"{where}: the url must start with http:// or https://, not {self.url!r}")
        for label, risk in [("risk", self.risk), *((f"the risk of tool '{t}'", r) for t, r in self.tool_risk.items())]:
            if risk is not None and risk not in RISKS:
                raise MCPConfigError(f"{where}: {label} must be one of {', '.join(RISKS)}, not {risk!r}")
        for label, value in (("timeout", self.timeout), ("start_timeout", self.start_timeout)):
            if not isinstance(value, (int, float)) or value <= 0:
                raise MCPConfigError(f"{where}: {label} must be a positive number of seconds, not {value!r}")
        if self.prefix and not re.match(r"^[A-Za-z0-9_-]*$", self.prefix):
            raise MCPConfigError(f"{where}: the prefix may hold only letters, digits, '_' and '-', not {self.prefix!r}")

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "http" if self.url else "memory"

    @property
    def target(self) -> str:
        """Where the server is, for listings: the command line or the URL (never env or header values)."""
        if self.command:
            return " ".join([self.command, *self.args])
        if self.url:
            return self.url
        return f"in-process {type(self.server).__name__} {getattr(self.server, 'name', '')}".rstrip()

    @classmethod
    def from_entry(cls, name: str, entry: Mapping[str, Any]) -> MCPServerConfig:
        """One entry of an ``mcpServers`` mapping."""
        if not isinstance(entry, Mapping):
            raise MCPConfigError(f"the entry of MCP server '{name}' must be an object, not {type(entry).__name__}")
        known = {
            "command", "args", "env", "cwd", "url", "headers", "type", "transport", "risk", "toolRisk", "tool_risk",
            "timeout", "startTimeout", "start_timeout", "prefix", "permissions", "disabled",
        }
        unknown = sorted(set(entry) - known)
        if unknown:
            raise MCPConfigError(
                f"MCP server '{name}' has keys this host does not know: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        args = entry.get("args") or []
        if isinstance(args, str) or not isinstance(args, list):
            raise MCPConfigError(f"MCP server '{name}': 'args' must be a list of strings, e.g. [\"-m\", \"my_server\"]")
        kind = entry.get("type") or entry.get("transport")
        if kind not in (None, "stdio", "http", "streamable-http", "streamableHttp"):
            raise MCPConfigError(
                f"MCP server '{name}': transport {kind!r} is not supported; use a 'command' (stdio) "
                "or a 'url' (streamable HTTP)"
            )
        return cls(
            name=name,
            command=entry.get("command"),
            args=tuple(args),
            env=entry.get("env") or {},
            cwd=entry.get("cwd"),
            url=entry.get("url"),
            headers=entry.get("headers") or {},
            risk=entry.get("risk"),
            tool_risk=entry.get("toolRisk") or entry.get("tool_risk") or {},
            timeout=entry.get("timeout", 60.0),
            start_timeout=entry.get("startTimeout", entry.get("start_timeout", 30.0)),
            prefix=entry.get("prefix", ""),
            permissions=frozenset(entry.get("permissions") or ()),
            disabled=bool(entry.get("disabled", False)),
        )


def load_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> list[MCPServerConfig]:
    """The servers of an ``mcpServers`` file (path), JSON text or mapping, in file order."""
    data: Any
    if isinstance(source, Mapping):
        data = source
    else:
        text = str(source)
        path = Path(text).expanduser()
        if text.lstrip().startswith("{"):
            raw, origin = text, "the JSON given"
        elif path.is_file():
            raw, origin = path.read_text(encoding="utf-8"), str(path)
        else:
            raise MCPConfigError(f"no MCP config file at {str(path)!r}; give the path of a JSON file with \"mcpServers\"")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise MCPConfigError(f"{origin} is not valid JSON ({exc.msg}, line {exc.lineno}); fix it and load it again") from None
    servers = data.get("mcpServers", data.get("servers")) if isinstance(data, Mapping) else None
    if not isinstance(servers, Mapping):
        raise MCPConfigError(
            'an MCP config is an object with "mcpServers": {"name": {"command": ..., "args": [...]}, ...}'
        )
    return [MCPServerConfig.from_entry(str(name), entry) for name, entry in servers.items()]


def expand(values: Iterable[str] | Mapping[str, str], environ: Mapping[str, str] | None = None) -> Any:
    """``${NAME}`` replaced from the environment (a clear error when NAME is not set)."""
    env = os.environ if environ is None else environ

    def one(text: str) -> str:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise MCPConfigError(f"${{{name}}} is used in an MCP server config but {name} is not set; set it (or .env)")
            return env[name]

        return _VARIABLE.sub(sub, text)

    if isinstance(values, Mapping):
        return {k: one(v) for k, v in values.items()}
    return [one(v) for v in values]
