"""What the distributed tests share: a Redis to use, a unique key prefix, and worker processes.

``redis_url`` is Redis on 127.0.0.1:6379 (started before each session on this
project's machines); it skips the test with a sentence when Redis does not
answer, and fails instead under CI (``CI=true``).  Each test gets its own key
prefix, so engineers and test runs sharing the server never see each other's
streams; the prefix's keys are deleted afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["redis_url", "prefix", "start_worker", "free_port", "cleanup_prefix"]

HERE = Path(__file__).resolve().parent
REDIS_URL = os.environ.get("LLMGINE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.exceptions.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not _answers(REDIS_URL):
        message = (f"Redis does not answer at {REDIS_URL}; start it with: redis-server --daemonize yes "
                   "--bind 127.0.0.1 --port 6379 --save '' --appendonly no")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_URL


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


def start_worker(redis_url: str, db: Path, prefix: str, *, app: str = "distributed_app:options",
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


def wait_until(condition, timeout: float = 30.0, what: str = "the condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
