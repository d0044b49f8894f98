"""Capability profiles: the merge order, the overrides, discovery, and refusals before sending."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import modelmix as mm
from modelmix._exceptions import UnsupportedCapabilityError
from modelmix.providers import ModelProfile, Provider
from modelmix.providers.azure import AzureModel
from modelmix.providers.ollama import OllamaModel
from modelmix.providers.openai import OpenAIModel
from modelmix.providers.openai_compatible import OpenAICompatibleModel

from ._helpers import CANARY_KEY, Driver, completion


class Answer(BaseModel):
    city: str


class Layered(Provider):
    name = "layered"
    default_base_url = "http://127.0.0.1:9/v1"
    families = ((r"^small", {"family": "small", "tools": False, "context_window": 4096}),)
    profile_defaults = {"stream_usage": False, "context_window": 8192}  # noqa: RUF012 - read-only data


def test_layers_merge_in_order_provider_then_family_then_discovery_then_override() -> None:
    provider = Layered()
    small = provider.model_profile("small-1")
    assert (small.family, small.tools, small.stream_usage) == ("small", False, False)
    assert small.context_window == 4096, "a family is more specific than the provider's defaults"
    other = provider.model_profile("big-1")
    assert (other.family, other.tools, other.context_window) == ("default", True, 8192)
    discovered = provider.model_profile("small-1", discovered={"context_window": 2048})
    assert discovered.context_window == 2048
    overridden = provider.model_profile("small-1", discovered={"tools": False}, override={"tools": True})
    assert overridden.tools is True, "the user's override wins over discovery"
    whole = ModelProfile("mine", tools=False)
    assert provider.model_profile("big-1", override=whole) is whole


def test_unknown_fields_and_names_are_configuration_errors() -> None:
    with pytest.raises(mm.ConfigurationError, match="unknown profile field"):
        Layered().model_profile("x", override={"tool": True})
    with pytest.raises(mm.ConfigurationError, match="unknown profile 'nope'"):
        Layered().model_profile("x", override="nope")


def test_profiles_are_immutable_and_copied_with_changes() -> None:
    profile = ModelProfile()
    with pytest.raises(AttributeError):
        profile.tools = False  # type: ignore[misc]
    assert profile.with_(tool_choice=["auto"]).tool_choice == frozenset({"auto"})


def test_openai_reasoning_models_choose_their_max_tokens_field_from_the_profile() -> None:
    assert OpenAIModel("o3-mini", api_key=CANARY_KEY).profile.max_tokens_field == "max_completion_tokens"
    assert OpenAIModel("gpt-5-mini", api_key=CANARY_KEY).profile.reasoning == "reasoning_effort"
    assert OpenAIModel("gpt-4o", api_key=CANARY_KEY).profile.max_tokens_field == "max_tokens"
    assert OpenAIModel("gpt-4o", api_key=CANARY_KEY).profile.retry_conflict is True


def test_constructor_flags_land_in_the_profile() -> None:
    model = OpenAICompatibleModel("m", base_url="http://h/v1", text_tool_calls=False, stream_usage=False)
    assert (model.profile.text_tool_calls, model.profile.stream_usage, model.profile.estimate_usage) == (
        False,
        False,
        True,
    )
    assert OpenAICompatibleModel("m", base_url="http://h/v1", profile={"images": False}).profile.images is False


def _recording(answer: Any = None) -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer if answer is not None else completion())

    return seen, httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("profile", "settings", "capability"),
    [
        ({"tools": False}, {"tools": [mm.Tool(name="f")]}, "tools"),
        ({"tool_choice": ["auto", "none"]}, {"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": ["auto"]}, {"tool_choice": "lookup"}, "tool_choice"),
        ({"parallel_tool_calls": False}, {"parallel_tool_calls": True}, "parallel_tool_calls"),
        ({"json_schema": False}, {"response_format": Answer}, "json_schema"),
        ({"json_mode": False}, {"response_format": "json"}, "json_mode"),
    ],
)
async def test_a_request_the_profile_refuses_is_never_sent(
    driver: Driver, profile: dict[str, Any], settings: dict[str, Any], capability: str
) -> None:
    seen, transport = _recording()
    model = OpenAIModel(
        "gpt-4o",
        api_key=CANARY_KEY,
        profile=profile,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    with pytest.raises(UnsupportedCapabilityError) as caught:
        await driver.chat(model, "hi", **settings)
    assert caught.value.capability == capability
    assert (caught.value.provider, caught.value.model) == ("openai", "gpt-4o")
    assert seen == []


def test_images_refused_for_a_text_only_profile() -> None:
    seen, transport = _recording()
    model = OpenAIModel(
        "m", api_key=CANARY_KEY, profile={"images": False}, http_client=httpx.Client(transport=transport)
    )
    with pytest.raises(UnsupportedCapabilityError, match="image") as caught:
        model.stream(mm.user("What is this?", mm.image("https://example.com/x.png")))
    assert caught.value.param == "messages"
    assert seen == []


# ------------------------------------------------------------------------------------ discovery


async def test_llamacpp_discovers_its_context_and_vision_from_props(driver: Driver) -> None:
    props = {"default_generation_settings": {"n_ctx": 4096}, "modalities": {"vision": False}}
    seen, transport = _recording(props)
    model = OpenAICompatibleModel(
        "smollm2",
        preset="llamacpp",
        base_url="http://127.0.0.1:8080/v1",
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    assert seen == [], "building a model makes no network call"
    profile = model.discover_profile() if driver.mode == "sync" else await model.adiscover_profile()
    assert (profile.context_window, profile.images) == (4096, False)
    assert model.profile is profile
    assert model.context_window == 4096
    assert (seen[0].method, seen[0].url.path) == ("GET", "/props")


async def test_ollama_discovers_capabilities_from_api_show(driver: Driver) -> None:
    show = {"capabilities": ["completion", "vision"], "parameters": "stop  <|eot|>\nnum_ctx  8192"}
    seen, transport = _recording(show)
    model = OllamaModel(
        "llava",
        base_url="http://127.0.0.1:11434",
        profile={"images": False},  # the user's word wins over the server's
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    profile = model.discover_profile() if driver.mode == "sync" else await model.adiscover_profile()
    assert (profile.tools, profile.images, profile.reasoning, profile.context_window) == (False, False, None, 8192)
    assert (seen[0].method, seen[0].url.path, json.loads(seen[0].content)) == ("POST", "/api/show", {"model": "llava"})


async def test_azure_discovers_the_family_behind_a_deployment_from_info(driver: Driver) -> None:
    seen, transport = _recording({"model_name": "DeepSeek-R1", "model_type": "chat-completion"})
    model = AzureModel(
        "prod-chat",
        endpoint="https://contoso.services.ai.azure.com/models",
        api_key="azure-key-123456789",
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    assert model.profile.family == "catalog-default"
    profile = model.discover_profile() if driver.mode == "sync" else await model.adiscover_profile()
    assert (profile.family, profile.system_role, profile.tools) == ("deepseek-r1", False, False)
    assert seen[0].url.path.endswith("/info")
    assert seen[0].headers["api-key"] == "azure-key-123456789"


def test_a_backend_that_cannot_tell_keeps_its_profile() -> None:
    model = OpenAIModel("gpt-4o", api_key=CANARY_KEY)
    assert model.discover_profile() is model.profile


def test_a_wrapped_model_reports_the_profile_of_the_model_it_wraps() -> None:
    wrapped = mm.model("openai:o3-mini", api_key=CANARY_KEY)  # retrying by default
    assert wrapped.profile.family == "o-series"
    wrapped.close()


# ------------------------------------------------------------------ the catalog narrows vendor profiles


def test_the_catalog_narrows_a_vendor_models_profile() -> None:
    old = mm.model("openai:gpt-3.5-turbo", api_key="sk-test").profile
    assert old.json_schema is False  # no structured outputs on gpt-3.5-turbo
    assert old.tools is True
    assert old.context_window == 16_385
    assert old.max_output_tokens == 4_096
    o1_mini = mm.model("openai:o1-mini", api_key="sk-test")
    assert o1_mini.profile.tools is False
    with pytest.raises(mm.UnsupportedCapabilityError, match="tools"):
        o1_mini.chat("hi", tools=[mm.Tool(name="f")])


def test_the_catalog_never_narrows_a_server_you_run() -> None:
    # vLLM enforces a schema with its own grammar, whatever model it serves.
    served = mm.model("vllm:gpt-3.5-turbo").profile
    assert served.json_schema is True
    assert served.context_window is None


def test_the_catalog_never_grants_what_the_route_withholds() -> None:
    catalog_route = mm.model("azure:Phi-4", base_url="https://x.services.ai.azure.com/models", api_key="k")
    assert catalog_route.profile.json_schema is False
    assert catalog_route.profile.context_window == 16_384
