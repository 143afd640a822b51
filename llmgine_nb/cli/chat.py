"""``llmgine-nb chat``: chat in the terminal, with an engine in this process or a server's."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

HELP = "chat in the terminal (an in-process engine, or --server URL --token T)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="URL", default=None, help="talk to a server (llmgine-nb serve) instead")
    parser.add_argument("--token", default=None,
                        help="API token for --server (default: the LLMGINE_TOKEN environment variable)")
    parser.add_argument("--db", default=None, help="in process: SQLite file or postgresql:// URL (default: LLMGINE_DB or the per-user file)")
    parser.add_argument("--model", default=None, help="in process: the model (default: from the environment)")
    parser.add_argument("--demo", action="store_true", help="in process: the offline demo model and tools")
    parser.add_argument("--resume", metavar="ID", default=None, help="continue this session instead of a new one")


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_chat(args))
    except KeyboardInterrupt:
        return 130


async def _chat(args: argparse.Namespace) -> int:
    from ..terminal import LocalConnection, RemoteConnection, TerminalChat
    from ..terminal.connection import Connection, ConnectionError_

    conn: Connection
    if args.server:
        token = args.token or os.environ.get("LLMGINE_TOKEN")
        if not token:
            print("llmgine-nb chat: --server needs --token TOKEN (or LLMGINE_TOKEN); "
                  "an administrator makes one with: llmgine-nb users add NAME", file=sys.stderr)
            return 2
        remote = RemoteConnection(args.server, token)
        try:
            who = await remote.sign_in()
        except ConnectionError_ as exc:
            print(f"llmgine-nb chat: {exc}", file=sys.stderr)
            await remote.close()
            return 1
        print(f"Signed in to {args.server} as {who}.", flush=True)
        conn = remote
    else:
        from ..server.hub import SessionHub
        from ..store import Store

        options: dict = {"model": args.model}
        if args.demo:
            from ..server.demo import demo_llm, demo_tools

            options.update(llm_factory=lambda model: demo_llm(delay_s=0.01), tools=demo_tools())
        conn = LocalConnection(SessionHub(Store(args.db), **options))
    try:
        return await TerminalChat(conn).run(resume=args.resume)
    finally:
        await conn.close()
