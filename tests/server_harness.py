"""A real uvicorn server on 127.0.0.1 in a thread, and small clients for the tests that talk to it.

    with LiveServer(create_app(store, llm_factory=demo_llm, tools=demo_tools())) as server:
        api = server.client(token)              # httpx.Client with the Authorization header
        with server.websocket(session_id, token, after=0) as ws: ...

The server speaks real HTTP and WebSocket on a free port; tests use httpx
and the ``websockets`` client, as any other program would.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.sync.client import ClientConnection, connect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    def __init__(self, app: Any, port: int | None = None, *, log_level: str = "warning") -> None:
        self.app = app
        self.port = port or free_port()
        self.log_level = log_level  # "info" writes uvicorn's access log
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level=self.log_level,
                                lifespan="on", ws="websockets-sansio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="test-uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=30)
        self.server = self.thread = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    @contextmanager
    def websocket(self, session_id: str, token: str | None = None, *, after: int = 0,
                  ticket: str | None = None, origin: str | None = None,
                  batch: bool = False) -> Iterator[ClientConnection]:
        url = f"ws://127.0.0.1:{self.port}/api/sessions/{session_id}/ws"
        with connect(url, origin=origin, open_timeout=10) as ws:  # type: ignore[arg-type]
            first: dict[str, Any] = {"after": after, **({"batch": True} if batch else {})}
            if token:
                first["token"] = token
            if ticket:
                first["ticket"] = ticket
            ws.send(json.dumps(first))
            yield ws


def read_until(ws: ClientConnection, predicate: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Stream texts (parsed) up to and including the first for which ``predicate(record)`` holds."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out; saw {[r.get('type', r.get('control')) for r in seen]}")
        record = json.loads(ws.recv(timeout=remaining))
        seen.append(record)
        if predicate(record):
            return seen


def short(record: dict[str, Any]) -> str:
    """``TurnStarted`` for ``llmgine_nb.engine.events.TurnStarted``; the control word for control messages."""
    return str(record.get("type", record.get("control", ""))).rsplit(".", 1)[-1]


def finished(record: dict[str, Any]) -> bool:
    """Whether a streamed event ends a turn."""
    return short(record) in ("TurnFinished", "TurnFailed", "TurnCancelled")


# Fixtures shared by the server's test modules (imported by name there): one store file, and a live
# server on it with the demo's model and tools.


@pytest.fixture
def store(tmp_path: Any) -> Iterator[Any]:
    from llmgine_nb.store import Store

    store = Store(tmp_path / "server.db")
    yield store
    store.close()


@pytest.fixture
def server(store: Any) -> Iterator[LiveServer]:
    from llmgine_nb.server import create_app
    from llmgine_nb.server.demo import demo_llm, demo_tools

    app = create_app(store, llm_factory=lambda model: demo_llm(delay_s=0.01), tools=demo_tools())
    with LiveServer(app) as live:
        yield live
