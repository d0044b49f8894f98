"""A worker killed (SIGKILL) between reserving from a shared budget and settling must not shrink
the budget for good: its reservation is a lease, and the store gives the money back when the
lease ends. Real redis-server, real worker process, a 1 s lease; no long sleeps."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Callable
from decimal import Decimal

from modelmix.resilience import RedisStore
from modelmix.testing import FakeOpenAIServer, FakeReply

from . import _workers
from .redis_server import RedisServer

LEASE = 1.0
"""The worker's calls have no deadline: each reservation is held for the budget's lease_seconds."""


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_killed_workers_reservation_comes_back_when_its_lease_ends(redis_server: RedisServer) -> None:
    scope, max_usd = f"crash-{uuid.uuid4().hex[:6]}", "0.01"
    store = RedisStore(redis_server.url, prefix=scope)
    # The answer never comes in time: the worker is still waiting on it when it is killed.
    with FakeOpenAIServer(FakeReply("late", delay=60.0)) as server:
        worker = multiprocessing.get_context("spawn").Process(
            target=_workers.reserve_and_hang, args=(redis_server.url, server.base_url, scope, max_usd, LEASE)
        )
        worker.start()
        try:
            assert _wait_for(lambda: store.budget_books(scope).reserved > 0, 30.0), "the worker never reserved"
            held = store.budget_books(scope).reserved
            assert worker.pid is not None
            os.kill(worker.pid, signal.SIGKILL)
            worker.join(5)
        finally:
            if worker.is_alive():
                worker.kill()
                worker.join(5)
        assert worker.exitcode == -signal.SIGKILL
        killed_at = time.monotonic()
        assert store.budget_books(scope).reserved == held  # nobody will ever settle it
        came_back = _wait_for(lambda: store.budget_books(scope).reserved == 0, LEASE + 2.0)
        waited = time.monotonic() - killed_at
    books = store.budget_books(scope)
    print(f"\ncrashed worker: {held} reserved; back after {waited:.2f} s; books now {books}")
    assert came_back, f"the dead worker's {held} stays reserved: the budget shrank for good"
    assert books.spent == 0
    # The whole budget is usable again.
    assert store.budget_reserve(scope, Decimal(max_usd), Decimal(max_usd)).ok
    store.close()
