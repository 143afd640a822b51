"""Helpers of the MCP tests: the demo server over HTTP in a real process, waiting for a condition."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

DEMO_SERVER = str(Path(__file__).with_name("mcp_demo_server.py"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def http_demo_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start ``mcp_demo_server.py --http PORT`` on 127.0.0.1; yield (url, process)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, DEMO_SERVER, "--http", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            assert process.poll() is None, "the demo MCP server exited before it listened"
            assert time.monotonic() < deadline, "the demo MCP server did not listen within 30 s"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp", process
    finally:
        process.kill()
        process.wait(timeout=10)


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)
