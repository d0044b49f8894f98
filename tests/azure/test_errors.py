"""Azure's error shapes and hints on every route: prompt filter, output filter, missing deployments,
rate-limit headers and request ids."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.providers._azure_wire import rate_limit_reset
from modelmix.providers.azure import AzureModel

KEY = "errors-test-key-1234567"

ENDPOINTS: dict[str, tuple[str, dict[str, Any]]] = {
    "v1": ("https://contoso.openai.azure.com", {}),
    "deployments": ("https://contoso.openai.azure.com", {"route": "deployments"}),
    "model-inference": ("https://contoso.services.ai.azure.com/models", {}),
    "serverless": ("https://phi.eastus2.models.ai.azure.com", {}),
    "serverless-v1": ("https://llama.eastus2.inference.ai.azure.com/v1", {}),
}
ROUTES = list(ENDPOINTS)

PROMPT_FILTERED = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": {"filtered": False, "severity": "safe"},
                "jailbreak": {"filtered": True, "detected": True},
                "self_harm": {"filtered": False, "severity": "safe"},
                "sexual": {"filtered": False, "severity": "safe"},
                "violence": {"filtered": True, "severity": "medium"},
            },
        },
    }
}


def _model(route: str, respond: Any, deployment: str = "gpt-4o-mini") -> AzureModel:
    endpoint, options = ENDPOINTS[route]
    transport = httpx.MockTransport(respond)
    return AzureModel(
        deployment,
        endpoint=endpoint,
        api_key=KEY,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        **options,
    )


@pytest.mark.parametrize("route", ROUTES)
def test_prompt_rejected_by_the_filter(route: str) -> None:
    calls: list[int] = []

    def respond(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, json=PROMPT_FILTERED, headers={"apim-request-id": "req-cf"})

    with _model(route, respond) as model:
        with pytest.raises(mm.PromptFilteredError) as caught:
            model.chat("something bad")
        with pytest.raises(mm.PromptFilteredError), model.stream("something bad") as stream:
            stream.until_done()
    error = caught.value
    assert error.categories == {"jailbreak": "detected", "violence": "medium"}
    assert error.status == 400
    assert error.code == "content_filter"
    assert not error.retryable
    assert error.request_id == "req-cf"
    assert isinstance(error, mm.BadRequestError)
    assert len(calls) == 2  # one per call: never retried


@pytest.mark.parametrize("route", ROUTES)
async def test_output_cut_by_the_filter_async(route: str) -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "content_filter",
                "message": {"role": "assistant", "content": "Once upon"},
                "content_filter_results": {"violence": {"filtered": True, "severity": "high"}},
            }
        ],
        "model": "m",
    }
    sse = (
        'data: {"choices":[],"model":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}\n\n'
        'data: {"choices":[{"index":0,"delta":{"content":"Once upon"}}],"model":"m"}\n\n'
        'data: {"choices":[{"index":0,"delta":{},"finish_reason":"content_filter",'
        '"content_filter_results":{"violence":{"filtered":true,"severity":"high"}}}],"model":"m"}\n\n'
        "data: [DONE]\n\n"
    )

    def respond(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("stream"):
            return httpx.Response(200, content=sse.encode(), headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=body)

    async with _model(route, respond) as model:
        reply = await model.achat("tell a story")
        async with model.astream("tell a story") as stream:
            streamed = await stream.until_done()
    for response in (reply, streamed):
        assert response.finish_reason == "content_filter"
        assert response.content_filtered
        assert response.content_filter_results == {"violence": {"filtered": True, "severity": "high"}}
        assert response.text == "Once upon"
    assert streamed.prompt_filter_results == [{"prompt_index": 0, "content_filter_results": {}}]
    assert streamed.model == "m"  # not the pre-chunk's empty model


@pytest.mark.parametrize("route", ROUTES)
def test_deployment_not_found_names_the_deployment(route: str) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404,
            json={
                "error": {
                    "code": "DeploymentNotFound",
                    "message": "The API deployment for this resource does not exist.",
                }
            },
            headers={"x-ms-request-id": "ms-req-7"},
        )

    with _model(route, respond, deployment="gpt-4o-typo") as model, pytest.raises(mm.NotFoundError) as caught:
        model.chat("hi")
    error = caught.value
    assert "'gpt-4o-typo'" in error.message
    assert "does not exist" in error.message
    assert error.code == "DeploymentNotFound"
    assert error.request_id == "ms-req-7"
    assert not error.retryable
    assert "gpt-4o-typo" in str(error)


def test_unknown_model_on_v1_is_a_not_found_error_too() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"code": "unknown_model", "message": "Unknown model: gpt-9"}})

    with _model("v1", respond, deployment="gpt-9") as model, pytest.raises(mm.NotFoundError, match="'gpt-9'"):
        model.chat("hi")


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"retry-after-ms": "1500", "retry-after": "2"}, 1.5),
        ({"retry-after": "7"}, 7.0),
        (
            {
                "x-ratelimit-remaining-requests": "12",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-reset-tokens": "6m0s",
            },
            360.0,
        ),
        (
            {
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-remaining-tokens": "500",
                "x-ratelimit-reset-requests": "250ms",
                "x-ratelimit-reset-tokens": "30s",
            },
            0.25,
        ),
        ({"x-ratelimit-reset-requests": "2", "x-ratelimit-reset-tokens": "1m30s"}, 90.0),
        ({"x-ratelimit-remaining-requests": "0"}, None),
    ],
)
@pytest.mark.parametrize("route", ["v1", "model-inference"])
def test_rate_limit_headers_feed_retry_after(route: str, headers: dict[str, str], retry_after: float | None) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            json={
                "error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation have exceeded"}
            },
            headers=headers,
        )

    with _model(route, respond) as model, pytest.raises(mm.RateLimitError) as caught:
        model.chat("hi")
    assert caught.value.retry_after == retry_after
    assert caught.value.retryable


@pytest.mark.parametrize("raw", ["", "soon", "-1", "0", "5x"])
def test_unparseable_reset_headers_are_no_hint(raw: str) -> None:
    assert rate_limit_reset({"x-ratelimit-reset-tokens": raw}) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"apim-request-id": "apim-1"}, "apim-1"),
        ({"x-ms-request-id": "ms-1"}, "ms-1"),
        ({"x-request-id": "x-1", "apim-request-id": "apim-1"}, "x-1"),
    ],
)
def test_request_id_headers(headers: dict[str, str], expected: str) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "ok"}}]}, headers=headers)

    with _model("v1", respond) as model:
        assert model.chat("hi").request_id == expected


def test_info_is_refused_on_routes_without_it() -> None:
    with _model("v1", lambda r: httpx.Response(500)) as model, pytest.raises(mm.ConfigurationError, match="/info"):
        model.info()


def test_info_errors_are_typed() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"code": "401", "message": "Access denied"}})

    with _model("serverless", respond) as model, pytest.raises(mm.AuthenticationError):
        model.info()
