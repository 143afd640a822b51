"""The server over real HTTP and WebSocket on 127.0.0.1: a full turn with approval, reconnects, streams."""

from __future__ import annotations

import json
import time

from server_harness import LiveServer, finished, read_until, server, short, store  # noqa: F401 (fixtures)

from llmgine_nb.store.users import add_user


def new_session(api) -> str:
    response = api.post("/api/sessions", json={})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_full_turn_with_approval_over_http_and_websocket(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = new_session(api)
    with server.websocket(session_id, token) as ws:
        assert short(read_until(ws, lambda r: "control" in r)[-1]) == "ready"
        sent = api.post(f"/api/sessions/{session_id}/messages", json={"text": "note: buy milk"})
        assert sent.status_code == 202, sent.text
        turn_id = sent.json()["turn_id"]
        before = read_until(ws, lambda r: short(r) == "ApprovalRequested")
        request = before[-1]
        assert request["arguments"] == {"text": "buy milk"}
        assert request["metadata"]["turn_id"] == turn_id
        pending = api.get(f"/api/sessions/{session_id}/pending").json()
        assert [(p["kind"], p["call_id"], p["tool_name"]) for p in pending] == [
            ("approval", request["call_id"], "save_note")]
        decided = api.post(f"/api/sessions/{session_id}/approvals/{request['call_id']}", json={"decision": "approve"})
        assert decided.status_code == 200, decided.text
        after = read_until(ws, finished)
    events = before + after
    assert short(events[-1]) == "TurnFinished" and events[-1]["turn_id"] == turn_id
    assert "The tool said" in events[-1]["text"]
    # Numbered 1, 2, 3 ... in the order they happened, without a gap.
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    kinds = [short(e) for e in events]
    for expected in ("TurnStarted", "LLMTextDelta", "ApprovalRequested", "ApprovalDecided", "ToolStarted",
                     "ToolFinished", "LLMCallFinished", "TurnFinished"):
        assert expected in kinds, kinds
    # The streamed text of each model call adds up to the text it finished with.
    for call in (e for e in events if short(e) == "LLMCallFinished"):
        streamed = "".join(e["text"] for e in events if short(e) == "LLMTextDelta" and e["call_id"] == call["call_id"])
        assert streamed == call["text"]
    # Who decided is recorded.
    (approval,) = [c.approval for c in store.tool_calls(session_id) if c.approval is not None]
    assert approval.decision == "approved" and approval.who == "alice"
    # The REST history has the whole conversation.
    roles = [m["role"] for m in api.get(f"/api/sessions/{session_id}/messages").json()]
    assert roles == ["user", "assistant", "tool", "assistant"]


def test_reconnect_mid_turn_misses_nothing_and_repeats_nothing(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = new_session(api)
    long_text = "tell me " + " ".join(f"word{i}" for i in range(150))
    seen: list[dict] = []
    with server.websocket(session_id, token) as ws:
        read_until(ws, lambda r: "control" in r)
        api.post(f"/api/sessions/{session_id}/messages", json={"text": long_text})
        seen += read_until(ws, lambda r: short(r) == "LLMTextDelta")
        seen += read_until(ws, lambda r: short(r) == "LLMTextDelta")
    # Gone mid-turn; the turn runs on.  Come back from the last number seen.
    last = seen[-1]["seq"]
    time.sleep(0.3)
    with server.websocket(session_id, token, after=last) as ws:
        rest = read_until(ws, finished)
    rest = [r for r in rest if "control" not in r]
    numbers = [r["seq"] for r in seen + rest]
    assert numbers == list(range(1, len(numbers) + 1))  # no gap, no duplicate
    everything = api.get(f"/api/sessions/{session_id}/events").json()
    assert [r["seq"] for r in everything] == numbers
    assert [r["id"] for r in everything] == [r["id"] for r in seen + rest]
    text = "".join(r["text"] for r in seen + rest if short(r) == "LLMTextDelta")
    final = next(r for r in rest if short(r) == "TurnFinished")["text"]
    assert text == final and "word27" in final


def test_batched_frames_carry_the_same_events_and_resume_the_same(server, store):
    """``"batch": true``: events come as arrays (what is ready at once in one frame), controls as objects,
    the same numbers, nothing missed or repeated; a replay is one frame."""
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = new_session(api)
    events: list[dict] = []
    with server.websocket(session_id, token, batch=True) as ws:
        assert json.loads(ws.recv())["control"] == "ready"
        ws.send(json.dumps({"command": "send", "text": "hello there", "ref": 7}))
        while not events or not finished(events[-1]):
            frame = json.loads(ws.recv(timeout=20))
            if isinstance(frame, dict):
                assert (frame["control"], frame["ref"]) == ("accepted", 7)
            else:
                assert frame and all("seq" in e for e in frame)
                events += frame
    numbers = [e["seq"] for e in events]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 5
    stored = api.get(f"/api/sessions/{session_id}/events").json()
    assert [e["id"] for e in stored] == [e["id"] for e in events]
    # Coming back: what is stored after the number given, as one frame, then "ready".
    with server.websocket(session_id, token, after=2, batch=True) as ws:
        replay = json.loads(ws.recv(timeout=10))
        assert [e["seq"] for e in replay] == numbers[2:]
        assert json.loads(ws.recv(timeout=10)) == {"control": "ready", "last_seq": numbers[-1]}
    # Without "batch", the same stream is one event a frame, as before.
    with server.websocket(session_id, token) as ws:
        one_by_one = read_until(ws, lambda r: "control" in r)
    assert [e["seq"] for e in one_by_one[:-1]] == numbers


def test_batched_frames_are_cut_by_count_and_by_size():
    from llmgine_nb.server.live import MAX_BATCH, MAX_FRAME_CHARS, _frames

    small = [f'{{"seq": {n}}}' for n in range(1, MAX_BATCH + 45)]
    assert [len(f) for f in _frames(small)] == [MAX_BATCH, 44]
    big = ["x" * (MAX_FRAME_CHARS // 2 - 10)] * 5
    assert [len(f) for f in _frames(big)] == [2, 2, 1]
    huge = ["y" * (MAX_FRAME_CHARS * 2), "z"]
    assert [len(f) for f in _frames(huge)] == [1, 1]  # an event longer than a frame goes alone
    assert sum(_frames(small + big + huge), []) == small + big + huge  # in order, nothing lost


def test_deny_with_a_reason_and_edit_arguments(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = new_session(api)
    with server.websocket(session_id, token) as ws:
        api.post(f"/api/sessions/{session_id}/messages", json={"text": "note: first"})
        call_id = read_until(ws, lambda r: short(r) == "ApprovalRequested")[-1]["call_id"]
        api.post(f"/api/sessions/{session_id}/approvals/{call_id}", json={"decision": "deny", "message": "not now"})
        events = read_until(ws, finished)
        decided = next(e for e in events if short(e) == "ApprovalDecided")
        assert decided["approved"] is False and decided["message"] == "not now"
        api.post(f"/api/sessions/{session_id}/messages", json={"text": "note: second"})
        call_id = read_until(ws, lambda r: short(r) == "ApprovalRequested")[-1]["call_id"]
        bad = api.post(f"/api/sessions/{session_id}/approvals/{call_id}", json={"decision": "edit"})
        assert bad.status_code == 400 and "arguments" in bad.json()["error"]
        api.post(f"/api/sessions/{session_id}/approvals/{call_id}",
                 json={"decision": "edit", "arguments": {"text": "edited"}})
        events = read_until(ws, finished)
        started = next(e for e in events if short(e) == "ToolStarted")
        assert started["arguments"] == {"text": "edited"}


def test_a_choice_is_answered_over_http(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = new_session(api)
    with server.websocket(session_id, token) as ws:
        api.post(f"/api/sessions/{session_id}/messages", json={"text": "pick a colour"})
        read_until(ws, lambda r: short(r) == "ToolStarted")
        deadline = time.monotonic() + 10
        while not (pending := api.get(f"/api/sessions/{session_id}/pending").json()):
            assert time.monotonic() < deadline, "the choice never became pending"
            time.sleep(0.05)
        (question,) = pending
        assert question["kind"] == "choice" and question["options"] == ["red", "green", "blue"]
        answered = api.post(f"/api/sessions/{session_id}/questions/{question['id']}", json={"answer": "green"})
        assert answered.status_code == 200, answered.text
        events = read_until(ws, finished)
    assert "picked green" in events[-1]["text"]


def test_stop_keeps_the_partial_reply(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = new_session(api)
    with server.websocket(session_id, token) as ws:
        api.post(f"/api/sessions/{session_id}/messages", json={"text": "say " + "many " * 300})
        read_until(ws, lambda r: short(r) == "LLMTextDelta")
        busy = api.post(f"/api/sessions/{session_id}/messages", json={"text": "again"})
        assert busy.status_code == 409 and "running" in busy.json()["error"]
        assert api.post(f"/api/sessions/{session_id}/cancel").json()["ok"] is True
        events = read_until(ws, finished)
    assert short(events[-1]) == "TurnCancelled" and events[-1]["partial_text"]
    messages = api.get(f"/api/sessions/{session_id}/messages").json()
    assert messages[-1]["status"] == "interrupted" and messages[-1]["content"] == events[-1]["partial_text"]
    retried = api.post(f"/api/sessions/{session_id}/retry")
    assert retried.status_code == 202, retried.text


def test_server_sent_events_with_a_ticket(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = new_session(api)
    api.post(f"/api/sessions/{session_id}/messages", json={"text": "hello"})
    ticket = api.post("/api/tickets", json={"session_id": session_id}).json()["ticket"]
    records = []
    with api.stream("GET", f"/api/sessions/{session_id}/sse", params={"ticket": ticket},
                    headers={"Authorization": ""}) as response:
        assert response.status_code == 200
        ids = []
        for line in response.iter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
            elif line.startswith("data: "):
                records.append(json.loads(line[6:]))
                if finished(records[-1]):
                    break
    assert ids == [r["seq"] for r in records] == list(range(1, len(records) + 1))
    # A ticket is single use.
    again = server.client().get(f"/api/sessions/{session_id}/sse", params={"ticket": ticket})
    assert again.status_code == 401 and "ticket" in again.json()["error"]


def test_sessions_list_fork_delete_search_usage_export(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = new_session(api)
    with server.websocket(session_id, token) as ws:
        api.post(f"/api/sessions/{session_id}/messages", json={"text": "the aardvark is asleep"})
        read_until(ws, finished)
    assert [s["id"] for s in api.get("/api/sessions").json()] == [session_id]
    fork = api.post(f"/api/sessions/{session_id}/fork", json={})
    assert fork.status_code == 201
    assert len(api.get(f"/api/sessions/{fork.json()['id']}/messages").json()) == 2
    hits = api.get("/api/search", params={"q": "aardvark"}).json()
    assert {h["session_id"] for h in hits} >= {session_id}
    usage = api.get("/api/usage").json()
    assert any(row["key"] == session_id and row["calls"] == 1 for row in usage)
    markdown = api.get(f"/api/sessions/{session_id}/export")
    assert markdown.status_code == 200 and "aardvark" in markdown.text
    assert api.delete(f"/api/sessions/{fork.json()['id']}").json()["ok"] is True
    assert [s["id"] for s in api.get("/api/sessions").json()] == [session_id]


def test_turns_sent_over_the_websocket_back_to_back(server, store):
    """Commands over the socket, each the moment the last turn finished: never refused as still running."""
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = new_session(api)
    with server.websocket(session_id, token) as ws:
        read_until(ws, lambda r: "control" in r)
        for number in range(5):
            ws.send(json.dumps({"command": "send", "text": f"number {number}", "ref": number}))
            accepted = read_until(ws, lambda r: r.get("control") in ("accepted", "refused"))[-1]
            assert accepted["control"] == "accepted" and accepted["ref"] == number, accepted
            end = read_until(ws, finished)[-1]
            assert end["turn_id"] == accepted["turn_id"] and f"number {number}" in end["text"]
        ws.send(json.dumps({"command": "send", "text": "z" * 40_000, "ref": "big"}))
        refused = read_until(ws, lambda r: r.get("control") == "refused")[-1]
        assert refused["ref"] == "big" and refused["status"] == 413 and "limit" in refused["error"]
        ws.send("not json")
        assert "JSON" in read_until(ws, lambda r: r.get("control") == "refused")[-1]["error"]
    assert len(api.get(f"/api/sessions/{session_id}/messages").json()) == 10


def test_a_decision_on_other_arguments_is_refused_and_the_call_stays_pending(server, store):
    _, token = add_user(store, "alice")
    api = server.client(token)
    session_id = new_session(api)
    with server.websocket(session_id, token) as ws:
        api.post(f"/api/sessions/{session_id}/messages", json={"text": "note: buy milk"})
        request = read_until(ws, lambda r: short(r) == "ApprovalRequested")[-1]
        assert request["args_hash"]
        url = f"/api/sessions/{session_id}/approvals/{request['call_id']}"
        stale = api.post(url, json={"decision": "approve", "args_hash": "0" * len(request["args_hash"])})
        assert stale.status_code == 409, stale.text
        error = stale.json()["error"]
        assert "other arguments" in error and "save_note" in error and error.endswith(".")
        pending = api.get(f"/api/sessions/{session_id}/pending").json()
        assert [(p["call_id"], p["args_hash"]) for p in pending] == [(request["call_id"], request["args_hash"])]
        # Decided on what the card showed, it runs.
        assert api.post(url, json={"decision": "approve", "args_hash": request["args_hash"]}).status_code == 200
        events = read_until(ws, finished)
    assert short(events[-1]) == "TurnFinished"
    assert next(e for e in events if short(e) == "ApprovalDecided")["approved"] is True
    assert next(e for e in events if short(e) == "ToolFinished")
