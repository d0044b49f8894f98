"""FAULTS.md §10b, rows 21–32: stream-phase faults, on both asyncio and trio."""

from __future__ import annotations

import asyncio
import contextlib
import time

import anyio
import httpx
import pytest

import modelmix as mm
from modelmix.providers.openai import OpenAIModel
from modelmix.resilience import BreakerState, Clock

from .conftest import (
    CANARY,
    FakeClock,
    Leaks,
    aclose_clients,
    assert_no_secrets,
    assert_pool_released,
    base_model,
    chain,
    policy,
    resilient,
)
from .faultserver import Fault, FaultServer

# The transport-level tests run on both async transports (httpx's and aiohttp's).
pytestmark = pytest.mark.usefixtures("async_transport")

MSG = "hello"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def read_all(model: mm.Model) -> mm.AsyncStream:
    async with model.astream(MSG) as stream:
        async for _ in stream:
            pass
    return stream


def breaker_of(model: mm.FallbackModel, label: str) -> mm.CircuitBreaker:
    return model.breakers[f"openai:{label}"]


# ------------------------------------------------------------------ rows 21, 22, 24: before / after


@pytest.mark.parametrize("kind", ["reset_after_chunks", "eof_no_terminator", "malformed_json"])
async def test_rows21_22_24_pre_commit_retry_once_then_fall_back(
    server: FaultServer, clock: FakeClock, caplog: pytest.LogCaptureFixture, leaks: Leaks, kind: str
) -> None:
    server.script("a", Fault(kind, chunks=0))  # type: ignore[arg-type]
    async with chain(server, clock, "a", "b") as model:
        stream = await read_all(model)
        assert stream.response.text == "Hello"  # the caller never saw the failures
        assert server.order() == ["a", "a", "b"]
        assert [(a.model, a.retry_no) for a in stream.response.attempts] == [("a", 0), ("a", 1), ("b", 0)]
        assert all(a.phase == "pre_commit_stream" for a in stream.response.attempts[:2])
        assert breaker_of(model, "a").snapshot(clock.now()).failures == 2
        assert_pool_released(model)
    assert_no_secrets(caplog, model)


@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        ("reset_after_chunks", mm.TransportError),
        ("eof_no_terminator", mm.StreamTruncatedError),
        ("malformed_json", mm.StreamDecodeError),
    ],
)
async def test_rows21_22_24_post_commit_raises_interrupted_with_partial(
    server: FaultServer, clock: FakeClock, caplog: pytest.LogCaptureFixture, leaks: Leaks, kind: str, cause: type
) -> None:
    server.script("a", Fault(kind, chunks=2))  # type: ignore[arg-type]
    async with chain(server, clock, "a", "b") as model:
        seen: list[str] = []
        with pytest.raises(mm.StreamInterruptedError) as caught:  # noqa: PT012 - the failure is mid-iteration
            async with model.astream(MSG) as stream:
                async for delta in stream.text_deltas():
                    seen.append(delta)
        error = caught.value
        assert "".join(seen) == "w0 w1 " == error.partial_text
        assert isinstance(error.__cause__, cause)
        assert server.order() == ["a"]  # no retry, no fallback after the commit point
        assert [a.model for a in error.attempts] == ["a"]
        assert breaker_of(model, "a").snapshot(clock.now()).failures == 1
        assert_pool_released(model)
    if kind == "malformed_json":
        assert '"content"' not in str(error.__cause__)  # the payload is never echoed
    assert_no_secrets(caplog, model, error=error)


# ----------------------------------------------------------------------------- row 23: too large


async def test_row23_oversized_line_fails_over_without_retry(
    server: FaultServer, clock: FakeClock, leaks: Leaks
) -> None:
    server.script("a", Fault("oversized_line", chunks=0))
    async with chain(server, clock, "a", "b") as model:
        stream = await read_all(model)
        assert stream.response.text == "Hello"
        assert server.order() == ["a", "b"]
        assert stream.response.attempts[0].error == "ResponseTooLargeError"
        assert breaker_of(model, "a").snapshot(clock.now()).failures == 1
        assert_pool_released(model)


# ------------------------------------------------------------------------ row 25: in-band errors


async def test_row25_in_band_server_error_retries_like_a_500(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault("error_event", chunks=0))
    async with chain(server, clock, "a", "b") as model:
        stream = await read_all(model)
        assert server.order() == ["a", "a", "a", "b"]
        assert [a.error for a in stream.response.attempts] == ["InBandStreamError"] * 3 + [None]


async def test_row25_in_band_invalid_request_is_not_retried(server: FaultServer, clock: FakeClock) -> None:
    body = {"error": {"message": "bad", "type": "invalid_request_error"}}
    server.script("a", Fault("error_event", chunks=0, body=body))
    async with chain(server, clock, "a", "b") as model:
        with pytest.raises(mm.InBandStreamError) as caught:
            await read_all(model)
    assert isinstance(caught.value.mapped, mm.BadRequestError)
    assert server.order() == ["a"]


async def test_row25_in_band_error_after_commit(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault("error_event", chunks=2))
    async with chain(server, clock, "a", "b") as model:
        with pytest.raises(mm.StreamInterruptedError) as caught:
            await read_all(model)
    assert isinstance(caught.value.__cause__, mm.InBandStreamError)
    assert caught.value.partial_text == "w0 w1 "
    assert server.order() == ["a"]


# ------------------------------------------------------------------ row 26: content filter mid-stream


async def test_row26_content_filter_mid_stream_is_surfaced_not_routed_around(clock: FakeClock) -> None:
    body = (
        b'data: {"choices":[{"index":0,"delta":{"content":"Once"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"content_filter",'
        b'"content_filter_results":{"violence":{"filtered":true,"severity":"high"}}}]}\n\n'
        b"data: [DONE]\n\n"
    )
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url.host))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    def member(name: str) -> mm.ResilientModel:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        inner = OpenAIModel(name, api_key=CANARY, base_url=f"http://{name}.test/v1", async_http_client=client)
        return mm.ResilientModel(inner, policy=policy(), clock=clock)

    a, b = member("a"), member("b")
    model = mm.fallback(a, b, clock=clock, min_attempt_time=0.05)
    stream = await read_all(model)
    assert stream.response.finish_reason == "content_filter"
    assert stream.response.content_filtered
    assert stream.response.text == "Once"
    assert calls == ["a.test"]
    assert model.breakers["openai:a"].snapshot(clock.now()).failures == 0
    for m in (a, b):
        await aclose_clients(m)


# ----------------------------------------------------------------------- row 27: drip and stall


@pytest.mark.parametrize("kind", ["stall", "slow_drip"])
async def test_row27_stall_before_first_token(server: FaultServer, kind: str, leaks: Leaks) -> None:
    clock = Clock()  # real time: the TTFT timer itself is under test
    server.script("a", Fault(kind, chunks=0, drip=0.02))  # type: ignore[arg-type]
    members = [resilient(server, "a", clock, ttft_timeout=0.3), resilient(server, "b", clock)]
    started = time.monotonic()
    async with mm.fallback(*members, min_attempt_time=0.05, deadline=5) as model:
        stream = await read_all(model)
        elapsed = time.monotonic() - started
        assert stream.response.text == "Hello"
        assert server.order() == ["a", "a", "b"]
        errors = [a.error for a in stream.response.attempts]
        assert errors == ["TransportError", "TransportError", None]
        assert model.breakers["openai:a"].snapshot(clock.now()).failures == 2
        assert_pool_released(model)
    assert 0.6 <= elapsed < 0.6 + 0.5 + 0.5  # two TTFT windows (+ one ≤0.5 s backoff)


async def test_row27_stall_after_commit_raises_stalled_with_partial(server: FaultServer, leaks: Leaks) -> None:
    server.script("a", Fault("stall", chunks=2))
    clock = Clock()
    async with mm.fallback(resilient(server, "a", clock, idle_timeout=0.3), resilient(server, "b", clock)) as model:
        started = time.monotonic()
        with pytest.raises(mm.StreamStalledError) as caught:
            await read_all(model)
        assert time.monotonic() - started < 1.0
        assert caught.value.partial_text == "w0 w1 "
        assert server.order() == ["a"]
        assert model.breakers["openai:a"].snapshot(clock.now()).failures == 1
        assert_pool_released(model)


async def test_row27_deadline_bounds_a_drip(server: FaultServer, leaks: Leaks) -> None:
    server.script("a", Fault("slow_drip", chunks=1, drip=0.02))
    model = resilient(server, "a", Clock(), deadline=0.6, idle_timeout=None)
    started = time.monotonic()
    with pytest.raises(mm.DeadlineExceededError):
        await read_all(model)
    assert time.monotonic() - started <= 0.6 + 0.05
    assert_pool_released(model)
    await model.aclose()


# -------------------------------------------------------------------------- row 28: cancellation


async def test_row28_caller_cancels_mid_stream(server: FaultServer, clock: FakeClock, leaks: Leaks) -> None:
    server.script("a", Fault("stall", chunks=2))
    async with chain(server, clock, "a", "b") as model:
        got: list[str] = []
        with anyio.move_on_after(0.3) as scope:
            async with model.astream(MSG) as stream:
                async for delta in stream.text_deltas():
                    got.append(delta)
        assert scope.cancelled_caught
        assert got == ["w0 ", "w1 "]
        assert server.order() == ["a"]  # no fallback on cancellation
        snap = breaker_of(model, "a").snapshot(clock.now())
        assert snap.calls == 0
        assert snap.state is BreakerState.CLOSED
        assert_pool_released(model)


async def test_row28_break_then_aclose_is_idempotent(server: FaultServer, clock: FakeClock, leaks: Leaks) -> None:
    server.script("a", Fault("stall", chunks=2))
    async with chain(server, clock, "a", "b") as model:
        stream = model.astream(MSG)
        async with stream:
            async for _ in stream:
                break
        await stream.aclose()
        await stream.aclose()
        assert_pool_released(model)


async def test_row28_task_cancel_keeps_cancelled_error_identity(
    server: FaultServer, clock: FakeClock, anyio_backend: str
) -> None:
    if anyio_backend != "asyncio":
        pytest.skip("asyncio.Task.cancel is asyncio's API; the trio path is covered by cancel scopes")
    server.script("a", Fault("silent"))
    async with chain(server, clock, "a", "b") as model:
        task = asyncio.ensure_future(model.achat(MSG))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert server.order() == ["a"]
        assert_pool_released(model)


# ------------------------------------------------------------------ rows 29–30: pool contention


async def test_row29_cancellation_storm_leaves_the_pool_usable(
    server: FaultServer, clock: FakeClock, leaks: Leaks
) -> None:
    server.script("a", Fault.ok(delay=0.2))
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=1))
    inner = OpenAIModel("a", api_key=CANARY, base_url=server.url("a"), async_http_client=client)
    # min_attempt_time=0: every call really starts and is cancelled while queued for the one connection.
    model = mm.ResilientModel(inner, policy=policy(min_attempt_time=0.0), clock=clock)
    async with anyio.create_task_group() as group:
        for i in range(30):

            async def one(delay: float = 0.01 * (i % 7)) -> None:
                with anyio.move_on_after(delay), contextlib.suppress(mm.DeadlineExceededError):
                    await model.achat(MSG)

            group.start_soon(one)
    server.script("a", Fault.ok())
    with anyio.fail_after(1.0):  # the pool is not wedged
        response = await model.achat(MSG)
    assert response.text == "Hello"
    assert_pool_released(model)
    await client.aclose()


async def test_row30_saturated_pool_is_a_deadline_not_a_provider_failure(server: FaultServer, leaks: Leaks) -> None:
    server.script("a", Fault.ok(delay=1.0))
    clock = Clock()
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=2))
    inner = OpenAIModel("a", api_key=CANARY, base_url=server.url("a"), async_http_client=client)
    model = mm.circuit_breaker(mm.ResilientModel(inner, policy=policy(deadline=0.4), clock=clock))
    outcomes: list[BaseException] = []
    started = time.monotonic()

    async def one() -> None:
        try:
            await model.achat(MSG)
        except mm.ModelMixError as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(one)
    # The queued calls ended at the deadline, not when the server answered (1 s): on a loaded 2-core
    # machine scheduling alone can add tenths of a second, so the bound sits between the two.
    assert time.monotonic() - started < 0.9
    assert len(outcomes) == 6
    assert all(isinstance(e, mm.DeadlineExceededError) for e in outcomes)
    assert {getattr(e, "phase", None) for e in outcomes} <= {"queue", "attempt"}
    assert "queue" in {getattr(e, "phase", None) for e in outcomes}
    # Calls that ended still queued for a connection never reached the endpoint. (Which calls end
    # queued is a race at the deadline instant: a connection freed by a timed-out call may be taken
    # by a queued one a moment before its own timer fires; that call then ends in "attempt".)
    phases = [getattr(e, "phase", None) for e in outcomes]
    assert 2 <= server.count("a") <= phases.count("attempt")
    assert model.breaker is not None
    assert model.breaker.snapshot(clock.now()).failures == 0
    assert_pool_released(model)
    await client.aclose()


# --------------------------------------------------------------------- row 31: all circuits open


async def test_row31_all_open_probes_the_soonest(server: FaultServer, clock: FakeClock) -> None:
    server.script("b", Fault.error(500))
    async with chain(server, clock, "a", "b") as model:
        now = clock.now()
        in_a_row = mm.resilience.BreakerConfig().consecutive_failures
        for _ in range(in_a_row):
            breaker_of(model, "a").record("failure", now)
        for _ in range(in_a_row):
            breaker_of(model, "b").record("failure", now - 5)  # opened earlier: reopens sooner
        with pytest.raises(mm.AllModelsFailedError) as caught:
            await model.achat(MSG)
        assert server.order() == ["b"]  # exactly one probe, to the soonest
        assert all(isinstance(e, (mm.CircuitOpenError, mm.ServerError)) for e in caught.value.exceptions)
        assert isinstance(caught.value.exceptions[0], mm.CircuitOpenError)
        assert caught.value.exceptions[0].reopen_at is not None
        assert breaker_of(model, "b").snapshot(clock.now()).times_opened == 2  # the failed probe re-opened it
        # What `except* CircuitOpenError` does: split keeps our type and the attempts (derive).
        matched, _rest = caught.value.split(mm.CircuitOpenError)
        assert isinstance(matched, mm.AllModelsFailedError)
        assert matched.attempts == caught.value.attempts


async def test_row31_misconfigured_models_are_not_probed(server: FaultServer, clock: FakeClock) -> None:
    async with chain(server, clock, "a", "b") as model:
        for label in ("a", "b"):
            breaker_of(model, label).record("misconfigured", clock.now())
        with pytest.raises(mm.AllModelsFailedError) as caught:
            await model.achat(MSG)
    assert server.count() == 0
    assert all(isinstance(e, mm.CircuitOpenError) for e in caught.value.exceptions)


# ---------------------------------------------------------------- row 32: the deadline mid-chain


async def test_row32_chain_exhausts_the_deadline(server: FaultServer, leaks: Leaks) -> None:
    clock = Clock()
    for label in "abc":
        server.script(label, Fault.error(503, delay=0.15))
    members = [resilient(server, label, clock, backoff_base=0.05, min_attempt_time=0.1) for label in "abc"]
    async with mm.fallback(*members, deadline=0.8, min_attempt_time=0.1) as model:
        started = time.monotonic()
        with pytest.raises(mm.DeadlineExceededError) as caught:
            await model.achat(MSG)
        elapsed = time.monotonic() - started
        assert elapsed <= 0.8 + 0.05
        attempts = caught.value.attempts
        assert server.count() >= 3
        # The last attempt may be cut by the deadline before or after it reached the server.
        assert len(attempts) - server.count() in (0, 1)
        assert [a.model for a in attempts][: server.count()] == server.order()
        assert len({a.model for a in attempts}) >= 2  # it fell back within the one deadline
        assert_pool_released(model)


async def test_row32_callers_cancel_scope_is_the_deadline(server: FaultServer, leaks: Leaks) -> None:
    clock = Clock()
    server.script("a", Fault.error(503, delay=0.15))
    # b answers too late for the scope: however far the chain got, something is in flight when it fires.
    server.script("b", Fault.error(503, delay=0.5))
    members = [
        resilient(server, label, clock, backoff_base=0.05, min_attempt_time=0.1, deadline=None) for label in "ab"
    ]
    async with mm.fallback(*members, deadline=None, min_attempt_time=0.1) as model:
        started = time.monotonic()
        # The caller's scope ends the call with the caller's own cancellation, as it would
        # without modelmix: never with an error of ours.
        with anyio.move_on_after(0.7) as scope:
            await model.achat(MSG)
        assert scope.cancelled_caught
        assert time.monotonic() - started <= 0.7 + 0.05
        assert server.order()[0] == "a"
        assert_pool_released(model)


async def test_row32_stream_deadline(server: FaultServer, leaks: Leaks) -> None:
    server.script("a", Fault("stall", chunks=0))
    model = mm.fallback(resilient(server, "a", Clock(), ttft_timeout=None), deadline=0.5, min_attempt_time=0.05)
    started = time.monotonic()
    with pytest.raises(mm.DeadlineExceededError):
        await read_all(model)
    assert time.monotonic() - started <= 0.5 + 0.05
    assert_pool_released(model)
    await model.aclose()


async def test_row28_no_leak_with_base_model(server: FaultServer, leaks: Leaks) -> None:
    server.script("a", Fault("stall", chunks=1))
    model = base_model(server, "a")
    with anyio.move_on_after(0.2):
        await read_all(model)
    assert_pool_released(model)
    await model.aclose()
