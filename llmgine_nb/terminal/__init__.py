"""The terminal client: ``llmgine-nb chat`` (an engine in this process, or a server with ``--server``)."""

from .client import HELP, TerminalChat
from .connection import Connection, ConnectionError_, LocalConnection, RemoteConnection
from .render import Renderer

__all__ = ["TerminalChat", "HELP", "Connection", "ConnectionError_", "LocalConnection", "RemoteConnection", "Renderer"]
