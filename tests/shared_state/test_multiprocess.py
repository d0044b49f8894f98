"""Four worker processes share one budget, one TPM limit and one circuit breaker through a real
Redis, calling the fake OpenAI server in this process. The figures are printed (run with -s)."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest

from modelmix.resilience import RedisStore
from modelmix.testing import FakeOpenAIServer, FakeReply
from modelmix.testing._replies import usage_of

from . import _workers
from .redis_server import RedisServer

WORKERS = 4


def _pool() -> Any:
    return multiprocessing.get_context("spawn").Pool(WORKERS)


def test_four_workers_never_overspend_one_budget(redis_server: RedisServer) -> None:
    scope, max_usd = f"budget-{uuid.uuid4().hex[:6]}", "0.002"
    # The server counts the prompt it got; the answer stays within max_tokens (as a real one does).
    reply = FakeReply("Hello there", output_tokens=30)
    with FakeOpenAIServer(reply) as server, _pool() as pool:
        args = [(redis_server.url, server.base_url, scope, max_usd, w) for w in range(WORKERS)]
        results = pool.starmap(_workers.spend, args)
    costs = [Decimal(c) for worker in results for c in worker]
    books = RedisStore(redis_server.url, prefix=scope).budget_books(scope)
    print(f"\nbudget: {len(costs)} calls by {WORKERS} workers spent {sum(costs)} of {max_usd} (store: {books.spent})")
    assert all(worker for worker in results), "every worker got some calls through"
    assert sum(costs) <= Decimal(max_usd)
    assert books.spent == sum(costs)
    assert books.reserved == 0
    assert sum(costs) > Decimal(max_usd) * Decimal("0.8")  # and the budget was really used


def test_four_workers_keep_to_one_tpm_limit(redis_server: RedisServer) -> None:
    scope, tpm, per, seconds = f"tpm-{uuid.uuid4().hex[:6]}", 2000, 2.0, 6.0
    arrivals: list[tuple[float, int]] = []
    reply = FakeReply("Hello there", output_tokens=30)

    def respond(request: dict[str, Any]) -> FakeReply:
        # What the provider sees: each request's tokens at the moment it arrives.
        usage = usage_of(reply, request.get("messages", []))
        arrivals.append((time.time(), usage["total_tokens"]))
        return reply

    with FakeOpenAIServer(respond) as server, _pool() as pool:
        args = [(redis_server.url, server.base_url, scope, tpm, per, seconds, w) for w in range(WORKERS)]
        results = pool.starmap(_workers.use_tokens, args)
    sent = sorted(call for worker in results for call in worker)
    at_server = sorted(arrivals)
    worst_sent, worst_server = _busiest(sent, per), _busiest(at_server, per)
    total = sum(tokens for _, tokens in sent)
    span = sent[-1][0] - sent[0][0]
    print(
        f"\ntpm: {len(sent)} calls, {total} tokens in {span:.1f} s by {WORKERS} workers; limit {tpm} per {per:g} s; "
        f"the busiest {per:g} s held {worst_sent} tokens as sent ({worst_sent / tpm:.0%} of the limit), "
        f"{worst_server} as they reached the server ({worst_server / tpm:.0%})"
    )
    assert len(sent) == len(at_server)
    assert worst_sent <= tpm  # no window ever holds more than the limit
    # At the server, requests arrive a few ms after they are sent (tens of ms on a loaded 2-core
    # machine), which bunches some of them into one window: the stated tolerance there is 10 %.
    assert worst_server <= tpm * 1.10
    assert total >= tpm * (span / per) * 0.6  # and the limiter let most of the allowed rate through


def _busiest(calls: list[tuple[float, int]], per: float) -> int:
    """The most tokens in any `per`-second stretch starting at a call."""
    return max(sum(tokens for at, tokens in calls[i:] if at < start + per) for i, (start, _) in enumerate(calls))


def test_four_workers_share_one_breaker_and_one_probe_reopens_it(redis_server: RedisServer) -> None:
    scope = f"cb-{uuid.uuid4().hex[:6]}"
    failing = threading.Event()
    seen: list[tuple[float, bool]] = []

    def respond(request: dict[str, Any]) -> FakeReply:
        seen.append((time.time(), failing.is_set()))
        return FakeReply("down", status=500) if failing.is_set() else FakeReply("ok", input_tokens=5, output_tokens=2)

    with FakeOpenAIServer(respond) as server, _pool() as pool:
        args = [(redis_server.url, server.base_url, scope, 8.0, w) for w in range(WORKERS)]
        pending = pool.starmap_async(_workers.hammer, args)
        started = time.time()
        while len(seen) < 20 and time.time() - started < 30:
            time.sleep(0.05)  # the workers start (spawn) and call a healthy endpoint
        failing.set()
        time.time()
        time.sleep(1.0)
        failing.clear()
        results = pending.get(60)
    failures = [at for at, bad in seen if bad]
    opened = failures[min(4, len(failures) - 1)]  # the fifth failure opens it
    last_failure = failures[-1]
    during_open = [at for at, _ in seen if opened < at < opened + 1.4]
    outcomes = [outcome for worker in results for _, outcome in worker[:-1]]
    probes = sum(int(worker[-1][1].split("=")[1]) for worker in results)
    print(
        f"\nbreaker: {len(failures)} failing calls reached the endpoint; the last one "
        f"{(last_failure - opened) * 1000:.0f} ms after the circuit opened (staleness bound 500 ms); "
        f"{len(during_open)} calls reached it in the rest of the 1.5 s open window, the last "
        f"{(max(during_open, default=opened) - opened) * 1000:.0f} ms after opening; {probes} probe(s) "
        f"taken across {WORKERS} workers; {outcomes.count('open')} calls refused by the shared breaker"
    )
    assert last_failure - opened <= 0.5 + 0.25  # every worker saw the open circuit within the bound (+ slack)
    # Only calls already admitted (or admitted from a copy younger than the staleness) got through.
    assert all(at - opened <= 0.5 + 0.25 for at in during_open)
    assert probes == 1  # one worker probed and its success closed the circuit for all
    assert outcomes.count("ok") > 0
    assert results[0][-2][1] == "ok"


@pytest.fixture(autouse=True)
def _slow_guard() -> None:
    # These tests run several seconds of real calls each: skip them only when asked.
    return None
