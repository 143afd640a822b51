"""``llmgine-nb chat`` driven through a real pseudo-terminal (pexpect), in process and against a server."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest
from server_harness import LiveServer

from llmgine_nb.server import create_app
from llmgine_nb.server.demo import demo_llm, demo_tools
from llmgine_nb.store import Store
from llmgine_nb.store.users import add_user

ROOT = Path(__file__).resolve().parent.parent


def spawn(*args: str, tmp_path: Path) -> pexpect.spawn:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "LLMGINE_DB": str(tmp_path / "default.db")}
    child = pexpect.spawn(sys.executable, ["-m", "llmgine_nb", "chat", *args], env=env, encoding="utf-8",
                          timeout=30, dimensions=(40, 160))
    child.logfile_read = open(tmp_path / "terminal.log", "a")  # noqa: SIM115 - closed with the child
    return child


def final_frame(output: str) -> str:
    """The last drawing of a reply that was re-drawn in place while it streamed (rich erases the line first)."""
    return output.rsplit("\x1b[2K", 1)[-1]


def converse(child: pexpect.spawn) -> None:
    """The same conversation whichever engine answers: a reply, an approval, a choice, slash commands."""
    child.expect_exact("you> ")
    child.sendline("hello there")
    child.expect_exact('You said: "hello there"')
    child.expect(r"\[scripted · \d+ in / \d+ out tokens")
    # The reply's Markdown was rendered: the bold words are there, their asterisks are not.
    shown = final_frame(child.before)
    assert "Offline demo." in shown and "**" not in shown, shown
    child.expect_exact("you> ")
    child.sendline("note: buy milk")
    child.expect(r"Approval needed \[[0-9a-z]+\]")  # the short display id the engine gave the card, on a box
    child.expect_exact('save_note {"text": "buy milk"}')
    child.expect_exact("approve? [y]es / [n]o / [a]lways / [e]dit > ")
    child.sendline("n")
    child.expect_exact("reason (told to the model, may be empty) > ")
    child.sendline("not today")
    child.expect_exact("[save_note: denied (not today)]")
    child.expect_exact("you> ")
    child.sendline("note: buy bread")
    child.expect_exact("approve? [y]es / [n]o / [a]lways / [e]dit > ")
    child.sendline("e")
    child.expect_exact("new arguments as JSON > ")
    child.sendline('{"text": "buy rye bread"}')
    child.expect(r"─ tool save_note: ok ─+")  # the result's box
    child.expect_exact("(The user changed the arguments before approving")
    child.expect(r"saved note #\d+: buy rye bread")
    child.expect_exact("Done. The tool said:")
    child.expect(r"\[scripted · \d+ in / \d+ out tokens")
    shown = final_frame(child.before)
    assert "saved note #" in shown and "*" not in shown, shown  # emphasised, without its asterisks
    child.expect_exact("you> ")
    child.sendline("pick a colour")
    child.expect_exact("Question from pick_colour")
    child.expect_exact("Which colour?")
    child.expect_exact("3) blue")
    child.expect_exact("your choice (number, or empty for none) > ")
    child.sendline("3")
    child.expect_exact("the user picked blue")
    child.expect_exact("you> ")
    child.sendline("/usage")
    child.expect(r"scripted: \d+ calls, \d+ in / \d+ out tokens")
    child.expect_exact("you> ")
    child.sendline("/sessions")
    child.expect(r"\* [0-9a-f]{32}  scripted  \d+ messages")
    child.expect_exact("you> ")
    child.sendline("/nonsense")
    child.expect_exact("There is no /nonsense; /help lists the commands.")
    child.expect_exact("you> ")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_chat_in_process_through_a_pseudo_terminal(tmp_path):
    child = spawn("--demo", "--db", str(tmp_path / "chat.db"), tmp_path=tmp_path)
    converse(child)
    # The conversation is in the store, with the edited call and who decided.
    store = Store(tmp_path / "chat.db")
    (summary,) = store.list_sessions()
    calls = store.tool_calls(summary.session.id)
    assert [c.status for c in calls if c.tool == "save_note"] == ["denied", "done"]
    assert calls[1].approval is not None and calls[1].approval.edited_arguments == {"text": "buy rye bread"}


def test_chat_against_a_server_through_a_pseudo_terminal(tmp_path):
    store = Store(tmp_path / "server.db")
    _, token = add_user(store, "carol")
    app = create_app(store, llm_factory=lambda model: demo_llm(delay_s=0.005), tools=demo_tools())
    asked_pending: list[str] = []  # the client draws cards from the stream's events; it never polls

    async def counting(scope, receive, send):
        if scope["type"] == "http" and scope["path"].endswith("/pending"):
            asked_pending.append(scope["path"])
        await app(scope, receive, send)

    with LiveServer(counting) as server:
        child = spawn("--server", server.url, "--token", token, tmp_path=tmp_path)
        child.expect_exact("Signed in to")
        child.expect_exact("as carol.")
        converse(child)
    assert asked_pending == []
    (call,) = [c for s in store.list_sessions() for c in store.tool_calls(s.session.id) if c.status == "done"
               and c.tool == "save_note"]
    assert call.approval is not None and call.approval.who == "carol"


def test_chat_says_what_to_do_without_a_token(tmp_path):
    child = spawn("--server", "http://127.0.0.1:9", tmp_path=tmp_path)
    child.expect_exact("--server needs --token TOKEN")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2


@pytest.mark.parametrize("token", ["lnb_wrong"])
def test_chat_with_a_wrong_token_says_so(tmp_path, token):
    store = Store(tmp_path / "server.db")
    app = create_app(store, llm_factory=lambda model: demo_llm(), tools=demo_tools())
    with LiveServer(app) as server:
        child = spawn("--server", server.url, "--token", token, tmp_path=tmp_path)
        child.expect_exact("That API token is not valid")
        child.expect(pexpect.EOF)
        child.close()
    assert child.exitstatus == 1


def test_a_stop_says_whether_anything_was_kept():
    import io
    import json

    from llmgine_nb.engine.events import TurnCancelled
    from llmgine_nb.terminal.render import Renderer

    out = io.StringIO()
    renderer = Renderer(out, colour=False)
    for partial in ("", "Once upon a"):
        event = TurnCancelled(session_id="s", turn_id="t", partial_text=partial, reason="stopped by the user")
        renderer.event(json.loads(event.to_json()))
    assert out.getvalue().splitlines() == [
        "[stopped; nothing had arrived, so nothing is kept]",
        "[stopped; the partial reply is kept]",
    ]


def test_a_failure_reads_the_engines_reason_and_the_terminals_own_hint():
    import io
    import json

    from llmgine_nb.engine.events import TurnFailed
    from llmgine_nb.terminal.render import Renderer

    out = io.StringIO()
    renderer = Renderer(out, colour=False)
    reason = "No API key was found for openai: set OPENAI_API_KEY in the environment or a .env file. Your message is kept."
    event = TurnFailed(session_id="s", turn_id="t", kind="no_api_key", reason=reason, error="MissingAPIKeyError()")
    renderer.event(json.loads(event.to_json()))
    shown = out.getvalue()
    assert "%llmgine" not in shown and shown.count(".env") == 1
    assert "/model NAME switches this session to another model." in shown


def test_after_resume_an_answered_approval_shows_the_rest_of_its_turn_at_once(tmp_path):
    """/resume asks what waits; once answered, the turn is followed to its end before the prompt returns."""
    import time

    store = Store(tmp_path / "server.db")
    _, token = add_user(store, "carol")
    app = create_app(store, llm_factory=lambda model: demo_llm(delay_s=0.005), tools=demo_tools())
    with LiveServer(app) as server:
        api = server.client(token)
        session_id = api.post("/api/sessions", json={}).json()["id"]
        api.post(f"/api/sessions/{session_id}/messages", json={"text": "note: water the plants"})
        deadline = time.monotonic() + 20
        while not api.get(f"/api/sessions/{session_id}/pending").json():  # asked while nobody watched
            assert time.monotonic() < deadline, "the approval was never asked"
            time.sleep(0.05)
        child = spawn("--server", server.url, "--token", token, tmp_path=tmp_path)
        child.expect_exact("you> ")
        child.sendline(f"/resume {session_id[:12]}")
        child.expect_exact('save_note {"text": "water the plants"}')
        child.expect_exact("approve? [y]es / [n]o / [a]lways / [e]dit > ")
        child.sendline("y")
        # The rest of the turn, before the prompt comes back (not after the next message).
        child.expect(r"saved note #\d+: water the plants", timeout=15)
        child.expect(r"\[scripted · \d+ in / \d+ out tokens", timeout=15)
        child.expect_exact("you> ")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
        child.close()
    assert child.exitstatus == 0
