"""The server's answers at its edges, in process (the same as with ``--redis``): refusals are sentences
with the documented status, never a 500 or a turn that fails after it was accepted."""

from __future__ import annotations

import pytest
from server_harness import LiveServer, read_until, short

from llmgine_nb.server import create_app
from llmgine_nb.server.demo import demo_llm, demo_tools
from llmgine_nb.store import Store
from llmgine_nb.store.users import add_user


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "server.db")
    yield store
    store.close()


@pytest.fixture
def server(store):
    app = create_app(store, llm_factory=lambda model: demo_llm(delay_s=0.01), tools=demo_tools())
    with LiveServer(app) as live:
        yield live


def finished(record: dict) -> bool:
    return short(record) in ("TurnFinished", "TurnFailed", "TurnCancelled")


def test_delete_while_a_turn_runs_is_refused_with_409_until_the_turn_is_stopped(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = api.post("/api/sessions", json={}).json()["id"]
    with server.websocket(session_id, token) as ws:
        api.post(f"/api/sessions/{session_id}/messages", json={"text": "note: buy milk"})
        read_until(ws, lambda r: short(r) == "ApprovalRequested")
        refused = api.delete(f"/api/sessions/{session_id}")
        assert refused.status_code == 409 and "stop it" in refused.json()["error"]
        assert api.get(f"/api/sessions/{session_id}").status_code == 200
        api.post(f"/api/sessions/{session_id}/cancel")
        read_until(ws, finished)
    assert api.delete(f"/api/sessions/{session_id}").json() == {"ok": True}
    assert api.get(f"/api/sessions/{session_id}").status_code == 404
    described = api.get("/openapi.json").json()["paths"]["/api/sessions/{session_id}"]["delete"]["responses"]
    assert "409" in described
