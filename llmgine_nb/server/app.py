"""The FastAPI application: ``create_app(store, ...)`` -> an ASGI app for uvicorn.

    app = create_app(Store("server.db"), model="scripted")
    uvicorn.run(app, host="127.0.0.1", port=8000)       # what ``llmgine-nb serve`` does

One ``SessionHub`` (one bus, one store, engines for every user's sessions)
lives as long as the app (FastAPI's lifespan closes it).  The routes are in
``routes.py`` (REST) and ``live.py`` (WebSocket and SSE); the web page is
``static/`` served at ``/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from ..llm import BaseLLM
from ..store import Store
from . import live, routes
from .access_log import install_access_log_redaction
from .auth import Gate
from .config import ServerConfig
from .errors import BodyLimit, install_error_handlers
from .hub import SessionHub
from .hub_api import Hub
from .openapi import install_openapi

__all__ = ["create_app", "STATIC"]

STATIC = Path(__file__).with_name("static")

# The page loads nothing from elsewhere; model output never becomes script.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def create_app(
    store: Store | None = None,
    *,
    config: ServerConfig | None = None,
    model: str | None = None,
    llm_factory: Callable[[str | None], BaseLLM] | None = None,
    tools: Iterable[Any] = (),
    system_prompt: str | None = None,
    approval_timeout: float | None = 300.0,
    hub_factory: Callable[[Store], Hub] | None = None,
) -> FastAPI:
    """The server app over ``store`` (default: ``Store()``, i.e. ``LLMGINE_DB``).

    ``hub_factory(store)`` makes the hub instead of an in-process ``SessionHub``
    (the other engine arguments are then the factory's business).
    """
    store = store if store is not None else Store()
    config = config or ServerConfig()
    tools = list(tools)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.hub = hub_factory(store) if hub_factory is not None else SessionHub(
            store, model=model, llm_factory=llm_factory, tools=tools, system_prompt=system_prompt,
            approval_timeout=approval_timeout, idle_unload_s=config.idle_unload_s, max_engines=config.max_engines,
        )
        try:
            yield
        finally:
            await app.state.hub.close()

    app = FastAPI(
        title="llmgine-nb",
        version="0.1.0",
        description="The llmgine-nb engine as a service: sessions, turns, approvals and their event streams.",
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.gate = Gate(store, config)
    app.state.store = store
    install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(live.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    @app.middleware("http")
    async def security_headers(request: Any, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    install_openapi(app)
    install_access_log_redaction()  # a credential wrongly put in a URL never reaches the access log
    return app
