"""Structured output: a reply validated as a pydantic model, with one corrective retry.

The model is told the JSON schema in a system message (every model can read
that) and, where the provider supports it, also through ``response_format``.
A reply that does not validate is sent back with the validation error and
the model is asked again; a second failure raises ``StructuredOutputError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..chat import ChatMessage
from .errors import StructuredOutputError

__all__ = ["ask_structured", "schema_instruction", "response_format_for", "parse_reply"]

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def schema_instruction(output_type: type[BaseModel]) -> str:
    schema = json.dumps(output_type.model_json_schema(), ensure_ascii=False)
    return (
        "Reply with one JSON object and nothing else (no prose, no code fence). "
        f"It must validate against this JSON schema:\n{schema}"
    )


def response_format_for(output_type: type[BaseModel]) -> dict[str, Any]:
    """The OpenAI-style ``response_format`` asking for ``output_type``'s schema."""
    return {
        "type": "json_schema",
        "json_schema": {"name": output_type.__name__, "schema": output_type.model_json_schema(), "strict": False},
    }


def _json_text(text: str) -> str:
    """The JSON part of a reply: inside a code fence if there is one, else from the first brace."""
    match = _FENCE.search(text)
    if match:
        return match.group(1).strip()
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        return text[start : end + 1]
    return text.strip()


def parse_reply(text: str, output_type: type[T]) -> T:
    """Validate a reply's text as ``output_type`` (raises pydantic's ``ValidationError``)."""
    return output_type.model_validate_json(_json_text(text))


def _problem(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:8]:
        where = ".".join(str(p) for p in item.get("loc", ())) or "(the whole reply)"
        parts.append(f"{where}: {item.get('msg')}")
    return "; ".join(parts)


async def ask_structured(
    complete: Callable[..., Awaitable[Any]],
    messages: list[ChatMessage],
    output_type: type[T],
    *,
    model: str,
    response_schema: bool,
    retries: int = 1,
    **settings: Any,
) -> T:
    """Ask through ``complete`` (a model's ``complete``) until the reply validates as ``output_type``.

    It is given the model's parts rather than the model, so that this module
    needs nothing of ``base`` (which imports it): ``response_schema`` says
    whether the provider enforces a JSON schema itself.
    """
    if not (isinstance(output_type, type) and issubclass(output_type, BaseModel)):
        raise TypeError(
            f"structured() needs a pydantic model class, not {output_type!r}; "
            "wrap other types in a model, e.g. class Answer(BaseModel): items: list[str]"
        )
    chat = [ChatMessage(role="system", content=schema_instruction(output_type)), *messages]
    if response_schema:
        settings.setdefault("response_format", response_format_for(output_type))
    problem = ""
    text = ""
    for _ in range(retries + 1):
        response = await complete(chat, **settings)
        text = response.text
        try:
            return parse_reply(text, output_type)
        except ValidationError as error:
            problem = _problem(error)
        chat = [
            *chat,
            ChatMessage(role="assistant", content=text),
            ChatMessage(
                role="user",
                content=(
                    f"That reply did not match the schema: {problem}. "
                    "Reply again with only the corrected JSON object."
                ),
            ),
        ]
    shown = text if len(text) <= 300 else text[:300] + "..."
    raise StructuredOutputError(
        f"The model's reply is not a valid {output_type.__name__} after {retries + 1} tries ({problem}); "
        f"last reply: {shown!r}",
        model=model,
    )
