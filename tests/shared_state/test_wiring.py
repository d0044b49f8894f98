"""Shared state through the public API: scoped budgets, shared breakers and client-side rate
limits, on the in-memory store (fake clock) and a real Redis."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anyio
import pytest

import modelmix as mm
from modelmix import ChatResponse, Message, Usage
from modelmix.resilience import (
    BreakerConfig,
    BreakerState,
    MemoryStore,
    RedisStore,
    SharedCircuitBreaker,
    registry,
)
from modelmix.resilience._budget import LEASE_MARGIN
from modelmix.resilience._state_store import BUDGET_LEASE_SECONDS, BudgetBooks
from modelmix.testing import FakeClock, FunctionModel

from .conftest import Backend

mm.register_model_info("shared-cheap", mm.ModelInfo(context_window=4_000, input_per_mtok=1.0, output_per_mtok=2.0))
CONFIG = BreakerConfig(consecutive_failures=3, open_base=0.4, jitter=0.0, probe_failures=1)


def answer(input_tokens: int = 5, output_tokens: int = 10) -> ChatResponse:
    return ChatResponse(
        message=Message(role="assistant", content="ok"),
        finish_reason="stop",
        provider="function",
        model="shared-cheap",
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
    )


def cheap(name: str = "shared-cheap", **kwargs: Any) -> FunctionModel:
    return FunctionModel(lambda messages, settings: answer(), name=name, **kwargs)


@pytest.fixture(autouse=True)
def _in_process_state() -> Iterator[None]:
    yield
    mm.shared_state(None)
    registry.clear()


# ------------------------------------------------------------------------------------ budgets


def test_budgets_with_one_scope_share_one_set_of_books(backend: Backend) -> None:
    # 100 µ$; each call costs 25 µ$ and reserves a little more first (its prompt counted high).
    first = mm.budget(cheap(), max_usd="0.0001", scope="team", store=backend.store)
    second = mm.budget(cheap(), max_usd="0.0001", scope="team", store=backend.store)
    spent = 0
    for model in (first, second) * 10:
        try:
            model.chat("hi", max_tokens=10)
            spent += 1
        except mm.BudgetExceededError:
            break
    assert spent == 3  # the fourth call's worst case no longer fits what the other three left
    assert first.spent == second.spent == Decimal("0.000075")


def test_an_unscoped_budget_keeps_its_own_books() -> None:
    one = mm.budget(cheap(), max_usd="0.0001")
    assert one.scope is None
    assert type(one.ledger).__name__ == "BudgetLedger"


def test_budgets_refuse_calls_while_the_store_is_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    dead = RedisStore("redis://127.0.0.1:1/0", timeout=0.2)
    model = mm.budget(cheap(), max_usd=1, scope="team", store=dead)
    with caplog.at_level(logging.WARNING, logger="modelmix"):
        for _ in range(3):
            with pytest.raises(mm.BudgetExceededError, match="unreachable"):
                model.chat("hi", max_tokens=10)
    assert sum("unreachable" in r.message for r in caplog.records) == 1  # logged once, not per call


def test_budgets_may_let_calls_through_while_the_store_is_unreachable() -> None:
    dead = RedisStore("redis://127.0.0.1:1/0", timeout=0.2, budget_outage="allow")
    model = mm.budget(cheap(), max_usd=1, scope="team", store=dead)
    assert model.chat("hi", max_tokens=10).text == "ok"


class _LeaseSpy(MemoryStore):
    """Notes how long each reservation is asked to be held."""

    def __init__(self) -> None:
        super().__init__()
        self.leases: list[float] = []

    def budget_reserve(
        self, scope: str, max_usd: Decimal, amount: Decimal, lease_seconds: float = BUDGET_LEASE_SECONDS
    ) -> BudgetBooks:
        self.leases.append(lease_seconds)
        return super().budget_reserve(scope, max_usd, amount, lease_seconds)


def test_a_reservation_is_held_for_the_calls_deadline_plus_a_margin() -> None:
    spy = _LeaseSpy()
    plain = mm.budget(cheap(), max_usd=1, scope="team", store=spy, lease_seconds=42)
    plain.chat("hi", max_tokens=10)
    assert spy.leases == [42.0]  # no deadline: the budget's lease_seconds
    chain = mm.budget(mm.fallback(cheap(), cheap(), deadline=5), max_usd=1, scope="team", store=spy)
    chain.chat("hi", max_tokens=10)
    assert LEASE_MARGIN < spy.leases[-1] <= 5 + LEASE_MARGIN
    assert mm.budget(cheap(), max_usd=1).lease_seconds == BUDGET_LEASE_SECONDS  # 10 minutes by default


async def test_an_async_reservation_is_held_for_the_callers_cancel_scope_plus_a_margin() -> None:
    spy = _LeaseSpy()
    model = mm.budget(cheap(), max_usd=1, scope="team", store=spy, lease_seconds=42)
    await model.achat("hi", max_tokens=10)
    with anyio.fail_after(3):
        await model.achat("hi", max_tokens=10)
    assert spy.leases[0] == 42.0
    assert LEASE_MARGIN < spy.leases[1] <= 3 + LEASE_MARGIN


def test_a_budget_lease_must_be_finite_seconds() -> None:
    with pytest.raises(mm.ConfigurationError, match="lease_seconds"):
        mm.budget(cheap(), max_usd=1, scope="team", lease_seconds=0)


# ----------------------------------------------------------------------------------- breakers


def test_shared_state_makes_new_breakers_shared(backend: Backend) -> None:
    mm.shared_state(backend.store)
    guarded = mm.circuit_breaker(cheap())
    assert isinstance(guarded.breaker, SharedCircuitBreaker)
    mm.shared_state(None)
    assert not isinstance(mm.circuit_breaker(cheap()).breaker, SharedCircuitBreaker)


def _workers(backend: Backend, n: int, staleness: float = 0.2) -> list[SharedCircuitBreaker]:
    return [
        SharedCircuitBreaker("m at e", CONFIG, store=backend.store, key="e|m", staleness=staleness) for _ in range(n)
    ]


def test_one_workers_failures_open_the_circuit_for_all(backend: Backend) -> None:
    clock = FakeClock(50.0)
    a, b = _workers(backend, 2)
    assert b.admit(clock.now()) == "call"  # b now holds a copy: closed
    for _ in range(3):
        a.record("failure", clock.now())
    assert a.admit(clock.now()) is None
    # b's copy is fresh for `staleness` seconds, then it asks the store again.
    clock.advance(0.25)
    assert b.admit(clock.now()) is None
    assert b.state(clock.now()) is BreakerState.OPEN
    assert isinstance(b.error(clock.now()), mm.CircuitOpenError)


def test_one_probe_across_workers(backend: Backend) -> None:
    clock = FakeClock(50.0)
    workers = _workers(backend, 4)
    for _ in range(3):
        workers[0].record("failure", clock.now())
    backend.advance(0.5)
    clock.advance(0.5)
    admissions = [w.admit(clock.now()) for w in workers]
    assert admissions.count("probe") == 1
    assert admissions.count(None) == 3
    prober = workers[admissions.index("probe")]
    prober.record("success", clock.now(), probe=True)
    clock.advance(0.25)
    assert all(w.admit(clock.now()) == "call" for w in workers)


def test_breakers_use_their_own_state_while_the_store_is_unreachable() -> None:
    dead = RedisStore("redis://127.0.0.1:1/0", timeout=0.2)
    breaker = SharedCircuitBreaker("m at e", CONFIG, store=dead, key="e|m")
    assert breaker.admit(0.0) == "call"
    for _ in range(3):
        breaker.record("failure", 0.0)
    assert breaker.admit(0.1) is None  # the inherited in-process state machine opened


# -------------------------------------------------------------------------------- rate limits


async def test_a_call_waits_for_its_turn_within_the_deadline() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    model = mm.rate_limit(cheap(clock=clock), rpm=2, max_wait=120, store=store, clock=clock)
    for _ in range(3):
        model.chat("hi")
    # The sliding window: until the bucket holding the first two calls drops out (66 s, + jitter).
    assert len(clock.slept) == 1
    assert 66.0 <= clock.slept[0] <= 72.6
    await model.achat("hi")
    await model.achat("hi")
    assert len(clock.slept) == 2


def test_a_chain_moves_on_when_the_wait_would_not_fit() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    limited = mm.rate_limit(cheap(clock=clock), rpm=1, store=store, clock=clock)
    spare = cheap(name="spare", clock=clock)
    chain = mm.fallback(limited, spare, deadline=10.0, clock=clock)
    assert [a.model for a in chain.chat("hi").attempts] == ["shared-cheap"]
    second = chain.chat("hi")
    assert [(a.model, a.error) for a in second.attempts] == [("shared-cheap", "ClientRateLimitError"), ("spare", None)]
    assert clock.slept == []  # no two-minute wait inside a 10 s deadline


def test_tokens_are_reserved_then_settled_to_the_real_usage() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    model = mm.rate_limit(cheap(clock=clock), tpm=1000, store=store, clock=clock, scope="k")
    for _ in range(20):
        model.chat("hi", max_tokens=400)  # reserves ~400, really uses 15
    assert clock.slept == []
    with pytest.raises(mm.ClientRateLimitError) as caught:
        mm.rate_limit(cheap(clock=clock), tpm=1000, store=store, clock=clock, scope="k").chat("hi", max_tokens=2000)
    assert caught.value.limit == "tpm"
    assert caught.value.retry_after is None


def test_concurrency_limit_with_streams() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    model = mm.rate_limit(cheap(clock=clock), max_concurrency=1, max_wait=0.0, store=store, clock=clock)
    with model.stream("hi") as first:
        with pytest.raises(mm.ClientRateLimitError, match="concurrency"), model.stream("hi") as second:
            list(second.text_deltas())
        list(first.text_deltas())
    model.chat("hi")  # the slot came back when the stream ended


def test_rate_limit_arguments_are_checked() -> None:
    with pytest.raises(mm.ConfigurationError, match="at least one"):
        mm.rate_limit(cheap())
    with pytest.raises(mm.ConfigurationError, match="rpm"):
        mm.rate_limit(cheap(), rpm=0)
    with pytest.raises(mm.ConfigurationError, match="shared_state"):
        mm.shared_state("http://nope")
    with pytest.raises(mm.ConfigurationError, match="staleness"):
        mm.shared_state(None, staleness=2)


async def test_async_calls_share_the_budget_through_the_async_client(backend: Backend) -> None:
    model = mm.budget(cheap(), max_usd="0.0001", scope="team", store=backend.store)
    try:
        for _ in range(3):
            await model.achat("hi", max_tokens=10)
        with pytest.raises(mm.BudgetExceededError):
            await model.achat("hi", max_tokens=10)
        assert model.spent == Decimal("0.000075")
    finally:
        await backend.store.aclose()


async def test_a_store_built_on_a_given_client_serves_async_calls_from_a_thread(redis_server: Any) -> None:
    import redis

    prefix = f"given-{uuid.uuid4().hex[:6]}"
    store = RedisStore(redis_server.url, prefix=prefix, client=redis.Redis.from_url(redis_server.url))
    assert (await store.abudget_reserve("b", Decimal(1), Decimal("0.5"))).ok
    assert store.budget_books("b").reserved == Decimal("0.5")
    store.close()


async def test_async_calls_record_breaker_outcomes_without_waiting_on_the_store(backend: Backend) -> None:
    def down(messages: Any, settings: Any) -> Any:
        raise mm.ServerError("down", status=503)

    mm.shared_state(backend.store)
    guarded = mm.circuit_breaker(FunctionModel(down, name="flaky"), config=CONFIG)
    for _ in range(3):
        with pytest.raises(mm.ServerError):
            await guarded.achat("hi")
    assert backend.store.flush()
    assert backend.store.breaker_view("function|flaky", CONFIG).state is BreakerState.OPEN
    with pytest.raises(mm.CircuitOpenError):
        await guarded.achat("hi")
    await backend.store.aclose()
