"""Redis killed and restarted under load: calls keep going under the declared policy, none
hangs, the outage is logged once, and the shared state works again once the server is back."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

import modelmix as mm
from modelmix.resilience import BreakerConfig, RedisStore, SharedCircuitBreaker

from .redis_server import RedisServer
from .test_wiring import cheap


def test_redis_killed_and_restarted_mid_run(caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer().start()
    try:
        store = RedisStore(server.url, prefix="fault", timeout=0.2, retry_interval=0.2)
        budgeted = mm.budget(cheap(), max_usd=1, scope="team", store=store)
        limited = mm.rate_limit(cheap(), rpm=1000, store=store)
        breaker = SharedCircuitBreaker("m at e", BreakerConfig(), store=store, key="e|m")
        assert budgeted.chat("hi", max_tokens=10).text == "ok"
        assert limited.chat("hi").text == "ok"
        server.kill()
        slowest = 0.0
        refused = 0
        with caplog.at_level(logging.WARNING, logger="modelmix"):
            for _ in range(20):
                started = time.monotonic()
                try:
                    budgeted.chat("hi", max_tokens=10)
                except mm.BudgetExceededError:
                    refused += 1  # budgets fail closed
                assert limited.chat("hi").text == "ok"  # limits fail open
                assert breaker.admit(time.monotonic()) == "call"  # breakers use this process's state
                breaker.record("success", time.monotonic())
                slowest = max(slowest, time.monotonic() - started)
        assert refused == 20
        assert slowest < 1.0  # bounded by the store's own 0.2 s timeout, never hanging
        assert sum("unreachable" in r.message for r in caplog.records) == 1
        server.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                budgeted.chat("hi", max_tokens=10)
                break
            except mm.BudgetExceededError:
                time.sleep(0.1)
        assert budgeted.chat("hi", max_tokens=10).text == "ok"  # back, with its state in Redis again
        assert store.flush()  # settlements run on the store's worker thread, off the caller's path
        books = store.budget_books("team")
        assert books.spent > 0
        assert books.reserved == 0  # every reservation made after the restart was settled
        assert any("reachable again" in r.message for r in caplog.records)
    finally:
        server.stop()


def test_import_modelmix_does_not_import_redis() -> None:
    code = "import sys, modelmix, modelmix.resilience; modelmix.shared_state; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_a_frozen_redis_never_holds_a_call_longer_than_the_store_timeout() -> None:
    """SIGSTOP: the server keeps its connections open but answers nothing (a hung host)."""
    server = RedisServer().start()
    store = RedisStore(server.url, prefix="frozen", timeout=0.2, retry_interval=0.5)
    try:
        budgeted = mm.budget(cheap(), max_usd=1, scope="team", store=store)
        limited = mm.rate_limit(cheap(), tpm=100_000, store=store)
        assert (await budgeted.achat("hi", max_tokens=10)).text == "ok"
        assert (await limited.achat("hi")).text == "ok"
        assert server.process is not None
        server.process.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(mm.BudgetExceededError, match="unreachable"):
                await budgeted.achat("hi", max_tokens=10)
            assert (await limited.achat("hi")).text == "ok"
            assert limited.chat("hi").text == "ok"
        assert time.monotonic() - started < 2.0  # one 0.2 s timeout per retry interval, not per call
        server.process.send_signal(signal.SIGCONT)
    finally:
        if server.process is not None:
            server.process.send_signal(signal.SIGCONT)
        await store.aclose()
        server.stop()


def _child_settles(store: RedisStore, queue: Any) -> None:
    model = mm.rate_limit(cheap(), max_concurrency=1, max_wait=0, store=store, scope="forked")
    for _ in range(3):  # each call's slot must come back (from the child's own background thread)
        model.chat("hi")
        store.flush()
    queue.put("ok")


# Python 3.12+ warns about fork() in a process with threads (the fake servers of other tests);
# gunicorn forks all the same, which is what this test reproduces.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_store_made_before_fork_works_in_the_child(redis_server: RedisServer) -> None:
    """gunicorn --preload: the app (and its store) is built in the parent, then workers fork."""
    store = RedisStore(redis_server.url, prefix=f"fork-{uuid.uuid4().hex[:6]}")
    store.later(lambda: None)  # the parent's background thread is running
    assert store.flush()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_settles, args=(store, queue))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == "ok"
    store.close()
