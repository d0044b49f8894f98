"""Leaving a stream early gives its connection back: proved on a real socket with a pool of one."""

from __future__ import annotations

import gc
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.providers.openai import OpenAIModel
from modelmix.testing import FakeOpenAIServer

from ._helpers import Driver
from ._stub_server import STUB_KEY, StubServer, running_stub

# The transport-level tests run on both async transports (httpx's and aiohttp's).
pytestmark = pytest.mark.usefixtures("async_transport")

ONE_CONNECTION = httpx.Limits(max_connections=1, max_keepalive_connections=1)
TIMEOUT = httpx.Timeout(5.0, pool=2.0)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with running_stub() as server:
        yield server


def _busy_connections(client: httpx.Client | httpx.AsyncClient) -> list[Any]:
    pool = client._transport._pool  # type: ignore[union-attr]
    return [c for c in pool.connections if not (c.is_idle() or c.is_closed())]


async def test_leaving_the_block_early_frees_the_only_connection(driver: Driver, stub: StubServer) -> None:
    if driver.mode == "sync":
        with httpx.Client(limits=ONE_CONNECTION, timeout=TIMEOUT) as client:
            model = OpenAIModel(
                "held-stream", api_key=STUB_KEY, base_url=stub.base_url, http_client=client, timeout=TIMEOUT
            )
            with model.stream("hi") as s:
                first = next(iter(s.text_deltas()))
                assert _busy_connections(client), "the stream holds the only connection"
            assert first == "Hel"
            assert _busy_connections(client) == []
            other = OpenAIModel(
                "gpt-4o-mini", api_key=STUB_KEY, base_url=stub.base_url, http_client=client, timeout=TIMEOUT
            )
            started = time.perf_counter()
            response = other.chat("again")
            elapsed = time.perf_counter() - started
            assert _busy_connections(client) == []
    else:
        async with httpx.AsyncClient(limits=ONE_CONNECTION, timeout=TIMEOUT) as aclient:
            model = OpenAIModel(
                "held-stream", api_key=STUB_KEY, base_url=stub.base_url, async_http_client=aclient, timeout=TIMEOUT
            )
            async with model.astream("hi") as a:
                first = await a.text_deltas().__anext__()
                assert _busy_connections(aclient), "the stream holds the only connection"
            assert first == "Hel"
            assert _busy_connections(aclient) == []
            other = OpenAIModel(
                "gpt-4o-mini", api_key=STUB_KEY, base_url=stub.base_url, async_http_client=aclient, timeout=TIMEOUT
            )
            started = time.perf_counter()
            response = await other.achat("again")
            elapsed = time.perf_counter() - started
            assert _busy_connections(aclient) == []
    assert response.text == "Hello there."
    # A leaked connection would make this wait for the 2 s pool timeout and fail.
    assert elapsed < 1.0
    stub.release()


async def test_a_finished_stream_returns_its_connection_for_reuse(driver: Driver, stub: StubServer) -> None:
    if driver.mode == "sync":
        with httpx.Client(limits=ONE_CONNECTION, timeout=TIMEOUT) as client:
            model = OpenAIModel(
                "gpt-4o-mini", api_key=STUB_KEY, base_url=stub.base_url, http_client=client, timeout=TIMEOUT
            )
            for _ in range(3):
                with model.stream("hi") as s:
                    assert s.until_done().text == "Hello world"
            assert model.chat("hi").usage == mm.Usage(input_tokens=9, output_tokens=3)
    else:
        async with httpx.AsyncClient(limits=ONE_CONNECTION, timeout=TIMEOUT) as aclient:
            model = OpenAIModel(
                "gpt-4o-mini", api_key=STUB_KEY, base_url=stub.base_url, async_http_client=aclient, timeout=TIMEOUT
            )
            for _ in range(3):
                async with model.astream("hi") as a:
                    assert (await a.until_done()).text == "Hello world"
            assert (await model.achat("hi")).usage == mm.Usage(input_tokens=9, output_tokens=3)
    assert stub.connections == 1, "every call reused the one kept-alive connection"


async def test_models_own_clients_are_closed(driver: Driver, stub: StubServer) -> None:
    model = OpenAIModel("gpt-4o-mini", api_key=STUB_KEY, base_url=stub.base_url, timeout=5.0)
    if driver.mode == "sync":
        with model:
            assert model.chat("hi").text == "Hello there."
    else:
        async with model:
            assert (await model.achat("hi")).text == "Hello there."
    assert model._client is None
    assert model._aclient is None


async def test_refused_connection_is_a_typed_transport_error(driver: Driver) -> None:
    # A port that was just free: nothing listens there.
    with running_stub() as gone:
        base_url = gone.base_url
    model = OpenAIModel("gpt-4o-mini", api_key=STUB_KEY, base_url=base_url, timeout=2.0)
    try:
        with pytest.raises(mm.TransportError) as info:
            await driver.chat(model, "hi")
    finally:
        await model.aclose()
    assert info.value.kind == "connect"
    assert info.value.phase == "not_sent"
    assert info.value.retryable is True
    assert info.value.host == "127.0.0.1"


def test_a_dropped_model_closes_its_own_sync_pool() -> None:
    with FakeOpenAIServer(reply="ok") as server:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            model = OpenAIModel("gpt-4o-mini", api_key="sk-test", base_url=server.base_url)
            assert model.chat("hi").text == "ok"
            client = model._client
            assert client is not None
            del model
            gc.collect()
            assert client.is_closed
