"""Sans-I/O parts: breaker state machine (P5), retry rules and waits (P2–P4), the error group,
and the wrappers' plumbing (default retries in mm.model, logging, sync paths, hedging)."""

from __future__ import annotations

import logging
import random
import sys
import time

import anyio
import pytest
from tenacity import RetryCallState, Retrying

import modelmix as mm
from modelmix._exceptions import status_error
from modelmix.resilience import BreakerConfig, BreakerState, CircuitBreaker, RetryBudget, retries_allowed
from modelmix.resilience._hedge import TTFTHistogram
from modelmix.resilience._policy import default_wait

from .conftest import (
    CANARY,
    CANARY_PROMPT,
    FakeClock,
    Leaks,
    assert_no_secrets,
    assert_pool_released,
    base_model,
    chain,
    policy,
    resilient,
)
from .faultserver import Fault, FaultServer

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup
else:  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

# ------------------------------------------------------------------------------------ breaker


def breaker() -> CircuitBreaker:
    return CircuitBreaker("test", rng=random.Random(1))


IN_A_ROW = BreakerConfig().consecutive_failures


def opened(b: CircuitBreaker, now: float = 0.0) -> float:
    """Open `b` with failures in a row; returns when it reopens."""
    for _ in range(IN_A_ROW):
        b.record("failure", now)
    assert b.state(now) is BreakerState.OPEN
    return b.reopen_at(now) or 0.0


def test_breaker_opens_after_ten_consecutive_failures() -> None:
    b = breaker()
    for _ in range(9):
        b.record("failure", 0.0)
    assert b.state(0.0) is BreakerState.CLOSED
    b.record("failure", 0.0)
    assert b.state(0.0) is BreakerState.OPEN
    assert not b.allow(1.0)
    assert 9.0 <= (b.reopen_at(0.0) or 0) <= 11.0  # 10 s ± 10 %


def test_breaker_opens_at_half_failures_over_at_least_fifty_calls() -> None:
    b = breaker()
    for i in range(49):
        b.record("failure" if i % 2 else "success", 0.0)
    assert b.state(0.0) is BreakerState.CLOSED  # 24/49 and fewer than 50 calls
    b.record("failure", 0.0)
    assert b.state(0.0) is BreakerState.OPEN  # 25/50


def test_breaker_ignores_the_noise_of_an_endpoint_failing_a_third_of_its_calls() -> None:
    # Two failures in every three calls would trip a 50 % threshold over ten calls now and then;
    # over the default window a mostly-healthy endpoint stays closed.
    b = breaker()
    rng = random.Random(5)
    for _ in range(5_000):
        b.record("failure" if rng.random() < 0.3 else "success", 0.0)
    assert b.snapshot(0.0).times_opened == 0


def test_breaker_half_open_probes_one_at_a_time_and_reopens_longer_after_three_failures() -> None:
    b = breaker()
    reopen = opened(b)
    assert b.state(reopen) is BreakerState.HALF_OPEN
    for _ in range(3):
        assert b.admit(reopen) == "probe"
        assert not b.allow(reopen)  # one probe in flight at a time
        b.record("failure", reopen, probe=True)
    assert b.state(reopen) is BreakerState.OPEN
    assert b.snapshot(reopen).times_opened == 2
    second = (b.reopen_at(reopen) or 0.0) - reopen
    assert 18.0 <= second <= 22.0  # 10 s × 2 ± 10 %
    assert b.admit(reopen + second) == "probe"
    b.record("success", reopen + second, probe=True)
    assert b.state(reopen + second) is BreakerState.CLOSED


def test_breaker_lets_an_endpoint_that_answers_most_calls_back_in() -> None:
    # The defect: one failed probe re-opened the circuit for longer each time, so an endpoint
    # failing 37 % of calls was shut out for good after a bad burst. Now the first answer closes
    # it and only a run of failed probes re-opens it.
    b = breaker()
    reopen = opened(b)
    assert b.admit(reopen) == "probe"
    b.record("failure", reopen, probe=True)
    assert b.state(reopen) is BreakerState.HALF_OPEN
    assert b.admit(reopen) == "probe"
    b.record("success", reopen, probe=True)
    assert b.state(reopen) is BreakerState.CLOSED
    assert b.snapshot(reopen).times_opened == 1


def test_breaker_ignores_late_results_of_calls_let_in_before_it_opened() -> None:
    b = breaker()
    opened(b)
    for _ in range(20):  # 20 calls that were already in flight fail afterwards
        b.record("failure", 1.0)
    assert b.snapshot(1.0).times_opened == 1
    reopen = b.reopen_at(1.0) or 0.0
    assert b.admit(reopen) == "probe"
    b.record("success", reopen)  # an old call's success is not the probe's
    assert b.state(reopen) is BreakerState.HALF_OPEN
    assert not b.allow(reopen)


def test_breaker_open_window_is_capped() -> None:
    b = breaker()
    now = opened(b)
    for _ in range(45):
        now = (b.reopen_at(now) or now) + 0.001
        assert b.admit(now) == "probe"
        b.record("failure", now, probe=True)
    assert b.snapshot(now).times_opened == 16
    assert (b.reopen_at(now) or 0) - now <= 330.0


def test_breaker_times_opened_decays_with_successes_even_among_failures() -> None:
    b = breaker()
    reopen = opened(b)
    assert b.admit(reopen) == "probe"
    b.record("success", reopen, probe=True)
    assert b.snapshot(reopen).times_opened == 1
    for i in range(BreakerConfig().min_calls * 3 // 2):
        # One failure in three: a serving endpoint, though never a full window in a row.
        b.record("failure" if i % 3 == 0 else "success", reopen)
    assert b.snapshot(reopen).times_opened == 0  # the next opening is 10 s again, not 20 s


def test_breaker_panic_probe_gets_one_chance() -> None:
    b = breaker()
    reopen = opened(b)
    assert b.force_probe(reopen - 5.0)  # early: every model of a chain is open
    assert b.admit(reopen - 5.0) == "probe"
    b.record("failure", reopen - 5.0, probe=True)
    assert b.state(reopen - 5.0) is BreakerState.OPEN
    assert b.snapshot(reopen - 5.0).times_opened == 2


def test_breaker_429_is_a_cooldown_not_a_sample() -> None:
    b = breaker()
    b.record("cooldown", 0.0, retry_after=None)
    snap = b.snapshot(0.0)
    assert snap.calls == 0
    assert snap.cooldown_until == 5.0  # LiteLLM's 5 s without a hint
    assert not b.allow(1.0)
    assert b.allow(1.0, ignore_cooldown=True)
    b.record("cooldown", 0.0, retry_after=2.0)
    assert b.allow(5.01)


def test_breaker_ignored_outcomes_leave_counters_unchanged() -> None:
    b = breaker()
    b.record("failure", 0.0)
    before = b.snapshot(0.0)
    for error in (
        mm.BadRequestError("x", status=400),
        mm.UnprocessableEntityError("x", status=422),
        mm.PromptFilteredError("x", status=400),
        mm.ContextLengthExceededError("x", status=400),
        mm.DeadlineExceededError("x"),
        mm.TransportError("x", kind="pool_timeout"),
    ):
        b.record(mm.resilience.classify(error), 0.0)
    assert b.snapshot(0.0) == before


def test_breaker_misconfigured_for_300_s_and_classification() -> None:
    b = breaker()
    b.record(mm.resilience.classify(mm.AuthenticationError("no", status=401)), 0.0)
    assert b.state(10.0) is BreakerState.MISCONFIGURED
    assert b.reopen_at(10.0) == 300.0
    assert not b.force_probe(10.0)  # never probed in panic mode
    assert mm.resilience.classify(mm.TransportError("x", kind="tls")) == "misconfigured"
    assert mm.resilience.classify(mm.ServerError("x", status=503)) == "failure"
    assert mm.resilience.classify(mm.RateLimitError("x", status=429)) == "cooldown"


def test_breaker_config_is_respected() -> None:
    b = CircuitBreaker("custom", BreakerConfig(consecutive_failures=2, open_base=1.0, jitter=0.0))
    b.record("failure", 0.0)
    b.record("failure", 0.0)
    assert b.reopen_at(0.0) == 1.0


# ------------------------------------------------------------------------------------- policy


def state_after(error: Exception, attempt_number: int) -> RetryCallState:
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt_number
    state.set_exception((type(error), error, None))
    return state


@pytest.mark.parametrize(
    ("error", "retries"),
    [
        (mm.ServerError("x", status=500), 2),
        (mm.ServerError("x", status=504), 1),
        (status_error(501, "x"), 0),
        (mm.RateLimitError("x", status=429), 2),
        (mm.TransportError("x", kind="connect", phase="not_sent"), 1),
        (mm.TransportError("x", kind="connect_timeout", phase="not_sent"), 2),
        (mm.TransportError("x", kind="tls", phase="not_sent"), 0),
        (mm.TransportError("x", kind="pool_timeout", phase="local"), 0),
        (mm.StreamTruncatedError("x"), 1),
        (mm.StreamInterruptedError("x"), 0),
        (mm.AuthenticationError("x", status=401), 0),
        (mm.DeadlineExceededError("x"), 0),
    ],
)
def test_retries_allowed_per_row(error: Exception, retries: int) -> None:
    assert retries_allowed(error, policy()) == retries


def test_hint_precedence_and_jitter() -> None:
    p = policy()
    wait = default_wait(p)
    headers = {"retry-after-ms": "1500", "x-ms-retry-after-ms": "3000", "retry-after": "9"}
    assert 1.5 <= wait(state_after(status_error(429, "x", headers=headers), 1)) <= 1.65
    assert 3.0 <= wait(state_after(status_error(429, "x", headers={"x-ms-retry-after-ms": "3000"}), 1)) <= 3.3
    assert wait(state_after(status_error(429, "x", headers={"retry-after": "121"}), 1)) == float("inf")


def test_full_jitter_bounds_and_floor() -> None:
    p = policy()
    wait = default_wait(p)
    samples = [wait(state_after(mm.ServerError("x", status=500), n)) for n in (1, 2, 3, 5, 9) for _ in range(50)]
    assert all(0 <= s <= 8 for s in samples)
    assert max(wait(state_after(mm.ServerError("x", status=500), 1)) for _ in range(200)) <= 0.5
    assert min(wait(state_after(mm.RateLimitError("x", status=429), 1)) for _ in range(200)) >= 0.25


def test_retry_budget_token_bucket() -> None:
    budget = RetryBudget()
    for _ in range(4):
        budget.record_failure()
    assert budget.allows_retry()  # 6 > 5
    budget.record_failure()
    assert not budget.allows_retry()  # 5 is not > 10/2
    for _ in range(11):
        budget.record_success()  # +0.1 each
    assert budget.allows_retry()
    assert budget.tokens == pytest.approx(6.1)


async def test_spent_budget_skips_retries(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(500))
    budget = RetryBudget()
    for _ in range(5):
        budget.record_failure()
    model = mm.ResilientModel(base_model(server, "a"), policy=policy(), clock=clock, budget=budget)
    with pytest.raises(mm.RetryBudgetExhaustedError) as caught:
        await model.achat("hi")
    assert isinstance(caught.value.__cause__, mm.ServerError)
    assert [a.error for a in caught.value.attempts] == ["ServerError"]
    assert server.count("a") == 1
    # A chain moves on from a spent budget: another endpoint may be healthy.
    server.script("b", Fault.ok())
    chained = mm.fallback(model, base_model(server, "b"), breakers=False, clock=clock, min_attempt_time=0.05)
    assert (await chained.achat("hi")).text == "Hello"
    await chained.aclose()


# --------------------------------------------------------------------------- AllModelsFailedError


def test_all_models_failed_is_an_exception_group() -> None:
    errors: list[Exception] = [mm.RateLimitError("slow down", status=429), mm.ServerError("down", status=503)]
    attempt = mm.Attempt(model="a", provider="openai")
    group = mm.AllModelsFailedError("all failed", errors, attempts=[attempt])
    assert isinstance(group, BaseExceptionGroup)
    assert isinstance(group, mm.ModelMixError)
    rate, rest = group.split(mm.RateLimitError)
    assert isinstance(rate, mm.AllModelsFailedError)
    assert rate.attempts == [attempt]
    assert list(rate.exceptions) == errors[:1]
    assert isinstance(rest, mm.AllModelsFailedError)
    assert "2 models failed" in str(group)


def test_except_star_catches_members() -> None:
    source = "caught = []\ntry:\n    raise group\nexcept* mm.ServerError as eg:\n    caught.append(eg)\n"
    group = mm.AllModelsFailedError("all failed", [mm.ServerError("down", status=503)])
    scope: dict[str, object] = {"group": group, "mm": mm}
    exec(compile(source, "<except-star>", "exec"), scope)  # the syntax needs Python 3.11+
    caught = scope["caught"]
    assert isinstance(caught, list)
    assert len(caught) == 1
    assert isinstance(caught[0], mm.AllModelsFailedError)


# ------------------------------------------------------------------------------ plumbing


def test_model_retries_by_default_and_can_opt_out() -> None:
    wrapped = mm.model("openai:gpt-4o-mini", api_key=CANARY)
    assert isinstance(wrapped, mm.ResilientModel)
    assert (wrapped.provider, wrapped.name) == ("openai", "gpt-4o-mini")
    assert wrapped.policy.max_retries == 2
    # Identity is the wrapped model's; the provider model's own attributes are one unwrap() away.
    assert wrapped.endpoint == wrapped.unwrap().endpoint
    assert wrapped.host == "api.openai.com"
    assert str(wrapped.unwrap().base_url).startswith("https://api.openai.com")  # type: ignore[attr-defined]
    assert not hasattr(wrapped, "base_url")
    bare = mm.model("openai:gpt-4o-mini", api_key=CANARY, max_retries=0)
    assert not isinstance(bare, mm.ResilientModel)
    assert CANARY not in repr(wrapped)


def test_fallback_accepts_model_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    chain = mm.fallback("openai:gpt-4o", "openai:gpt-4o-mini", deadline=5)
    assert [(m.provider, m.name) for m in chain.models] == [("openai", "gpt-4o"), ("openai", "gpt-4o-mini")]
    assert all(isinstance(m, mm.ResilientModel) and m.breaker is not None for m in chain.models)
    assert chain.models[0].policy.max_retries == 2  # type: ignore[attr-defined]
    assert set(chain.breakers) == {"openai:gpt-4o", "openai:gpt-4o-mini"}
    assert CANARY not in repr(chain)


def test_sync_chat_and_stream_retry_and_fall_back(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(500), Fault.ok("Hi"))
    server.script("b", Fault("reset_after_chunks", chunks=0), Fault.ok())
    with resilient(server, "a", clock) as model:
        assert model.chat("hi").text == "Hi"
    assert server.order() == ["a", "a"]
    server.reset()
    server.script("a", Fault("eof_no_terminator", chunks=0))
    with chain(server, clock, "a", "b") as fallback_chain:
        with fallback_chain.stream("hi") as stream:
            text = "".join(stream.text_deltas())
        assert text == "Hello"
        assert server.order() == ["a", "a", "b"]
        assert [a.model for a in stream.response.attempts] == ["a", "a", "b"]
        assert_pool_released(fallback_chain)


def test_sync_deadline(server: FaultServer) -> None:
    server.script("a", Fault.error(503, delay=0.1))
    # No retry budget, and negligible backoff: otherwise "budget spent" or "the next wait doesn't fit"
    # can end the retries while the chain still has time, and the outcome depends on timing.
    inner = mm.ResilientModel(
        base_model(server, "a"),
        policy=policy(backoff_base=0.001, max_retries=50),
        clock=mm.resilience.Clock(),
        use_budget=False,
    )
    model = mm.fallback(inner, deadline=0.5, min_attempt_time=0.1)
    started = time.monotonic()
    with pytest.raises(mm.DeadlineExceededError) as caught:
        model.chat("hi")
    assert time.monotonic() - started <= 0.5 + 0.05
    assert caught.value.attempts
    model.close()


async def test_logging_one_line_per_attempt_no_key_no_prompt(
    server: FaultServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    server.script("a", Fault.error(500))
    async with chain(server, clock, "a", "b") as model:
        await model.achat(CANARY_PROMPT)
    attempt_lines = [r for r in caplog.records if r.getMessage().startswith("attempt ")]
    assert len(attempt_lines) == 4  # a, a, a, b
    assert sum("fallback:" in r.getMessage() for r in caplog.records) == 1
    assert {r.levelno for r in attempt_lines} <= {logging.INFO, logging.DEBUG}
    assert_no_secrets(caplog, model)
    caplog.clear()
    server.reset()
    async with mm.ResilientModel(base_model(server, "a"), policy=policy(), clock=clock, log_content=True) as opted:
        await opted.achat(CANARY_PROMPT)
    assert CANARY_PROMPT in caplog.text
    assert CANARY not in caplog.text


# ---------------------------------------------------------------------------------- hedging


def test_ttft_percentile() -> None:
    histogram = TTFTHistogram()
    for value in range(1, 101):
        histogram.add(value / 100)
    assert histogram.percentile(95) == 0.95
    assert histogram.percentile(50) == 0.5


async def test_hedge_races_a_slow_primary_and_closes_the_loser(server: FaultServer, leaks: Leaks) -> None:
    server.script("slow", Fault.ok("primary", delay=1.0))
    server.script("fast", Fault.ok("backup"))
    hedged = mm.hedge(base_model(server, "slow"), base_model(server, "fast"), after=0.1)
    started = time.monotonic()
    response = await hedged.achat("hi")
    assert response.text == "backup"
    assert time.monotonic() - started < 0.8
    assert server.order() == ["slow", "fast"]
    assert_pool_released(hedged)
    server.script("slow", Fault.ok("primary", delay=1.0))
    async with hedged.astream("hi") as stream:
        text = "".join([d async for d in stream.text_deltas()])
    assert text == "backup"
    assert_pool_released(hedged)
    await hedged.aclose()


async def test_hedge_not_needed_when_primary_is_fast(server: FaultServer, leaks: Leaks) -> None:
    hedged = mm.hedge(base_model(server, "p"), base_model(server, "b"), after=0.5)
    assert (await hedged.achat("hi")).text == "Hello"
    await anyio.sleep(0.05)
    assert server.order() == ["p"]
    await hedged.aclose()


async def test_hedge_percentile_and_budget(server: FaultServer) -> None:
    hedged = mm.hedge(base_model(server, "p"), base_model(server, "b"), after="p95", min_samples=3, initial_after=0.7)
    assert hedged.hedge_delay() == 0.7
    for value in (0.1, 0.2, 0.3):
        hedged.ttft.add(value)
    assert hedged.hedge_delay() == 0.3
    for _ in range(5):
        hedged.budget.record_failure()
    server.script("p", Fault.ok(delay=0.5))
    started = time.monotonic()
    await hedged.achat("hi")
    assert server.order() == ["p"]  # no hedge: the budget is spent
    assert time.monotonic() - started >= 0.5
    await hedged.aclose()
    with pytest.raises(mm.ConfigurationError):
        mm.hedge(base_model(server, "p"), base_model(server, "b"), after="fast")


async def test_bad_input_gives_the_probe_slot_back(server: FaultServer, clock: FakeClock) -> None:
    model = mm.circuit_breaker(resilient(server, "a", clock))
    assert model.breaker is not None
    for _ in range(IN_A_ROW):
        model.breaker.record("failure", clock.now())
    clock.offset += 40  # past the open window: the next call is the half-open probe
    bad_settings: dict[str, object] = {"not_a_setting": 1}
    with pytest.raises(mm.ConfigurationError):
        async with model.astream("hi", **bad_settings):  # type: ignore[arg-type]
            pass
    assert model.breaker.admit(clock.now()) == "probe"  # the slot was not leaked
    assert server.count() == 0
    await model.aclose()


async def test_an_abandoned_probe_does_not_keep_the_endpoint_out(server: FaultServer, clock: FakeClock) -> None:
    # A stream opened as the half-open probe and dropped without being closed never reports its
    # outcome: the endpoint must not be refused for ever because of it.
    model = mm.circuit_breaker(resilient(server, "a", clock))
    assert model.breaker is not None
    for _ in range(IN_A_ROW):
        model.breaker.record("failure", clock.now())
    clock.offset += 40  # past the open window
    abandoned = model.astream("hi")
    await abandoned.__aenter__()  # the probe: committed, then forgotten
    assert not model.breaker.allow(clock.now())  # while it may still be running, it is the probe
    clock.offset += 120  # the default probe_timeout
    assert (await model.achat("hi")).text == "Hello"
    assert model.breaker.state(clock.now()) is BreakerState.CLOSED
    await abandoned.aclose()
    await model.aclose()


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"window": 0}, "window"),
        ({"min_calls": 200}, "min_calls"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"consecutive_failures": 2.5}, "consecutive_failures"),
        ({"open_base": -1}, "open_base"),
        ({"probe_failures": 0}, "probe_failures"),
        ({"probe_timeout": 0}, "probe_timeout"),
        ({"jitter": 1.0}, "jitter"),
    ],
)
def test_breaker_config_mistakes_are_configuration_errors(changes: dict[str, object], named: str) -> None:
    with pytest.raises(mm.ConfigurationError, match=named):
        BreakerConfig(**changes)  # type: ignore[arg-type]
