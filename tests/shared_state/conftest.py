"""Fixtures for the shared-state suite: a real redis-server per test session, and a `store`
fixture that runs each conformance test against the in-memory store and the Redis store."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from modelmix.resilience import MemoryStore, RedisStore, StateStore
from modelmix.testing import FakeClock

from .redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Backend:
    """A store under test and how to let time pass on its clock."""

    store: StateStore
    advance: Callable[[float], None]
    name: str


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        clock = FakeClock(1000.0)
        yield Backend(MemoryStore(clock=clock), clock.advance, "memory")
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    # A prefix per test keeps tests apart on the one server. Redis keeps its own (real) time.
    store = RedisStore(server.url, prefix=f"t-{uuid.uuid4().hex[:8]}", timeout=1.0)
    try:
        yield Backend(store, time.sleep, "redis")
    finally:
        store.close()


@pytest.fixture
def store(backend: Backend) -> StateStore:
    return backend.store


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Async store calls run on both: redis-py's asyncio client, and a worker thread on trio."""
    return str(request.param)
