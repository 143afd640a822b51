"""What a turn sends: the request's hash, the event that shows it, its images' bytes, the cache.

The engine hands each compiled context to ``TurnRequests``:

- ``publish``: hashes the exact request (model, messages as sent, tools,
  options; an image by its content hash, never its bytes) and publishes
  ``ContextCompiled`` with what was sent and the token count of each part;
- ``sendable``: the messages with their images' bytes read from the store,
  only on the way to the model;
- ``source``: with the opt-in request cache on, a request answered before
  is replayed from the store (``RequestReplayed``, nothing paid) by a model
  that streams the stored answer through the usual events;
- ``remember``: keeps a complete answer for the next identical request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..chat import ChatMessage, ImageRef, ToolCall, Usage
from ..llm import BaseLLM
from ..llm.base import LLMResponse, public_settings
from ..llm.scripted import ScriptedLLM, ScriptedReply
from .commands import SendMessage
from .events import ContextCompiled, RequestReplayed, SentPart
from .turn import RunningTurn

if TYPE_CHECKING:
    from ..bus import MessageBus
    from ..context import CompiledContext, ContextCompiler
    from ..secrets import Redactor
    from ..store import Store

__all__ = ["TurnRequests", "request_hash", "ReplayedLLM"]


def request_hash(
    model: str, messages: list[ChatMessage], tools: list[dict[str, Any]] | None, options: Mapping[str, Any]
) -> str:
    """The sha256 of a request as it is sent: the same request always hashes the same."""
    payload = {
        "model": model,
        "messages": [m.to_openai() for m in messages],
        "tools": tools or [],
        "options": public_settings(options),  # keys and URL passwords are not part of what is asked
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class ReplayedLLM(ScriptedLLM):
    """Streams a stored answer through the usual model events, under the original model's name; costs nothing."""

    provider = "cache"

    @staticmethod
    def _usage(messages: list[ChatMessage], tools: list[dict[str, Any]] | None, text: str, calls: list[ToolCall]) -> Usage:
        return Usage()  # nothing was sent to a provider


class TurnRequests:
    """The engine's part that knows what a request is (see the module's docstring)."""

    def __init__(self, store: Store, bus: MessageBus, redactor: Redactor, *, cache: bool = False) -> None:
        self.store = store
        self.bus = bus
        self.redactor = redactor  # a stored answer is kept as the journal keeps it: without known secrets
        self.cache = cache

    async def publish(
        self, turn: RunningTurn, session_id: str | None, llm: BaseLLM, compiler: ContextCompiler,
        compiled: CompiledContext, tools: list[dict[str, Any]] | None, schema: dict[str, Any] | None,
    ) -> str:
        """Hash the request, publish ``ContextCompiled``; return the hash (also kept on ``turn``)."""
        options = {**llm.settings, **({"response_schema": schema} if schema else {})}
        turn.request_hash = request_hash(llm.model, compiled.messages, tools, options)
        report = compiled.report
        counter = compiler.counter
        await self.bus.publish(
            ContextCompiled(
                session_id=session_id, turn_id=turn.id, total_tokens=report.total, budget_tokens=report.budget,
                parts=dict(report.tokens), dropped_messages=len(report.dropped),
                summarised_messages=len(report.summarised), model=llm.model, request_hash=turn.request_hash,
                written=[SentPart(kind=kind, role=m.role, tokens=counter.count(m), text=m.content or "")
                         for kind, m in report.written],
                history_from_id=report.history_from_id, history_to_id=report.history_to_id,
                pinned_ids=report.pinned_ids, images=report.images, image_tokens=report.image_tokens,
                tools={_tool_name(t): counter.count_text(json.dumps(t)) for t in tools or ()},
                forgotten_ids=report.forgotten,
            )
        )
        return turn.request_hash

    def user_images(self, command: SendMessage, compiler: ContextCompiler, namespace: Any) -> list[ImageRef]:
        """The images of a new user message: those sent with it, then those its ``{name}`` references hold."""
        images = list(command.images)
        for label, value in compiler.images_in(command.text, namespace):
            images.append(self.store.put_image(value, label=label))
        unique = {image.sha256: image for image in reversed(images)}  # one of each; the first one's label
        return [image for image in images if unique.get(image.sha256) is image]

    def sendable(self, messages: list[ChatMessage]) -> list[ChatMessage]:
        """The messages as the model gets them: each image's bytes read from the store."""
        return self.store.with_image_data(messages)

    async def source(self, turn: RunningTurn, llm: BaseLLM) -> BaseLLM:
        """The model that answers this request: ``llm``, or the replay of a stored answer."""
        turn.replayed = False
        if not self.cache or turn.request_hash is None:
            return llm
        stored = self.store.cached_response(turn.request_hash)
        if stored is None:
            return llm
        turn.replayed = True
        await self.bus.publish(
            RequestReplayed(
                turn_id=turn.id, request_hash=turn.request_hash, model=llm.model,
                usage=Usage.model_validate(stored.get("usage") or {}), cost_usd=stored.get("cost_usd"),
                cached_at=stored.get("cached_at"),
            )
        )
        reply = ScriptedReply(stored.get("text") or "", [ToolCall.model_validate(c) for c in stored.get("tool_calls") or []],
                              stored.get("finish_reason"))
        return ReplayedLLM([reply], model=llm.model, bus=self.bus)

    def remember(self, turn: RunningTurn, model: str, response: LLMResponse) -> None:
        """Keep a complete, paid-for answer for the next identical request (cache on only)."""
        if not self.cache or turn.replayed or turn.request_hash is None:
            return
        if response.finish_reason in ("interrupted", "error") or not (response.text or response.tool_calls):
            return
        redact = self.redactor.text
        calls = [ToolCall.from_raw(c.id, c.name, redact(c.raw_arguments)) for c in response.tool_calls]
        self.store.cache_response(turn.request_hash, model, {
            "text": redact(response.text),
            "tool_calls": [call.model_dump(mode="json") for call in calls],
            "finish_reason": response.finish_reason,
            "usage": response.usage.model_dump(mode="json"),
            "cost_usd": response.cost_usd,
            "cached_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })


def _tool_name(schema: Mapping[str, Any]) -> str:
    function = schema.get("function")
    return str(function.get("name")) if isinstance(function, Mapping) else "?"
