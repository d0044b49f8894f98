"""Capability profiles: chosen from the name (with an override) and used to adapt requests."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import modelmix as mm
from modelmix._exceptions import UnsupportedCapabilityError
from modelmix.providers._azure_profiles import PROFILES, AzureProfile, profile_for
from modelmix.providers.azure import AzureModel

KEY = "profile-test-key-123456"


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gpt-4o-mini", "gpt"),
        ("gpt-35-turbo", "gpt"),
        ("GPT-4.1", "gpt"),
        ("gpt-5-mini", "gpt-5"),
        ("o3-mini", "o-series"),
        ("o1-mini", "o1-mini"),
        ("Phi-4-mini-instruct", "phi-4"),
        ("Phi-3.5-mini-instruct", "phi"),
        ("Phi-3-mini-4k-instruct", "phi"),
        ("Meta-Llama-3.1-8B-Instruct", "llama"),
        ("Llama-3.3-70B-Instruct", "llama"),
        ("Llama-4-Maverick-17B-128E-Instruct-FP8", "llama"),
        ("Llama-2-7b-chat", "llama-legacy"),
        ("Meta-Llama-3-70B-Instruct", "llama-legacy"),
        ("Mistral-Large-2411", "mistral"),
        ("mistral-small-2503", "mistral"),
        ("Mixtral-8x7B-Instruct-v0.1", "mistral-legacy"),
        ("DeepSeek-R1", "deepseek-r1"),
        ("MAI-DS-R1", "deepseek-r1"),
        ("DeepSeek-V3-0324", "deepseek"),
        ("Cohere-command-r-plus-08-2024", "cohere"),
        ("cohere-command-a", "cohere"),
        ("AI21-Jamba-1.5-Large", "jamba"),
    ],
)
def test_profile_from_name(name: str, family: str) -> None:
    assert profile_for(name).family == family


def test_unknown_names_get_a_permissive_default_and_catalog_routes_a_careful_one() -> None:
    assert profile_for("my-prod-deployment") == PROFILES["default"]
    catalog = profile_for("my-prod-deployment", catalog=True)
    assert (catalog.stream_usage, catalog.json_schema, catalog.tools, catalog.system_role) == (False, False, True, True)


def _sent(deployment: str, *, stream: bool = False, messages: mm.MessagesInput = "hi", **kwargs: Any) -> dict[str, Any]:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        if stream:
            sse = b'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
            return httpx.Response(200, content=sse, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "ok"}}]})

    settings = kwargs.pop("call", {})
    with AzureModel(
        deployment,
        endpoint=kwargs.pop("endpoint", "https://contoso.openai.azure.com"),
        api_key=KEY,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        **kwargs,
    ) as model:
        if stream:
            with model.stream(messages, **settings) as s:
                s.until_done()
        else:
            model.chat(messages, **settings)
    return bodies[0]


def test_system_message_is_folded_for_families_without_a_system_role() -> None:
    body = _sent("DeepSeek-R1", messages=[mm.system("Answer in French."), mm.user("Hello"), mm.assistant("Bonjour")])
    assert body["messages"] == [
        {"role": "user", "content": "Answer in French.\n\nHello"},
        {"role": "assistant", "content": "Bonjour"},
    ]


def test_system_message_is_kept_where_supported() -> None:
    body = _sent("gpt-4o", messages=[mm.system("Answer in French."), mm.user("Hello")])
    assert body["messages"][0] == {"role": "system", "content": "Answer in French."}


def test_folding_into_content_parts_and_without_any_user_turn() -> None:
    parts = _sent(
        "Phi-3-mini-4k-instruct", messages=[mm.system("Be terse."), mm.user("Describe", mm.image("https://x/y.png"))]
    )
    assert parts["messages"][0]["content"][0] == {"type": "text", "text": "Be terse.\n\n"}
    alone = _sent("Phi-3-mini-4k-instruct", messages=[mm.system("Say hi.")])
    assert alone["messages"] == [{"role": "user", "content": "Say hi."}]


def test_stream_options_dropped_where_streaming_usage_is_unsupported() -> None:
    assert "stream_options" not in _sent("Meta-Llama-3.1-8B-Instruct", stream=True)
    assert _sent("gpt-4o-mini", stream=True)["stream_options"] == {"include_usage": True}


def test_reasoning_models_get_max_completion_tokens() -> None:
    body = _sent("o3-mini", call={"max_tokens": 50})
    assert body["max_completion_tokens"] == 50
    assert "max_tokens" not in body
    assert _sent("gpt-4o", call={"max_tokens": 50})["max_tokens"] == 50


class Answer(BaseModel):
    city: str


def test_unsupported_features_fail_locally_with_a_clear_message() -> None:
    tool = mm.Tool(name="lookup", parameters={"type": "object", "properties": {}})
    with pytest.raises(UnsupportedCapabilityError, match="does not support tools") as no_tools:
        _sent("DeepSeek-R1", call={"tools": [tool]})
    # Its own type, raised before anything is sent: a fallback chain moves on, retries don't.
    assert (no_tools.value.capability, no_tools.value.param, no_tools.value.model) == ("tools", "tools", "DeepSeek-R1")
    with pytest.raises(UnsupportedCapabilityError, match="JSON-schema") as no_schema:
        _sent("Mistral-Large-2411", call={"response_format": Answer})
    assert (no_schema.value.capability, no_schema.value.param) == ("json_schema", "response_format")
    # plain JSON mode is fine
    assert _sent("Mistral-Large-2411", call={"response_format": "json"})["response_format"] == {"type": "json_object"}


def test_explicit_override_by_name_or_object() -> None:
    # A deployment whose name says nothing about its model.
    body = _sent("prod-chat", messages=[mm.system("S"), mm.user("U")], profile="deepseek-r1")
    assert body["messages"] == [{"role": "user", "content": "S\n\nU"}]
    relaxed = profile_for("DeepSeek-R1").with_(tools=True)
    tool = mm.Tool(name="lookup")
    assert _sent("DeepSeek-R1", profile=relaxed, call={"tools": [tool]})["tools"][0]["function"]["name"] == "lookup"
    model = AzureModel("x", endpoint="https://contoso.openai.azure.com", api_key=KEY, profile=AzureProfile("mine"))
    assert model.profile.family == "mine"


def test_catalog_route_profile_for_unknown_names() -> None:
    body = _sent("prod-chat", stream=True, endpoint="https://contoso.services.ai.azure.com/models")
    assert "stream_options" not in body
