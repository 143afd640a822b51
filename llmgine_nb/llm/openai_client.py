"""OpenAI and OpenAI-compatible servers through the ``openai`` SDK, without waiting for litellm.

    llm = OpenAIClient("openai/gpt-4o-mini", bus=bus)
    llm = OpenAIClient("openai/my-model", api_base="http://127.0.0.1:8000/v1")

``get_llm`` picks this client for ``openai/...`` model strings (and bare
``gpt-...`` names): the SDK imports in about half a second where litellm
takes several, and uses a fifth of the memory.  Everything else the model
layer promises is the same as ``LiteLLMClient``'s, by the same code:
streaming and tool calls are read by ``litellm_client.stream_pieces`` /
``reply_from_response`` (which read attributes, not litellm types), retries
are ``retry.py``'s (the SDK's own are off: ``max_retries=0``), errors become
the same sentences (``errors.from_exception`` knows the SDK's exceptions),
prices come from litellm's price list read as a data file (``pricing.py``),
and the key is remembered by every redactor.

The request goes out through the SDK's public ``post()`` with the body we
built, not through ``chat.completions.create()``: ``create()`` walks every
message of the request through the SDK's type annotations
(``maybe_transform``), a cost that grows with the conversation (about 0.1 s
a turn at 200 turns), while our messages are already plain OpenAI dicts.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..text import clip
from .base import ModelRequest, RawReply, StreamDelta, StreamEnd
from .blocking import check_real_call
from .config import LITELLM_ONLY_SETTINGS
from .endpoint import EndpointLLM
from .errors import BadResponseError, ModelConfigError
from .litellm_client import reply_from_response, stream_pieces
from .price_list import supports_response_schema

if TYPE_CHECKING:
    from types import ModuleType


__all__ = ["OpenAIClient", "OPENAI_BASE_URL", "load_openai_sdk"]

OPENAI_BASE_URL = "https://api.openai.com/v1"

# Settings that are the SDK's request options rather than fields of the request body.
_OPTIONS = ("timeout", "extra_headers")

_sdk: ModuleType | None = None
_sdk_lock = threading.Lock()


def load_openai_sdk() -> ModuleType:
    """Import the openai SDK (once) and return the module."""
    global _sdk
    if _sdk is None:
        with _sdk_lock:
            if _sdk is None:
                import openai

                _sdk = openai
    return _sdk


def _wire_name(model: str) -> str:
    """The model's name as the server knows it (``openai/gpt-4o-mini`` -> ``gpt-4o-mini``)."""
    return model.split("/", 1)[1] if model.startswith("openai/") else model


class OpenAIClient(EndpointLLM):
    """One OpenAI or OpenAI-compatible model through the openai SDK.

    Keys come from the argument, the environment or ``.env``; the address
    from ``api_base``, ``LLMGINE_API_BASE``, ``OPENAI_BASE_URL`` /
    ``OPENAI_API_BASE``, else OpenAI's own.  ``retry=RetryPolicy(...)``
    changes how failed calls are retried.
    """

    provider = "openai"

    def __init__(self, model: str, **options: Any) -> None:
        """``options`` as for ``EndpointLLM``: ``bus``, ``api_base``, ``api_key``, ``timeout``, ``config``, settings."""
        super().__init__(model, **options)
        # One SDK client per event loop: its connection pool belongs to the loop that opened it.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    async def _ensure_ready(self) -> None:
        if _sdk is None:
            await asyncio.to_thread(load_openai_sdk)  # half a second of import, off the event loop

    def _supports_response_schema(self) -> bool:
        return supports_response_schema(self.model)

    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            openai = load_openai_sdk()
            # No key and no server of our own: the SDK's own error says the key is missing,
            # which errors.py turns into the sentence naming OPENAI_API_KEY.
            client = openai.AsyncOpenAI(
                api_key=self._api_key(),
                base_url=self.api_base or OPENAI_BASE_URL,
                max_retries=0,  # retries are ours (retry.py)
                **({"timeout": self.timeout} if self.timeout is not None else {}),
                # The SDK's public default HTTP client, given explicitly: the one it makes itself
                # closes itself when collected, on whatever loop runs then - an error once the
                # loop that opened its connections is closed (one client per loop, see above).
                http_client=openai.DefaultAsyncHttpxClient(),
            )
            self._clients[loop] = client
        return client

    def _request_parts(self, request: ModelRequest) -> tuple[dict[str, Any], dict[str, Any]]:
        """The request body (plain JSON data, sent as it is) and the SDK's request options."""
        model, settings = request.model, request.settings
        refused = LITELLM_ONLY_SETTINGS.intersection(settings)  # refused with a sentence, not sent
        if refused:
            raise ModelConfigError(
                f"{', '.join(sorted(refused))} is a litellm setting, and {model} is spoken to through the "
                "openai SDK",
                hint="Use LiteLLMClient(model, ...) for litellm's own settings.",
            )
        check_real_call(model, self.api_base)
        body: dict[str, Any] = {}
        options: dict[str, Any] = {}
        for name, value in settings.items():
            if name in _OPTIONS:
                options[name] = value
            elif name not in ("max_retries", "api_key", "api_base", "base_url"):
                body[name] = value
        body["model"] = _wire_name(model)
        body["messages"] = [m.to_openai() for m in request.messages]
        if request.tools:
            body["tools"] = request.tools
        return body, options

    async def _request(self, request: ModelRequest) -> RawReply:
        body, options = self._request_parts(request)
        client = self._client()
        types = load_openai_sdk().types.chat
        response = await client.post("/chat/completions", body=body, cast_to=types.ChatCompletion, options=options)
        if isinstance(response, str):  # the SDK hands back a body that is not JSON as its text
            raise BadResponseError(
                f"The model's server answered with something other than JSON: {clip(response, 120)!r}",
                model=request.model,
            )
        return reply_from_response(response, request.model)

    async def _request_stream(self, request: ModelRequest) -> AsyncIterator[StreamDelta | StreamEnd]:
        body, options = self._request_parts(request)
        body["stream"] = True
        body.setdefault("stream_options", {"include_usage": True})  # usage in the last chunk
        client = self._client()
        openai = load_openai_sdk()
        chat = openai.types.chat
        stream = await client.post(
            "/chat/completions", body=body, cast_to=chat.ChatCompletion, options=options, stream=True,
            stream_cls=openai.AsyncStream[chat.ChatCompletionChunk],
        )
        try:
            async for piece in stream_pieces(stream, request.model, request.messages):
                yield piece
        finally:
            await stream.close()  # releases the connection of a stream left early
