"""What the distributed tests share: a Redis to use, a unique key prefix, and worker processes.

``redis_url`` is the project's fixture (tests/services.py: Redis on 127.0.0.1:6379,
skipped with a sentence when it does not answer, failed under ``CI=true``).  Each
test gets its own key prefix (a plain word: it also names the deployment's keys),
so engineers and test runs sharing the server never see each other's streams;
the prefix's keys are deleted afterwards.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from services import redis_url

from llmgine_nb.store import Store

__all__ = ["redis_url", "prefix", "start_worker", "free_port", "cleanup_prefix", "Cluster", "RedisServer", "wait_until",
           "follow_turns", "note_types", "front"]

HERE = Path(__file__).resolve().parent


def _answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.exceptions.RedisError:
        return False


def cleanup_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    cleanup_prefix(redis_url, name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_worker(redis_url: str, db: str | Path, prefix: str, *, app: str = "distributed_app:options",
                 concurrency: int = 8, lease_ms: int = 1500, log: Path | None = None,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``llmgine-nb worker`` in a process of its own (the tests' ``--app`` gives its model and tools)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent),
                                                                os.environ.get("PYTHONPATH", "")]),
                   **(env or {})}
    output = open(log, "ab") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "llmgine_nb", "worker", "--redis", redis_url, "--db", str(db), "--prefix", prefix,
         "--concurrency", str(concurrency), "--lease-ms", str(lease_ms), "--app", app],
        env=environment, stdout=output, stderr=subprocess.STDOUT,
    )


async def follow_turns(transport: Any, session_id: str, seen: list[int], turns: int) -> None:
    """Follow a session, noting each event's number in ``seen``, until ``turns`` turns have finished."""
    finished = 0
    async for seq, text in transport.follow(session_id):
        seen.append(seq)
        finished += json.loads(text)["type"].endswith(".TurnFinished")
        if finished == turns:
            return


async def note_types(transport: Any, session_id: str, seen: list[str]) -> None:
    """Follow a session, noting each event's class name (``LLMTextDelta`` ...) in ``seen``."""
    async for _seq, text in transport.follow(session_id):
        seen.append(json.loads(text)["type"].rsplit(".", 1)[-1])


def wait_until(condition, timeout: float = 30.0, what: str = "the condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


class RedisServer:
    """A ``redis-server`` of the test's own, persisting every write (``--appendonly yes --appendfsync always``).

    ``restart()`` kills it (SIGKILL: nothing flushed on the way out) and starts it again on the same port
    and directory; what it acknowledged comes back from the append-only file.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed (apt-get install redis-server); the Redis restart test needs it"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        wait_until(lambda: _answers(self.url), 20, f"redis-server on port {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture
async def front(cluster: Cluster) -> AsyncIterator[tuple[Any, Store]]:
    """A front end of the test module's ``cluster``: a transport on its Redis prefix, and its store."""
    from llmgine_nb.distributed.redis_transport import RedisTransport

    store = Store(cluster.db)
    transport = await RedisTransport.connect(cluster.url, prefix=cluster.prefix, store=store)
    yield transport, store
    await transport.close()


class Cluster:
    """Worker processes on one Redis prefix and one store (migrated before they start).

    The store is a SQLite file in ``tmp`` unless ``db`` names another (a PostgreSQL URL).
    """

    def __init__(self, url: str, prefix: str, tmp: Path, env: dict[str, str], db: str | Path | None = None) -> None:
        self.url, self.prefix, self.env = url, prefix, env
        self.db: str | Path = db if db is not None else tmp / "shared.db"
        self.logs = tmp / "workers.log"
        self.effects = Path(env["LLMGINE_TEST_EFFECTS"])
        self.processes: list[subprocess.Popen[bytes]] = []
        Store(self.db).close()  # migrate once, before the workers race to

    def start(self, count: int, lease_ms: int = 1500, concurrency: int = 8,
              app: str = "distributed_app:options") -> None:
        for _ in range(count):
            self.processes.append(start_worker(self.url, self.db, self.prefix, lease_ms=lease_ms, log=self.logs,
                                               env=self.env, concurrency=concurrency, app=app))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
