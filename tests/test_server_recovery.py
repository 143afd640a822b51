"""The cut-turn check on its own: which streams show a cut turn, and how its partial reply is kept."""

from __future__ import annotations

from llmgine_nb.chat import ChatMessage
from llmgine_nb.engine.events import TurnFinished, TurnStarted
from llmgine_nb.llm.events import LLMCallFinished, LLMCallStarted, LLMTextDelta
from llmgine_nb.server.recovery import RESTART_REASON, cut_turn
from llmgine_nb.store import Store
from llmgine_nb.store.streams import append_numbered


def write_stream(store: Store, session_id: str, events: list) -> None:
    append_numbered(store, [(session_id, seq, event, event.to_json()) for seq, event in enumerate(events, 1)])


def test_a_finished_turn_is_not_cut(tmp_path):
    with Store(tmp_path / "s.db") as store:
        session_id = store.create_session().id
        assert cut_turn(store, session_id) is None  # no stream at all
        write_stream(store, session_id, [
            TurnStarted(session_id=session_id, turn_id="t1", text="hi", model="m", user_message_id="u1"),
            TurnFinished(session_id=session_id, turn_id="t1", text="hello", model="m"),
        ])
        assert cut_turn(store, session_id) is None


def test_the_engines_draft_is_brought_up_to_date_with_what_the_stream_had(tmp_path):
    with Store(tmp_path / "s.db") as store:
        session_id = store.create_session().id
        store.record_turn(session_id, [ChatMessage(role="user", content="tell me"),
                                       ChatMessage(role="assistant", content="Hello wo", model="m",
                                                   status="interrupted")])
        call = {"session_id": session_id, "model": "m"}
        write_stream(store, session_id, [
            TurnStarted(session_id=session_id, turn_id="t1", text="tell me", model="m", user_message_id="u1"),
            LLMCallStarted(call_id="c1", **call),
            LLMTextDelta(call_id="c1", text="I will look.", **call),
            LLMCallFinished(call_id="c1", **call),  # an earlier call of the turn: its text is not the cut one's
            LLMCallStarted(call_id="c2", **call),
            LLMTextDelta(call_id="c2", text="Hello wo", **call),
            LLMTextDelta(call_id="c2", text="rld, and more", **call),
        ])
        cut = cut_turn(store, session_id)
        assert cut is not None and cut.turn_id == "t1" and cut.reason == RESTART_REASON
        assert cut.partial_text == "Hello world, and more"
        assert [(m.role, m.content, m.status) for m in store.messages(session_id)] == [
            ("user", "tell me", "complete"), ("assistant", "Hello world, and more", "interrupted")]
