"""Azure ``GET /info`` and model listing go through the I/O driver like chat does: the body size
cap applies, and a failed async send heals the connection pool."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix import _driver
from modelmix.providers import _listing
from modelmix.providers.azure import AzureModel

from ._helpers import Driver

SERVERLESS = "https://phi.eastus2.models.ai.azure.com"
BIG = b'{"data": [' + b" " * 4096 + b"]}"


def _chunked(body: bytes) -> httpx.Response:
    # No content-length: the cap must be enforced while reading, not only from the header.
    return httpx.Response(200, headers={"content-type": "application/json"}, stream=_Pieces(body))


class _Pieces(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, body: bytes) -> None:
        self._body = body

    def __iter__(self) -> Any:
        for start in range(0, len(self._body), 512):
            yield self._body[start : start + 512]

    async def __aiter__(self) -> Any:
        for start in range(0, len(self._body), 512):
            yield self._body[start : start + 512]


def _azure(respond: Callable[[httpx.Request], httpx.Response]) -> AzureModel:
    transport = httpx.MockTransport(respond)
    return AzureModel(
        "phi-4",
        endpoint=SERVERLESS,
        api_key="driver-test-key-123456",
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )


async def _info(driver: Driver, model: AzureModel) -> Any:
    return model.info() if driver.mode == "sync" else await model.ainfo()


async def test_azure_info_is_size_capped(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _azure(lambda request: _chunked(BIG))
    monkeypatch.setattr(model, "_max_response_bytes", 1024)
    with pytest.raises(mm.ResponseTooLargeError):
        await _info(driver, model)


async def test_azure_info_failure_heals_the_async_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    healed: list[httpx.AsyncClient] = []

    async def record(client: httpx.AsyncClient) -> int:
        healed.append(client)
        return 0

    monkeypatch.setattr(_driver, "heal_async_pool", record)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    model = _azure(refuse)
    with pytest.raises(mm.TransportError):
        await model.ainfo()
    assert healed == [model._aclient]


async def _list(driver: Driver, provider: str, transport: httpx.MockTransport) -> Any:
    if driver.mode == "sync":
        return mm.list_models(provider, base_url="http://127.0.0.1:9", http_client=httpx.Client(transport=transport))
    async with httpx.AsyncClient(transport=transport) as client:
        return await mm.alist_models(provider, base_url="http://127.0.0.1:9", async_http_client=client)


@pytest.mark.parametrize("provider", ["ollama", "llamacpp", "vllm"])
async def test_model_listing_is_size_capped(driver: Driver, provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_listing, "MAX_LISTING_BYTES", 1024)
    transport = httpx.MockTransport(lambda request: _chunked(BIG))
    with pytest.raises(mm.ResponseTooLargeError):
        await _list(driver, provider, transport)


@pytest.mark.parametrize("provider", ["ollama", "llamacpp"])
async def test_model_listing_failure_heals_the_async_pool(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    healed: list[httpx.AsyncClient] = []

    async def record(client: httpx.AsyncClient) -> int:
        healed.append(client)
        return 0

    monkeypatch.setattr(_driver, "heal_async_pool", record)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(mm.TransportError):
        await _list(Driver("async"), provider, httpx.MockTransport(refuse))
    assert len(healed) == 1
