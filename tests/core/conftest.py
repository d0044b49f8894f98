"""Fixtures of the core suite: a sync/async driver, models over MockTransport, the vcr config."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelmix.providers.openai import OpenAIModel

from ._helpers import CANARY_KEY, Driver, Handler

CASSETTE_DIR = Path(__file__).resolve().parent.parent / "cassettes" / "core"

SCRUBBED_REQUEST_HEADERS = (
    "authorization",
    "api-key",
    "x-api-key",
    "cookie",
    "set-cookie",
    "openai-organization",
    "openai-project",
)
SCRUBBED_RESPONSE_HEADERS = ("set-cookie", "openai-organization", "openai-project")
PLACEHOLDER = "REDACTED"


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Driver:
    return Driver(request.param)


MakeModel = Callable[..., OpenAIModel]


@pytest.fixture
async def make_model() -> AsyncIterator[MakeModel]:
    """``make_model(handler, name=..., **options)``: an OpenAIModel whose sync and async clients
    answer through `handler`. The clients are closed after the test."""
    clients: list[httpx.Client] = []
    aclients: list[httpx.AsyncClient] = []

    def build(handler: Handler | httpx.MockTransport, name: str = "gpt-4o-mini", **options: Any) -> OpenAIModel:
        transport = handler if isinstance(handler, httpx.MockTransport) else httpx.MockTransport(handler)
        client = httpx.Client(transport=transport)
        aclient = httpx.AsyncClient(transport=transport)
        clients.append(client)
        aclients.append(aclient)
        options.setdefault("api_key", CANARY_KEY)
        return OpenAIModel(name, http_client=client, async_http_client=aclient, **options)

    yield build
    for client in clients:
        client.close()
    for aclient in aclients:
        await aclient.aclose()


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in SCRUBBED_RESPONSE_HEADERS:
            headers[name] = [PLACEHOLDER]
    return response


@pytest.fixture(scope="module")
def vcr_config(record_mode: str) -> dict[str, Any]:
    """Cassettes never hold credentials; replay matches on everything but the (random) port.

    Record mode "none" (replay only) unless ``--record-mode=...`` is given on the command line.
    """
    return {
        "record_mode": record_mode,
        "filter_headers": [(name, PLACEHOLDER) for name in SCRUBBED_REQUEST_HEADERS],
        "before_record_response": _scrub_response,
        "match_on": ("method", "scheme", "host", "path", "query"),
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    module = request.module.__name__.rsplit(".", 1)[-1]
    return str(CASSETTE_DIR / module)
