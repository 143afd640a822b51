"""Who may do what on the server, its limits, and its errors, over real HTTP and WebSocket."""

from __future__ import annotations

import json

import pytest
from server_harness import LiveServer, read_until, short
from websockets.exceptions import ConnectionClosed, InvalidStatus

from llmgine_nb.server import ServerConfig, create_app
from llmgine_nb.server.demo import demo_llm, demo_tools
from llmgine_nb.store import Store
from llmgine_nb.store.users import add_user, hash_token


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "server.db")
    yield store
    store.close()


def start(store, **limits):
    app = create_app(store, config=ServerConfig(**limits), llm_factory=lambda m: demo_llm(delay_s=0.005),
                     tools=demo_tools())
    return LiveServer(app)


def test_tokens_are_stored_as_hashes_only(store):
    _, token = add_user(store, "alice")
    rows = store.conn.execute("SELECT token_hash FROM api_tokens").fetchall()
    assert rows == [(hash_token(token),)]
    dump = "\n".join(store.conn.iterdump())
    assert token not in dump


def test_another_users_session_is_a_404_for_every_route_and_stream(store):
    _, alice = add_user(store, "alice")
    _, bob = add_user(store, "bob")
    with start(store) as server:
        a, b = server.client(alice), server.client(bob)
        session_id = a.post("/api/sessions", json={}).json()["id"]
        with server.websocket(session_id, alice) as ws:
            a.post(f"/api/sessions/{session_id}/messages", json={"text": "note: secret plan"})
            call_id = read_until(ws, lambda r: short(r) == "ApprovalRequested")[-1]["call_id"]
            attempts = [
                b.get(f"/api/sessions/{session_id}"),
                b.get(f"/api/sessions/{session_id}/messages"),
                b.get(f"/api/sessions/{session_id}/events"),
                b.get(f"/api/sessions/{session_id}/pending"),
                b.post(f"/api/sessions/{session_id}/messages", json={"text": "hi"}),
                b.post(f"/api/sessions/{session_id}/approvals/{call_id}", json={"decision": "approve"}),
                b.post(f"/api/sessions/{session_id}/cancel"),
                b.post(f"/api/sessions/{session_id}/fork", json={}),
                b.get(f"/api/sessions/{session_id}/export"),
                b.get("/api/usage", params={"session_id": session_id}),
                b.post("/api/tickets", json={"session_id": session_id}),
                b.delete(f"/api/sessions/{session_id}"),
            ]
            for response in attempts:
                assert response.status_code == 404, (response.request.url, response.text)
                assert "no session" in response.json()["error"]
            # Bob's stream is refused too, with a token or with his own ticket.
            with server.websocket(session_id, bob) as bob_ws:
                refusal = json.loads(bob_ws.recv(timeout=10))
                assert refusal["control"] == "error" and "no session" in refusal["error"]
                with pytest.raises(ConnectionClosed) as closed:
                    bob_ws.recv(timeout=10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
            ticket = b.post("/api/tickets", json={}).json()["ticket"]
            assert server.client().get(f"/api/sessions/{session_id}/sse", params={"ticket": ticket}).status_code == 404
            # Nothing of Alice's shows in Bob's lists or searches.
            assert b.get("/api/sessions").json() == []
            assert b.get("/api/search", params={"q": "secret"}).json() == []
            # The approval is still Alice's to give, and hers is recorded.
            assert [p["call_id"] for p in a.get(f"/api/sessions/{session_id}/pending").json()] == [call_id]
            a.post(f"/api/sessions/{session_id}/approvals/{call_id}", json={"decision": "approve"})
            read_until(ws, lambda r: short(r) == "TurnFinished")
        (call,) = store.tool_calls(session_id)
        assert call.status == "done" and call.approval is not None and call.approval.who == "alice"


def test_no_token_or_a_wrong_one_is_refused_with_a_sentence(store):
    add_user(store, "alice")
    with start(store) as server:
        anonymous = server.client().get("/api/sessions")
        assert anonymous.status_code == 401 and "Authorization: Bearer" in anonymous.json()["error"]
        wrong = server.client("lnb_not-a-real-token").get("/api/sessions")
        assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]


def test_limits_answer_413_and_429_with_retry_after(store):
    _, token = add_user(store, "alice")
    with start(store, max_body_bytes=2000, max_message_chars=500, requests_per_minute=8,
               max_turns_per_user=1) as server:
        api = server.client(token)
        session_id = api.post("/api/sessions", json={}).json()["id"]
        big = api.post(f"/api/sessions/{session_id}/messages", content=b'{"text": "' + b"x" * 5000 + b'"}',
                       headers={"Content-Type": "application/json"})
        assert big.status_code == 413 and "2000 bytes" in big.json()["error"]
        long = api.post(f"/api/sessions/{session_id}/messages", json={"text": "y" * 600})
        assert long.status_code == 413 and "limit is 500" in long.json()["error"]
        # One turn at a time for this user: the second session's turn must wait.
        other = api.post("/api/sessions", json={}).json()["id"]
        assert api.post(f"/api/sessions/{session_id}/messages", json={"text": "note: hold"}).status_code == 202
        busy = api.post(f"/api/sessions/{other}/messages", json={"text": "hello"})
        assert busy.status_code == 429 and busy.headers["Retry-After"].isdigit()
        # Past the rate: 429 with Retry-After, a sentence, nothing else.
        statuses = [api.get("/api/sessions") for _ in range(10)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, [r.status_code for r in statuses]
        assert int(limited[0].headers["Retry-After"]) >= 1 and "Try again" in limited[0].json()["error"]


def test_a_page_from_another_origin_cannot_open_the_stream(store):
    _, token = add_user(store, "alice")
    with start(store) as server:
        session_id = server.client(token).post("/api/sessions", json={}).json()["id"]
        with pytest.raises(InvalidStatus) as refused:
            with server.websocket(session_id, token, origin="http://evil.example"):
                pass
        assert refused.value.response.status_code == 403
        with server.websocket(session_id, token, origin=server.url) as ws:
            assert read_until(ws, lambda r: "control" in r)[-1]["control"] == "ready"


def test_errors_are_sentences_without_internals(store):
    _, token = add_user(store, "alice")
    with start(store) as server:
        api = server.client(token)
        for response in (
            api.get("/api/nothing-here"),
            api.post("/api/sessions", content=b"{not json", headers={"Content-Type": "application/json"}),
            api.post("/api/sessions", json={"surprise": 1}),
            api.put("/api/sessions"),
        ):
            assert 400 <= response.status_code < 500
            body = response.json()
            assert list(body) == ["error"] and body["error"].endswith(".")
            assert "Traceback" not in response.text and "File \"" not in response.text


def test_cors_is_off_unless_configured(store):
    _, token = add_user(store, "alice")
    with start(store) as server:
        response = server.client(token).get("/api/sessions", headers={"Origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in response.headers
    with start(store, cors_origins=["http://app.example"]) as server:
        response = server.client(token).get("/api/sessions", headers={"Origin": "http://app.example"})
        assert response.headers["access-control-allow-origin"] == "http://app.example"


# -- odd input: a sentence, the right status, nothing lost (more in test_server_edges.py) -------------


def test_odd_requests_get_a_sentence_and_the_right_status(store):
    _, token = add_user(store, "alice")
    with start(store) as server:
        api = server.client(token)
        session_id = api.post("/api/sessions", json={}).json()["id"]

        def refused(response, status: int, words: str) -> None:
            assert response.status_code == status, (response.status_code, response.text)
            error = response.json()["error"]
            assert words in error and error[:1].isupper() and error.endswith("."), error

        refused(api.post(f"/api/sessions/{session_id}/approvals/abcd", json={"decision": "approve"}), 404,
                "Nothing is waiting for approval")
        refused(api.post(f"/api/sessions/{session_id}/questions/abcd", json={"answer": True}), 404,
                "No question is waiting")
        stop = api.post(f"/api/sessions/{session_id}/cancel")
        assert stop.status_code == 200 and stop.json() == {
            "ok": False, "message": "No turn is running in this session, so there was nothing to stop."}
        api.post(f"/api/sessions/{session_id}/messages", json={"text": "hello"})
        other = api.post("/api/sessions", json={}).json()["id"]
        # A message id of another session (it was a 500).
        refused(api.post(f"/api/sessions/{other}/fork", json={"at_message_id": "not-a-message"}), 400,
                "Cannot fork there")
        search = api.get("/api/search", params={"q": '"'})
        assert search.status_code == 422 and "no word to look for" in search.json()["error"]
        assert api.get(f"/api/sessions/{other}/messages").json() == []
        assert api.get("/api/sessions").status_code == 200  # and the server still answers


def test_deciding_an_approval_twice_keeps_the_first_decision(store):
    _, token = add_user(store, "alice")
    with start(store) as server:
        api = server.client(token)
        session_id = api.post("/api/sessions", json={}).json()["id"]
        with server.websocket(session_id, token) as ws:
            api.post(f"/api/sessions/{session_id}/messages", json={"text": "note: buy milk"})
            call_id = read_until(ws, lambda r: short(r) == "ApprovalRequested")[-1]["call_id"]
            assert api.post(f"/api/sessions/{session_id}/approvals/{call_id}", json={"decision": "approve"}).json()["ok"]
            again = api.post(f"/api/sessions/{session_id}/approvals/{call_id}", json={"decision": "deny"})
            assert again.status_code == 404 and "decided already" in again.json()["error"]
            seen = read_until(ws, lambda r: short(r) == "TurnFinished")
        decided = [r for r in seen if short(r) == "ApprovalDecided"]
        assert [d["decision"] for d in decided] == ["approve"]
        (call,) = store.tool_calls(session_id)
        assert call.status == "done" and call.approval is not None and call.approval.decision == "approved"


def test_odd_websocket_messages_get_a_sentence_and_the_socket_goes_on(store):
    _, token = add_user(store, "alice")
    with start(store, max_body_bytes=2000) as server:
        api = server.client(token)
        session_id = api.post("/api/sessions", json={}).json()["id"]
        url = f"ws://127.0.0.1:{server.port}/api/sessions/{session_id}/ws"
        from websockets.sync.client import connect

        with connect(url) as ws:  # a ticket that is not a string (it crashed the handler)
            ws.send(json.dumps({"ticket": ["not", "a", "string"]}))
            refusal = json.loads(ws.recv(timeout=10))
            assert refusal["control"] == "error" and refusal["error"].endswith("."), refusal
        with server.websocket(session_id, token) as ws:
            read_until(ws, lambda r: r.get("control") == "ready")

            def reply(message) -> dict:
                ws.send(message)
                return read_until(ws, lambda r: r.get("control") in ("accepted", "refused"))[-1]

            too_long = reply(json.dumps({"command": "send", "text": "x" * 3000}))
            assert too_long["status"] == 413 and "longer than the limit of 2000 bytes" in too_long["error"]
            stop = reply(json.dumps({"command": "cancel"}))
            assert stop["ok"] is False and "nothing to stop" in stop["message"]
            # The same socket still carries a turn.
            assert reply(json.dumps({"command": "send", "text": "hello", "ref": 7}))["control"] == "accepted"
            read_until(ws, lambda r: short(r) == "TurnFinished")
