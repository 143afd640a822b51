"""A server killed while an approval waits: restarted, it asks again when the client comes back.

The server runs as its own process (``python -m llmgine_nb serve --demo``)
and is killed with SIGKILL, as a crash would; the client resumes its
stream from the last number it saw.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from server_harness import free_port, read_until, short
from websockets.sync.client import connect

from llmgine_nb.store import Store
from llmgine_nb.store.users import add_user

ROOT = Path(__file__).resolve().parent.parent


class ServeProcess:
    def __init__(self, db: Path, log: Path) -> None:
        self.db, self.log = db, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServeProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "llmgine_nb", "serve", "--demo", "--db", str(self.db), "--port", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/openapi.json", timeout=2)
                return self
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start:\n{self.log.read_text()}") from None
                time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def stream(url: str, session_id: str, token: str, after: int):
    return connect(url.replace("http", "ws", 1) + f"/api/sessions/{session_id}/ws", open_timeout=10)


def test_a_pending_approval_is_asked_again_after_a_crash(tmp_path):
    db = tmp_path / "server.db"
    with Store(db) as store:
        _, token = add_user(store, "erin")
    headers = {"Authorization": f"Bearer {token}"}
    first = ServeProcess(db, tmp_path / "serve.log").start()
    try:
        session_id = httpx.post(first.url + "/api/sessions", json={}, headers=headers).json()["id"]
        with stream(first.url, session_id, token, 0) as ws:
            ws.send(json.dumps({"token": token, "after": 0}))
            httpx.post(first.url + f"/api/sessions/{session_id}/messages", json={"text": "note: call mum"},
                       headers=headers)
            before = [r for r in read_until(ws, lambda r: short(r) == "ApprovalRequested") if "seq" in r]
            asked = before[-1]
            first.kill()  # mid-approval, no goodbye
    finally:
        first.stop()

    second = ServeProcess(db, tmp_path / "serve.log").start()
    try:
        last = before[-1]["seq"]
        with stream(second.url, session_id, token, last) as ws:
            ws.send(json.dumps({"token": token, "after": last}))
            again = read_until(ws, lambda r: short(r) == "ApprovalRequested")
            asked_again = again[-1]
            assert asked_again["tool_name"] == "save_note" and asked_again["arguments"] == {"text": "call mum"}
            assert asked_again["call_id"] == asked["call_id"]
            pending = httpx.get(second.url + f"/api/sessions/{session_id}/pending", headers=headers).json()
            assert [p["call_id"] for p in pending] == [asked["call_id"]]
            httpx.post(second.url + f"/api/sessions/{session_id}/approvals/{asked['call_id']}",
                       json={"decision": "approve"}, headers=headers)
            after = read_until(ws, lambda r: short(r) in ("TurnFinished", "TurnFailed"))
        assert short(after[-1]) == "TurnFinished" and "saved note" in after[-1]["text"]
        # One stream across the crash: numbers go on from where the first server stopped, no gap.
        numbers = [r["seq"] for r in before + again + after if "seq" in r]
        assert numbers == list(range(1, len(numbers) + 1))
        messages = httpx.get(second.url + f"/api/sessions/{session_id}/messages", headers=headers).json()
        assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    finally:
        second.stop()
    with Store(db) as store:
        (call,) = store.tool_calls(session_id)
        assert call.status == "done" and call.approval is not None and call.approval.who == "erin"


def test_a_turn_cut_by_a_crash_is_marked_interrupted_with_its_partial_reply_kept(tmp_path):
    db = tmp_path / "server.db"
    with Store(db) as store:
        _, token = add_user(store, "erin")
    headers = {"Authorization": f"Bearer {token}"}
    long_text = "tell me " + " ".join(f"word{i}" for i in range(300))  # streams word by word for seconds
    first = ServeProcess(db, tmp_path / "serve.log").start()
    try:
        session_id = httpx.post(first.url + "/api/sessions", json={}, headers=headers).json()["id"]
        with stream(first.url, session_id, token, 0) as ws:
            ws.send(json.dumps({"token": token, "after": 0}))
            turn_id = httpx.post(first.url + f"/api/sessions/{session_id}/messages", json={"text": long_text},
                                 headers=headers).json()["turn_id"]
            seen = read_until(ws, lambda r: short(r) == "LLMTextDelta")
            seen += read_until(ws, lambda r: short(r) == "LLMTextDelta")
            first.kill()  # mid-reply, no goodbye
    finally:
        first.stop()
    seen = [r for r in seen if "seq" in r]
    streamed = "".join(r["text"] for r in seen if short(r) == "LLMTextDelta")
    assert streamed and "word299" not in streamed

    second = ServeProcess(db, tmp_path / "serve.log").start()
    try:
        last = seen[-1]["seq"]
        with stream(second.url, session_id, token, last) as ws:
            ws.send(json.dumps({"token": token, "after": last}))
            rest = [r for r in read_until(ws, lambda r: short(r) in ("TurnFinished", "TurnFailed", "TurnCancelled"))
                    if "seq" in r]
        ended = rest[-1]
        assert short(ended) == "TurnCancelled" and ended["turn_id"] == turn_id
        assert "server restarted" in ended["reason"]
        # The partial reply is everything the stream had: what this client saw, and any text written after it.
        assert ended["partial_text"].startswith(streamed) and "word299" not in ended["partial_text"]
        numbers = [r["seq"] for r in seen + rest]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # one stream across the crash
        messages = httpx.get(second.url + f"/api/sessions/{session_id}/messages", headers=headers).json()
        assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "interrupted")]
        assert messages[1]["content"] == ended["partial_text"]
        # Opened again later, the turn is not cut a second time; the session goes on.
        sent = httpx.post(second.url + f"/api/sessions/{session_id}/messages", json={"text": "hello again"},
                          headers=headers)
        assert sent.status_code == 202, sent.text
        deadline = time.monotonic() + 30
        while httpx.get(second.url + f"/api/sessions/{session_id}", headers=headers).json()["running"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        kinds = [short(r) for r in httpx.get(second.url + f"/api/sessions/{session_id}/events",
                                             headers=headers).json()]
        assert kinds.count("TurnCancelled") == 1 and kinds[-1] == "TurnFinished"
    finally:
        second.stop()


def test_after_a_crash_the_rest_routes_recover_the_session_without_a_stream(tmp_path):
    """GET pending / GET session / POST approval open the session themselves: no stream needs to come first."""
    db = tmp_path / "server.db"
    with Store(db) as store:
        _, token = add_user(store, "erin")
    headers = {"Authorization": f"Bearer {token}"}
    first = ServeProcess(db, tmp_path / "serve.log").start()
    try:
        session_id = httpx.post(first.url + "/api/sessions", json={}, headers=headers).json()["id"]
        with stream(first.url, session_id, token, 0) as ws:
            ws.send(json.dumps({"token": token, "after": 0}))
            httpx.post(first.url + f"/api/sessions/{session_id}/messages", json={"text": "note: call mum"},
                       headers=headers)
            asked = read_until(ws, lambda r: short(r) == "ApprovalRequested")[-1]
            first.kill()
    finally:
        first.stop()

    second = ServeProcess(db, tmp_path / "serve.log").start()
    try:
        pending = httpx.get(second.url + f"/api/sessions/{session_id}/pending", headers=headers).json()
        assert [p["call_id"] for p in pending] == [asked["call_id"]]
        assert httpx.get(second.url + f"/api/sessions/{session_id}", headers=headers).json()["running"] is True
        decided = httpx.post(second.url + f"/api/sessions/{session_id}/approvals/{asked['call_id']}",
                             json={"decision": "approve"}, headers=headers)
        assert decided.status_code == 200, decided.text
        deadline = time.monotonic() + 30
        while httpx.get(second.url + f"/api/sessions/{session_id}", headers=headers).json()["running"]:
            assert time.monotonic() < deadline, "the resumed turn did not end"
            time.sleep(0.1)
        kinds = [short(r) for r in httpx.get(second.url + f"/api/sessions/{session_id}/events",
                                             headers=headers).json()]
        assert kinds[-1] == "TurnFinished"
    finally:
        second.stop()
