"""A fake OpenAI-compatible chat server for real-wire tests.

It is a real HTTP server (stdlib ``ThreadingHTTPServer`` in a thread) on
127.0.0.1 at a free port, so litellm talks to it exactly as it talks to
OpenAI: JSON bodies, server-sent events, status codes, slow answers.

    from fake_openai import FakeOpenAI, Reply, ToolCallSpec, Status

    with FakeOpenAI() as server:
        server.add(Reply("hello"))
        ... litellm.acompletion(model="openai/x", api_base=server.base_url, api_key="sk-fake", ...)
        assert server.requests[0].body["messages"][0]["content"] == "hi"

Behaviours wait in a queue and each request takes the next one; a behaviour
queued for a model (``server.add(b, model="x")``) is taken first by requests
for that model.  A ``Reply`` answers in the mode the request asked for: a
JSON body, or a stream of ``data: {...}`` chunks ending with ``data: [DONE]``
when the request says ``"stream": true``.  When the queue is empty the
server answers with ``server.default`` (a ``Reply``) if set, else an HTTP 500
saying the script ran out (and counts it in ``server.unexpected``).

Pytest: ``from fake_openai import fake_openai`` in a test module makes the
``fake_openai`` fixture available there (a started server, stopped after the
test).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = [
    "FakeOpenAI",
    "RecordedRequest",
    "Reply",
    "ToolCallSpec",
    "Status",
    "Delay",
    "Malformed",
    "Dynamic",
    "Dropped",
    "rate_limited",
    "server_error",
    "unauthorized",
    "context_too_long",
    "content_filtered",
    "fake_openai",
]

FAKE_API_KEY = "sk-fake-test-key-0000"


# -- behaviours -------------------------------------------------------------


@dataclass
class ToolCallSpec:
    """One tool call in a ``Reply``; ``arguments`` is a dict or a raw string."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def raw(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class Reply:
    """An assistant reply: text and/or tool calls, in JSON or streamed.

    ``chunk_size`` is how many characters of text (or of tool arguments) go
    into one streamed chunk.  With ``interleave`` the argument fragments of
    several tool calls are sent round-robin, as models that call tools in
    parallel do, so a client must assemble them by index.
    """

    text: str | None = None
    tool_calls: list[ToolCallSpec] = field(default_factory=list)
    finish_reason: str | None = None
    model: str | None = None
    prompt_tokens: int = 11
    completion_tokens: int = 7
    cached_tokens: int = 0
    chunk_size: int = 4
    interleave: bool = True
    # Send usage in the last chunk even when the request did not ask for it.
    always_stream_usage: bool = False
    # Seconds to wait before each streamed chunk (a slow model, to interrupt mid-stream).
    chunk_delay: float = 0.0

    def _finish(self) -> str:
        if self.finish_reason:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    def _usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if self.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return usage

    def _call_ids(self) -> list[str]:
        return [c.id or f"call_{i}_{uuid.uuid4().hex[:8]}" for i, c in enumerate(self.tool_calls)]

    def body(self, request: dict[str, Any]) -> dict[str, Any]:
        ids = self._call_ids()
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": c.name, "arguments": c.raw()}}
                for cid, c in zip(ids, self.tool_calls)
            ]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model or request.get("model", "fake"),
            "choices": [{"index": 0, "message": message, "finish_reason": self._finish()}],
            "usage": self._usage(),
        }

    def chunks(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model or request.get("model", "fake"),
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        yield chunk({"role": "assistant", "content": ""})
        text = self.text or ""
        for start in range(0, len(text), self.chunk_size):
            yield chunk({"content": text[start : start + self.chunk_size]})
        ids = self._call_ids()
        # First fragment of each call carries its id and name, later ones only arguments.
        pieces: list[list[dict[str, Any]]] = []
        for index, (cid, call) in enumerate(zip(ids, self.tool_calls)):
            raw = call.raw()
            frags = [raw[i : i + self.chunk_size] for i in range(0, len(raw), self.chunk_size)] or [""]
            calls = [
                {"index": index, "id": cid, "type": "function", "function": {"name": call.name, "arguments": ""}}
            ]
            calls += [{"index": index, "function": {"arguments": f}} for f in frags]
            pieces.append(calls)
        if self.interleave:
            while any(pieces):
                for queue in pieces:
                    if queue:
                        yield chunk({"tool_calls": [queue.pop(0)]})
        else:
            for queue in pieces:
                for piece in queue:
                    yield chunk({"tool_calls": [piece]})
        yield chunk({}, self._finish())
        include_usage = (request.get("stream_options") or {}).get("include_usage")
        if include_usage or self.always_stream_usage:
            yield {**base, "choices": [], "usage": self._usage()}


@dataclass
class Status:
    """An HTTP error answer with an OpenAI-style error body."""

    code: int
    message: str = "error"
    type: str = "server_error"
    error_code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": None, "code": self.error_code}}


def rate_limited(retry_after: float | None = None) -> Status:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    return Status(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded", headers)


def server_error(message: str = "The server had an error while processing your request.") -> Status:
    return Status(500, message, "server_error")


def unauthorized() -> Status:
    return Status(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")


def context_too_long() -> Status:
    return Status(
        400,
        "This model's maximum context length is 128000 tokens. However, your messages resulted in "
        "130000 tokens. Please reduce the length of the messages.",
        "invalid_request_error",
        "context_length_exceeded",
    )


def content_filtered() -> Status:
    return Status(
        400,
        "Your request was rejected as a result of our safety system.",
        "invalid_request_error",
        "content_policy_violation",
    )


@dataclass
class Delay:
    """Wait ``seconds`` (while the client may give up), then behave as ``then``."""

    seconds: float
    then: Any = None


@dataclass
class Malformed:
    """A 200 answer whose body is not what the API promises."""

    body: bytes = b'{"id": "chatcmpl-broken", "choices": [ {"mess'
    content_type: str = "application/json"
    stream: bool = False  # send as an SSE stream with a broken data line


@dataclass
class Dropped:
    """Start answering, then close the connection abruptly (a dropped network link).

    Streamed: the first ``chunks`` chunks of ``reply`` arrive, then the socket
    is shut without the stream's end.  Unstreamed: the headers promise a body
    that never fully arrives.
    """

    reply: Any = None
    chunks: int = 2


@dataclass
class Dynamic:
    """Decide per request: ``fn(request_body) -> behaviour``."""

    fn: Callable[[dict[str, Any]], Any]


# -- the server ---------------------------------------------------------------


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw: bytes
    behaviour: str

    @property
    def model(self) -> str | None:
        return (self.body or {}).get("model")


class FakeOpenAI:
    """An OpenAI-compatible chat server on 127.0.0.1; use as a context manager."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default
        self.requests: list[RecordedRequest] = []
        self.unexpected = 0
        self._queue: deque[Any] = deque()
        self._by_model: dict[str, deque[Any]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # scripting

    def add(self, *behaviours: Any, model: str | None = None) -> FakeOpenAI:
        """Queue behaviours (for one model name if given); returns the server."""
        with self._lock:
            target = self._queue if model is None else self._by_model.setdefault(model, deque())
            target.extend(behaviours)
        return self

    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + sum(len(q) for q in self._by_model.values())

    def _next(self, model: str | None) -> Any:
        with self._lock:
            queue = self._by_model.get(model or "")
            if queue:
                return queue.popleft()
            if self._queue:
                return self._queue.popleft()
        return self.default

    # lifecycle

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """The ``api_base`` for litellm / the OpenAI client: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    api_key = FAKE_API_KEY

    def start(self) -> FakeOpenAI:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        return

    def do_GET(self) -> None:
        self._send_json(404, {"error": {"message": "only POST /v1/chat/completions is served"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        fake = self.fake
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._record(raw, body, "not-found")
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        behaviour = fake._next((body or {}).get("model"))
        self._record(raw, body, type(behaviour).__name__ if behaviour is not None else "none")
        self._behave(behaviour, body or {})

    def _record(self, raw: bytes, body: dict[str, Any] | None, behaviour: str) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.fake._lock:
            self.fake.requests.append(
                RecordedRequest("POST", self.path, headers, body, raw, behaviour)
            )

    def _behave(self, behaviour: Any, request: dict[str, Any]) -> None:
        while isinstance(behaviour, (Delay, Dynamic)):
            if isinstance(behaviour, Dynamic):
                behaviour = behaviour.fn(request)
                continue
            deadline = time.monotonic() + behaviour.seconds
            while time.monotonic() < deadline and not self.fake._stopping.is_set():
                time.sleep(0.01)
            behaviour = behaviour.then if behaviour.then is not None else Reply("late reply")
        if behaviour is None:
            self.fake.unexpected += 1
            self._send_json(500, Status(500, "fake_openai: no scripted behaviour left for this request").body())
        elif isinstance(behaviour, Status):
            self._send_json(behaviour.code, behaviour.body(), behaviour.headers)
        elif isinstance(behaviour, Dropped):
            self._drop(behaviour, request)
        elif isinstance(behaviour, Malformed):
            if behaviour.stream:
                self._send_stream([b'data: {"id": "x", "choices": [{"delta": {"content": "par', b"data: [DONE]"])
            else:
                self._send_bytes(200, behaviour.body, behaviour.content_type)
        elif isinstance(behaviour, Reply):
            if request.get("stream"):
                lines = [b"data: " + json.dumps(c).encode() for c in behaviour.chunks(request)]
                self._send_stream(lines + [b"data: [DONE]"], behaviour.chunk_delay)
            else:
                self._send_json(200, behaviour.body(request))
        else:
            raise TypeError(f"unknown fake_openai behaviour {behaviour!r}")

    def _drop(self, behaviour: Dropped, request: dict[str, Any]) -> None:
        reply = behaviour.reply if behaviour.reply is not None else Reply("this reply is cut off before it ends")
        try:
            if request.get("stream"):
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for chunk in list(reply.chunks(request))[: behaviour.chunks]:
                    data = b"data: " + json.dumps(chunk).encode() + b"\n\n"
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            else:
                body = json.dumps(reply.body(request)).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)  # no clean end of the stream: the link just goes
        except OSError:
            pass

    def _send_json(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send_bytes(code, json.dumps(payload).encode(), "application/json", headers)

    def _send_bytes(
        self, code: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(code)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout); nothing to answer

    def _send_stream(self, lines: list[bytes], delay: float = 0.0) -> None:
        try:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for line in lines:
                if delay and self.fake._stopping.wait(delay):
                    return
                data = line + b"\n\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started ``FakeOpenAI`` server, stopped after the test."""
    with FakeOpenAI() as server:
        yield server
