"""Commands, events and command results: the messages that travel on the bus.

Every message is a pydantic model with an id, a UTC timestamp, the id of the
session it was created in, and free-form metadata.  Subclasses add typed
fields.  Each concrete message class is recorded in a type registry under a
stable name so that a stored message (``to_record()`` / ``to_json()``) can be
rebuilt as its own class (``Message.from_record()`` / ``Message.from_json()``)
with every subclass field intact.
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeVar

from pydantic import ConfigDict, Field

from llmgine_nb.frozen import FrozenDict, FrozenModel, freeze_fields

__all__ = [
    "Message",
    "Metadata",
    "Command",
    "Event",
    "CommandResult",
    "CommandFailed",
    "SessionStarted",
    "SessionEnded",
    "HandlerFailed",
    "StopPublishing",
    "UnknownMessageType",
    "UnknownEvent",
    "current_session_id",
    "finite",
    "message_type_name",
    "event_type_names",
    "use_metadata",
    "use_session",
]

# The session a message belongs to when none is given explicitly.  A
# ContextVar (not a global) so that concurrent tasks each keep their own.
_current_session: ContextVar[str | None] = ContextVar("llmgine_session", default=None)
# Metadata every message created in this context starts with (e.g. a turn id).
_ambient_metadata: ContextVar[Metadata | None] = ContextVar("llmgine_metadata", default=None)

_REGISTRY: dict[str, type[Message]] = {}

M = TypeVar("M", bound="Message")


def current_session_id() -> str | None:
    """The id of the innermost open session in this task, or None."""
    return _current_session.get()


@contextmanager
def use_session(session_id: str | None) -> Iterator[None]:
    """Messages created inside (in this task) belong to ``session_id``.

    A lighter ``bus.session()``: no start/end events, no scoped handlers;
    for code that works on behalf of a session that is already open, such
    as an engine running a turn.
    """
    token = _current_session.set(session_id)
    try:
        yield
    finally:
        _current_session.reset(token)


# Ids are a random per-process prefix plus a counter: unique across processes
# (64 random bits each) and ten times cheaper than uuid4, which matters on the
# bus's hot path.  A forked child draws a new prefix so it never repeats its parent.
_id_prefix = ""
_id_counter = itertools.count()


def _reseed_ids() -> None:
    global _id_prefix, _id_counter
    _id_prefix = os.urandom(8).hex()
    _id_counter = itertools.count()


_reseed_ids()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_ids)


def _new_id() -> str:
    return f"{_id_prefix}{next(_id_counter):012x}"


class Metadata(FrozenDict):
    """The metadata of a message: a dict that cannot be changed once made (nor can anything in it).

    Messages are values: a subscriber that wants other metadata builds a
    copy (``message.model_copy(update={"metadata": {**message.metadata, "k": v}})``)
    instead of writing into the one every other subscriber sees.  It is a
    ``dict`` subclass so that reading, ``json.dumps`` and pydantic treat it
    as the plain mapping it is.
    """

    __slots__ = ()
    _hint = (
        "message metadata cannot be changed: messages are immutable values. Build a copy instead: "
        "message.model_copy(update={'metadata': {**message.metadata, 'key': value}})"
    )


_NO_METADATA = Metadata()


def _starting_metadata() -> Metadata:
    ambient = _ambient_metadata.get()
    # The ambient mapping is itself a Metadata (see use_metadata), so it can be shared as is.
    return ambient if ambient else _NO_METADATA


@contextmanager
def use_metadata(**values: Any) -> Iterator[None]:
    """Messages created inside (in this task) start with these metadata entries.

    The engine uses it so that every event of a turn - its own, the model's,
    the tools' - carries ``metadata["turn_id"]``.  Nests: inner values win.
    """
    token = _ambient_metadata.set(Metadata({**(_ambient_metadata.get() or {}), **values}))
    try:
        yield
    finally:
        _ambient_metadata.reset(token)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def message_type_name(cls: type) -> str:
    """The registry name of a message class: its module and qualified name."""
    return f"{cls.__module__}.{cls.__qualname__}"


def event_type_names() -> list[str]:
    """The short names of every event class this process knows, sorted (for listing them in a message)."""
    return sorted({cls.__name__ for cls in _REGISTRY.values() if issubclass(cls, Event)})


class UnknownMessageType(LookupError):
    """A stored message names a class that is not registered in this process."""


class Message(FrozenModel):
    """Base of every message on the bus: an immutable value.

    Frozen once created, metadata included, and every dict and list in it at
    any depth (``frozen.py``): nothing can change a message in flight, so
    every subscriber sees what was published.  To derive another
    message use ``model_copy(update=...)``.
    """

    model_config = ConfigDict(
        frozen=True,
        # Typed fields may hold pydantic models, datetimes, enums ...; all
        # must survive the round trip through JSON.
        ser_json_timedelta="float",
        arbitrary_types_allowed=False,
        validate_default=False,
    )

    id: str = Field(default_factory=_new_id)
    timestamp: datetime = Field(default_factory=_utcnow)
    session_id: str | None = Field(default_factory=current_session_id)
    metadata: dict[str, Any] = Field(default_factory=_starting_metadata)

    def _freeze_values(self, names: Iterable[str] | None = None) -> None:
        # As FrozenModel's, and the metadata is a Metadata (whose refusal names metadata).
        fields = self.__dict__
        if type(fields.get("metadata")) is not Metadata:
            fields["metadata"] = Metadata(fields.get("metadata") or ())
        freeze_fields(self, names)

    # Set for each subclass by __pydantic_init_subclass__.
    type_name: ClassVar[str] = "llmgine_nb.messages.Message"

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.type_name = message_type_name(cls)
        # Last definition wins: re-running a notebook cell redefines a class.
        _REGISTRY[cls.type_name] = cls

    # -- serialisation -------------------------------------------------

    def to_record(self) -> dict[str, Any]:
        """A JSON-compatible dict with a ``type`` key naming the class (NaN and Infinity inside become None)."""
        record: dict[str, Any] = finite(self._dump())
        return record

    def to_json(self) -> str:
        """The message as JSON text: strict JSON, so a NaN or Infinity inside a free-form value is null."""
        record = self._dump()
        try:
            return json.dumps(record, ensure_ascii=False, allow_nan=False)
        except ValueError:  # rare: a NaN or an infinity in a tool's result, metadata, ...
            return json.dumps(finite(record), ensure_ascii=False, allow_nan=False)

    def _dump(self) -> dict[str, Any]:
        record = self.model_dump(mode="json")
        record["type"] = self.type_name
        return record

    @classmethod
    def from_record(cls: type[M], record: dict[str, Any]) -> M:
        """Rebuild a message of the class named in ``record['type']``.

        Called on a subclass, the result must be an instance of that subclass.
        """
        data = dict(record)
        name = data.pop("type", None)
        if name is None:
            target: type[Message] = cls
        else:
            target = _REGISTRY.get(name) or _lookup_by_import(name)
        if not issubclass(target, cls):
            raise TypeError(f"stored message is a {name}, not a {cls.type_name}")
        return target.model_validate(data)

    @classmethod
    def from_json(cls: type[M], text: str | bytes) -> M:
        return cls.from_record(json.loads(text))


def finite(value: Any) -> Any:
    """``value`` (JSON data) with every NaN and infinity in it replaced by None: JSON has neither."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def _lookup_by_import(name: str) -> type[Message]:
    """Import the module a stored type name points at, then look again.

    A stored event of an application class is readable in a fresh process as
    long as the module that defines it can be imported.  Only modules of a
    package this process has already imported are tried, so a database from
    elsewhere cannot make us import (and run) arbitrary code.
    """
    module_name, _, _ = name.rpartition(".")
    if module_name.partition(".")[0] in sys.modules:
        while module_name:
            try:
                importlib.import_module(module_name)
                break
            except ImportError:
                module_name, _, _ = module_name.rpartition(".")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownMessageType(
            f"no message class named {name!r} is registered; import the module "
            "that defines it before loading stored messages of that type"
        ) from None


Message.type_name = message_type_name(Message)
_REGISTRY[Message.type_name] = Message


class Command(Message):
    """A request for the engine to do something; exactly one handler runs it."""


class Event(Message):
    """Something that happened; every subscriber of its class (or a base) sees it."""


class CommandResult(Message):
    """The outcome of executing a command.

    A handler may return one without ``command_id`` (it need not know the
    command's id): the bus fills in which command it answers.
    """

    command_id: str = ""
    command_type: str = ""
    success: bool = True
    result: Any = None
    error: str | None = None
    traceback: str | None = None

    def unwrap(self) -> Any:
        """The result, or raise ``CommandFailed`` with the handler's error."""
        if not self.success:
            raise CommandFailed(self)
        return self.result


class CommandFailed(RuntimeError):
    """Raised by ``CommandResult.unwrap()`` for a failed command."""

    def __init__(self, result: CommandResult) -> None:
        super().__init__(result.error or "command failed")
        self.result = result


# -- core events the bus itself publishes --------------------------------


class SessionStarted(Event):
    name: str | None = None
    parent_id: str | None = None


class SessionEnded(Event):
    name: str | None = None


class StopPublishing(Exception):
    """Raised by a subscriber when what the publisher goes on to do must not happen.

    Any other exception a subscriber raises is reported (``HandlerFailed``) and
    the publisher goes on.  This one the bus passes to the publisher instead,
    and the subscribers after it are not called: the store refusing a write
    that had to come first (``store.Fenced``: the tool's start is not
    recorded, so the tool must not start).
    """


class HandlerFailed(Event):
    """A subscriber raised while handling an event; the other subscribers ran."""

    handler: str
    event_id: str
    event_type: str
    error: str
    traceback: str


class UnknownEvent(Event):
    """A stored or redacted event that cannot be rebuilt as its own class in this process.

    Kept rather than dropped so that an event log written by another
    application still lists, and so that a redacted copy that no longer
    validates as its class is still an event; ``stored_type`` names the
    original class and ``payload`` holds its fields.
    """

    stored_type: str
    payload: dict[str, Any]
