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


def test_a_body_over_the_limit_is_413_and_a_body_that_is_not_json_says_what_to_send(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = api.post("/api/sessions", json={}).json()["id"]
    url = f"/api/sessions/{session_id}/messages"
    headers = {"Content-Type": "application/json"}

    def chunked():  # no Content-Length: only the bytes as they arrive can tell it is too big
        yield b'{"text": "'
        for _ in range(300):
            yield b"x" * 1024
        yield b'"}'

    too_big = api.post(url, content=chunked(), headers=headers)
    assert too_big.status_code == 413 and "limit" in too_big.json()["error"]
    declared = api.post(url, content=b"{" + b" " * 300_000 + b"}", headers=headers)
    assert declared.status_code == 413 and "limit" in declared.json()["error"]
    not_utf8 = api.post(url, content=b'{"text": "\xff\xfe"}', headers=headers)
    assert not_utf8.status_code == 400 and "UTF-8" in not_utf8.json()["error"]
    not_json = api.post(url, content=b'{"text": ', headers=headers)
    assert not_json.status_code == 422 and "not valid JSON" in not_json.json()["error"]
    responses = api.get("/openapi.json").json()["paths"]["/api/sessions/{session_id}/messages"]["post"]["responses"]
    assert {"400", "413", "422"} <= set(responses)
