"""The web chat page in Debian chromium (Playwright) against a real server on 127.0.0.1.

Sign in with a token, ask, watch the reply stream as Markdown, approve a tool
call on its card, answer a choice, and check that model output cannot become
markup.  Screenshots are kept under test-artifacts/.
"""

from __future__ import annotations

import pytest
from browser_harness import ARTIFACTS_DIR, ChromiumBrowser, browser_marks
from server_harness import LiveServer

from llmgine_nb.server import create_app
from llmgine_nb.server.demo import demo_llm, demo_tools
from llmgine_nb.store import Store
from llmgine_nb.store.users import add_user

pytestmark = browser_marks()


@pytest.fixture
def served(tmp_path):
    store = Store(tmp_path / "server.db")
    _, token = add_user(store, "dana")
    app = create_app(store, llm_factory=lambda model: demo_llm(delay_s=0.02), tools=demo_tools())
    with LiveServer(app) as server:
        yield server, token, store
    store.close()


def shot(page, name: str) -> None:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / f"server-page-{name}.png"), full_page=True)


def test_ask_stream_approve_and_see_the_result_in_the_page(served):
    server, token, store = served
    with ChromiumBrowser() as browser:
        page = browser.new_page()
        asked_pending: list[str] = []  # the page draws cards from the stream; it asks /pending only on opening
        page.on("request", lambda request: asked_pending.append(request.url) if request.url.endswith("/pending") else None)
        page.goto(server.url + "/")
        page.fill("#token", "lnb_wrong")
        page.click("#signin-form button")
        page.wait_for_selector("#signin-error:has-text('not valid')")
        page.fill("#token", token)
        page.click("#signin-form button")
        page.wait_for_selector("#who:has-text('dana')")

        page.fill("#message", "hello **there**")
        page.keyboard.press("Enter")
        page.wait_for_selector(".footer:has-text('out tokens')")
        # Markdown became markup: the model's **Offline demo.** is bold.
        assert page.inner_text(".msg.assistant strong").startswith("Offline demo")
        shot(page, "1-reply")

        page.fill("#message", "note: buy milk")
        page.click("#send")
        card = page.wait_for_selector(".card:has-text('Approve save_note?')")
        assert '"buy milk"' in page.input_value(".card textarea")
        shot(page, "2-approval-card")
        page.wait_for_timeout(1500)  # a turn waiting on a person: long enough for any polling to show
        card.query_selector("button:has-text('Approve')").click()
        page.wait_for_selector(".card.decided:has-text('Approved')")
        page.wait_for_selector(".msg.assistant:has-text('Done. The tool said')")
        page.wait_for_selector("#stop[disabled]")
        shot(page, "3-approved-result")

        page.fill("#message", "pick a colour")
        page.click("#send")
        page.click(".card button:has-text('green')")
        page.wait_for_selector(".msg.assistant:has-text('the user picked green')")
        page.wait_for_selector(".card.decided:has-text('Answered: green')")
        shot(page, "4-choice")
        # Three turns, an approval and a choice: no polling, only the one look when the session opened.
        assert len(asked_pending) == 1, asked_pending
        assert not [line for line in browser.console if line.startswith("pageerror")], browser.console

    (call,) = [c for s in store.list_sessions() for c in store.tool_calls(s.session.id) if c.tool == "save_note"]
    assert call.status == "done" and call.approval is not None and call.approval.who == "dana"


def test_model_output_never_becomes_markup(served):
    server, token, _ = served
    with ChromiumBrowser() as browser:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.fill("#token", token)
        page.click("#signin-form button")
        page.wait_for_selector("#who:has-text('dana')")
        attack = '<img src=x onerror="document.title=\'pwned\'"> [x](javascript:alert(1))'
        page.fill("#message", attack)
        page.keyboard.press("Enter")
        page.wait_for_selector(".footer:has-text('out tokens')")
        assert page.query_selector("#log img") is None
        assert page.query_selector("#log a[href^='javascript']") is None
        assert "<img src=x" in page.inner_text(".msg.assistant")
        assert page.title() != "pwned"
        shot(page, "5-escaped")
        # Switch to a new session and back: the history comes from the store, escaped the same way.
        page.click("#new-session")
        page.wait_for_selector("#sessions li:nth-child(2)")
        assert page.inner_text("#log") == ""
        page.click("#sessions li:not(.current)")
        page.wait_for_selector(".msg.assistant:has-text('<img src=x')")
        assert page.query_selector("#log img") is None and page.title() != "pwned"
