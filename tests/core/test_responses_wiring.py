"""``api="responses"`` on each OpenAI-style provider: where the request goes, and where it can't."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import modelmix as mm

ANSWER = {
    "id": "resp_1",
    "model": "m",
    "status": "completed",
    "output": [
        {"type": "message", "content": [{"type": "refusal", "refusal": "I can't help with that."}]},
    ],
}


def _model(spec: str, seen: list[httpx.Request], **options: Any) -> mm.Model:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ANSWER)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    return mm.model(spec, api="responses", api_key="sk-test", http_client=client, max_retries=0, **options)


@pytest.mark.parametrize(
    ("spec", "options", "url"),
    [
        ("openai:gpt-5-mini", {}, "https://api.openai.com/v1/responses"),
        ("vllm:gpt-oss", {}, "http://127.0.0.1:8000/v1/responses"),
        (
            "openai-compatible:deepseek-v4-flash",
            {"base_url": "https://api.deepseek.com"},
            "https://api.deepseek.com/responses",
        ),
        ("ollama:gpt-oss:20b", {"base_url": "http://127.0.0.1:11434"}, "http://127.0.0.1:11434/v1/responses"),
        (
            "azure:gpt-5-mini",
            {"endpoint": "https://res.openai.azure.com/openai/v1/"},
            "https://res.openai.azure.com/openai/v1/responses",
        ),
    ],
)
def test_where_a_responses_call_goes(spec: str, options: dict[str, Any], url: str) -> None:
    seen: list[httpx.Request] = []
    response = _model(spec, seen, **options).chat("hi")
    assert response.refusal == "I can't help with that."
    assert response.text == ""
    assert str(seen[0].url) == url
    assert json.loads(seen[0].content)["input"] == [{"role": "user", "content": "hi"}]


def test_azure_classic_deployments_route_refuses_responses() -> None:
    with pytest.raises(mm.ConfigurationError, match="v1 route"):
        _model("azure:gpt-5-mini", [], endpoint="https://res.openai.azure.com/openai/deployments/gpt-5-mini")


def test_ollama_keep_alive_is_native_only() -> None:
    with pytest.raises(mm.ConfigurationError, match="keep_alive"):
        _model("ollama:gpt-oss:20b", [], keep_alive="5m")


def test_refusal_streams_as_refusal_deltas() -> None:
    from modelmix.providers._responses_stream import ResponsesStreamParser

    parser = ResponsesStreamParser()
    body = (
        b'data: {"type":"response.refusal.delta","output_index":0,"content_index":0,"delta":"No."}\n\n'
        b'data: {"type":"response.completed","response":{"status":"completed","output":[]}}\n\n'
    )
    assert parser.feed(body) == [mm.RefusalDelta("No."), mm.FinishEvent("stop")]
    assert parser.done


def test_azure_responses_names_a_missing_deployment() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404, json={"error": {"code": "DeploymentNotFound", "message": "The deployment does not exist."}}
        )

    client = httpx.Client(transport=httpx.MockTransport(handler))
    model = mm.model(
        "azure:my-gpt5",
        api="responses",
        endpoint="https://res.openai.azure.com/openai/v1/",
        api_key="sk-test",
        http_client=client,
        max_retries=0,
    )
    with pytest.raises(mm.NotFoundError, match="Azure deployment 'my-gpt5' was not found"):
        model.chat("hi")


@pytest.mark.parametrize(
    ("deployment", "endpoint", "api"),
    [
        ("gpt-5-mini", "https://res.openai.azure.com/openai/v1/", "responses"),
        ("o4-mini", "https://res.openai.azure.com/openai/v1/", "responses"),
        ("gpt-4o-mini", "https://res.openai.azure.com/openai/v1/", "chat"),
        # Responses is served on the v1 route only: elsewhere "auto" keeps Chat Completions.
        ("gpt-5-mini", "https://res.openai.azure.com/openai/deployments/gpt-5-mini", "chat"),
    ],
)
def test_azure_auto_prefers_responses_for_reasoning_models_on_the_v1_route(
    deployment: str, endpoint: str, api: str
) -> None:
    model = mm.model(f"azure:{deployment}", endpoint=endpoint, api_key="azure-test-key", api="auto")
    assert getattr(model.unwrap(), "api", None) == api
