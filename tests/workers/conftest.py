"""Fixtures of the worker tests: a real Redis (Debian's redis-server) and PostgreSQL, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ctistudio.testing.postgres_server import PostgresServer
from ctistudio.testing.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def broker_url(redis_server: RedisServer) -> Iterator[str]:
    """An empty Redis database for this test's queues."""
    redis_server.flush()
    yield redis_server.url(0)
    redis_server.flush()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server
