"""Every route form with both auth modes, replayed from this suite's own cassettes.

The cassettes (tests/azure/cassettes/test_recorded_routes/) were recorded with pytest-recording
against the local stub in ``_stub.py``: ``pytest tests/azure/test_recorded_routes.py
--record-mode=rewrite``. CI replays them (record mode ``none``); credentials are filtered out.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import modelmix as mm
from modelmix.providers.azure import AzureModel

from ._stub import KEY, TOKEN_PREFIX, AzureStub

TOKEN = f"{TOKEN_PREFIX}9c4b2e7f1a6d3e80"

# (route id, deployment, endpoint suffix, extra options, the stub's route name)
ROUTES: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("v1", "gpt-4o-mini", "", {}, "v1"),
    ("v1-explicit-path", "gpt-4o-mini", "/openai/v1/", {}, "v1"),
    ("deployments", "gpt-4o-mini", "", {"route": "deployments"}, "deployments"),
    ("model-inference", "Phi-4-mini-instruct", "/models", {}, "model-inference"),
    ("serverless", "Phi-4-mini-instruct", "", {"route": "model-inference"}, "serverless"),
    ("serverless-v1", "Llama-2-7b-chat", "/v1", {"route": "serverless-v1"}, "serverless-v1"),
]


def _auth(mode: str) -> dict[str, Any]:
    if mode == "key":
        return {"api_key": KEY}
    return {"token_provider": lambda: (TOKEN, time.time() + 3600)}


def _model(stub: AzureStub, route: tuple[str, str, str, dict[str, Any], str], mode: str) -> AzureModel:
    _, deployment, suffix, options, _ = route
    return AzureModel(deployment, endpoint=stub.url + suffix, **options, **_auth(mode))


PARAMS = [pytest.param(route, mode, id=f"{route[0]}-{mode}") for route in ROUTES for mode in ("key", "token")]


@pytest.mark.vcr
@pytest.mark.parametrize(("route", "mode"), PARAMS)
def test_route_sync(stub: AzureStub, route: tuple[str, str, str, dict[str, Any], str], mode: str) -> None:
    expected_route = route[4]
    with _model(stub, route, mode) as model:
        reply = model.chat([mm.system("Be brief."), mm.user("Name a colour.")])
        assert reply.text == f"[{expected_route}] Name a colour."
        assert reply.finish_reason == "stop"
        assert reply.usage is not None
        assert reply.usage.input_tokens == 11
        assert (reply.request_id or "").startswith("apim-")
        assert reply.prompt_filter_results
        assert reply.content_filter_results
        assert not reply.content_filtered

        with model.stream("Stream it.") as stream:
            events = list(stream)
        done = stream.response
        assert done.text == f"[{expected_route}] Stream it."
        assert done.usage is not None
        assert done.usage.output_tokens == 5
        assert done.model in ("gpt-4o-mini-2024-07-18", "Phi-4-mini-instruct")  # the pre-chunk's "" skipped
        assert any(isinstance(e, mm.ContentFilterEvent) and e.source == "prompt" for e in events)


@pytest.mark.vcr
@pytest.mark.parametrize(("route", "mode"), PARAMS)
async def test_route_async(stub: AzureStub, route: tuple[str, str, str, dict[str, Any], str], mode: str) -> None:
    expected_route = route[4]
    async with _model(stub, route, mode) as model:
        reply = await model.achat("Name a colour.")
        assert reply.text == f"[{expected_route}] Name a colour."
        async with model.astream("Stream it.") as stream:
            pieces = [delta async for delta in stream.text_deltas()]
        assert "".join(pieces) == f"[{expected_route}] Stream it."
        assert stream.response.finish_reason == "stop"


@pytest.mark.vcr
@pytest.mark.parametrize(("suffix", "options"), [("/models", {}), ("", {"route": "model-inference"})])
def test_model_info(stub: AzureStub, suffix: str, options: dict[str, Any]) -> None:
    with AzureModel("Phi-4-mini-instruct", endpoint=stub.url + suffix, api_key=KEY, **options) as model:
        info = model.info()
    assert info.model_name == "Phi-4-mini-instruct"
    assert info.model_type == "chat-completion"
    assert info.model_provider_name == "Microsoft"


@pytest.mark.vcr
async def test_model_info_async_with_token(stub: AzureStub) -> None:
    async with AzureModel(
        "Phi-4-mini-instruct", endpoint=stub.url + "/models", token_provider=lambda: (TOKEN, time.time() + 3600)
    ) as model:
        info = await model.ainfo()
    assert info.model_name == "Phi-4-mini-instruct"
