"""The presets ``mistral:``, ``deepseek:``, ``groq:``, ``openrouter:`` and ``together:``: each
reaches its cloud's address with its own key variable, states its quirks in its profile, and
lists its models; checked against a local stub that sees path, headers and auth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix._http import HTTPModel
from modelmix._registry import provider_class
from modelmix.cli._models import probe_all
from modelmix.providers.clouds import OpenRouterProvider

from ._cloud_stub import CloudStub, Seen, chat_route, cloud_stub
from ._helpers import CANARY_KEY, Driver

PRESETS = {
    # prefix: (default base URL, key variable, base URL variable)
    "mistral": ("https://api.mistral.ai/v1/", "MISTRAL_API_KEY", "MISTRAL_BASE_URL"),
    "deepseek": ("https://api.deepseek.com/", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL"),
    "groq": ("https://api.groq.com/openai/v1/", "GROQ_API_KEY", "GROQ_BASE_URL"),
    "openrouter": ("https://openrouter.ai/api/v1/", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"),
    "together": ("https://api.together.xyz/v1/", "TOGETHER_API_KEY", "TOGETHER_BASE_URL"),
    "gemini": ("https://generativelanguage.googleapis.com/v1beta/openai/", "GEMINI_API_KEY", "GEMINI_BASE_URL"),
}
CLOUD_VARIABLES = [variable for _, key, url in PRESETS.values() for variable in (key, url)] + [
    "OPENROUTER_SITE_URL",
    "OPENROUTER_APP_NAME",
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_ID",
    "DATABRICKS_CLIENT_SECRET",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "BEDROCK_BASE_URL",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "VERTEX_BASE_URL",
]


@pytest.fixture(autouse=True)
def no_cloud_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in CLOUD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def stub() -> Iterator[CloudStub]:
    def models(seen: Seen) -> tuple[int, Any]:
        return 200, {"object": "list", "data": [{"id": "small-model", "object": "model", "owned_by": "stub"}]}

    with cloud_stub({("POST", "/v1/chat/completions"): chat_route, ("GET", "/v1/models"): models}) as running:
        yield running


def test_every_cloud_is_in_the_provider_table() -> None:
    clouds = {"mistral", "deepseek", "groq", "openrouter", "together", "gemini", "vertex", "databricks", "bedrock"}
    assert clouds <= set(mm.list_providers())
    for prefix in clouds:
        provider = provider_class(prefix)
        assert provider is not None
        assert provider.name == prefix


@pytest.mark.parametrize("prefix", PRESETS)
def test_default_address_and_key_variable(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    base_url, key_variable, _ = PRESETS[prefix]
    monkeypatch.setenv(key_variable, CANARY_KEY)
    model = mm.model(f"{prefix}:some-model", max_retries=0)
    assert isinstance(model, HTTPModel)
    assert str(model.base_url) == base_url
    assert model.provider == prefix
    assert CANARY_KEY not in repr(model)


@pytest.mark.parametrize("prefix", PRESETS)
def test_a_missing_key_names_the_variable(prefix: str) -> None:
    _, key_variable, _ = PRESETS[prefix]
    with pytest.raises(mm.ConfigurationError, match=key_variable):
        mm.model(f"{prefix}:some-model")


@pytest.mark.parametrize("prefix", PRESETS)
def test_the_base_url_variable_moves_the_preset(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, url_variable = PRESETS[prefix]
    monkeypatch.setenv(url_variable, "https://gateway.example.com/v1")
    model = mm.model(f"{prefix}:some-model", api_key=CANARY_KEY, max_retries=0)
    assert isinstance(model, HTTPModel)
    assert str(model.base_url) == "https://gateway.example.com/v1/"


def test_a_model_name_is_required() -> None:
    with pytest.raises(mm.ConfigurationError, match="groq:<model>"):
        mm.model("groq:", api_key=CANARY_KEY)


def test_an_unknown_option_is_refused_with_a_suggestion() -> None:
    with pytest.raises(mm.ConfigurationError, match="Did you mean 'app_name'"):
        mm.model("openrouter:x", api_key=CANARY_KEY, app_nme="demo")


@pytest.mark.parametrize("prefix", ["mistral", "together", "groq", "deepseek", "openrouter"])
async def test_a_preset_calls_its_chat_route_with_a_bearer_key(
    prefix: str, driver: Driver, stub: CloudStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PRESETS[prefix][1], CANARY_KEY)
    model = mm.model(f"{prefix}:stub-model", base_url=f"{stub.url}/v1", max_retries=0)
    try:
        response = await driver.chat(model, "hi")
        _events, streamed = await driver.events(model, "hi")
    finally:
        await model.aclose()
    assert response.text == "Hello from the stub."
    assert response.provider == prefix
    assert streamed.text == "Hello"
    calls = stub.calls("/v1/chat/completions")
    assert len(calls) == 2
    assert {call.headers["Authorization"] for call in calls} == {f"Bearer {CANARY_KEY}"}
    assert calls[0].json()["model"] == "stub-model"


async def test_mistral_is_never_sent_stream_options(driver: Driver, stub: CloudStub) -> None:
    # Mistral answers stream_options with a 422 (extra_forbidden) and sends usage unasked.
    model = mm.model("mistral:mistral-small-latest", base_url=f"{stub.url}/v1", api_key=CANARY_KEY)
    try:
        _, response = await driver.events(model, "hi")
    finally:
        await model.aclose()
    body = stub.calls("/v1/chat/completions")[0].json()
    assert body["stream"] is True
    assert "stream_options" not in body
    assert response.usage is not None
    assert not response.usage.estimated


def test_deepseek_refuses_a_json_schema_before_sending() -> None:
    model = mm.model("deepseek:deepseek-chat", api_key=CANARY_KEY, base_url="http://127.0.0.1:9/", max_retries=0)
    with pytest.raises(mm.UnsupportedCapabilityError) as info:
        model.chat("hi", response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})
    assert info.value.capability == "json_schema"
    assert model.profile.family == "deepseek-chat"
    reasoner = mm.model("deepseek:deepseek-reasoner", api_key=CANARY_KEY, max_retries=0)
    assert reasoner.profile.family == "deepseek-reasoner"


def test_openrouter_attribution_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]})

    monkeypatch.setenv("OPENROUTER_APP_NAME", "From The Environment")
    model = mm.model(
        "openrouter:openai/gpt-4o-mini",
        api_key=CANARY_KEY,
        site_url="https://myapp.example",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    assert model.chat("hi").text == "ok"
    assert seen[0].headers["HTTP-Referer"] == "https://myapp.example"
    assert seen[0].headers["X-Title"] == "From The Environment"
    assert "OPENROUTER_APP_NAME" in OpenRouterProvider.environment()


def test_openrouter_without_attribution_sends_no_such_headers() -> None:
    provider = OpenRouterProvider(api_key=CANARY_KEY)
    assert "HTTP-Referer" not in provider.headers
    assert "X-Title" not in provider.headers


@pytest.mark.parametrize("prefix", ["mistral", "groq", "deepseek", "openrouter"])
def test_listing_through_the_stub(prefix: str, stub: CloudStub) -> None:
    models = mm.list_models(prefix, base_url=f"{stub.url}/v1", api_key=CANARY_KEY)
    assert [m.spec for m in models] == [f"{prefix}:small-model"]
    assert stub.calls("/v1/models")[0].headers["Authorization"] == f"Bearer {CANARY_KEY}"


async def test_together_lists_its_bare_list() -> None:
    listing = [{"id": "meta-llama/Llama-3.3-70B-Instruct-Turbo", "object": "model", "type": "chat", "created": 1}]
    with cloud_stub({("GET", "/v1/models"): lambda seen: (200, listing)}) as stub:
        models = await mm.alist_models("together", base_url=f"{stub.url}/v1", api_key=CANARY_KEY)
    assert [m.spec for m in models] == ["together:meta-llama/Llama-3.3-70B-Instruct-Turbo"]
    assert models[0].details["type"] == "chat"
    assert models[0].created == 1


def test_gemini_listing_drops_the_models_prefix() -> None:
    listing = {"object": "list", "data": [{"id": "models/gemini-2.5-flash", "object": "model", "owned_by": "google"}]}
    with cloud_stub({("GET", "/v1beta/openai/models"): lambda seen: (200, listing)}) as stub:
        models = mm.list_models("gemini", base_url=f"{stub.url}/v1beta/openai/", api_key=CANARY_KEY)
    assert [m.spec for m in models] == ["gemini:gemini-2.5-flash"]


def test_gemini_thinking_models_take_reasoning_effort() -> None:
    thinking = mm.model("gemini:gemini-2.5-flash", api_key=CANARY_KEY, max_retries=0)
    plain = mm.model("gemini:gemini-2.0-flash", api_key=CANARY_KEY, max_retries=0)
    assert isinstance(thinking, HTTPModel)
    assert isinstance(plain, HTTPModel)
    assert thinking.profile.reasoning == "reasoning_effort"
    assert plain.profile.reasoning is None


def test_modelmix_models_reports_clouds_as_configured_without_calling_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", CANARY_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    probes = {probe.provider: probe for probe in probe_all()}
    for prefix in ("groq", "bedrock", "vertex"):
        assert probes[prefix].status == "configured"
        assert not probes[prefix].models
    assert "mistral" not in probes  # nothing set: not listed at all
    assert CANARY_KEY not in repr(probes)


def test_mistral_thinking_parts_become_reasoning() -> None:
    # Magistral answers with content parts: its thinking, then the text.
    answer = {
        "model": "magistral-medium-latest",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": [{"type": "text", "text": "2 and 2 make 4."}]},
                        {"type": "text", "text": "4"},
                    ],
                },
            }
        ],
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    model = mm.model(
        "mistral:magistral-medium-latest", api_key=CANARY_KEY, http_client=httpx.Client(transport=transport)
    )
    response = model.chat("2+2?")
    assert response.text == "4"
    assert response.reasoning == "2 and 2 make 4."


def test_plain_string_content_is_untouched_by_the_parts_repair() -> None:
    from modelmix.providers._cloud_base import flatten_content_parts

    message = {"role": "assistant", "content": "plain"}
    assert flatten_content_parts(message) is message
    only_parts = flatten_content_parts({"content": [{"type": "image_url", "image_url": {}}]})
    assert only_parts["content"] is None
    assert "reasoning_content" not in only_parts
