"""Messages are frozen all the way down: no dict or list inside one can be changed in flight."""

from __future__ import annotations

import copy
import json
import pickle
import warnings
from typing import Any

import pytest

from llmgine_nb import CommandResult, Event, Message
from llmgine_nb.chat import ToolCall, Usage
from llmgine_nb.frozen import FrozenDict, FrozenList, freeze, thaw
from llmgine_nb.llm.events import LLMCallFinished
from llmgine_nb.tools.events import ApprovalRequested, ToolCallRequested, ToolFinished
from llmgine_nb.tools.results import ToolResult


class Nested(Event):
    rows: list[dict[str, Any]] = []
    table: dict[str, list[int]] = {}
    pair: tuple[dict[str, int], list[int]] | None = None
    anything: Any = None


def _refused(change) -> None:
    with pytest.raises(TypeError, match="immutable"):
        change()


def test_tool_arguments_cannot_be_changed_at_any_depth():
    request = ApprovalRequested(call_id="c", tool_name="t", arguments={"path": "a.txt", "list": [1], "opts": {"x": 1}})
    _refused(lambda: request.arguments.__setitem__("path", "/etc/passwd"))
    _refused(lambda: request.arguments["list"].append(2))
    _refused(lambda: request.arguments["opts"].update(x=2))
    assert request.arguments == {"path": "a.txt", "list": [1], "opts": {"x": 1}}


def test_nested_metadata_cannot_be_changed():
    event = ToolCallRequested(call_id="c", tool_name="t", metadata={"k": {"x": 1}, "l": [1]})
    _refused(lambda: event.metadata["k"].__setitem__("x", 2))
    _refused(lambda: event.metadata["l"].extend([2]))
    _refused(lambda: event.metadata.__setitem__("k", 3))


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.rows.append({}),
        lambda m: m.rows[0].__setitem__("a", 9),
        lambda m: m.table["a"].sort(),
        lambda m: m.table.pop("a"),
        lambda m: m.pair[0].clear(),
        lambda m: m.pair[1].__iadd__([5]),
        lambda m: m.anything["deep"][0].__setitem__("x", 0),
    ],
)
def test_every_container_field_is_frozen(change):
    message = Nested(
        rows=[{"a": 1}], table={"a": [2, 1]}, pair=({"b": 1}, [3]), anything={"deep": [{"x": 1}]}
    )
    _refused(lambda: change(message))
    rebuilt = Message.from_json(message.to_json())
    _refused(lambda: change(rebuilt))


def test_models_a_message_carries_are_frozen_too():
    call = ToolCall(id="1", name="t", arguments={"a": [1]})
    _refused(lambda: call.arguments["a"].append(2))
    with pytest.raises(ValueError):
        call.name = "other"  # type: ignore[misc]
    finished = LLMCallFinished(call_id="c", model="m", tool_calls=[call], usage=Usage(input_tokens=3))
    with pytest.raises(ValueError):
        finished.usage.input_tokens = 0  # type: ignore[misc]
    result = ToolResult(call_id="1", tool_name="t", content="ok", value={"v": [1]}, metadata={"m": 1})
    _refused(lambda: ToolFinished(call_id="1", tool_name="t", result=result).result.value["v"].append(2))
    _refused(lambda: result.metadata.__setitem__("m", 2))


def test_a_changed_copy_is_built_and_frozen_too():
    request = ApprovalRequested(call_id="c", tool_name="t", arguments={"path": "a"})
    edited = request.model_copy(update={"arguments": {**request.arguments, "path": "b"}, "metadata": {"k": [1]}})
    assert (request.arguments["path"], edited.arguments["path"]) == ("a", "b")
    _refused(lambda: edited.arguments.__setitem__("path", "c"))
    _refused(lambda: edited.metadata["k"].append(2))


def test_serialises_as_plain_json_without_warnings():
    message = Nested(rows=[{"a": 1}], table={"a": [1]}, anything={"deep": [1, {"x": None}]}, metadata={"k": {"x": 1}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        record = message.to_record()
        python = message.model_dump()
        text = message.model_dump_json()
    assert type(python["rows"]) is list and type(python["rows"][0]) is dict
    assert json.loads(text)["anything"] == {"deep": [1, {"x": None}]}
    assert record["metadata"] == {"k": {"x": 1}}
    assert Message.from_record(record) == message


def test_deepcopy_and_pickle_give_plain_values_and_messages_stay_frozen():
    frozen = freeze({"a": [1, {"b": 2}], "t": ({"c": 3},)})
    assert isinstance(frozen, FrozenDict) and isinstance(frozen["a"], FrozenList)
    for plain in (copy.deepcopy(frozen), pickle.loads(pickle.dumps(frozen))):
        assert type(plain) is dict and type(plain["a"]) is list and type(plain["a"][1]) is dict
        plain["a"].append(3)  # the caller's own copy may change
    assert frozen == {"a": [1, {"b": 2}], "t": ({"c": 3},)}
    assert thaw(frozen) == frozen and type(thaw(frozen)["t"][0]) is dict

    result = CommandResult(result={"rows": [1, 2]}, metadata={"k": [1]})
    for again in (copy.deepcopy(result), pickle.loads(pickle.dumps(result)), result.model_copy(deep=True)):
        assert again == result
        _refused(lambda m=again: m.result["rows"].append(3))
        _refused(lambda m=again: m.metadata["k"].append(2))


# -- numbers a wire can carry: JSON has no NaN or Infinity ----------------------------------


class Measured(Event):
    seconds: float = 0.0
    limit: float | None = None
    readings: list[float] = []
    extra: Any = None


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")], ids=["inf", "-inf", "nan"])
def test_a_typed_number_that_json_cannot_carry_is_refused_where_it_is_made(bad):
    from llmgine_nb.engine.events import BudgetExceeded

    with pytest.raises(ValueError, match="BudgetExceeded.allowed must be a finite number"):
        BudgetExceeded(turn_id="t", limit="cost", used=1.0, allowed=bad, approved=False)
    for field in ("seconds", "limit"):
        with pytest.raises(ValueError, match=f"Measured.{field} must be a finite number"):
            Measured(**{field: bad})
    with pytest.raises(ValueError, match="ToolResult.duration must be a finite number"):
        ToolResult(call_id="1", tool_name="t", content="", duration=bad)
    with pytest.raises(ValueError, match="finite"):
        Measured().model_copy(update={"seconds": bad})


def _strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_nan_and_infinity_inside_free_form_values_travel_as_null():
    inf, nan = float("inf"), float("nan")
    message = Measured(
        seconds=1.5, readings=[1.0, inf], extra={"nested": [nan, {"x": -inf}]}, metadata={"score": nan}
    )
    text = message.to_json()
    assert _strict(text)["extra"] == {"nested": [None, {"x": None}]}
    assert _strict(text)["readings"] == [1.0, None] and _strict(text)["metadata"] == {"score": None}
    assert _strict(json.dumps(message.to_record(), allow_nan=False))["seconds"] == 1.5
    result = ToolFinished(call_id="1", tool_name="t", result=ToolResult(call_id="1", tool_name="t", content="", value=[nan]))
    assert Message.from_json(result.to_json()).result.value == [None]


def test_the_store_keeps_only_strict_json(db_target):
    from llmgine_nb.store import Store

    store = Store(db_target)
    try:
        session = store.create_session(metadata={"ratio": float("nan")})
        event = Measured(session_id=session.id, extra={"x": float("inf")})
        store.log_event(event)
        (stored,) = store.events(session.id)
        assert stored.extra == {"x": None} and store.get_session(session.id).metadata == {"ratio": None}
    finally:
        store.close()
