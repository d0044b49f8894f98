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

from .redis_server import RedisClusterServers, RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    cluster = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@dataclass
class Backend:
    """A store under test and how to let time pass on its clock."""

    store: StateStore
    advance: Callable[[float], None]
    name: str


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        clock = FakeClock(1000.0)
        yield Backend(MemoryStore(clock=clock), clock.advance, "memory")
        return
    # A prefix per test keeps tests apart on one server. Redis keeps its own (real) time.
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    if request.param == "redis-cluster":
        # Every script's keys carry one hash tag, so each runs on one node; a key set spread over
        # two slots would fail here with CROSSSLOT.
        from redis.cluster import RedisCluster

        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        client = RedisCluster(host="127.0.0.1", port=cluster.port, socket_timeout=1.0, decode_responses=True)
        store = RedisStore(f"redis://127.0.0.1:{cluster.port}/0", prefix=prefix, timeout=1.0, client=client)
        try:
            yield Backend(store, time.sleep, "redis-cluster")
        finally:
            store.close()
            client.close()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    store = RedisStore(server.url, prefix=prefix, timeout=1.0)
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
