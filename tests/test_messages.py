"""Messages: ids, timestamps, sessions, metadata and JSON round trips through the type registry."""

from __future__ import annotations

import enum
import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from llmgine_nb import Command, CommandResult, Event, Message
from llmgine_nb.messages import UnknownMessageType


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(BaseModel):
    x: float
    y: float


class ShapeDrawn(Event):
    name: str
    colour: Colour
    points: list[Point]
    tags: dict[str, int] = {}
    note: str | None = None


class SpecialShapeDrawn(ShapeDrawn):
    sides: int


class DrawShape(Command):
    name: str


def test_every_message_has_id_utc_timestamp_session_and_metadata():
    event = ShapeDrawn(name="a", colour=Colour.RED, points=[])
    assert isinstance(event.id, str) and len(event.id) >= 16
    assert event.timestamp.tzinfo is not None and event.timestamp.utcoffset().total_seconds() == 0
    assert event.session_id is None
    assert event.metadata == {}
    assert ShapeDrawn(name="a", colour=Colour.RED, points=[]).id != event.id


def test_subclass_round_trips_through_json_as_its_own_class():
    event = SpecialShapeDrawn(
        name="tri",
        colour=Colour.BLUE,
        points=[Point(x=0, y=0), Point(x=1, y=0.5)],
        tags={"a": 1},
        sides=3,
        session_id="s1",
        metadata={"source": "test"},
    )
    text = event.to_json()
    assert json.loads(text)["type"].endswith("SpecialShapeDrawn")
    again = Message.from_json(text)
    assert type(again) is SpecialShapeDrawn
    assert again == event
    # Rebuilding through a base class gives the subclass too.
    assert type(Event.from_json(text)) is SpecialShapeDrawn
    assert type(ShapeDrawn.from_record(event.to_record())) is SpecialShapeDrawn


def test_rebuilding_as_an_unrelated_class_is_refused():
    text = DrawShape(name="x").to_json()
    with pytest.raises(TypeError, match="not a"):
        Event.from_json(text)


def test_unknown_type_gives_a_clear_error():
    record = {"type": "nowhere.module.Missing", "id": "x"}
    with pytest.raises(UnknownMessageType, match="import the module"):
        Message.from_record(record)


def test_stored_message_of_an_importable_class_loads_in_a_fresh_process():
    # The class is registered on import of its module, which from_record does itself.
    event = CommandResult(command_id="c1", success=False, error="boom")
    code = (
        "import sys, json; from llmgine_nb.messages import Message; "
        "m = Message.from_json(sys.stdin.read()); print(type(m).__name__, m.error)"
    )
    out = subprocess.run([sys.executable, "-c", code], input=event.to_json(), capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["CommandResult", "boom"]


def test_command_result_unwrap():
    ok = CommandResult(command_id="1", result=5)
    assert ok.unwrap() == 5
    failed = CommandResult(command_id="1", success=False, error="ValueError: no")
    with pytest.raises(RuntimeError, match="ValueError: no"):
        failed.unwrap()


_text = st.text(max_size=20)


@given(
    name=_text,
    colour=st.sampled_from(Colour),
    points=st.lists(st.builds(Point, x=st.floats(allow_nan=False, allow_infinity=False), y=st.floats(allow_nan=False, allow_infinity=False)), max_size=4),
    tags=st.dictionaries(_text, st.integers(), max_size=4),
    note=st.none() | _text,
    sides=st.integers(),
    metadata=st.dictionaries(_text, st.none() | st.booleans() | st.integers() | _text, max_size=3),
    when=st.datetimes(timezones=st.just(timezone.utc)),
)
def test_round_trip_property(name, colour, points, tags, note, sides, metadata, when):
    event = SpecialShapeDrawn(
        name=name, colour=colour, points=points, tags=tags, note=note, sides=sides, metadata=metadata, timestamp=when
    )
    again = Message.from_json(event.to_json())
    assert type(again) is SpecialShapeDrawn
    assert again.model_dump() == event.model_dump()
    assert isinstance(again.timestamp, datetime)


def test_loading_never_imports_a_package_that_is_not_already_loaded(tmp_path, monkeypatch):
    # A database from elsewhere names a module; importing it would run its code.
    (tmp_path / "evil_pkg_for_test").mkdir()
    (tmp_path / "evil_pkg_for_test" / "__init__.py").write_text("raise SystemExit('imported!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UnknownMessageType):
        Message.from_record({"type": "evil_pkg_for_test.events.Boom", "id": "x"})
