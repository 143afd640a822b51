"""``llmgine-nb worker``: engine workers that run the turns sent through Redis Streams."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
from typing import Any

from .service import freeze_startup_heap, tune_for_service

HELP = "run engine workers: take the sessions' commands from Redis, run the turns, publish the events"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis", default=os.environ.get("LLMGINE_REDIS", "redis://127.0.0.1:6379/0"),
                        help="Redis URL (default: LLMGINE_REDIS or redis://127.0.0.1:6379/0)")
    parser.add_argument("--db", default=None,
                        help="the store shared with the front ends (default: LLMGINE_DB or the per-user one)")
    parser.add_argument("--concurrency", type=int, default=8, help="turns of different sessions run at once")
    parser.add_argument("--model", default=None, help="default model (default: from the environment)")
    parser.add_argument("--prefix", default="llmgine", help="prefix of every Redis key (one per deployment)")
    parser.add_argument("--lease-ms", type=int, default=5000,
                        help="how long a dead worker's partitions wait before another takes them (ms)")
    parser.add_argument("--demo", action="store_true", help="the offline demo's model and tools (as serve --demo)")
    parser.add_argument("--app", default=None, metavar="MODULE:FUNCTION",
                        help="a function returning the hub's options (llm_factory, tools, system_prompt)")


def _hub_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"model": args.model}
    if args.demo:
        from ..server.demo import demo_llm, demo_tools

        options.update(llm_factory=lambda model: demo_llm(delay_s=0.02), tools=demo_tools())
    if args.app:
        module_name, _, function_name = args.app.partition(":")
        if not function_name:
            raise SystemExit(f"--app wants MODULE:FUNCTION (for example myapp.workers:options), not {args.app!r}")
        options.update(getattr(importlib.import_module(module_name), function_name)())
    return options


async def _serve(args: argparse.Namespace) -> None:
    from ..distributed.keys import Keys
    from ..distributed.redis_transport import agree_partitions, connect_redis, retrying
    from ..distributed.worker import Worker
    from ..server.hub import SessionHub
    from ..store import Store

    store = Store(args.db)
    redis = connect_redis(args.redis)
    keys = await retrying("read the partition count", lambda: agree_partitions(redis, Keys(args.prefix)))
    hub = SessionHub(store, **_hub_options(args))
    worker = Worker(redis, hub, keys=keys, concurrency=args.concurrency, lease_ms=args.lease_ms)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"llmgine-nb worker {worker.id} on {args.redis} (database {store.path}, "
          f"concurrency {args.concurrency})", flush=True)
    freeze_startup_heap()
    try:
        await worker.run(stop)
    finally:
        await hub.close()
        await redis.aclose()
        store.close()


def run(args: argparse.Namespace) -> int:
    tune_for_service()
    if args.concurrency < 1:
        raise SystemExit("--concurrency must be at least 1")
    logging.basicConfig(level=os.environ.get("LLMGINE_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(_serve(args))
    return 0
