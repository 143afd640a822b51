"""The OpenAPI document, with every command and event the streams can carry as a JSON Schema component.

FastAPI describes the routes from their typed bodies; the stream texts are
bus messages, so each registered ``Command``/``Event`` class is added under
``components.schemas`` by its registry name (``llmgine_nb.engine.events.TurnStarted``),
with ``x-llmgine-kind`` saying which it is.  A client validates a stream
text against the component its ``type`` names.
"""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from ..messages import _REGISTRY, Command, Event

__all__ = ["install_openapi", "message_components"]

# Modules whose messages the server's streams carry; imported so that every class is registered.
MESSAGE_MODULES = (
    "llmgine_nb.engine.commands",
    "llmgine_nb.engine.events",
    "llmgine_nb.tools.commands",
    "llmgine_nb.tools.events",
    "llmgine_nb.llm.events",
)


#: The field the streams add to every event (``live.py``): its number in the session's stream.
SEQ = {"type": "integer", "minimum": 1,
       "description": "The event's number in its session's stream, added by the server (1, 2, 3 ...; no gaps)."}


def message_components() -> dict[str, Any]:
    """JSON Schemas of every registered command and event, keyed by registry name."""
    for name in MESSAGE_MODULES:
        importlib.import_module(name)
    classes = sorted(
        {cls for cls in _REGISTRY.values() if issubclass(cls, (Command, Event)) and cls.__module__.startswith("llmgine_nb")},
        key=lambda c: c.type_name,
    )
    keyed, top = models_json_schema(
        [(cls, "serialization") for cls in classes], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    for cls in classes:
        ref = keyed[(cls, "serialization")]["$ref"].rsplit("/", 1)[-1]
        schema = dict(schemas.pop(ref, {}))
        schema["x-llmgine-kind"] = "command" if issubclass(cls, Command) else "event"
        schema.setdefault("properties", {})["type"] = {"type": "string", "const": cls.type_name}
        if issubclass(cls, Event):  # the streams number every event they carry
            schema["properties"] = {"seq": SEQ, **schema["properties"]}
            schema["required"] = ["seq", *schema.get("required", [])]
        schemas[cls.type_name] = schema
        if ref != cls.type_name:
            # Other schemas may point at the short name: keep it as an alias.
            schemas[ref] = {"$ref": f"#/components/schemas/{cls.type_name}"}
    return schemas


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, value in message_components().items():
                components.setdefault(name, value)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
