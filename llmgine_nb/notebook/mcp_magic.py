"""``%llmgine mcp ...``: add, list, start, restart and remove MCP servers from a cell.

    %llmgine mcp                                     the servers, their state and tools
    %llmgine mcp add time -- python -m mcp_server_time
    %llmgine mcp add search http://127.0.0.1:8000/mcp
    %llmgine mcp add files --risk write --prefix fs_ -- npx server-filesystem .
    %llmgine mcp load mcp.json                       every server of an mcpServers file
    %llmgine mcp start [NAME] | restart NAME | stop NAME | remove NAME

Each is one call of ``runtime.tools.mcp`` (``MCPServers``), the Python API.
"""

from __future__ import annotations

import html
import shlex
from typing import TYPE_CHECKING, Any

from .magic_options import SUBCOMMAND_PARSERS

if TYPE_CHECKING:
    from .kernel_runtime import NotebookRuntime

__all__ = ["mcp_command", "MCPReport", "MCP_HELP"]

MCP_HELP = """\
%llmgine mcp                                  MCP servers: state, tools, last error
%llmgine mcp add NAME -- COMMAND ARGS...      a server started as a process (stdio)
%llmgine mcp add NAME URL                     a streamable HTTP server
   options before NAME: --risk read|write|destructive (all its tools), --prefix P_,
   --timeout SECONDS, --start (start now instead of on the first turn)
%llmgine mcp load PATH                        every server of an mcpServers JSON file
%llmgine mcp start [NAME] | restart NAME | stop NAME | remove NAME"""


class MCPReport:
    """The servers as a table (HTML) with a plain-text fallback."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __repr__(self) -> str:
        if not self.rows:
            return "No MCP servers. Add one: %llmgine mcp add NAME -- COMMAND ARGS... (or NAME URL)"
        lines = []
        for row in self.rows:
            tools = ", ".join(row["tools"]) or "(tools listed when it starts)"
            lines.append(f"{row['name']} [{row['state']}] {row['transport']}: {row['target']}\n  tools: {tools}")
            if row.get("error"):
                lines.append(f"  error: {row['error']}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p>{html.escape(repr(self))}</p>"
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                row["name"], row["state"], f"{row['transport']}: {row['target']}", ", ".join(row["tools"]),
                row.get("error") or "",
            )) + "</tr>"
            for row in self.rows
        )
        head = "".join(f"<th>{h}</th>" for h in ("server", "state", "where", "tools", "last error"))
        return f"<table><tr>{head}</tr>{cells}</table>"


def mcp_command(runtime: NotebookRuntime, rest: str) -> Any:
    """Run ``%llmgine mcp REST``; returns what the cell shows (a report or a sentence)."""
    from ..tools.mcp import MCPServerError

    try:
        return _mcp_command(runtime, rest)
    except MCPServerError as exc:
        return _Text(str(exc))  # a server that failed is news, not a traceback


def _mcp_command(runtime: NotebookRuntime, rest: str) -> Any:
    hub = runtime.tools.mcp
    word, _, tail = rest.strip().partition(" ")
    tail = tail.strip()
    if not word or word == "list":
        return MCPReport(hub.status())
    if word == "help":
        return _Text(MCP_HELP)
    if word == "add":
        return _add(runtime, tail)
    if word == "load":
        if not tail:
            raise ValueError("give the path of an mcpServers JSON file: %llmgine mcp load mcp.json")
        added = hub.load(tail)
        return _Text(f"Added {', '.join(c.name for c in added)}; they start on the first turn that may use tools.")
    if word == "start":
        names = hub.start(tail or None)
        failed = [r for r in hub.status() if r["state"] == "failed" and (not tail or r["name"] == tail)]
        text = f"Started; tools now: {', '.join(names) or 'none'}."
        if failed:
            text += "\n" + "\n".join(r["error"] for r in failed)
        return _Text(text)
    if word in ("restart", "stop", "remove"):
        if not tail:
            raise ValueError(f"name the server: %llmgine mcp {word} NAME")
        if word == "restart":
            return _Text(f"Restarted '{tail}'; its tools: {', '.join(hub.restart(tail)) or 'none'}.")
        getattr(hub, word)(tail)
        return _Text(f"{'Stopped' if word == 'stop' else 'Removed'} '{tail}'.")
    raise ValueError(f"unknown `%llmgine mcp {word}`; these exist:\n{MCP_HELP}")


def _add(runtime: NotebookRuntime, text: str) -> Any:
    before, dashes, command = text.partition(" -- ")
    if not dashes and text.endswith(" --"):
        before, dashes, command = text[:-3], " -- ", ""
    try:
        words = shlex.split(before)
        argv = shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"the line could not be read ({exc}); check the quotes") from None
    args = SUBCOMMAND_PARSERS["mcp add"].parse_args(words)  # argparse: the one reader of options
    positional = [args.name] + ([args.url] if args.url else [])
    options: dict[str, Any] = {k: v for k in ("risk", "prefix", "timeout") if (v := getattr(args, k)) is not None}
    if args.start:
        options["start"] = True
    usage = "use %llmgine mcp add NAME -- COMMAND ARGS... (stdio) or %llmgine mcp add NAME URL (HTTP)"
    if dashes:
        if len(positional) != 1 or not argv:
            raise ValueError(usage)
        connection = runtime.tools.add_mcp(positional[0], argv[0], argv[1:], **options)
    else:
        if len(positional) != 2:
            raise ValueError(usage)
        connection = runtime.tools.add_mcp(positional[0], url=positional[1], **options)
    if connection.state == "running":
        return _Text(f"Added and started '{connection.name}': {', '.join(t.name for t in connection.tools)}.")
    if connection.state == "failed":
        return _Text(connection.error or f"'{connection.name}' could not be started")
    return _Text(
        f"Added '{connection.name}' ({connection.config.transport}: {connection.config.target}); it starts on the "
        f"first turn that may use tools, or now with `%llmgine mcp start {connection.name}`."
    )


class _Text:
    """A sentence shown as plain text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text
