"""The services some tests need (PostgreSQL, Redis) on 127.0.0.1, and the store on either backend.

Loaded for every test module by ``conftest.py`` (``pytest_plugins``).

* ``postgres_url``: a database of its own for this test run (``llmgine_test_<random>``),
  dropped at the end; ``fresh_postgres_url``: a schema of its own in it for one test.
* ``redis_url``: the Redis on 127.0.0.1:6379; ``redis_prefix``: a key prefix of its own
  for one test, so that runs and engineers sharing the server never collide.
* ``backend``: ``"sqlite"`` and ``"postgresql"`` (each test that asks for it runs on
  both, unless marked ``@pytest.mark.sqlite_only``, e.g. for FTS5 snippet formats or
  PRAGMAs); ``db_target``: where such a test's store lives (a file or a URL).

A service that does not answer skips the tests that need it, with a sentence saying
what is missing and how to start it; under ``CI=true`` it fails them instead, so a
CI run cannot pass by skipping.  ``.ci/run`` starts both before the tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

POSTGRES_ADMIN_URL = os.environ.get("LLMGINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("LLMGINE_TEST_REDIS", "redis://127.0.0.1:6379/0")

START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)

BACKENDS = ("sqlite", "postgresql")


def missing_service(what: str) -> None:
    """Skip the test (fail it under ``CI=true``) with ``what`` is missing and how to start it."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (CI=true: a missing service fails the run)", pytrace=False)
    pytest.skip(what)


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead of the one it names."""
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test run's own, dropped afterwards."""
    try:
        import psycopg
    except ImportError:
        missing_service("psycopg is not installed: pip install -e '.[postgres]' (or make install)")
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        missing_service(
            f"PostgreSQL does not answer at 127.0.0.1:5432 ({str(exc).strip().splitlines()[0]}); "
            f"start it with: {START_POSTGRES}"
        )
    name = f"llmgine_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield with_database(POSTGRES_ADMIN_URL, name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A URL whose connections work in a new, empty schema (dropped afterwards)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            yield f"{postgres_url}?options={quote(f'-csearch_path={schema}')}"
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections work in an empty schema of this test's own."""
    with postgres_schema(postgres_url) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis on 127.0.0.1:6379 (use ``redis_prefix`` for the keys)."""
    try:
        import redis
    except ImportError:
        missing_service("redis-py is not installed: pip install redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing_service(f"Redis does not answer at 127.0.0.1:6379 ({exc}); start it with: {START_REDIS}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test (or test run) uses."""
    return f"llmgine-test:{uuid.uuid4().hex[:12]}:"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        sqlite_only = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("backend", BACKENDS[:1] if sqlite_only else BACKENDS)


@pytest.fixture
def db_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str | Path:
    """Where a test's store lives on ``backend``: a new SQLite file, or a new schema on PostgreSQL."""
    if backend == "postgresql":
        url: str = request.getfixturevalue("fresh_postgres_url")
        return url
    return tmp_path / "llmgine.db"
