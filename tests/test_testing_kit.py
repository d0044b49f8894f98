"""The public test kit (`modelmix.testing`) simulates what users need to test: async answer
functions, blocking ones, latency, error statuses with headers, dropped streams, a fake clock —
enough to test "my chain falls back when the first model is slow / returns 429 / drops the
stream", sync and async, with nothing else."""

from __future__ import annotations

import logging
import time

import anyio
import anyio.lowlevel
import httpx
import pytest

import modelmix as mm
from modelmix.testing import FakeClock, FakeOpenAIServer, FakeReply, FunctionModel


async def _async_answer(messages: list[mm.Message], settings: mm.Settings) -> str:
    await anyio.lowlevel.checkpoint()
    return f"async: {messages[-1].text}"


# ------------------------------------------------------------------------ answer functions


def test_an_async_answer_function_works_from_sync_calls() -> None:
    model = FunctionModel(_async_answer)
    assert model.chat("hi").text == "async: hi"
    with model.stream("hi") as stream:
        assert "".join(stream.text_deltas()) == "async: hi"


async def test_an_async_answer_function_works_from_async_calls() -> None:
    model = FunctionModel(_async_answer)
    assert (await model.achat("hi")).text == "async: hi"
    async with model.astream("hi") as stream:
        assert "".join([d async for d in stream.text_deltas()]) == "async: hi"


async def test_an_async_answer_function_works_from_sync_calls_inside_an_event_loop() -> None:
    assert FunctionModel(_async_answer).chat("hi").text == "async: hi"  # on a loop of its own


async def test_a_blocking_answer_function_neither_stalls_the_loop_nor_outlives_cancellation() -> None:
    def blocking(messages: list[mm.Message], settings: mm.Settings) -> str:
        time.sleep(1.5)
        return "late"

    slow = FunctionModel(blocking)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.01)

    started = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        with anyio.move_on_after(0.2):
            await slow.achat("hi")
        group.cancel_scope.cancel()
    assert time.monotonic() - started < 1.0  # the caller's cancellation ends the call at once
    assert ticks >= 5  # the event loop kept running meanwhile


def test_a_script_of_replies_is_served_in_turn() -> None:
    model = FunctionModel(["one", FakeReply("two"), "three"])
    assert [model.chat("x").text for _ in range(4)] == ["one", "two", "three", "three"]


# ------------------------------------------------------------------- misbehaving answers


def test_an_error_status_is_the_typed_error_with_its_headers() -> None:
    model = FunctionModel(FakeReply("slow down", status=429, headers={"retry-after": "2", "x-request-id": "r1"}))
    with pytest.raises(mm.RateLimitError) as caught:
        model.chat("hi")
    assert caught.value.retry_after == 2.0
    assert caught.value.request_id == "r1"
    with pytest.raises(mm.RateLimitError), model.stream("hi") as stream:
        stream.until_done()


def test_headers_of_a_success_reach_the_response() -> None:
    model = FunctionModel(FakeReply("hi", headers={"x-request-id": "req-42"}))
    assert model.chat("x").request_id == "req-42"


def test_latency_is_waited_on_the_clock_and_cut_by_the_timeout() -> None:
    clock = FakeClock()
    model = FunctionModel(FakeReply("late", delay=30.0), clock=clock)
    assert model.chat("hi").text == "late"
    assert clock.now() == 30.0
    with pytest.raises(mm.TransportError) as caught:
        model.chat("hi", timeout=5.0)
    assert caught.value.kind == "read_timeout"
    assert clock.now() == 35.0  # it waited as long as the timeout, no longer (and not for real)


async def test_a_dropped_stream_before_and_after_content() -> None:
    early = FunctionModel(FakeReply("Hello there", drop_after=0))
    with pytest.raises(mm.TransportError):
        async with early.astream("hi") as stream:
            await stream.until_done()
    late = FunctionModel(FakeReply("Hello there", drop_after=2), chunks=4)
    with pytest.raises(mm.StreamInterruptedError) as caught:
        async with late.astream("hi") as stream:
            await stream.until_done()
    assert caught.value.partial_text == "Hello "
    with pytest.raises(mm.TransportError):
        late.chat("hi")  # not streamed: cut before anything was sent


def test_chunk_delay_paces_a_stream() -> None:
    clock = FakeClock()
    model = FunctionModel(FakeReply("abcd", chunk_delay=0.5), clock=clock, chunks=4)
    with model.stream("hi") as stream:
        assert "".join(stream.text_deltas()) == "abcd"
    assert clock.slept == [0.5] * (len(clock.slept))
    assert len(clock.slept) >= 4


# ------------------------------------------------------------------------------- FakeClock


def test_fake_clock_keeps_sync_retries_from_sleeping_for_real() -> None:
    clock = FakeClock()
    flaky = FunctionModel([FakeReply("busy", status=429, headers={"retry-after": "20"}), "done"])
    model = mm.retrying(flaky, clock=clock, use_budget=False)
    started = time.monotonic()
    assert model.chat("hi").text == "done"
    assert time.monotonic() - started < 1.0
    assert len(clock.slept) == 1
    assert 20.0 <= clock.slept[0] <= 22.0  # the server's hint, plus up to 10 % jitter


# ----------------------------------------------------------------- chains, sync and async


def _chain(first: FunctionModel, clock: FakeClock) -> mm.FallbackModel:
    backup = FunctionModel("from the backup", name="backup", clock=clock)
    return mm.fallback(first, backup, clock=clock, endpoints=mm.resilience.EndpointRegistry())


TROUBLES = ("dropped_stream", "rate_limited", "slow")


def _first(trouble: str, clock: FakeClock) -> FunctionModel:
    replies = {
        "slow": FakeReply("late", delay=60.0),
        "rate_limited": FakeReply("busy", status=429, headers={"retry-after": "30"}),
        "dropped_stream": FakeReply("Hel", drop_after=0),
    }
    return FunctionModel(replies[trouble], name="first", clock=clock)


@pytest.mark.parametrize("trouble", TROUBLES)
def test_a_sync_chain_falls_back(trouble: str) -> None:
    clock = FakeClock()
    chain = _chain(_first(trouble, clock), clock)
    if trouble == "dropped_stream":
        with chain.stream("hi") as stream:
            assert "".join(stream.text_deltas()) == "from the backup"
        attempts = stream.response.attempts
    else:
        response = chain.chat("hi", timeout=5.0)
        assert response.text == "from the backup"
        attempts = response.attempts
    assert [a.model for a in attempts] == ["first", "backup"]
    assert clock.now() <= 5.0  # no real waiting, and the slow one was cut at the timeout


@pytest.mark.parametrize("trouble", TROUBLES)
async def test_an_async_chain_falls_back(trouble: str) -> None:
    clock = FakeClock()
    chain = _chain(_first(trouble, clock), clock)
    if trouble == "dropped_stream":
        async with chain.astream("hi") as stream:
            assert "".join([d async for d in stream.text_deltas()]) == "from the backup"
        attempts = stream.response.attempts
    else:
        response = await chain.achat("hi", timeout=5.0)
        assert response.text == "from the backup"
        attempts = response.attempts
    assert [a.model for a in attempts] == ["first", "backup"]


# ------------------------------------------------------------------------ FakeOpenAIServer


def test_the_server_misbehaves_as_scripted() -> None:
    script = [
        FakeReply("busy", status=429, headers={"retry-after": "7"}),
        FakeReply("late", delay=2.0),
        FakeReply("Hello there", drop_after=1),
        FakeReply("fine", headers={"x-request-id": "req-7"}),
    ]
    with FakeOpenAIServer(reply=script, chunks=4) as server:
        model = mm.model("openai:gpt-4o-mini", base_url=server.base_url, api_key="sk-test", max_retries=0)
        with model:
            with pytest.raises(mm.RateLimitError) as limited:
                model.chat("hi")
            assert limited.value.retry_after == 7.0
            started = time.monotonic()
            with pytest.raises(mm.TransportError) as slow:
                model.chat("hi", timeout=0.3)
            assert slow.value.kind == "read_timeout"
            assert time.monotonic() - started < 1.5
            with pytest.raises(mm.StreamInterruptedError) as dropped, model.stream("hi") as stream:
                stream.until_done()
            assert dropped.value.partial_text == "Hel"
            assert model.chat("hi").request_id == "req-7"


async def test_the_server_stops_quietly_under_an_abandoned_stream(caplog: pytest.LogCaptureFixture) -> None:
    # A client that stops reading a long stream and goes away, then the server stopping with
    # connections still open: asyncio used to log "socket.send() raised exception." for each write.
    caplog.set_level(logging.DEBUG, logger="asyncio")
    with FakeOpenAIServer(reply="word " * 20_000, chunks=20_000) as server:
        async with httpx.AsyncClient() as client:
            body = {"model": "m", "messages": [], "stream": True}
            async with client.stream("POST", f"{server.base_url}/chat/completions", json=body) as response:
                async for _ in response.aiter_bytes():
                    break
        await anyio.sleep(0.3)
        model = mm.model("openai:gpt-4o-mini", base_url=server.base_url, api_key="sk-test", max_retries=0)
        await model.achat("hi")  # a keep-alive connection left open at exit
    await model.aclose()
    complaints = [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.WARNING]
    assert not complaints, [r.getMessage() for r in complaints]


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_fake_reply_can_reason(api: str, stream: bool) -> None:
    server = FakeOpenAIServer(FakeReply("Paris.", reasoning="The capital of France."))
    with server, mm.model("openai:gpt-5-mini", api=api, base_url=server.base_url, api_key="sk-fake") as model:
        if stream:
            with model.stream("Capital of France?") as s:
                pieces = [e.text for e in s if isinstance(e, mm.ReasoningDelta)]
            response = s.response
            assert "".join(pieces) == "The capital of France."
        else:
            response = model.chat("Capital of France?")
    assert (response.text, response.reasoning) == ("Paris.", "The capital of France.")
    state = response.message.reasoning_state
    if api == "responses":  # asked for its reasoning encrypted, as a reasoning model is
        assert state is not None
        assert state.items[0]["encrypted_content"].startswith("fake-")
    else:  # a plain turn keeps no state on chat completions
        assert state is None


async def test_a_function_model_reasons_the_same_way() -> None:
    model = FunctionModel(lambda messages, settings: FakeReply("Paris.", reasoning="The capital of France."))
    response = await model.achat("Capital of France?")
    assert (response.text, response.reasoning) == ("Paris.", "The capital of France.")
    async with model.astream("Capital of France?") as stream:
        pieces = [event.text async for event in stream if isinstance(event, mm.ReasoningDelta)]
    assert "".join(pieces) == "The capital of France."
    assert stream.response.reasoning == "The capital of France."
