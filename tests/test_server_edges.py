"""The server's answers at its edges, in process (the same as with ``--redis``): refusals are sentences
with the documented status, never a 500 or a turn that fails after it was accepted."""

from __future__ import annotations

import json
import logging
import time

from server_harness import LiveServer, finished, read_until, server, short, store  # noqa: F401 (fixtures)

from llmgine_nb.server.access_log import redact_query
from llmgine_nb.store.users import add_user


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


def _closed_with(ws) -> tuple[int | None, str, list[dict]]:
    """What the server said before it closed the socket, and the close frame it sent (None: no frame)."""
    from websockets.exceptions import ConnectionClosed

    said = []
    try:
        while True:
            said.append(json.loads(ws.recv(timeout=10)))
    except ConnectionClosed:
        pass
    frame = ws.protocol.close_rcvd
    return (frame.code if frame else None), (frame.reason if frame else ""), said


def test_a_binary_frame_closes_the_socket_with_1003_and_a_reason_first_or_later(server, store):
    from websockets.sync.client import connect

    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = api.post("/api/sessions", json={}).json()["id"]
    url = f"ws://127.0.0.1:{server.port}/api/sessions/{session_id}/ws"
    with connect(url, open_timeout=10) as ws:
        ws.send(b'{"token": "x"}')  # bytes: a binary frame
        code, reason, said = _closed_with(ws)
    assert code == 1003 and "text" in reason and said[-1]["control"] == "error"
    with server.websocket(session_id, token) as ws:
        assert short(read_until(ws, lambda r: "control" in r)[-1]) == "ready"
        ws.send(b"\x00\x01")
        code, reason, said = _closed_with(ws)
    assert code == 1003 and "text" in reason


def test_after_beyond_the_last_event_is_refused_on_the_websocket_and_sse(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = api.post("/api/sessions", json={}).json()["id"]
    with server.websocket(session_id, token) as ws:
        api.post(f"/api/sessions/{session_id}/messages", json={"text": "hello"})
        last = read_until(ws, finished)[-1]["seq"]
    with server.websocket(session_id, token, after=last) as ws:  # exactly the last: fine
        assert read_until(ws, lambda r: "control" in r)[-1] == {"control": "ready", "last_seq": last}
    with server.websocket(session_id, token, after=last + 5) as ws:
        code, reason, said = _closed_with(ws)
    assert code == 4400 and said[-1]["control"] == "error"
    assert f"last event is number {last}" in said[-1]["error"]
    ticket = api.post("/api/tickets", json={"session_id": session_id}).json()["ticket"]
    sse = api.get(f"/api/sessions/{session_id}/sse", params={"ticket": ticket},
                  headers={"Last-Event-ID": str(last + 1)})
    assert sse.status_code == 400 and f"number {last}" in sse.json()["error"]


def test_an_empty_message_or_a_retry_with_nothing_to_retry_is_400_before_any_turn(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = api.post("/api/sessions", json={}).json()["id"]
    for text in ("", "   \n"):
        empty = api.post(f"/api/sessions/{session_id}/messages", json={"text": text})
        assert empty.status_code == 400 and "empty" in empty.json()["error"]
    nothing = api.post(f"/api/sessions/{session_id}/retry")
    assert nothing.status_code == 400 and "send one first" in nothing.json()["error"]
    assert api.get(f"/api/sessions/{session_id}/events").json() == []  # no turn was started, none failed
    with server.websocket(session_id, token) as ws:
        read_until(ws, lambda r: "control" in r)
        ws.send(json.dumps({"command": "send", "text": " ", "ref": 1}))
        refused = read_until(ws, lambda r: r.get("ref") == 1)[-1]
    assert refused["control"] == "refused" and refused["status"] == 400


def test_a_method_not_allowed_lists_every_method_of_the_path_in_allow(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = api.post("/api/sessions", json={}).json()["id"]
    for path, methods in (("/api/sessions", {"GET", "POST"}),
                          (f"/api/sessions/{session_id}", {"GET", "DELETE"}),
                          (f"/api/sessions/{session_id}/messages", {"GET", "POST"})):
        for method in ("OPTIONS", "PUT"):
            refused = api.request(method, path)
            assert refused.status_code == 405
            assert set(refused.headers["allow"].split(", ")) == methods, (method, path)
            assert all(m in refused.json()["error"] for m in methods)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_credential_wrongly_put_in_a_url_never_reaches_the_access_log(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = api.post("/api/sessions", json={}).json()["id"]
    access = logging.getLogger("uvicorn.access")
    lines, level = _Lines(), access.level
    access.addHandler(lines)
    access.setLevel(logging.INFO)
    try:
        anonymous = server.client()
        assert anonymous.get("/api/me", params={"token": token}).status_code == 401
        assert anonymous.get(f"/api/sessions/{session_id}/sse",
                             params={"ticket": "tkt_wrong", "after": 0}).status_code == 401
        assert anonymous.get("/api/me", params={"api_key": "sk-plain", "x": token}).status_code == 401
        api.get("/api/search", params={"q": "aardvark", "limit": 5})
        for _ in range(100):  # uvicorn logs after the response is sent
            if len(lines.lines) >= 4:
                break
            time.sleep(0.02)
    finally:
        access.removeHandler(lines)
        access.setLevel(level)
    logged = "\n".join(lines.lines)
    assert len(lines.lines) >= 4, logged
    assert token not in logged and "tkt_wrong" not in logged and "sk-plain" not in logged
    for name in ("token", "ticket", "api_key"):
        # litellm's own log filter (attached once litellm is loaded, e.g. earlier in a test run)
        # may blank a parameter first and write '?REDACTED'; either way the value is gone.
        assert f"{name}=[redacted]" in logged or "?REDACTED" in logged, logged
    assert "q=aardvark&limit=5" in logged and "after=0" in logged  # the rest is kept as sent
    # (Other redaction, e.g. of the process's own secrets, may also touch these lines; ours alone:)
    assert redact_query(f"/api/me?token={token}&ticket=tkt_x&api_key=k&x={token}&after=3") == (
        "/api/me?token=[redacted]&ticket=[redacted]&api_key=[redacted]&x=[redacted]&after=3")
