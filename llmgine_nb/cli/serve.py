"""``llmgine-nb serve``: the engine as a service (FastAPI on uvicorn), the web page at ``/``."""

from __future__ import annotations

import argparse

from .service import freeze_startup_heap, tune_for_service

HELP = "run the server: REST and event streams for many users' sessions, and the web chat page"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument("--db", default=None, help="SQLite file or postgresql:// URL (default: LLMGINE_DB or the per-user file)")
    parser.add_argument("--model", default=None, help="default model of new sessions (default: from the environment)")
    parser.add_argument("--demo", action="store_true",
                        help="the offline demo: a scripted model and two tools (one asks approval, one a choice)")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="allow pages from ORIGIN to call the API (repeat for several; default: none)")
    parser.add_argument("--max-turns-per-user", type=int, default=4, help="turns one user may run at once")
    parser.add_argument("--requests-per-minute", type=int, default=600, help="per user, before 429")
    parser.add_argument("--idle-unload", type=float, default=900.0, metavar="SECONDS",
                        help="unload a session's engine after this long idle (0: never; default 900)")
    parser.add_argument("--max-engines", type=int, default=1000, metavar="N",
                        help="engines kept loaded at most, the least recently used idle ones unloaded (0: no cap)")
    parser.add_argument("--redis", default=None, metavar="URL",
                        help="run no engines here: send the turns to llmgine-nb worker processes through this Redis")
    parser.add_argument("--prefix", default="llmgine", help="with --redis: the deployment's Redis key prefix")


def run(args: argparse.Namespace) -> int:
    import uvicorn
    tune_for_service()

    from ..server import ServerConfig, create_app
    from ..store import Store

    config = ServerConfig(cors_origins=list(args.cors_origin), max_turns_per_user=args.max_turns_per_user,
                          requests_per_minute=args.requests_per_minute,
                          idle_unload_s=args.idle_unload or None, max_engines=args.max_engines or None)
    store = Store(args.db)
    options: dict = {"config": config, "model": args.model}
    if args.demo:
        from ..server.demo import demo_llm, demo_tools

        options.update(llm_factory=lambda model: demo_llm(delay_s=0.02), tools=demo_tools())
    if args.redis:
        from ..distributed.remote_hub import remote_hub_factory

        options["hub_factory"] = remote_hub_factory(args.redis, prefix=args.prefix, model=args.model)
    app = create_app(store, **options)
    print(f"llmgine-nb server on http://{args.host}:{args.port}/ (database {store.location}); "
          "make a user with: llmgine-nb users add NAME", flush=True)
    freeze_startup_heap()
    # Access logs carry no tokens: tokens travel in headers or first messages, and a credential
    # wrongly put in a URL is redacted from the logged path (server/access_log.py).
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", ws="websockets-sansio",
                # Events are small JSON texts: compressing each costs the server more than it saves.
                ws_per_message_deflate=False, timeout_keep_alive=30)
    return 0
