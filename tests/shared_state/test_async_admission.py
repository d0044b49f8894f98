"""An async call never waits on the state store synchronously: when a shared breaker's copy is too
old to decide (or the circuit is due for its probe), the admission goes to the store through its
async interface, so a slow or unreachable store stalls that call, not the whole event loop."""

from __future__ import annotations

from typing import Any

import pytest

import modelmix as mm
from modelmix import ChatResponse, Message, Usage
from modelmix.resilience import BreakerConfig, BreakerState, MemoryStore, SharedCircuitBreaker
from modelmix.resilience._shared import _in_event_loop
from modelmix.resilience._state_store import BreakerView
from modelmix.testing import FunctionModel

CONFIG = BreakerConfig(consecutive_failures=2, open_base=0.4, jitter=0.0, probe_failures=1)


class AsyncOnlyStore(MemoryStore):
    """A store that fails the test if an event loop asks it for an admission synchronously."""

    def __init__(self) -> None:
        super().__init__()
        self.async_admissions = 0

    def breaker_admit(self, key: str, config: BreakerConfig, *, ignore_cooldown: bool = False) -> BreakerView:
        if _in_event_loop():
            raise AssertionError("a synchronous store round trip inside the event loop")
        return super().breaker_admit(key, config, ignore_cooldown=ignore_cooldown)

    def breaker_view(self, key: str, config: BreakerConfig) -> BreakerView:
        if _in_event_loop():
            raise AssertionError("a synchronous store round trip inside the event loop")
        return super().breaker_view(key, config)

    async def abreaker_admit(self, key: str, config: BreakerConfig, *, ignore_cooldown: bool = False) -> BreakerView:
        self.async_admissions += 1
        return super().breaker_admit(key, config, ignore_cooldown=ignore_cooldown)


def _answer(messages: Any, settings: Any) -> ChatResponse:
    return ChatResponse(
        message=Message(role="assistant", content="ok"),
        provider="function",
        usage=Usage(input_tokens=1, output_tokens=1),
    )


def _guarded(store: AsyncOnlyStore) -> tuple[mm.Model, SharedCircuitBreaker]:
    # Staleness 0: no copy is ever young enough, so every admission asks the store.
    breaker = SharedCircuitBreaker("m at e", CONFIG, store=store, key="e|m", staleness=0.0)
    return mm.circuit_breaker(FunctionModel(_answer, name="m"), breaker=breaker), breaker


@pytest.mark.anyio
async def test_async_calls_ask_the_store_for_admission_asynchronously() -> None:
    store = AsyncOnlyStore()
    model, _ = _guarded(store)
    for _ in range(3):
        assert (await model.achat("hi")).text == "ok"
    assert store.async_admissions == 3


@pytest.mark.anyio
async def test_async_streams_ask_the_store_for_admission_asynchronously() -> None:
    store = AsyncOnlyStore()
    model, _ = _guarded(store)
    async with model.astream("hi") as stream:
        assert (await stream.until_done()).text == "ok"
    assert store.async_admissions == 1


@pytest.mark.anyio
async def test_an_open_shared_circuit_refuses_async_calls_from_the_stores_verdict() -> None:
    store = AsyncOnlyStore()
    model, _ = _guarded(store)
    for _ in range(2):
        store.breaker_record("e|m", CONFIG, "failure")
    assert MemoryStore.breaker_view(store, "e|m", CONFIG).state is BreakerState.OPEN
    with pytest.raises(mm.CircuitOpenError):
        await model.achat("hi")
    assert store.async_admissions == 1


def test_sync_calls_still_ask_the_store_directly() -> None:
    store = AsyncOnlyStore()
    model, _ = _guarded(store)
    assert model.chat("hi").text == "ok"
    assert store.async_admissions == 0


@pytest.mark.anyio
async def test_async_chains_ask_their_members_stores_asynchronously() -> None:
    store = AsyncOnlyStore()
    members = [
        mm.circuit_breaker(
            FunctionModel(_answer, name=name),
            breaker=SharedCircuitBreaker(name, CONFIG, store=store, key=f"e|{name}", staleness=0.0),
        )
        for name in ("first", "second")
    ]
    chain = mm.fallback(*members)
    assert (await chain.achat("hi")).text == "ok"
    assert store.async_admissions == 1


@pytest.mark.anyio
async def test_an_async_chain_whose_members_all_look_open_still_probes_one() -> None:
    from modelmix.resilience._clock import SYSTEM_CLOCK

    store = AsyncOnlyStore()
    breakers = [SharedCircuitBreaker(n, CONFIG, store=store, key=f"e|{n}", staleness=0.0) for n in ("a", "b")]
    for breaker in breakers:
        for _ in range(2):
            MemoryStore.breaker_record(store, breaker.key, CONFIG, "failure")
        # What this process last heard from the store: open (its copy, however old, says so).
        assert await breaker.aadmit(SYSTEM_CLOCK.now()) is None
    chain = mm.fallback(*(mm.circuit_breaker(FunctionModel(_answer, name=b.name), breaker=b) for b in breakers))
    assert (await chain.achat("hi")).text == "ok"
    assert sum(b.probes for b in breakers) == 1
