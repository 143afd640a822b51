"""Tool schemas: from signatures (every supported type), docstrings, and existing JSON schemas."""

from __future__ import annotations

import dataclasses
import enum
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from llmgine_nb.tools import ArgumentsInvalid, Tool, ToolContext, ToolManager, tool


def params(fn, **options):
    return Tool.from_function(fn, **options).parameters


def obj(properties: dict, required: list[str] | None = None, **extra) -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": False, **extra}
    if required:
        schema["required"] = required
    return schema


# -- types used in signatures (module level so hints resolve) --------------


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(BaseModel):
    street: str
    city: str = "Perth"


class Person(BaseModel):
    name: str
    address: Address
    tags: list[str] = []


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


# -- one test per type -------------------------------------------------------


def test_primitives():
    def f(s: str, i: int, x: float, b: bool):
        """Primitives."""

    assert params(f) == obj(
        {"s": {"type": "string"}, "i": {"type": "integer"}, "x": {"type": "number"}, "b": {"type": "boolean"}},
        ["s", "i", "x", "b"],
    )


def test_defaults_make_parameters_optional():
    def f(name: str, count: int = 3, ratio: float = 0.5, flag: bool = False, label: str = "x"):
        """Defaults."""

    assert params(f) == obj(
        {
            "name": {"type": "string"},
            "count": {"type": "integer", "default": 3},
            "ratio": {"type": "number", "default": 0.5},
            "flag": {"type": "boolean", "default": False},
            "label": {"type": "string", "default": "x"},
        },
        ["name"],
    )


def test_pep604_optional_and_typing_optional():
    def f(a: int | None, b: str | None = None, c: int | None = 4):
        """Optionals."""

    assert params(f) == obj(
        {
            # X | None without a default is still required: the model must say null
            "a": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "b": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "c": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": 4},
        },
        ["a"],
    )


def test_unions():
    def f(a: int | str, b: int | float | str = 1):
        """Unions."""

    assert params(f) == obj(
        {
            "a": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "b": {"anyOf": [{"type": "integer"}, {"type": "number"}, {"type": "string"}], "default": 1},
        },
        ["a"],
    )


def test_lists_and_dicts():
    def f(ids: list[int], scores: dict[str, float], nested: list[dict[str, list[str]]] = []):  # noqa: B006
        """Containers."""

    assert params(f) == obj(
        {
            "ids": {"type": "array", "items": {"type": "integer"}},
            "scores": {"type": "object", "additionalProperties": {"type": "number"}},
            "nested": {
                "type": "array",
                "items": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
                "default": [],
            },
        },
        ["ids", "scores"],
    )


def test_literal():
    def f(mode: Literal["fast", "slow"], level: Literal[1, 2, 3] = 1):
        """Literals."""

    assert params(f) == obj(
        {
            "mode": {"type": "string", "enum": ["fast", "slow"]},
            "level": {"type": "integer", "enum": [1, 2, 3], "default": 1},
        },
        ["mode"],
    )


def test_enums():
    def f(colour: Colour, priority: Priority = Priority.LOW):
        """Enums."""

    assert params(f) == obj(
        {"colour": {"$ref": "#/$defs/Colour"}, "priority": {"$ref": "#/$defs/Priority", "default": 1}},
        ["colour"],
        **{
            "$defs": {
                "Colour": {"type": "string", "enum": ["red", "green"]},
                "Priority": {"type": "integer", "enum": [1, 2]},
            }
        },
    )


def test_nested_pydantic_models():
    def f(person: Person):
        """Models."""

    assert params(f) == obj(
        {"person": {"$ref": "#/$defs/Person"}},
        ["person"],
        **{
            "$defs": {
                "Address": {
                    "type": "object",
                    "properties": {"street": {"type": "string"}, "city": {"type": "string", "default": "Perth"}},
                    "required": ["street"],
                },
                "Person": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "address": {"$ref": "#/$defs/Address"},
                        "tags": {"type": "array", "items": {"type": "string"}, "default": []},
                    },
                    "required": ["name", "address"],
                },
            }
        },
    )


def test_dataclasses():
    def f(start: Point, path: list[Point] = []):  # noqa: B006
        """Dataclasses."""

    assert params(f) == obj(
        {"start": {"$ref": "#/$defs/Point"}, "path": {"type": "array", "items": {"$ref": "#/$defs/Point"}, "default": []}},
        ["start"],
        **{
            "$defs": {
                "Point": {
                    "type": "object",
                    "properties": {"x": {"type": "number"}, "y": {"type": "number", "default": 0.0}},
                    "required": ["x"],
                    # the tool's extra="forbid" reaches stdlib dataclasses too
                    "additionalProperties": False,
                }
            }
        },
    )


def test_annotated_field_description_and_constraints():
    def f(
        n: Annotated[int, Field(description="How many.", ge=1, le=10)],
        tag: Annotated[str, Field(description="A tag.", max_length=5)] = "a",
    ):
        """Annotated."""

    assert params(f) == obj(
        {
            "n": {"type": "integer", "description": "How many.", "minimum": 1, "maximum": 10},
            "tag": {"type": "string", "description": "A tag.", "maxLength": 5, "default": "a"},
        },
        ["n"],
    )


def test_unannotated_parameter_accepts_anything():
    def f(anything, n: int = 1):
        """Untyped."""

    assert params(f) == obj({"anything": {}, "n": {"type": "integer", "default": 1}}, ["anything"])


def test_no_parameters():
    def ping() -> str:
        """Ping."""
        return "pong"

    assert params(ping) == {"type": "object", "properties": {}, "additionalProperties": False}


def test_context_parameter_is_left_out_of_the_schema():
    def f(query: str, ctx: ToolContext, limit: int = 5):
        """Search."""

    def g(query: str, context: ToolContext | None = None):
        """Search, context optional."""

    t = Tool.from_function(f)
    assert t.parameters == obj({"query": {"type": "string"}, "limit": {"type": "integer", "default": 5}}, ["query"])
    assert t.context_params == ["ctx"]
    assert Tool.from_function(g).parameters == obj({"query": {"type": "string"}}, ["query"])
    assert Tool.from_function(g).context_params == ["context"]


def test_parameter_named_like_a_basemodel_attribute_or_title_keeps_its_name():
    def f(json: str, title: str, schema: int = 0):
        """Awkward names."""

    t = Tool.from_function(f)
    assert t.parameters == obj(
        {"json": {"type": "string"}, "title": {"type": "string"}, "schema": {"type": "integer", "default": 0}},
        ["json", "title"],
    )
    assert t.validate({"json": "{}", "title": "T"}).kwargs == {"json": "{}", "title": "T", "schema": 0}
    with pytest.raises(ArgumentsInvalid, match="- json: missing required argument"):
        t.validate({"title": "T"})


def test_a_renamed_parameter_never_hides_a_parameter_named_like_its_internal_name():
    def f(_a: int, param_0: str, param_0_: bool = False, json: float = 0.5):
        """Names that clash with the internal names of renamed parameters."""

    t = Tool.from_function(f)
    assert t.parameters == obj(
        {
            "_a": {"type": "integer"},
            "param_0": {"type": "string"},
            "param_0_": {"type": "boolean", "default": False},
            "json": {"type": "number", "default": 0.5},
        },
        ["_a", "param_0"],
    )
    args = {"_a": 1, "param_0": "x", "param_0_": True, "json": 2.5}
    assert t.validate(args).kwargs == args and t.validate(args).data == args
    with pytest.raises(ArgumentsInvalid, match="- param_0: missing required argument"):
        t.validate({"_a": 1})


# -- docstrings -----------------------------------------------------------------


def google(city: str, days: int = 3) -> str:
    """Get the weather forecast.

    Args:
        city: The city to look up,
            for example Perth.
        days (int): How many days ahead.

    Returns:
        The forecast.
    """
    return ""


def numpy_style(city: str, days: int = 3) -> str:
    """Get the weather forecast.

    Parameters
    ----------
    city : str
        The city to look up.
    days : int, optional
        How many days ahead.

    Returns
    -------
    str
        The forecast.
    """
    return ""


def sphinx(city: str, days: int = 3) -> str:
    """Get the weather forecast.

    :param city: The city to look up.
    :param days: How many days ahead.
    :returns: The forecast.
    """
    return ""


@pytest.mark.parametrize(
    ("fn", "city_text"),
    [(google, "The city to look up,\nfor example Perth."), (numpy_style, "The city to look up."), (sphinx, "The city to look up.")],
    ids=["google", "numpy", "sphinx"],
)
def test_docstring_styles_give_description_and_parameter_descriptions(fn, city_text):
    t = Tool.from_function(fn)
    assert t.description == "Get the weather forecast."
    assert t.parameters == obj(
        {
            "city": {"type": "string", "description": city_text},
            "days": {"type": "integer", "default": 3, "description": "How many days ahead."},
        },
        ["city"],
    )


def test_long_description_follows_the_summary():
    def f(x: int):
        """Do the thing.

        Only when the user asked for it.

        Args:
            x: A number.
        """

    t = Tool.from_function(f)
    assert t.description == "Do the thing.\n\nOnly when the user asked for it."


def test_annotated_description_wins_over_the_docstring():
    def f(x: Annotated[int, Field(description="from Field")], y: int):
        """Summary.

        Args:
            x: from docstring
            y: y from docstring
        """

    assert params(f)["properties"] == {
        "x": {"type": "integer", "description": "from Field"},
        "y": {"type": "integer", "description": "y from docstring"},
    }


def test_options_override_name_and_description():
    @tool(name="forecast", description="Weather, briefly.")
    def weather(city: str) -> str:
        """Long docstring summary."""
        return city

    t = Tool.from_function(weather)
    assert t.schema() == {
        "type": "function",
        "function": {"name": "forecast", "description": "Weather, briefly.", "parameters": obj({"city": {"type": "string"}}, ["city"])},
    }


def test_methods_and_async_functions_and_callables():
    class Board:
        def __init__(self):
            self.tasks = []

        @tool(risk="write")
        def add(self, title: str) -> int:
            """Add a task."""
            self.tasks.append(title)
            return len(self.tasks)

    class Counter:
        def __call__(self, step: int = 1) -> int:
            """Count."""
            return step

    async def fetch(url: str) -> str:
        """Fetch a page."""
        return url

    board = Board()
    manager = ToolManager()
    [add] = manager.register_object(board)
    assert add.risk == "write" and add.parameters == obj({"title": {"type": "string"}}, ["title"])
    assert Tool.from_function(fetch).is_async
    counter = Tool.from_function(Counter(), name="counter")
    assert counter.parameters == obj({"step": {"type": "integer", "default": 1}}, [])
    assert counter.description == "Count."


# -- validation through the same model ------------------------------------------


def test_arguments_are_coerced_by_the_schema_model():
    def f(n: int, colour: Colour, person: Person, point: Point, when: Literal["now", "later"] = "now"):
        """Coercion."""

    v = Tool.from_function(f).validate(
        {"n": "7", "colour": "green", "person": {"name": "Ann", "address": {"street": "1 Main"}}, "point": {"x": "1.5"}}
    )
    assert v.kwargs["n"] == 7
    assert v.kwargs["colour"] is Colour.GREEN
    assert isinstance(v.kwargs["person"], Person) and v.kwargs["person"].address.city == "Perth"
    assert v.kwargs["point"] == Point(1.5, 0.0)
    assert v.data == {
        "n": 7, "colour": "green", "person": {"name": "Ann", "address": {"street": "1 Main", "city": "Perth"}, "tags": []},
        "point": {"x": 1.5, "y": 0.0}, "when": "now",
    }


def test_validation_errors_name_each_problem():
    def f(n: int, mode: Literal["a", "b"], items: list[int] = []):  # noqa: B006
        """Errors."""

    with pytest.raises(ArgumentsInvalid) as err:
        Tool.from_function(f).validate({"mode": "c", "items": [1, "x"], "extra": 1})
    text = str(err.value)
    assert text.startswith("Invalid arguments for tool 'f':")
    assert "- n: missing required argument" in text
    assert "- mode: Input should be 'a' or 'b' (got 'c')" in text
    assert "- items.1: Input should be a valid integer" in text
    assert "- extra: unexpected argument" in text
    assert text.endswith("Fix the arguments and call the tool again.")


# -- bad tool definitions fail clearly -------------------------------------------------


def test_bad_definitions_raise_clear_errors():
    def star(*args):
        """Varargs."""

    with pytest.raises(TypeError, match=r"\*args"):
        Tool.from_function(star)
    with pytest.raises(ValueError, match="pass name="):
        Tool.from_function(lambda x: x)
    with pytest.raises(ValueError, match="risk must be one of"):
        tool(risk="nuclear")
    with pytest.raises(ValueError, match="approval must be"):
        tool(approval="sometimes")
    with pytest.raises(TypeError, match="not one string"):
        tool(permissions="tasks:write")
    with pytest.raises(TypeError, match="unknown tool option"):
        Tool.from_function(google, colour="red")


# -- tools from existing JSON schemas --------------------------------------------------

WEATHER_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}

MCP_TOOLS = [
    {
        "name": "read_file",
        "description": "Read a file.",
        "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        "annotations": {"readOnlyHint": True},
    },
    {
        "name": "write_file",
        "description": "Write a file.",
        "inputSchema": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "text": {"type": "string"}},
            "required": ["path", "text"],
        },
        "annotations": {"destructiveHint": False},
    },
    {"name": "rm", "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}}},
]


def test_openai_tool_list_roundtrips_and_validates():
    manager = ToolManager()
    [t] = manager.register_openai([WEATHER_OPENAI], lambda name, args: f"{name}:{args}")
    assert manager.schemas() == [WEATHER_OPENAI]
    assert t.validate({"city": "Perth", "unit": "c"}).kwargs == {"city": "Perth", "unit": "c"}
    with pytest.raises(ArgumentsInvalid) as err:
        t.validate({"unit": "k", "other": 1})
    text = str(err.value)
    assert "'city' is a required property" in text
    assert "- unit: 'k' is not one of ['c', 'f']" in text
    assert "Additional properties are not allowed ('other' was unexpected)" in text


def test_mcp_definitions_keep_their_schema_and_map_hints_to_risk():
    manager = ToolManager()
    tools = manager.register_mcp(MCP_TOOLS, {"read_file": lambda path: path, "write_file": lambda path, text: 1, "rm": lambda path=None: 0})
    assert [t.risk for t in tools] == ["read", "write", "destructive"]  # the MCP default is destructive
    assert manager.schemas()[0] == {
        "type": "function",
        "function": {"name": "read_file", "description": "Read a file.", "parameters": MCP_TOOLS[0]["inputSchema"]},
    }
    with pytest.raises(ArgumentsInvalid, match="- path: 5 is not of type 'string'"):
        tools[0].validate({"path": 5})


def test_invalid_json_schema_is_refused_at_registration():
    with pytest.raises(TypeError, match="not a valid JSON schema"):
        Tool.from_schema("bad", lambda: None, {"type": "object", "properties": {"x": {"type": "wat"}}})
    with pytest.raises(TypeError, match="must describe an object"):
        Tool.from_schema("bad", lambda: None, {"type": "array"})
    with pytest.raises(ValueError, match="OpenAI tool looks like"):
        Tool.from_openai({"type": "function", "function": {"description": "no name"}}, lambda: None)
