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
