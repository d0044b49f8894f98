"""Conformance over ../shared/cassettes/azure-openai: real Azure OpenAI recordings replayed through
`AzureModel` (httpx.MockTransport), checked against their hand-reviewed expected facts."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.providers.azure import AzureModel
from tests._support import chat_cases, replay_transport, require_shared

CASES = list(chat_cases("azure-openai"))


@pytest.fixture(autouse=True)
def _shared() -> None:
    require_shared("azure-openai")


def _model_for(interaction: dict[str, Any], seen: list[httpx.Request], *, sync: bool) -> AzureModel:
    """An AzureModel configured the way the recording's client was: resource endpoint, deployment
    and api-version taken from the recorded URL."""
    url = httpx.URL(interaction["request"]["url"])
    found = re.search(r"/openai/deployments/([^/]+)/chat/completions", url.path)
    assert found, url
    transport = replay_transport(interaction, seen)
    clients: dict[str, Any] = (
        {"http_client": httpx.Client(transport=transport)}
        if sync
        else {"async_http_client": httpx.AsyncClient(transport=transport)}
    )
    return AzureModel(
        found[1],
        endpoint=f"{url.scheme}://{url.host}",
        route="deployments",
        api_version=url.params["api-version"],
        api_key="conformance-key-0000",
        **clients,
    )


def _check_request(seen: list[httpx.Request], interaction: dict[str, Any]) -> None:
    recorded = httpx.URL(interaction["request"]["url"])
    assert len(seen) == 1
    sent = seen[0]
    assert sent.url.path == re.sub("/+", "/", recorded.path)  # two recordings have '//openai' in them
    assert sent.url.params["api-version"] == recorded.params["api-version"]
    assert sent.headers["api-key"] == "conformance-key-0000"
    assert "authorization" not in sent.headers


def _check_success(response: mm.ChatResponse, expected: dict[str, Any]) -> None:
    assert response.text == expected["text"]
    assert response.reasoning == expected["reasoning"]
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        (c["id"], c["name"], c["arguments"]) for c in expected["tool_calls"]
    ]
    assert response.finish_reason == expected["finish_reason"]
    usage = expected["usage"]
    if usage is None:
        assert response.usage is None
    else:
        assert response.usage is not None
        assert (response.usage.input_tokens, response.usage.output_tokens) == (
            usage["input_tokens"],
            usage["output_tokens"],
        )
    assert response.model == expected["model"]
    assert response.content_filtered is expected["content_filtered"]
    assert response.provider == "azure"
    # Azure annotates every answer: the per-choice results are exposed as sent.
    assert response.prompt_filter_results, "prompt_filter_results must be exposed"


def _check_error(error: mm.ModelMixError, expected: dict[str, Any], deployment: str) -> None:
    facts = expected["error"]
    assert isinstance(error, mm.APIStatusError)
    assert facts["message"] in error.message
    assert error.code == facts["code"]
    assert error.provider == "azure"
    assert error.request_id is not None
    if facts["code"] == "DeploymentNotFound":
        assert isinstance(error, mm.NotFoundError)
        assert error.status == 404
        assert repr(deployment) in error.message  # the message names the deployment
        assert not error.retryable
    elif facts["code"] == "content_filter":
        assert isinstance(error, mm.PromptFilteredError)
        assert expected["content_filtered"]
        # The recording carries HTTP 200 but its body states status 400; modelmix reports the body's.
        assert error.status == 400
        assert error.categories == {"hate": "high", "self-harm": "high", "violence": "medium"}
        assert not error.retryable
    else:  # pragma: no cover - every error file in the directory is one of the above
        pytest.fail(f"unexpected error case {facts}")


def _call_sync(model: AzureModel, body: dict[str, Any], stream: bool) -> mm.ChatResponse:
    if stream:
        with model.stream(body["messages"]) as live:
            for _ in live:
                pass
        return live.response
    return model.chat(body["messages"], tools=body.get("tools", []))


async def _call_async(model: AzureModel, body: dict[str, Any], stream: bool) -> mm.ChatResponse:
    if stream:
        async with model.astream(body["messages"]) as live:
            async for _ in live:
                pass
        return live.response
    return await model.achat(body["messages"], tools=body.get("tools", []))


@pytest.mark.parametrize(("cassette", "interaction", "expected"), CASES)
def test_sync(cassette: dict[str, Any], interaction: dict[str, Any], expected: dict[str, Any]) -> None:
    seen: list[httpx.Request] = []
    body = interaction["request"]["json"]
    with _model_for(interaction, seen, sync=True) as model:
        if expected["error"] is not None:
            with pytest.raises(mm.ModelMixError) as caught:
                _call_sync(model, body, expected["stream"])
            _check_error(caught.value, expected, model.name)
        else:
            _check_success(_call_sync(model, body, expected["stream"]), expected)
    _check_request(seen, interaction)


@pytest.mark.parametrize(("cassette", "interaction", "expected"), CASES)
async def test_async(cassette: dict[str, Any], interaction: dict[str, Any], expected: dict[str, Any]) -> None:
    seen: list[httpx.Request] = []
    body = interaction["request"]["json"]
    async with _model_for(interaction, seen, sync=False) as model:
        if expected["error"] is not None:
            with pytest.raises(mm.ModelMixError) as caught:
                await _call_async(model, body, expected["stream"])
            _check_error(caught.value, expected, model.name)
        else:
            _check_success(await _call_async(model, body, expected["stream"]), expected)
    _check_request(seen, interaction)


def test_every_shared_file_is_covered() -> None:
    """The content-filter and not-found recordings are among the cases (not silently skipped)."""
    ids = " ".join(str(case.id) for case in CASES)
    assert "test_prompt_content_filtering" in ids
    assert "test_chat_content_filtering" in ids
    assert "test_with_model_not_found" in ids
    assert "test_stream_with_include_usage_option" in ids
    assert len(CASES) == 8
