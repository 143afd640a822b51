"""The offline model ``scripted``: deterministic replies for tests, tutorials and running without a key.

    ScriptedLLM(["Hello!", ScriptedReply(tool_calls=[call("add", a=1, b=2)]), "Done."])
    ScriptedLLM(lambda messages, tools: f"You said {messages[-1].content}")
    ScriptedLLM()   # the default behaviour below: echo, and tool calls written in the prompt

Its whole behaviour, in one place (tutorial 1 shows each rule):

* **Who answers.** It is the model when nothing else is configured (no
  ``LLMGINE_MODEL``, no provider key), also for the aliases ``fast`` and ``smart``
  then; the first call publishes an ``LLMNotice`` saying so.  ``model="scripted"``
  asks for it by name.
* **With no script** (``ScriptedLLM()``), it follows three rules, always the same
  way for the same conversation (``offline.default_reply``):

  1. *Tool calls written in the prompt.*  When the last user message writes a
     call of an offered tool as Python does, ``add_expense(amount=18.4,
     category="food")``, it calls that tool with those arguments (several such
     calls: all in one reply, as parallel tool calls), so approval cards and
     tool boxes appear with no key.  Arguments are Python or JSON literals
     (strings, numbers, ``True``/``true``, lists, dicts); positional ones fill
     the tool's parameters in order.  A call whose arguments are not plain
     values is answered with a sentence saying how to write it.  A name that is
     not an offered tool is just text.
  2. *After tool results* it says what each tool returned, quoted (a denial's
     message included), and calls nothing more, so a turn always ends.
  3. *Otherwise it echoes*: ``You said: "..."`` (the prompt, whitespace
     collapsed, cut to 200 characters) and a sentence saying it is the offline
     model, naming an offered tool as an example when there are tools.

* **With a script** (a list), it plays the replies in order: a string is text, a
  ``ScriptedReply`` or ``call(...)`` dict carries tool calls, an exception is
  raised (to rehearse failures).  A script that runs out raises
  ``ScriptExhaustedError``.  **With a function** ``(messages, tools) -> reply``
  (sync or async), the function decides each reply.
* **Like a real model on the bus**: the same events, text streamed in
  word-sized chunks (``delay_s`` between them), parallel tool calls' arguments
  interleaved as real models send them, tool call ids ``call_<n>_<i>``
  (deterministic, so saved notebook outputs compare equal).
* **Usage and cost**: tokens estimated (about four characters a token, tool
  schemas included); the cost is zero, never "unknown" (or ``cost_per_call``
  dollars a call, to rehearse budgets and cost caps offline).
* **Images**: it cannot look at them, but when the last user message has
  images it says which arrived: label, format, size and the bytes it got
  (``It received 1 image: fig (PNG 640x480, 12,345 bytes).``), so every image
  path is testable offline; their tokens count in its usage.
* **Bounded memory**: ``calls`` keeps the most recent ``keep_calls`` requests
  (100 by default; ``call_count`` counts them all), so a long session does not
  keep every request it ever saw.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..chat import ChatMessage, ToolCall, Usage
from ..images import image_tokens
from .base import BaseLLM, ModelRequest, RawReply, StreamDelta, StreamEnd, estimate_tokens
from .config import OFFLINE_MODEL
from .errors import ScriptExhaustedError
from .offline import default_reply

if TYPE_CHECKING:
    from ..bus import MessageBus

__all__ = ["ScriptedLLM", "ScriptedReply", "ScriptedCall", "call", "default_reply", "Reply", "ReplyFunction"]


@dataclass
class ScriptedReply:
    """One reply of the script: text and/or tool calls."""

    text: str | None = None
    tool_calls: list[ToolCall | Mapping[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None


Reply = str | ScriptedReply | ToolCall | Mapping[str, Any] | BaseException
ReplyFunction = Callable[[list[ChatMessage], list[dict[str, Any]] | None], Reply | Awaitable[Reply]]


def call(name: str, arguments: Mapping[str, Any] | str | None = None, /, **kwargs: Any) -> dict[str, Any]:
    """A tool call for a script: ``call("add", a=1, b=2)`` or ``call("add", {"a": 1})``."""
    if arguments is not None and kwargs:
        raise TypeError("give the tool call's arguments either as a dict or as keywords, not both")
    return {"name": name, "arguments": kwargs if arguments is None else arguments}


@dataclass
class ScriptedCall:
    """What the scripted model was asked (kept in ``ScriptedLLM.calls`` for tests)."""

    messages: list[ChatMessage]
    tools: list[dict[str, Any]] | None
    settings: dict[str, Any]


_WORDS = re.compile(r"\s*\S+\s*|\s+")
_ARGUMENT_PIECE = 8  # characters of tool-call arguments per streamed fragment


class ScriptedLLM(BaseLLM):
    """A deterministic offline model: a script (list), a function, or the default echo."""

    provider = "scripted"

    def __init__(
        self,
        script: Iterable[Reply] | ReplyFunction | None = None,
        *,
        bus: MessageBus | None = None,
        model: str = OFFLINE_MODEL,
        delay_s: float = 0.0,
        cost_per_call: float = 0.0,
        keep_calls: int = 100,
        **settings: Any,
    ) -> None:
        super().__init__(model, bus=bus, **settings)
        self.function: ReplyFunction | None = None
        self.script: list[Reply] | None = None
        if callable(script):
            self.function = script
        elif script is not None:
            if isinstance(script, (str, bytes, Mapping)):
                raise TypeError("a script is a list of replies; wrap a single reply in a list: ScriptedLLM([reply])")
            self.script = list(script)
        self.delay_s = delay_s
        self.cost_per_call = cost_per_call  # what each call reports it cost: budgets and caps rehearsed offline
        #: What the model was asked, the most recent ``keep_calls`` calls (a long session must not
        #: keep every request it ever saw); ``call_count`` counts them all.
        self.calls: list[ScriptedCall] = []
        self.keep_calls = keep_calls
        self.call_count = 0

    def __repr__(self) -> str:
        if self.function is not None:
            what = f"function={getattr(self.function, '__name__', 'fn')}"
        elif self.script is not None:
            what = f"script={len(self.script)} replies, {self.remaining} left"
        else:
            what = "default echo"
        return f"<ScriptedLLM {what}>"

    @property
    def remaining(self) -> int | None:
        """Replies left in the script (None for a function or the default echo)."""
        return None if self.script is None else max(0, len(self.script) - self.call_count)

    # -- choosing the reply

    async def _next_reply(
        self, messages: list[ChatMessage], tools: list[dict[str, Any]] | None, settings: dict[str, Any]
    ) -> tuple[str, list[ToolCall], str]:
        number = self.call_count
        self.call_count += 1
        self.calls.append(ScriptedCall(list(messages), tools, dict(settings)))
        if len(self.calls) > self.keep_calls:
            del self.calls[0]
        if self.function is not None:
            reply: Any = self.function(messages, tools)
            if inspect.isawaitable(reply):
                reply = await reply
        elif self.script is not None:
            if number >= len(self.script):
                raise ScriptExhaustedError(
                    f"The scripted model has no reply left: its script has {len(self.script)} "
                    f"{'reply' if len(self.script) == 1 else 'replies'} and this is call {number + 1}",
                    model=self.model,
                )
            reply = self.script[number]
        else:
            reply = default_reply(messages, tools)
        return self._normalise(reply, number)

    def _normalise(self, reply: Any, number: int) -> tuple[str, list[ToolCall], str]:
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, str):
            return reply, [], "stop"
        if isinstance(reply, ToolCall) or (isinstance(reply, Mapping) and "name" in reply):
            reply = ScriptedReply(tool_calls=[reply])  # one tool call on its own
        elif isinstance(reply, Mapping):
            reply = ScriptedReply(reply.get("text"), list(reply.get("tool_calls") or []), reply.get("finish_reason"))
        if not isinstance(reply, ScriptedReply):
            raise TypeError(
                f"a scripted reply must be a str, ScriptedReply, tool call dict, ToolCall or exception, "
                f"not {type(reply).__name__}"
            )
        calls = [self._tool_call(c, number, i) for i, c in enumerate(reply.tool_calls)]
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        return reply.text or "", calls, finish

    @staticmethod
    def _tool_call(spec: ToolCall | Mapping[str, Any], number: int, index: int) -> ToolCall:
        if isinstance(spec, ToolCall):
            return spec
        if "name" not in spec:
            raise TypeError(f"a scripted tool call needs a 'name': {dict(spec)!r}")
        arguments = spec.get("arguments", {})
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        # Ids are deterministic so that notebook outputs compare equal run after run.
        return ToolCall.from_raw(spec.get("id") or f"call_{number + 1}_{index}", spec["name"], raw)

    # -- usage

    @staticmethod
    def _usage(messages: list[ChatMessage], tools: list[dict[str, Any]] | None, text: str, calls: list[ToolCall]) -> Usage:
        prompt = sum(estimate_tokens(m.content) + 4 for m in messages)
        prompt += sum(image_tokens(i.width, i.height) for m in messages for i in m.images)
        prompt += sum(estimate_tokens(json.dumps(t)) for t in tools or ())
        output = estimate_tokens(text) + sum(estimate_tokens(c.name) + estimate_tokens(c.raw_arguments) for c in calls)
        return Usage(input_tokens=prompt, output_tokens=output)

    # -- the hooks

    def _interrupted_end(self, request: ModelRequest, end: StreamEnd, text: str, calls: list[ToolCall]) -> StreamEnd:
        # Stopped half way, the offline model is still free: never "cost unknown".
        return StreamEnd(end.finish_reason, self._usage(request.messages, request.tools, text, calls), 0.0)

    async def _request(self, request: ModelRequest) -> RawReply:
        messages, tools = request.messages, request.tools
        text, calls, finish = await self._next_reply(messages, tools, request.settings)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        end = StreamEnd(finish, self._usage(messages, tools, text, calls), self.cost_per_call)
        return RawReply(text, calls, end)

    async def _request_stream(self, request: ModelRequest) -> AsyncIterator[StreamDelta | StreamEnd]:
        messages, tools = request.messages, request.tools
        text, calls, finish = await self._next_reply(messages, tools, request.settings)
        for word in _WORDS.findall(text):
            await asyncio.sleep(self.delay_s)  # 0 still lets other tasks run, as a network would
            yield StreamDelta("text", text=word)
        # Parallel tool calls: first each call's id and name, then argument fragments round-robin.
        fragments = []
        for index, tc in enumerate(calls):
            yield StreamDelta("tool_call", index=index, tool_call_id=tc.id, name=tc.name)
            raw = tc.raw_arguments
            fragments.append([raw[i : i + _ARGUMENT_PIECE] for i in range(0, len(raw), _ARGUMENT_PIECE)])
        while any(fragments):
            for index, queue in enumerate(fragments):
                if queue:
                    await asyncio.sleep(self.delay_s)
                    yield StreamDelta("tool_call", index=index, arguments=queue.pop(0))
        yield StreamEnd(finish, self._usage(messages, tools, text, calls), self.cost_per_call)

