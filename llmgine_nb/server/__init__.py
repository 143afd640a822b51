"""The engine as a service: a FastAPI server, its event streams, users and the web page.

    from llmgine_nb.server import create_app
    app = create_app(store, model="scripted")      # run with uvicorn, or: llmgine-nb serve

``SessionHub`` (many sessions on one bus) is what both the server and the
terminal client drive; it imports no web framework, and ``create_app`` is
imported only when asked for, so the terminal client runs without FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .hub import HubError, SessionHub, TurnRunning
from .stream import SessionStreams

if TYPE_CHECKING:
    from .app import create_app
    from .config import ServerConfig

__all__ = ["SessionHub", "SessionStreams", "HubError", "TurnRunning", "create_app", "ServerConfig"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ServerConfig":
        from .config import ServerConfig

        return ServerConfig
    raise AttributeError(name)
