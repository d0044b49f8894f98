"""A streamed answer is capped like a non-streamed one: the model's ``max_response_bytes``
(32 MiB by default), reported as `ResponseTooLargeError` before or after the commit point."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import modelmix as mm
from modelmix._events import StreamEvent, TextDelta
from modelmix._streaming import OpenedStream, Stream

from .conftest import assert_pool_released, base_model
from .faultserver import Fault, FaultServer

# The transport-level tests run on both async transports (httpx's and aiohttp's).
pytestmark = pytest.mark.usefixtures("async_transport")

DEFAULT_CAP = 32 << 20
PIECE = "x" * 65536
OVER_THE_CAP = Fault("huge_stream", chunks=(DEFAULT_CAP // len(PIECE)) + 40, text=PIECE)
"""About 34.5 MiB of content, every chunk a well-formed event, ended properly."""


def test_sync_stream_over_the_default_cap(server: FaultServer) -> None:
    server.script("a", OVER_THE_CAP)
    model = base_model(server, "a")
    with pytest.raises(mm.ResponseTooLargeError) as caught, model.stream("hi") as stream:
        for _ in stream:
            pass
    assert caught.value.limit == DEFAULT_CAP
    assert "cap" in str(caught.value)
    assert caught.value.provider == "openai"
    assert_pool_released(model)
    model.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_async_stream_over_the_default_cap(server: FaultServer) -> None:
    server.script("a", OVER_THE_CAP)
    model = base_model(server, "a")
    with pytest.raises(mm.ResponseTooLargeError) as caught:
        await read_async(model)
    assert caught.value.limit == DEFAULT_CAP
    assert_pool_released(model)
    await model.aclose()


def test_a_stream_under_the_cap_is_untouched(server: FaultServer) -> None:
    server.script("a", Fault("huge_stream", chunks=16, text=PIECE))
    model = base_model(server, "a")
    with model.stream("hi") as stream:
        text = stream.until_done().text
    assert len(text) == 16 * len(PIECE)
    model.close()


async def read_async(model: mm.Model) -> None:
    async with model.astream("hi") as stream:
        async for _ in stream:
            pass


class _OneDeltaPerChunk:
    done = False
    model = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return [TextDelta(chunk.decode())]

    def flush(self) -> list[StreamEvent]:
        return []


def _opened(chunks: Iterator[bytes], max_bytes: int) -> OpenedStream:
    return OpenedStream(chunks, lambda: None, "req-1", "127.0.0.1", time.perf_counter(), max_bytes=max_bytes)


def test_the_cap_is_the_opened_streams_own() -> None:
    # The model's max_response_bytes travels on OpenedStream.max_bytes.
    chunks = iter([b"a" * 40, b"b" * 40, b"c" * 40])
    stream = Stream(lambda: _opened(chunks, 100), _OneDeltaPerChunk(), provider="p", model="m")
    seen: list[StreamEvent] = []

    def read() -> None:
        with stream:
            seen.extend(stream)

    with pytest.raises(mm.ResponseTooLargeError) as caught:
        read()
    assert caught.value.limit == 100
    assert caught.value.request_id == "req-1"
    assert caught.value.phase == "post_commit_stream"  # content had arrived: still the cap's own error
    assert len(seen) == 2
