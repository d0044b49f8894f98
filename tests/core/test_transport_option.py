"""``transport=``: which transport carries a model's async calls, refused clearly when it cannot
work, and imported only when an aiohttp model makes its first async call."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from typing import Any

import anyio
import httpx
import pytest

import modelmix as mm
from modelmix.testing import FakeOpenAIServer

from ._loopback import closed_port
from ._stub_server import STUB_KEY, running_stub

needs_aiohttp = pytest.mark.skipif(
    importlib.util.find_spec("aiohttp") is None, reason="the aiohttp transport needs pip install 'modelmix[aiohttp]'"
)


def _model(base_url: str = "http://127.0.0.1:9/v1", **options: Any) -> mm.Model:
    return mm.model("openai:gpt-4o-mini", base_url=base_url, api_key="sk-test", **options)


@pytest.mark.parametrize("value", ["aiohtp", "requests", "", 3])
def test_an_unknown_transport_is_refused_naming_the_accepted_ones(value: object) -> None:
    with pytest.raises(mm.ConfigurationError, match=r"transport= takes 'httpx' \(the default\) or 'aiohttp'"):
        _model(transport=value)


def test_a_missing_aiohttp_is_refused_with_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "aiohttp" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(mm.ConfigurationError, match=r"pip install 'modelmix\[aiohttp\]'"):
        _model(transport="aiohttp")


def test_every_provider_takes_the_option() -> None:
    for spec in ("openai:gpt-4o-mini", "ollama:llama3.2", "vllm:some-model", "azure:gpt-4o"):
        model = mm.model(
            spec, base_url="https://example.openai.azure.com/openai/v1", api_key="sk-test", transport="httpx"
        )
        assert model is not None


@needs_aiohttp
def test_neither_import_nor_building_an_aiohttp_model_imports_aiohttp() -> None:
    code = (
        "import sys, asyncio, modelmix as mm\n"
        "from modelmix.testing import FakeOpenAIServer\n"
        "with FakeOpenAIServer(reply='ok') as server:\n"
        "    model = mm.model('openai:gpt-4o-mini', base_url=server.base_url, api_key='sk', transport='aiohttp')\n"
        "    before = 'aiohttp' in sys.modules\n"
        "    sync_text = model.chat('hi').text\n"
        "    after_sync = 'aiohttp' in sys.modules\n"
        "    async def main():\n"
        "        async with model:\n"
        "            return (await model.achat('hi')).text\n"
        "    async_text = asyncio.run(main())\n"
        "    print(before, sync_text, after_sync, async_text, 'aiohttp' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # Sync calls stay on httpx; the first async call brings aiohttp in.
    assert result.stdout.split() == ["False", "ok", "False", "ok", "True"]


@needs_aiohttp
async def test_async_calls_go_through_aiohttp_and_sync_calls_through_httpx() -> None:
    from modelmix._aiohttp_transport import AiohttpClient

    with FakeOpenAIServer(reply="ok") as server:
        async with _model(server.base_url, transport="aiohttp") as model:
            assert (await model.achat("hi")).text == "ok"
            async with model.astream("hi") as stream:
                assert (await stream.until_done()).text == "ok"
            leaf: Any = model.unwrap()
            assert isinstance(leaf._aclient, AiohttpClient)
            assert model.chat("hi").text == "ok"
            assert type(leaf._client) is httpx.Client


@needs_aiohttp
async def test_a_users_async_client_wins_over_the_transport_option() -> None:
    with FakeOpenAIServer(reply="ok") as server:
        async with httpx.AsyncClient() as client:
            model = _model(server.base_url, transport="aiohttp", async_http_client=client)
            assert (await model.achat("hi")).text == "ok"
            assert model.unwrap()._aclient is client  # type: ignore[attr-defined]


@needs_aiohttp
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_is_refused_rather_than_switched_quietly() -> None:
    model = _model(transport="aiohttp")
    with pytest.raises(mm.ConfigurationError, match="asyncio only"):
        await model.achat("hi")


@needs_aiohttp
async def test_the_phases_reach_aiohttp() -> None:
    from modelmix._aiohttp_transport import AiohttpTransport

    transport = AiohttpTransport(limits=httpx.Limits())
    request = httpx.Request(
        "GET", "http://127.0.0.1:9/", extensions={"timeout": httpx.Timeout(3, read=7, pool=2).as_dict()}
    )
    timeout = transport._timeout(request)
    assert (timeout.sock_connect, timeout.sock_read, timeout.connect, timeout.total) == (3, 7, 2, None)
    assert timeout.ceil_threshold == float("inf")  # 7 s means 7 s, not "by the next whole second"


def _assert_pool_idle(model: mm.Model) -> None:
    transport: Any = model.unwrap()._aclient._transport  # type: ignore[attr-defined]
    assert transport.slots._free == transport.slots.limit, "every admission slot is back"
    assert transport.inner.connections_in_use() == 0, "no aiohttp connection is still lent out"


@needs_aiohttp
async def test_a_call_cancelled_while_waiting_for_the_answer_gives_its_connection_back() -> None:
    def slow(request: dict[str, Any]) -> str:
        time.sleep(1.0)  # holds the fake server's thread: the answer comes after the cancellation
        return "late"

    with FakeOpenAIServer(reply=slow) as server:
        async with _model(server.base_url, transport="aiohttp", max_retries=0) as model:
            with anyio.move_on_after(0.2) as scope:
                await model.achat("hi")
            assert scope.cancelled_caught
            _assert_pool_idle(model)
            assert (await model.achat("again")).text == "late"
            _assert_pool_idle(model)


@needs_aiohttp
async def test_a_stream_cancelled_midway_gives_its_connection_back() -> None:
    with running_stub() as stub:
        model = mm.model(
            "openai:held-stream", base_url=stub.base_url, api_key=STUB_KEY, transport="aiohttp", max_retries=0
        )
        async with model:
            with anyio.CancelScope() as scope:
                async with model.astream("hi") as stream:
                    async for _delta in stream.text_deltas():
                        scope.cancel()
                        await anyio.sleep(1)  # cancelled here: the server is holding the rest
            assert scope.cancelled_caught
            _assert_pool_idle(model)
        stub.release()


@needs_aiohttp
async def test_a_refused_connection_is_a_connect_error() -> None:
    model = _model(f"http://127.0.0.1:{closed_port()}/v1", transport="aiohttp", max_retries=0)
    async with model:
        with pytest.raises(mm.TransportError) as caught:
            await model.achat("hi")
    assert (caught.value.kind, caught.value.phase) == ("connect", "not_sent")


@needs_aiohttp
async def test_async_model_listing_goes_through_aiohttp_too() -> None:
    with FakeOpenAIServer(reply="ok", model="fake-model-1") as server:
        found = await mm.alist_models("openai", base_url=server.base_url, api_key="sk-test", transport="aiohttp")
    assert [entry.id for entry in found] == ["fake-model-1"]


@needs_aiohttp
def test_aiohttp_failures_become_the_httpx_exceptions_httpcore_raises() -> None:
    # Faults a loopback server cannot produce (a connect timeout...) checked on the table itself;
    # tests/resilience/test_transport_parity.py compares real faults on both transports.
    import asyncio

    import aiohttp

    from modelmix._aiohttp_transport import httpx_error_class

    cases: list[tuple[BaseException, type[Exception] | None]] = [
        (aiohttp.ConnectionTimeoutError("connecting took too long"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("no data"), httpx.ReadTimeout),
        (asyncio.TimeoutError(), httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (
            aiohttp.ClientPayloadError("Response payload is not completed: <ContentLengthError>"),
            httpx.RemoteProtocolError,
        ),
        (
            aiohttp.ClientPayloadError(
                "Response payload is not completed: <TransferEncodingError>. ConnectionResetError(104, 'reset')"
            ),
            httpx.ReadError,
        ),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), httpx.ReadError),
        (aiohttp.ClientConnectionError("Connection closed"), httpx.ReadError),
        (aiohttp.InvalidURL("ftp://nowhere"), httpx.UnsupportedProtocol),
        (ValueError("not a network failure"), None),
    ]
    assert [httpx_error_class(error) for error, _ in cases] == [expected for _, expected in cases]
