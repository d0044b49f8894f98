"""Leaving an async stream early leaves nothing for the garbage collector to finalise.

Trio warns (``ResourceWarning``, surfacing as an unraisable exception) for every async generator
collected before it was exhausted; httpx reads a body through a chain of them. These tests leave
streams early in every way a caller can, on asyncio and on trio, against a real socket, and turn
any unraisable exception into a failure.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest

from modelmix import ResponseTooLargeError, StreamInterruptedError
from modelmix.providers.openai import OpenAIModel

from ._stub_server import STUB_KEY, StubServer, running_stub

# On both async transports (httpx's and aiohttp's; aiohttp on asyncio only).
pytestmark = [
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.usefixtures("async_transport"),
]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with running_stub() as server:
        yield server


@pytest.fixture
async def model(stub: StubServer) -> AsyncIterator[OpenAIModel]:
    built = OpenAIModel("held-stream", api_key=STUB_KEY, base_url=stub.base_url, timeout=5.0)
    yield built
    await built.aclose()
    stub.release()


async def _read_all(model: OpenAIModel) -> None:
    async with model.astream("hi") as s:
        async for _event in s:
            pass


def _collect() -> None:
    # Unreachable generators are finalised now, inside the test, where pytest attributes them.
    for _ in range(3):
        gc.collect()


@pytest.mark.anyio
async def test_break_out_of_text_deltas(model: OpenAIModel) -> None:
    async with model.astream("hi") as s:
        async for delta in s.text_deltas():
            assert delta == "Hel"
            break
    _collect()


@pytest.mark.anyio
async def test_break_out_of_events(model: OpenAIModel) -> None:
    async with model.astream("hi") as s:
        async for _event in s:
            break
    _collect()


@pytest.mark.anyio
async def test_exception_inside_the_block(model: OpenAIModel) -> None:
    async def fail_after_first_delta() -> None:
        async with model.astream("hi") as s:
            await s.text_deltas().__anext__()
            raise KeyError("caller failed")

    with pytest.raises(KeyError):
        await fail_after_first_delta()
    _collect()


@pytest.mark.anyio
async def test_cancelled_while_waiting_for_the_next_chunk(model: OpenAIModel) -> None:
    with anyio.move_on_after(0.3) as scope:
        async with model.astream("hi") as s:
            async for _delta in s.text_deltas():
                pass
    assert scope.cancelled_caught
    _collect()


@pytest.mark.anyio
async def test_stream_without_context_manager_closed_by_aclose(model: OpenAIModel) -> None:
    s = model.astream("hi")
    iterator = s.__aiter__()
    await iterator.__anext__()
    await s.aclose()
    _collect()


@pytest.mark.anyio
async def test_stream_failing_on_a_size_cap(stub: StubServer) -> None:
    model = OpenAIModel("gpt-4o-mini", api_key=STUB_KEY, base_url=stub.base_url)
    model._max_response_bytes = 10
    try:
        with pytest.raises(ResponseTooLargeError):
            await model.achat("hi")
    finally:
        await model.aclose()
    _collect()


@pytest.mark.anyio
async def test_body_without_length_over_the_size_cap() -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 8

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, content=body())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        model = OpenAIModel("m", api_key=STUB_KEY, async_http_client=client)
        model._max_response_bytes = 10
        with pytest.raises(ResponseTooLargeError):
            await model.achat("hi")
    _collect()


@pytest.mark.anyio
async def test_failing_decoder_mid_stream() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
        yield b"data: {not json\n\n"
        yield b"data: [DONE]\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        model = OpenAIModel("m", api_key=STUB_KEY, async_http_client=client)
        with pytest.raises(StreamInterruptedError):
            await _read_all(model)
    _collect()
