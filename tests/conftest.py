"""Shared test configuration. Sub-suites keep their own fixtures in their own conftest.py."""

from __future__ import annotations

import inspect
import os

import pytest

# Tests never read real credentials from the developer's environment.
for _name in (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "OLLAMA_HOST",
    "MODELMIX_MODEL",
):
    os.environ.pop(_name, None)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio by default; suites that must also run on trio parametrize this."""
    return "asyncio"


@pytest.fixture(params=["httpx", "aiohttp"])
def async_transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a transport-level test on both async transports: with ``"aiohttp"``, every model that
    makes its own async client (no ``async_http_client=``) uses the aiohttp transport. Sync calls
    and trio always use httpx, so those combinations run once."""
    if request.param == "aiohttp":
        pytest.importorskip("aiohttp", reason="the aiohttp transport needs pip install 'modelmix[aiohttp]'")
        if "anyio_backend" in request.fixturenames and request.getfixturevalue("anyio_backend") != "asyncio":
            pytest.skip("aiohttp runs on asyncio only")
        sync_driver = "driver" in request.fixturenames and request.getfixturevalue("driver").mode == "sync"
        if sync_driver or not inspect.iscoroutinefunction(request.function):
            pytest.skip("sync calls always use httpx")
        from modelmix.providers import Provider

        monkeypatch.setattr(Provider, "default_transport", "aiohttp")
    return str(request.param)
