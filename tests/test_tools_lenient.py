"""Tool lists written for older APIs: strict by default, lenient when asked, with a report."""

from __future__ import annotations

import pytest

from llmgine_nb import ToolManager
from llmgine_nb.chat import ToolCall
from llmgine_nb.tools.schema import allowed_tool_name, lenient_schema

LEGACY = [
    {"type": "function", "function": {
        "name": "weather.get",
        "description": "The weather.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "str"},
            "options": {"type": "dict"},
            "scale": {"type": "float"},
            "point": {"type": "tuple"},
            "extra": {"type": "any"},
            "type": {"type": "string"},  # a property *named* type stays a property
        }, "required": ["city", "ghost"]},
    }},
    {"type": "function", "function": {"name": "send mail", "parameters": {"type": "dict", "properties": {}}}},
]


def test_strict_is_the_default_and_says_lenient_exists():
    tools = ToolManager()
    with pytest.raises(ValueError, match="tool name 'weather.get' is not allowed"):
        tools.register_openai(LEGACY[:1], lambda name, args: None)
    legacy_types = {"name": "weather", "parameters": {"type": "object", "properties": {"o": {"type": "dict"}}}}
    with pytest.raises(TypeError, match="not a valid JSON schema.*register it with lenient=True"):
        tools.register_openai([legacy_types], lambda name, args: None)
    assert len(tools) == 0


def test_lenient_maps_types_and_names_and_reports_every_change():
    seen: list[tuple[str, dict]] = []
    tools = ToolManager()
    imported = tools.register_openai(LEGACY, lambda name, args: seen.append((name, args)) or "ok", lenient=True)
    assert [t.name for t in imported] == ["weather_get", "send_mail"]
    assert imported.renamed == {"weather_get": "weather.get", "send_mail": "send mail"}
    props = tools["weather_get"].parameters["properties"]
    assert props["city"] == {"type": "string"} and props["options"] == {"type": "object"}
    assert props["scale"] == {"type": "number"} and props["point"] == {"type": "array"}
    assert props["extra"] == {} and props["type"] == {"type": "string"}
    assert tools["weather_get"].parameters["required"] == ["city"]
    assert tools["send_mail"].parameters["type"] == "object"
    report = imported.report()
    assert "tool 'weather.get': renamed to 'weather_get'" in report
    assert "weather.get.options: type 'dict' mapped to 'object'" in report
    assert "weather.get.extra: type 'any' mapped to any value" in report
    assert "dropped 'required' entries that name no property: ghost" in report
    # The model calls the allowed name; the handler gets the original one.
    result = tools.execute_sync([ToolCall(id="1", name="weather_get", arguments={"city": "Oslo", "scale": 1.5})])[0]
    assert result.status == "ok" and seen == [("weather.get", {"city": "Oslo", "scale": 1.5})]
    bad = tools.execute_sync([ToolCall(id="2", name="weather_get", arguments={"city": 3})])[0]
    assert bad.status == "invalid"  # the mapped schema still validates
    tools.close()


def test_allowed_names():
    assert allowed_tool_name("get_time") == "get_time"
    assert allowed_tool_name("files.read file") == "files_read_file"
    long = allowed_tool_name("x" * 100)
    assert len(long) == 64 and long != allowed_tool_name("x" * 99)
    assert allowed_tool_name("...") == "tool"


def test_unknown_types_become_any_value_and_say_so():
    schema, changes = lenient_schema({"properties": {"a": {"type": "Widget"}, "b": {"type": ["int", "null"]}}})
    assert schema == {"properties": {"a": {}, "b": {"type": ["integer", "null"]}}, "type": "object"}
    assert changes == ["parameters.a: unknown type 'Widget' accepted as any value", "parameters.b: type 'int' mapped to 'integer'"]
