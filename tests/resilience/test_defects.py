"""One test per resilience defect of issue 8, each written to fail on the code before its fix."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

import modelmix as mm
from modelmix import _call_deadline
from modelmix._messages import Message
from modelmix._settings import Settings
from modelmix.resilience import BreakerConfig
from modelmix.testing import FunctionModel

from .conftest import CANARY, FakeClock, assert_pool_released, base_model, chain, resilient
from .faultserver import Fault, FaultServer

# The transport-level tests run on both async transports (httpx's and aiohttp's).
pytestmark = pytest.mark.usefixtures("async_transport")

MSG = "hello"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ----------------------------------------------------------------- timeouts survive wrappers


async def test_model_timeout_survives_the_default_retry_wrapper(server: FaultServer) -> None:
    server.script("slow", Fault.ok(delay=30.0))
    model = mm.model("openai-compatible:slow", base_url=server.url("slow"), api_key=CANARY, timeout=2)
    started = time.monotonic()
    with pytest.raises(mm.TransportError) as caught:
        await model.achat(MSG)
    elapsed = time.monotonic() - started
    await model.aclose()
    assert caught.value.kind == "read_timeout"
    # One attempt and its single retry, each cut at 2 s: far from the 30 s the server waits.
    assert elapsed < 15.0
    assert server.count("slow") == 2


def test_retry_wrapper_leaves_the_timeout_setting_alone_and_bounds_the_attempt() -> None:
    seen: list[tuple[dict[str, Any], float]] = []

    def answer(messages: list[Message], settings: Settings) -> str:
        seen.append((dict(settings), _call_deadline.remaining()))
        return "ok"

    model = mm.retrying(FunctionModel(answer), deadline=50.0)
    model.chat(MSG, temperature=0.5)
    model.chat(MSG, timeout=7.0)
    (first, first_left), (second, second_left) = seen
    assert "timeout" not in first
    assert second["timeout"] == 7.0
    # The deadline travels on its own channel, for the driver to cut each HTTP phase with.
    assert 45.0 < first_left <= 50.0
    assert 45.0 < second_left <= 50.0


# ------------------------------------------------------- the caller's cancellation stays the caller's


class FastClock(FakeClock):
    """Every reading is 50 ms later than the last: any timer modelmix derives from the caller's
    cancel scope would fire before the caller's own, every time, however loaded the machine."""

    def now(self) -> float:
        self.offset += 0.05
        return super().now()


async def test_callers_move_on_after_is_never_turned_into_our_deadline_error(server: FaultServer) -> None:
    server.script("a", Fault("stall", chunks=2))
    clock = FastClock()
    async with chain(server, clock, "a", "b") as model:
        got: list[str] = []
        with anyio.move_on_after(0.3) as scope:
            async with model.astream(MSG) as stream:
                async for delta in stream.text_deltas():
                    got.append(delta)
        assert scope.cancelled_caught
        assert got == ["w0 ", "w1 "]
        with anyio.move_on_after(0.3) as scope:
            await model.achat(MSG)
        assert scope.cancelled_caught
        assert_pool_released(model)


async def test_a_short_caller_scope_still_lets_a_fast_answer_through(server: FaultServer, clock: FakeClock) -> None:
    # Without modelmix a 0.5 s scope around a 0.05 s call just returns the answer; modelmix's
    # "no attempt with less than min_attempt_time left" rule applies to its own deadline only.
    server.script("a", Fault.ok(delay=0.05))
    async with mm.fallback(resilient(server, "a", clock, min_attempt_time=1.0), min_attempt_time=1.0) as model:
        with anyio.move_on_after(0.5) as scope:
            response = await model.achat(MSG)
        assert not scope.cancelled_caught
        assert response.text == "Hello"


# -------------------------------------------------------------- composition never drops behaviour


def _failing() -> FunctionModel:
    def answer(messages: list[Message], settings: Settings) -> str:
        raise mm.ServerError("down", status=503)

    return FunctionModel(answer, name="sick")


NESTINGS = {
    "retrying(circuit_breaker(m))": lambda m, cfg, clock: mm.retrying(
        mm.circuit_breaker(m, config=cfg, clock=clock), max_retries=1, clock=clock, use_budget=False
    ),
    "circuit_breaker(retrying(m))": lambda m, cfg, clock: mm.circuit_breaker(
        mm.retrying(m, max_retries=1, clock=clock, use_budget=False), config=cfg, clock=clock
    ),
    "retrying(retrying(circuit_breaker(m)))": lambda m, cfg, clock: mm.retrying(
        mm.retrying(mm.circuit_breaker(m, config=cfg, clock=clock), max_retries=5, clock=clock, use_budget=False),
        max_retries=1,
        clock=clock,
        use_budget=False,
    ),
}


@pytest.mark.parametrize("nesting", sorted(NESTINGS))
def test_every_nesting_keeps_both_retries_and_the_breaker(nesting: str, clock: FakeClock) -> None:
    model = _failing()
    config = BreakerConfig(consecutive_failures=4)
    wrapped = NESTINGS[nesting](model, config, clock)
    with pytest.raises(mm.ServerError):
        wrapped.chat(MSG)
    assert len(model.calls) == 2  # the outer retry policy: one retry
    with pytest.raises(mm.ServerError):
        wrapped.chat(MSG)
    # Four failures in a row open the breaker: the next call is refused without reaching the model.
    with pytest.raises(mm.CircuitOpenError):
        wrapped.chat(MSG)
    assert len(model.calls) == 4


# ------------------------------------------------------------ hedging learns from first tokens only


async def test_hedge_delay_is_learnt_from_time_to_first_token_only(server: FaultServer) -> None:
    # The primary answers whole calls slowly (0.3 s) but streams its first token fast.
    server.script("p", *[Fault.ok(delay=0.3)] * 3, Fault.ok())
    hedged = mm.hedge(base_model(server, "p"), base_model(server, "b"), after="p50", min_samples=3, initial_after=5.0)
    for _ in range(3):
        await hedged.achat(MSG)
    assert len(hedged.ttft) == 0
    assert hedged.hedge_delay() == 5.0  # whole-call latency was not mixed in
    for _ in range(3):
        async with hedged.astream(MSG) as stream:
            async for _ in stream:
                pass
    assert len(hedged.ttft) == 3
    assert hedged.hedge_delay() == hedged.ttft.percentile(50.0) < 5.0
    await hedged.aclose()


# ------------------------------------------------------------- a slow member cannot starve a chain


async def test_a_slow_member_with_its_own_timeout_leaves_time_for_the_others(server: FaultServer) -> None:
    server.script("slow", Fault.ok(delay=30.0))

    def member(label: str, **options: Any) -> mm.Model:
        return mm.model(f"openai-compatible:{label}", base_url=server.url(label), api_key=CANARY, **options)

    chain = mm.fallback(member("slow", timeout=3), member("h1"), member("h2"), deadline=10)
    started = time.monotonic()
    response = await chain.achat(MSG)
    assert response.text == "Hello"
    assert response.model is not None
    assert [a.model for a in response.attempts][-1] == "h1"
    assert time.monotonic() - started < 10.0
    await chain.aclose()


async def test_a_member_silent_before_its_first_token_leaves_time_for_the_others(server: FaultServer) -> None:
    # No timeout of its own: the chain gives each member at most its share of the time left.
    server.script("silent", Fault("stall", chunks=0))

    def member(label: str) -> mm.Model:
        return mm.model(f"openai-compatible:{label}", base_url=server.url(label), api_key=CANARY)

    chain = mm.fallback(member("silent"), member("h1"), member("h2"), deadline=10)
    started = time.monotonic()
    async with chain.astream(MSG) as stream:
        text = "".join([delta async for delta in stream.text_deltas()])
    assert text == "Hello"
    assert stream.response.attempts[-1].model == "h1"
    assert time.monotonic() - started < 10.0
    await chain.aclose()


def test_a_second_breaker_that_would_replace_the_first_is_refused(clock: FakeClock) -> None:
    guarded = mm.circuit_breaker(_failing(), config=BreakerConfig(consecutive_failures=4), clock=clock)
    assert mm.circuit_breaker(guarded).breaker is guarded.breaker  # the same breaker: nothing is lost
    with pytest.raises(mm.ConfigurationError, match="already has a circuit breaker"):
        mm.circuit_breaker(guarded, config=BreakerConfig(consecutive_failures=9))
    with pytest.raises(mm.ConfigurationError, match="already has a circuit breaker"):
        mm.circuit_breaker(guarded, breaker=mm.CircuitBreaker("other"))
