"""``llmgine-nb serve --redis``: the server with no engines, a worker process running the turns.

The same scenario as tests/test_server_api.py's first test, over real HTTP and
WebSocket, with the engine in an ``llmgine-nb worker`` process behind Redis.
"""

from __future__ import annotations

import pytest

pytest.importorskip("redis")

from distributed_support import prefix, redis_url, start_worker  # noqa: E402,F401
from server_harness import LiveServer, read_until, short  # noqa: E402

from llmgine_nb.distributed.remote_hub import remote_hub_factory  # noqa: E402
from llmgine_nb.server import create_app  # noqa: E402
from llmgine_nb.store import Store  # noqa: E402
from llmgine_nb.store.users import add_user  # noqa: E402


def test_a_turn_with_approval_through_a_server_whose_engines_run_on_a_worker(redis_url, prefix, tmp_path):  # noqa: F811
    db = tmp_path / "shared.db"
    store = Store(db)
    worker = start_worker(redis_url, db, prefix, app="distributed_app:demo_options", log=tmp_path / "worker.log")
    try:
        app = create_app(store, hub_factory=remote_hub_factory(redis_url, prefix=prefix))
        with LiveServer(app) as server:
            _, token = add_user(store, "alice")
            api = server.client(token)
            session_id = api.post("/api/sessions", json={}).json()["id"]
            with server.websocket(session_id, token) as ws:
                assert short(read_until(ws, lambda r: "control" in r)[-1]) == "ready"
                sent = api.post(f"/api/sessions/{session_id}/messages", json={"text": "note: buy milk"})
                assert sent.status_code == 202, sent.text
                before = read_until(ws, lambda r: short(r) == "ApprovalRequested", timeout=60)
                request = before[-1]
                pending = api.get(f"/api/sessions/{session_id}/pending").json()
                assert [(p["kind"], p["call_id"]) for p in pending] == [("approval", request["call_id"])]
                decided = api.post(f"/api/sessions/{session_id}/approvals/{request['call_id']}",
                                   json={"decision": "approve"})
                assert decided.status_code == 200, decided.text
                after = read_until(ws, lambda r: short(r) in ("TurnFinished", "TurnFailed"), timeout=60)
            events = before + after
            assert short(events[-1]) == "TurnFinished" and "The tool said" in events[-1]["text"]
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
            roles = [m["role"] for m in api.get(f"/api/sessions/{session_id}/messages").json()]
            assert roles == ["user", "assistant", "tool", "assistant"]
            (approval,) = [c.approval for c in store.tool_calls(session_id) if c.approval is not None]
            assert approval.who == "alice"
    finally:
        worker.terminate()
        worker.wait(20)
        store.close()
