"""``%llmgine forget``, ``edit`` and ``pin`` in a real kernel: the history shows the marks, the model is sent
the dialog as edited, and ``edit`` on a message id edits the message (on a card's id, the call's arguments)."""

from __future__ import annotations

import json
import textwrap

from kernel_harness import KernelHarness


def test_forget_edit_and_pin_from_the_notebook(tmp_path):
    env = {"LLMGINE_DB": str(tmp_path / "llmgine.db"), "LLMGINE_MODEL": "", "OPENAI_API_KEY": ""}
    with KernelHarness(env=env) as k:
        k.execute("%load_ext llmgine_nb")
        k.execute(textwrap.dedent('''
            import json
            from llmgine_nb.llm import ScriptedLLM
            from llmgine_nb.notebook import runtime
            rt = runtime()
            rt.configure(ui="text")
            sent = []

            def model(messages, tools):
                sent.append([m.content for m in messages])
                return "ok: " + messages[-1].content

            rt.use_llm(ScriptedLLM(model))
            rt.ask_sync("I live in Perth")
            rt.ask_sync("My cat is called Tom")
            ids = [m.id for m in rt.store.messages(rt.session_id)]
        '''))
        ids = json.loads(k.execute("print(json.dumps(ids))").stdout)
        forgot = k.execute(f"%llmgine forget {ids[2][:10]}")
        assert "Forgot 2 messages (the exchange)" in forgot.text
        edited = k.execute(f"%llmgine edit {ids[0][:10]} I live in Hobart")
        assert "Edited message" in edited.text
        pinned = k.execute(f"%llmgine pin {ids[0][:10]}")
        assert "Pinned message" in pinned.text
        history = k.execute("%llmgine history").text
        assert "[forgotten: not sent to the model] My cat is called Tom" in history
        assert "[pinned] I live in Hobart" in history
        k.execute("rt.ask_sync('Where do I live?')")
        last = json.loads(k.execute("print(json.dumps(sent[-1]))").stdout)
        assert "I live in Hobart" in last and not any("Tom" in (text or "") for text in last)
        context = k.execute("%llmgine context").text
        assert "Left out because you forgot them: 2 messages (%llmgine forget)." in context
        assert "Tom" not in context and "I live in Hobart" in context  # the parts listed are the ones sent
        unknown = k.execute("%llmgine forget zzzzzzzz", allow_errors=True)
        assert "'zzzzzzzz' is no message of this session" in unknown.text
