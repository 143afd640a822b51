"""Errors as sentences: every failure answers ``{"error": "what happened and what to do"}``.

No traceback, exception class or internal path ever reaches a response; an
unexpected failure is logged on the server and answered with a sentence.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .hub_api import HubError

__all__ = ["ApiError", "ErrorBody", "install_error_handlers", "BodyLimit"]

log = logging.getLogger("llmgine_nb.server")

INTERNAL = "The server could not handle this request (the error is logged there). Try again; report it if it persists."

#: What FastAPI says of a body it could not read (e.g. bytes that are not UTF-8): replaced by what to send.
_UNPARSED = "There was an error parsing the body"
UNREADABLE_BODY = ("The request body could not be read as JSON; send a JSON object encoded as UTF-8, "
                   "with Content-Type: application/json.")


class ErrorBody(BaseModel):
    """What every error response carries."""

    error: str


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_sentence(exc: RequestValidationError) -> str:
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            problem = (error.get("ctx") or {}).get("error", "JSON decode error")
            return f"The request body is not valid JSON ({problem}); send a JSON object, e.g. {{\"text\": \"hi\"}}."
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'the request'}: {error.get('msg', 'is not valid')}")
    return "The request is not valid (" + "; ".join(parts) + "). Check the API description at /docs."


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _methods_of(request: Request) -> list[str]:
    """Every method the API takes at this path (Starlette's ``Allow`` names only the first route's).

    Read from the OpenAPI document, which lists each path with all its methods.
    """
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        if compile_path(template)[0].match(request.url.path):
            methods |= {method.upper() for method in operations if method in _HTTP_METHODS}
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message, exc.headers)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else "The request could not be handled."
        if exc.status_code == 404 and message == "Not Found":
            message = f"There is nothing at {request.url.path}; see /docs for the API."
        elif exc.status_code == 400 and message == _UNPARSED:
            message = UNREADABLE_BODY
        elif exc.status_code == 405:
            allowed = _methods_of(request)
            message = (f"{request.method} is not allowed on {request.url.path}; use "
                       f"{', '.join(allowed)} (see /docs for the API).")
            return error_response(405, message, {"Allow": ", ".join(allowed)})
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

    async def hub_error(request: Request, exc: Exception) -> JSONResponse:
        # Whatever route it escapes from, a hub's refusal is its sentence with its status, never a 500.
        assert isinstance(exc, HubError)
        return error_response(exc.status, str(exc))

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, _validation_sentence(exc))

    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("request %s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, INTERNAL)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HubError, hub_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, internal)


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _sentence(self) -> str:
        return f"The request body is larger than the limit of {self.max_bytes} bytes; send less."

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"error": self._sentence()}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        received = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answered here, not by raising: FastAPI's body reader (and the middleware's task
                    # group around it) would turn any error into 400 "error parsing the body".  The
                    # app is told the client left, and whatever it answers to that is dropped.
                    if not started and not refused:
                        refused = True
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries: these codes answer an ``ErrorBody``."""
    return {code: {"model": ErrorBody, "description": "an error, as a sentence"} for code in codes}
